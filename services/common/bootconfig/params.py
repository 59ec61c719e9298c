"""What the conductor and the boot service both write into boot answers, checked the same way:
the kernel parameters the agent reads, and the values safe in an iPXE script line.

``agent_kernel_params``: ``enclume.api_url=URL`` (the API the agent looks itself up at and
heartbeats to), ``enclume.node=UUID`` (the node the conductor expects to boot) or
``enclume.discovery=1`` (a machine no node has yet) or neither (the agent looks its node up by
its MACs: a virtual media ISO shared by nodes), ``enclume.api_ca_url=URL`` (the CA of the
API's certificate, served by the boot service) when one is configured, then the operator's
extra parameters.
Values that come from users (URLs, kernel parameters) pass ``check_safe`` so that no value can
add an iPXE command or expand a setting.
"""

from __future__ import annotations

# Character sequences that would change the meaning of an iPXE script line: command chaining,
# setting expansion, quoting and escapes.
_UNSAFE_SEQUENCES = ("||", "&&", "$", '"', "'", "\\")


class UnsafeScriptValue(ValueError):
    """A value that cannot be written into an iPXE script as it is."""


def check_safe(what: str, value: str, allow_spaces: bool = True) -> str:
    """``value`` unchanged if it can stand in an iPXE script line, else UnsafeScriptValue."""
    if not isinstance(value, str):
        raise UnsafeScriptValue(f"{what} must be a string, not {type(value).__name__}")
    for char in value:
        if not (" " <= char <= "~"):
            raise UnsafeScriptValue(f"{what} may only hold printable ASCII characters, "
                                    f"found {char!r}")
        if char == " " and not allow_spaces:
            raise UnsafeScriptValue(f"{what} may not contain spaces")
    for sequence in _UNSAFE_SEQUENCES:
        if sequence in value:
            raise UnsafeScriptValue(f"{what} may not contain {sequence!r} (it has a meaning in "
                                    f"iPXE scripts)")
    return value


def check_url(what: str, url: str) -> str:
    check_safe(what, url, allow_spaces=False)
    if not url.startswith(("http://", "https://")):
        raise UnsafeScriptValue(f"{what} must be an http:// or https:// URL, not {url!r}")
    return url


def agent_kernel_params(api_url: str, node_uuid: str | None, append: str = "",
                        ca_url: str | None = None, by_mac: bool = False) -> str:
    """The parameters telling the agent where the API is and who it is (see the docstring).
    ``by_mac``: neither node nor discovery, the agent looks its node up by its MACs alone (a
    virtual media ISO shared by several nodes)."""
    check_url("the agent's API URL", api_url)
    who = ("" if by_mac else f"enclume.node={node_uuid}" if node_uuid
           else "enclume.discovery=1")
    ca = f"enclume.api_ca_url={check_url('the URL of the API CA', ca_url)}" if ca_url else ""
    params = " ".join(part for part in (f"enclume.api_url={api_url.rstrip('/')}", who, ca,
                                        append.strip()) if part)
    return check_safe("the kernel parameters", params)
