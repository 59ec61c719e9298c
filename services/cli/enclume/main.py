"""``enclume``: the command line of the Enclume (Ironic v1) API.

Global options come before the command: ``enclume --url http://host:6385 node list``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli.enclume import (
    enroll,
    history,
    image_versions,
    jobs,
    management,
    node_inventory,
    nodes,
    ports,
    power,
    room_actions,
    sessions,
    verbs,
)
from services.cli.enclume.client import ApiError
from services.cli.enclume.config import ConfigError
from services.cli.enclume.context import Cli, CliError, print_error
from services.cli.enclume.options import Format

app = typer.Typer(
    name="enclume", no_args_is_help=True, add_completion=False,
    # Tracebacks with local variables could show the password: plain errors only.
    pretty_exceptions_enable=False,
    help="Enroll, provision and run bare-metal machines through the Enclume (Ironic v1) API; "
         "rooms, images, sessions and jobs of classrooms (Enclume's /enclume/v1 API).",
)
node_app = typer.Typer(no_args_is_help=True, help="Nodes: enrollment, provisioning, power.")
for commands in (nodes.app, verbs.app, management.app, node_inventory.app):
    node_app.add_typer(commands)
node_app.add_typer(power.app, name="power")
node_app.add_typer(management.boot_app, name="boot")
node_app.add_typer(management.maintenance_app, name="maintenance")
node_app.add_typer(history.app, name="history")
app.add_typer(node_app, name="node")
app.add_typer(ports.app, name="port")
app.command("enroll")(enroll.enroll)
# Classrooms (Enclume's own API, /enclume/v1): room_actions adds its commands to `room`,
# image_versions its commands to `image`.
app.add_typer(image_versions.app, name="image")
app.add_typer(room_actions.app, name="room")
app.add_typer(sessions.app, name="session")
app.add_typer(jobs.app, name="job")


@app.callback()
def global_options(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(
        help="API endpoint (env ENCLUME_URL; default http://127.0.0.1:6385).")] = None,
    username: Annotated[str | None, typer.Option(
        help="HTTP basic auth user (env ENCLUME_USERNAME).")] = None,
    password: Annotated[str | None, typer.Option(
        help="HTTP basic auth password (env ENCLUME_PASSWORD; prefer the environment or "
             "the config file).")] = None,
    api_version: Annotated[str | None, typer.Option(
        help="Microversion such as 1.73 (env ENCLUME_API_VERSION; default: the server's "
             "newest).")] = None,
    http_timeout: Annotated[float | None, typer.Option(
        metavar="SECONDS", help="Timeout of each HTTP request (env ENCLUME_TIMEOUT_S; "
                                "default 30).")] = None,
    fmt: Format = None,
    config: Annotated[Path | None, typer.Option(
        help="YAML configuration file (env ENCLUME_CLI_CONFIG; default "
             "~/.config/enclume/cli.yaml).")] = None,
    debug: Annotated[bool, typer.Option(
        "--debug", help="Log each HTTP request on stderr (never credentials).")] = False,
) -> None:
    if debug:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(message)s")
        logging.getLogger("services.cli.enclume").setLevel(logging.DEBUG)
    state = Cli(flags={"url": url, "username": username, "password": password,
                       "api_version": api_version, "timeout_s": http_timeout, "format": fmt,
                       "cli_config": config})
    ctx.obj = state
    ctx.call_on_close(state.close)


def main() -> None:
    try:
        app(prog_name="enclume")
    except (ApiError, ConfigError, CliError) as exc:
        print_error(exc)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
