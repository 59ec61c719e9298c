"""The agent's configuration: the kernel command line, overridden by command-line flags.

The boot service starts the ramdisk with ``enclume.api_url=<URL> enclume.node=<uuid>
BOOTIF=<mac>`` (or ``enclume.discovery=1``), and ``enclume.api_ca_url=<URL>`` when the API's
certificate is signed by the operator's own CA; flags override each value, which is how tests
run the agent on file-backed disks on loopback.
"""

from __future__ import annotations

import argparse
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_CMDLINE = Path("/proc/cmdline")
DEFAULT_PORT = 9999
DEFAULT_POWEROFF = ("poweroff", "-f")
DEFAULT_REBOOT = ("reboot", "-f")
# system.lockdown: every network interface down, as Ironic's agent (_lockdown_system).
DEFAULT_LOCKDOWN = ("sh", "-c", 'for nic in /sys/class/net/*; do nic="${nic##*/}"; '
                    '[ "$nic" = lo ] || ip link set "$nic" down; done')
DEFAULT_LOGIN_CONSOLE = "/dev/console"
# What a machine does once its discovery inventory was posted (enclume.after_discovery=).
AFTER_DISCOVERY = ("poweroff", "reboot", "stay")
DISCOVERY_RETRY_MAX_S = 60.0
MIN_HEARTBEAT_S = 1.0
_MAC = re.compile(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$")


class ConfigError(ValueError):
    """The configuration is unusable; the message says which value and why."""


@dataclass(frozen=True)
class AgentConfig:
    api_url: str
    node_uuid: str | None = None
    macs: tuple[str, ...] = ()  # given explicitly: only these are looked up
    boot_mac: str | None = None  # BOOTIF: looked up first, with every NIC's MAC after it
    listen_host: str = "0.0.0.0"
    listen_port: int = DEFAULT_PORT
    advertise_host: str | None = None  # address put in the callback URL; default: route to API
    heartbeat_interval_s: float | None = None  # default: heartbeat_timeout / 3 from the lookup
    disks: tuple[str, ...] = ()  # explicit disks (files or devices); empty: discover /sys/block
    poweroff_command: tuple[str, ...] = DEFAULT_POWEROFF
    reboot_command: tuple[str, ...] = DEFAULT_REBOOT
    lockdown_command: tuple[str, ...] = DEFAULT_LOCKDOWN  # run once locked down
    power_action_delay_s: float = 1.0  # lets the answer to power_off/reboot leave first
    lookup_retry_s: float = 5.0
    http_timeout_s: float = 30.0
    staging_dir: str = "/tmp"  # in-memory staging of qcow2 images when the disk tail cannot be
    lldp_interfaces: tuple[str, ...] | None = None  # None: every interface with a MAC
    extra: dict[str, str] = field(default_factory=dict)  # other enclume.* kernel parameters
    discovery: bool = False  # enclume.discovery=1 without enclume.node: post the inventory
    after_discovery: str = "poweroff"  # one of AFTER_DISCOVERY
    discovery_retry_max_s: float = DISCOVERY_RETRY_MAX_S  # back-off cap, from lookup_retry_s
    api_ca_file: str | None = None  # PEM of the CA the API's certificate is checked against ...
    api_ca_url: str | None = None  # ... or where the boot service serves it
    login_console: str = DEFAULT_LOGIN_CONSOLE  # the terminal of the login prompt
    rescue_root: str = "/"  # where finalize_rescue writes etc/shadow (tests: a directory)
    rescue_login_command: tuple[str, ...] | None = None  # None: getty on the login console


def normalize_mac(value: str) -> str:
    """``aa:bb:..`` from ``AA-BB-..`` or PXELINUX's ``01-aa-bb-..`` (hardware type 1)."""
    text = value.strip().lower()
    if len(text) == 20 and text.startswith("01-"):
        text = text[3:]
    if not _MAC.match(text):
        raise ConfigError(f"not a MAC address: {value!r}")
    return text.replace("-", ":")


def parse_cmdline(text: str) -> dict[str, str]:
    """``key=value`` pairs of a kernel command line (flags without ``=`` map to ``""``)."""
    values: dict[str, str] = {}
    for word in text.split():
        key, _, value = word.partition("=")
        values[key] = value
    return values


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="enclume-agent", description=__doc__)
    parser.add_argument("--cmdline-file", type=Path, default=DEFAULT_CMDLINE,
                        help="kernel command line to read (default /proc/cmdline)")
    parser.add_argument("--api-url", help="Enclume API URL (default: enclume.api_url=)")
    parser.add_argument("--node-uuid", help="node UUID to look up (default: enclume.node=)")
    parser.add_argument("--mac", action="append", default=[],
                        help="MAC address to look up, repeatable (default: BOOTIF + all NICs)")
    parser.add_argument("--listen-host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="command API port (0: any free port)")
    parser.add_argument("--advertise-host", help="address in the callback URL")
    parser.add_argument("--heartbeat-interval", type=float,
                        help="seconds between heartbeats (default: heartbeat_timeout / 3)")
    parser.add_argument("--disk", action="append", default=[],
                        help="disk (block device or file) the agent may use, repeatable "
                             "(default: the block devices of /sys/block)")
    parser.add_argument("--poweroff-command", help="command run by standby.power_off")
    parser.add_argument("--reboot-command", help="command run by standby.reboot")
    parser.add_argument("--lockdown-command",
                        help="command run once system.lockdown stopped the agent (default: "
                             "every network interface down)")
    parser.add_argument("--power-action-delay", type=float, default=1.0)
    parser.add_argument("--lookup-retry", type=float, default=5.0)
    parser.add_argument("--staging-dir", default="/tmp")
    parser.add_argument("--lldp-interface", action="append",
                        help="interface to listen to LLDP on, repeatable (default: all)")
    parser.add_argument("--discovery-retry-max", type=float, default=DISCOVERY_RETRY_MAX_S,
                        help="longest wait between tries to post a discovery inventory")
    parser.add_argument("--api-ca-file",
                        help="CA (PEM) of the API's certificate (default: enclume.api_ca_url=)")
    parser.add_argument("--login-console",
                        help="terminal of the login prompt (default: enclume.login_console=, "
                             "else /dev/console)")
    parser.add_argument("--rescue-root", default="/",
                        help="root of the files rescue.finalize_rescue writes (etc/shadow)")
    parser.add_argument("--rescue-login-command",
                        help="login prompt of a rescued ramdisk (default: busybox getty on "
                             "the login console)")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def load(argv: list[str] | None = None) -> tuple[AgentConfig, bool]:
    """The configuration and the verbose flag from ``argv`` and the kernel command line."""
    args = _parser().parse_args(argv)
    try:
        cmdline = parse_cmdline(args.cmdline_file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read {args.cmdline_file}: {exc.strerror}") from None
    api_url = args.api_url or cmdline.get("enclume.api_url")
    if not api_url:
        raise ConfigError("no API URL: pass --api-url or boot with enclume.api_url=")
    if not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"the API URL must be http(s)://…, not {api_url!r}")
    macs = [normalize_mac(mac) for mac in args.mac]
    boot_mac = normalize_mac(cmdline["BOOTIF"]) if cmdline.get("BOOTIF") else None
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port} is not a TCP port")
    if args.heartbeat_interval is not None and args.heartbeat_interval <= 0:
        raise ConfigError("--heartbeat-interval must be positive")
    node_uuid = args.node_uuid or cmdline.get("enclume.node") or None
    after = cmdline.get("enclume.after_discovery") or "poweroff"
    if after not in AFTER_DISCOVERY:
        raise ConfigError(f"enclume.after_discovery={after} is not one of "
                          f"{', '.join(AFTER_DISCOVERY)}")
    if args.discovery_retry_max <= 0 or args.lookup_retry <= 0:
        raise ConfigError("--lookup-retry and --discovery-retry-max must be positive")
    config = AgentConfig(
        api_url=api_url.rstrip("/"),
        node_uuid=node_uuid,
        macs=tuple(macs),
        boot_mac=boot_mac,
        listen_host=args.listen_host,
        listen_port=args.port,
        advertise_host=args.advertise_host,
        heartbeat_interval_s=args.heartbeat_interval,
        disks=tuple(args.disk),
        poweroff_command=(tuple(shlex.split(args.poweroff_command)) if args.poweroff_command
                          else DEFAULT_POWEROFF),
        reboot_command=(tuple(shlex.split(args.reboot_command)) if args.reboot_command
                        else DEFAULT_REBOOT),
        lockdown_command=(tuple(shlex.split(args.lockdown_command)) if args.lockdown_command
                          else DEFAULT_LOCKDOWN),
        power_action_delay_s=args.power_action_delay,
        lookup_retry_s=args.lookup_retry,
        staging_dir=args.staging_dir,
        lldp_interfaces=tuple(args.lldp_interface) if args.lldp_interface else None,
        extra={key: value for key, value in cmdline.items() if key.startswith("enclume.")},
        discovery=node_uuid is None and cmdline.get("enclume.discovery") in ("1", "true", "yes"),
        after_discovery=after,
        discovery_retry_max_s=args.discovery_retry_max,
        api_ca_file=args.api_ca_file,
        api_ca_url=cmdline.get("enclume.api_ca_url") or None,
        login_console=(args.login_console or cmdline.get("enclume.login_console")
                       or DEFAULT_LOGIN_CONSOLE),
        rescue_root=args.rescue_root,
        rescue_login_command=(tuple(shlex.split(args.rescue_login_command))
                              if args.rescue_login_command else None),
    )
    return config, args.verbose
