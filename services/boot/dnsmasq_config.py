"""dnsmasq's configuration: the provisioning network checked from the settings
(``network_from_settings``), and the configuration file dnsmasq runs with (``render_config``).

Who gets which answer: a MAC only if its host file tags it ``enclume``
(``dhcp-ignore=tag:!enclume``, see ``dnsmasq.py``); a client that is already iPXE (user-class
``iPXE`` or option 175) gets the HTTP URL of its boot script; a PXE ROM gets iPXE over TFTP:
``ipxe.efi`` for UEFI (client architecture 7 and 9), ``undionly.kpxe`` for BIOS (0). In proxy
mode the same comes as ``pxe-service`` entries (dnsmasq calls architecture 7 ``BC_EFI`` and 9
``X86-64_EFI``); UEFI ROMs then fetch the file name from port 4011.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, ip_address
from pathlib import Path
from urllib.parse import urlsplit

from services.boot import ipxe
from services.boot.addresses import AddressBook
from services.boot.interfaces import InterfaceError, ipv4_interface
from services.common.bootconfig.params import UnsafeScriptValue, check_url
from services.common.config import Settings

BIOS_LOADER = "undionly.kpxe"
UEFI_LOADER = "ipxe.efi"
ANSWER_TAG = "enclume"
IPXE_TAG = "ipxe"
UEFI_TAG = "efi"
BIOS_TAG = "bios"
# Client system architectures (DHCP option 93) and dnsmasq's names for them in pxe-service.
BIOS_ARCHES = {0: "x86PC"}
UEFI_ARCHES = {7: "BC_EFI", 9: "X86-64_EFI"}
PXE_MENU_TEXT = "Enclume network boot"
WILDCARD_MAC = "*:*:*:*:*:*"
WILDCARD_FILE = "any-mac"
TFTP_PORT = 69
PID_FILE = "dnsmasq.pid"
LEASE_FILE = "dnsmasq.leases"
DNSMASQ_TEST_TIMEOUT_S = 10
# Characters that would let a value end a dnsmasq option or add one.
_CONFIG_UNSAFE = set(",\n\r\0\"'# \t")


class BootConfigError(ValueError):
    """The settings do not describe a network dnsmasq can serve; the message names the setting."""


@dataclass(frozen=True)
class DhcpNetwork:
    """Everything the dnsmasq configuration is made of, checked."""

    interface: str
    mode: str  # "full" | "proxy"
    network: IPv4Network
    next_server: IPv4Address  # where PXE ROMs fetch iPXE by TFTP
    script_url: str  # what iPXE clients are sent to
    range_start: IPv4Address | None
    range_end: IPv4Address | None
    lease_time_s: int
    router: IPv4Address | None
    no_ping: bool
    router_advertisement: bool
    user: str
    directory: Path

    @property
    def hosts_dir(self) -> Path:
        return self.directory / "hosts"

    @property
    def config_file(self) -> Path:
        return self.directory / "dnsmasq.conf"


def _safe(what: str, value: str) -> str:
    bad = sorted(set(value) & _CONFIG_UNSAFE)
    if not value or bad:
        raise BootConfigError(f"{what} {value!r} cannot be written into the dnsmasq "
                              f"configuration (empty, or holds {bad!r})")
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def network_from_settings(settings: Settings,
                          address: IPv4Interface | None = None) -> DhcpNetwork:
    """The network to serve, from the settings and the interface's address (read if not given).

    Raises BootConfigError naming the setting at fault.
    """
    if not settings.boot.interface:
        raise BootConfigError("ENCLUME_BOOT_INTERFACE is not set: name the network interface "
                              "of the provisioning network")
    interface = _safe("ENCLUME_BOOT_INTERFACE", settings.boot.interface)
    if address is None:
        try:
            address = ipv4_interface(interface)
        except InterfaceError as exc:
            raise BootConfigError(f"ENCLUME_BOOT_INTERFACE={interface}: {exc}") from exc
    netmask = settings.dhcp.netmask or address.netmask
    try:
        network = IPv4Network(f"{address.ip}/{netmask}", strict=False)
    except ValueError as exc:
        raise BootConfigError(f"ENCLUME_BOOT_DHCP_NETMASK={netmask} is not a netmask") from exc
    for name in (BIOS_LOADER, UEFI_LOADER):
        if name not in settings.tftp.files:
            raise BootConfigError(f"ENCLUME_TFTP_FILES must include {name}: DHCP sends PXE "
                                  f"ROMs to it")
    if settings.tftp.port != TFTP_PORT:
        raise BootConfigError(f"ENCLUME_TFTP_PORT={settings.tftp.port}: PXE ROMs fetch iPXE "
                              f"from TFTP port {TFTP_PORT} only")
    try:
        tftp_host = IPv4Address(settings.tftp.host) if settings.tftp.host else None
    except ValueError as exc:
        raise BootConfigError(f"ENCLUME_TFTP_HOST={settings.tftp.host} is not an IPv4 "
                              f"address") from exc
    if tftp_host is not None and tftp_host.is_loopback:
        raise BootConfigError(f"ENCLUME_TFTP_HOST={tftp_host} is a loopback address: machines "
                              f"cannot reach it; use {address.ip} or 0.0.0.0")
    next_server = (tftp_host if tftp_host is not None and not tftp_host.is_unspecified
                   else address.ip)
    try:
        script_url = ipxe.script_url(check_url("ENCLUME_BOOT_PUBLIC_URL",
                                                    settings.effective_boot_url))
    except UnsafeScriptValue as exc:
        raise BootConfigError(str(exc)) from exc
    _safe("the boot script URL (ENCLUME_BOOT_PUBLIC_URL)", script_url)
    if _is_loopback(urlsplit(script_url).hostname or ""):
        raise BootConfigError(f"the boot script URL {settings.effective_boot_url} is on "
                              f"loopback: machines cannot reach it; set ENCLUME_BOOT_HTTP_HOST "
                              f"(or ENCLUME_BOOT_PUBLIC_URL) to e.g. {address.ip}")
    start, end = settings.dhcp.range_start, settings.dhcp.range_end
    if settings.dhcp.mode == "full":
        _check_range(network, start, end, address.ip)
    return DhcpNetwork(
        interface=interface, mode=settings.dhcp.mode, network=network,
        next_server=next_server, script_url=script_url,
        range_start=start if settings.dhcp.mode == "full" else None,
        range_end=end if settings.dhcp.mode == "full" else None,
        lease_time_s=settings.dhcp.lease_time_s, router=settings.dhcp.router,
        no_ping=settings.dhcp.no_ping,
        router_advertisement=settings.dhcp.router_advertisement,
        user=_safe("ENCLUME_BOOT_DNSMASQ_USER", settings.dhcp.dnsmasq_user),
        directory=settings.effective_boot_dnsmasq_dir)


def _check_range(network: IPv4Network, start: IPv4Address | None, end: IPv4Address | None,
                 own: IPv4Address) -> None:
    if start is None or end is None:
        raise BootConfigError("ENCLUME_BOOT_DHCP_MODE=full needs ENCLUME_BOOT_DHCP_RANGE_START "
                              "and ENCLUME_BOOT_DHCP_RANGE_END (the addresses to lease); use "
                              "ENCLUME_BOOT_DHCP_MODE=proxy when another DHCP server owns the "
                              "addresses")
    for name, value in (("START", start), ("END", end)):
        if value not in network:
            raise BootConfigError(f"ENCLUME_BOOT_DHCP_RANGE_{name}={value} is outside the "
                                  f"provisioning network {network}")
    if end < start:
        raise BootConfigError(f"ENCLUME_BOOT_DHCP_RANGE_END={end} comes before "
                              f"ENCLUME_BOOT_DHCP_RANGE_START={start}")
    if start <= own <= end:
        raise BootConfigError(f"the DHCP range {start}-{end} holds this host's own address "
                              f"{own}")


def render_config(net: DhcpNetwork) -> str:
    """The dnsmasq configuration file of ``net``."""
    lines = [
        "# Generated by enclume-boot at every start; edits are lost.",
        "port=0",  # no DNS
        f"interface={net.interface}",
        "bind-interfaces",
        f"user={net.user}",
        f"pid-file={net.directory / PID_FILE}",
        f"dhcp-leasefile={net.directory / LEASE_FILE}",
        f"dhcp-hostsdir={net.hosts_dir}",
        "log-dhcp",
    ]
    if net.mode == "full":
        lines += [
            f"dhcp-range={net.range_start},{net.range_end},{net.network.netmask},"
            f"{net.lease_time_s}",
            # Without a value: no router option at all (not this host, dnsmasq's default).
            f"dhcp-option=option:router{f',{net.router}' if net.router else ''}",
        ]
        if net.no_ping:
            lines.append("no-ping")
    else:
        lines.append(f"dhcp-range={net.network.network_address},proxy,{net.network.netmask}")
    lines += [
        f"dhcp-ignore=tag:!{ANSWER_TAG}",
        f"dhcp-userclass=set:{IPXE_TAG},iPXE",
        f"dhcp-match=set:{IPXE_TAG},175",
        *(f"dhcp-match=set:{BIOS_TAG},option:client-arch,{arch}" for arch in BIOS_ARCHES),
        *(f"dhcp-match=set:{UEFI_TAG},option:client-arch,{arch}" for arch in UEFI_ARCHES),
        # iPXE takes a proxy answer only with a server address beside the file name.
        f"dhcp-boot=tag:{IPXE_TAG},{net.script_url},,{net.next_server}",
    ]
    if net.mode == "full":
        lines += [
            f"dhcp-boot=tag:!{IPXE_TAG},tag:{UEFI_TAG},{UEFI_LOADER},,{net.next_server}",
            f"dhcp-boot=tag:!{IPXE_TAG},tag:{BIOS_TAG},{BIOS_LOADER},,{net.next_server}",
        ]
    else:
        services = [(name, BIOS_LOADER) for name in BIOS_ARCHES.values()]
        services += [(name, UEFI_LOADER) for name in UEFI_ARCHES.values()]
        lines += [f'pxe-service=tag:!{IPXE_TAG},{name},"{PXE_MENU_TEXT}",{loader},'
                  f"{net.next_server}" for name, loader in services]
    if net.router_advertisement:
        # Advertise the interface's own prefix, not as a default router (lifetime 0).
        lines += ["enable-ra", f"dhcp-range=::,constructor:{net.interface},ra-only",
                  f"ra-param={net.interface},0,0"]
    return "\n".join(lines) + "\n"


def reserved_addresses(net: DhcpNetwork) -> AddressBook | None:
    """The addresses reserved per answered MAC: in full DHCP mode only (in proxy mode another
    server owns the addresses). Only with the DHCP filter (see `host_files`)."""
    if net.mode != "full" or net.range_start is None or net.range_end is None:
        return None
    excluded = {net.network.network_address, net.network.broadcast_address, net.next_server,
                *([net.router] if net.router else [])}
    return AddressBook(net.range_start, net.range_end, excluded)
