"""The node field options ``node create`` and ``node set`` share, written once: ``@node_fields``
adds them to a command's options (before ``--format``) and hands them to it as ``fields``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_type_hints

import typer

from services.cli.enclume import args

# --xxx-interface options of create, set and unset, in the order --help shows them.
INTERFACES = ("boot", "deploy", "inspect", "management", "network", "power", "console", "raid",
              "rescue", "storage", "vendor", "bios")

Text = Annotated[str | None, typer.Option()]
Pairs = Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE")]
Iface = Annotated[str | None, typer.Option(metavar="IMPL", show_default=False)]

TEXT_FIELDS = ("name", "description", "resource_class", "conductor_group", "owner", "lessee")
SHARED: tuple[tuple[str, Any], ...] = (
    *((name, Text) for name in TEXT_FIELDS),
    ("driver_info", Pairs),
    ("property", Pairs),
    ("extra", Pairs),
    ("instance_info", Pairs),
    ("label", Pairs),
    ("network_data", Annotated[str | None, typer.Option(metavar="JSON|@FILE")]),
    ("automated_clean", Annotated[bool | None, typer.Option(
        "--automated-clean/--no-automated-clean", show_default=False)]),
    *((f"{name}_interface", Iface) for name in INTERFACES),
)


class NodeFields:
    """The values of the shared options, as the API names them."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def network_data(self) -> Any:
        raw = self.values["network_data"]
        return args.json_or_file(raw, "--network-data") if raw is not None else None

    def interfaces(self) -> dict[str, str | None]:
        return {f"{name}_interface": self.values[f"{name}_interface"] for name in INTERFACES}

    def maps(self, extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """driver_info (values kept as strings), properties, extra, instance_info."""
        return {
            "driver_info": args.pairs(self.values["driver_info"], "--driver-info", decode=False),
            "properties": args.pairs(self.values["property"], "--property"),
            "extra": args.pairs(self.values["extra"], "--extra") if extra is None else extra,
            "instance_info": args.pairs(self.values["instance_info"], "--instance-info"),
        }


def node_fields(command: Callable[..., None]) -> Callable[..., None]:
    hints = get_type_hints(command, include_extras=True)
    own = [p.replace(annotation=hints[p.name])
           for p in inspect.signature(command).parameters.values() if p.name != "fields"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                annotation=annotation) for name, annotation in SHARED]
    at = next((i for i, p in enumerate(own) if p.name == "fmt"), len(own))
    parameters = [*own[:at], *shared, *own[at:]]

    @functools.wraps(command)
    def with_fields(**kwargs: Any) -> None:
        values = {name: kwargs.pop(name) for name, _ in SHARED}
        command(**kwargs, fields=NodeFields(values))

    del with_fields.__wrapped__  # typer reads the signature below, not the command's
    with_fields.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in parameters])
    with_fields.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_fields
