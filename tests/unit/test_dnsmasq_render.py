"""The dnsmasq side of the boot service: configuration, host files, and the checks on settings."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

import pytest

from services.boot.dnsmasq import Dnsmasq, HostsDir, host_files
from services.boot.dnsmasq_config import (
    BootConfigError,
    DhcpNetwork,
    network_from_settings,
    render_config,
    reserved_addresses,
)
from services.common.bootconfig.entry import BootEntry, DesiredBoot
from services.common.config import Settings
from tests.support.settings import Sections, merged_settings

ADDRESS = IPv4Interface("10.20.0.1/24")
SCRIPT = "http://10.20.0.1:8080/boot.ipxe?mac=${netX/mac}"
MAC_A = "52:54:00:00:00:0a"
MAC_B = "52:54:00:00:00:0b"
MAC_Q = "52:54:00:00:00:99"


def settings(tmp_path: Path, **sections: dict[str, object]) -> Settings:
    defaults: Sections = {
        "process": {"data_dir": tmp_path},
        "boot": {"interface": "prov0", "http_host": "10.20.0.1", "http_port": 8080},
        "dhcp": {"mode": "full", "range_start": "10.20.0.100", "range_end": "10.20.0.200"},
        "tftp": {"host": "0.0.0.0"},
    }
    return merged_settings(defaults, **sections)


def network(tmp_path: Path, **sections: dict[str, object]) -> DhcpNetwork:
    return network_from_settings(settings(tmp_path, **sections), ADDRESS)


def lines(config: str) -> list[str]:
    return config.splitlines()


def entry(mac: str) -> BootEntry:
    return BootEntry(mac=mac, node_uuid="n-" + mac, mode="ramdisk", boot_mode="uefi",
                     kernel="http://k", ramdisk="http://r")


def dnsmasq_binary() -> str:
    found = shutil.which("dnsmasq", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail("dnsmasq is not installed; `make deps` installs the Debian package "
                    "dnsmasq-base", pytrace=False)
    return found


# -- configuration --------------------------------------------------------------------------

def test_full_mode_leases_the_range_and_sends_each_client_kind_its_loader(tmp_path: Path) -> None:
    config = lines(render_config(network(tmp_path, dhcp={"no_ping": True})))
    assert "interface=prov0" in config and "bind-interfaces" in config and "port=0" in config
    assert "dhcp-range=10.20.0.100,10.20.0.200,255.255.255.0,3600" in config
    assert "dhcp-ignore=tag:!enclume" in config  # only MACs a host file tags are answered
    assert f"dhcp-hostsdir={tmp_path / 'dnsmasq' / 'hosts'}" in config
    assert "dhcp-userclass=set:ipxe,iPXE" in config and "dhcp-match=set:ipxe,175" in config
    assert {"dhcp-match=set:efi,option:client-arch,7",
            "dhcp-match=set:efi,option:client-arch,9",
            "dhcp-match=set:bios,option:client-arch,0"} <= set(config)
    assert f"dhcp-boot=tag:ipxe,{SCRIPT},,10.20.0.1" in config
    assert "dhcp-boot=tag:!ipxe,tag:efi,ipxe.efi,,10.20.0.1" in config
    assert "dhcp-boot=tag:!ipxe,tag:bios,undionly.kpxe,,10.20.0.1" in config
    assert "no-ping" in config
    assert "dhcp-option=option:router" in config  # no default route: not this host
    assert not any(line.startswith("pxe-service") for line in config)


def test_full_mode_options(tmp_path: Path) -> None:
    config = lines(render_config(network(
        tmp_path,
        dhcp={"router": "10.20.0.254", "lease_time_s": 600, "dnsmasq_user": "dnsmasq",
              "router_advertisement": False},
    )))
    assert "dhcp-option=option:router,10.20.0.254" in config
    assert "dhcp-range=10.20.0.100,10.20.0.200,255.255.255.0,600" in config
    assert "user=dnsmasq" in config
    assert "no-ping" not in config
    assert "enable-ra" not in config
    assert not any(line.startswith("ra-param") or "constructor" in line for line in config)


def test_proxy_mode_adds_boot_answers_to_another_servers_addresses(tmp_path: Path) -> None:
    config = lines(render_config(network(
        tmp_path,
        dhcp={"mode": "proxy", "range_start": None, "range_end": None},
    )))
    assert "dhcp-range=10.20.0.0,proxy,255.255.255.0" in config
    assert not any(line.startswith("dhcp-range=10.20.0.100") for line in config)
    services = [line for line in config if line.startswith("pxe-service=")]
    assert services == [
        'pxe-service=tag:!ipxe,x86PC,"Enclume network boot",undionly.kpxe,10.20.0.1',
        'pxe-service=tag:!ipxe,BC_EFI,"Enclume network boot",ipxe.efi,10.20.0.1',
        'pxe-service=tag:!ipxe,X86-64_EFI,"Enclume network boot",ipxe.efi,10.20.0.1',
    ]
    # iPXE needs a server address beside the file name to take a proxy answer.
    assert f"dhcp-boot=tag:ipxe,{SCRIPT},,10.20.0.1" in config
    assert "dhcp-ignore=tag:!enclume" in config
    assert not any(line.startswith(("dhcp-option=option:router", "no-ping")) for line in config)


def test_router_advertisement_for_ipxe(tmp_path: Path) -> None:
    config = lines(render_config(network(tmp_path)))
    assert {"enable-ra", "dhcp-range=::,constructor:prov0,ra-only",
            "ra-param=prov0,0,0"} <= set(config)


def test_next_server_is_the_tftp_address_when_one_is_named(tmp_path: Path) -> None:
    assert network(tmp_path).next_server == IPv4Address("10.20.0.1")
    assert network(tmp_path, tftp={"host": "10.20.0.5"}).next_server == IPv4Address("10.20.0.5")


@pytest.mark.parametrize("mode", ["full", "proxy"])
def test_dnsmasq_accepts_the_generated_configuration(tmp_path: Path, mode: str) -> None:
    net = network(tmp_path, dhcp={"mode": mode, "no_ping": True})
    config = tmp_path / "dnsmasq.conf"
    config.write_text(render_config(net))
    result = subprocess.run([dnsmasq_binary(), "--test", f"--conf-file={config}"],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr


# -- settings that cannot work -------------------------------------------------------------

@pytest.mark.parametrize(("values", "message"), [
    ({"boot": {"interface": None}}, "ENCLUME_BOOT_INTERFACE is not set"),
    ({"dhcp": {"range_start": None}}, "ENCLUME_BOOT_DHCP_RANGE_START"),
    ({"dhcp": {"range_end": None}}, "ENCLUME_BOOT_DHCP_RANGE_END"),
    ({"dhcp": {"range_end": "10.21.0.9"}}, "ENCLUME_BOOT_DHCP_RANGE_END=10.21.0.9 is outside"),
    ({"dhcp": {"range_start": "10.20.0.201"}}, "comes before ENCLUME_BOOT_DHCP_RANGE_START"),
    ({"dhcp": {"range_start": "10.20.0.1"}}, "holds this host's own address 10.20.0.1"),
    ({"tftp": {"host": "127.0.0.1"}}, "ENCLUME_TFTP_HOST=127.0.0.1 is a loopback address"),
    ({"tftp": {"host": "tftp.example"}}, "ENCLUME_TFTP_HOST=tftp.example is not an IPv4"),
    ({"tftp": {"port": 6969}}, "ENCLUME_TFTP_PORT=6969"),
    ({"tftp": {"files": ["ipxe.efi"]}}, "ENCLUME_TFTP_FILES must include undionly.kpxe"),
    ({"dhcp": {"dnsmasq_user": "no body"}}, "ENCLUME_BOOT_DNSMASQ_USER"),
    ({"boot": {"interface": "eth0,x"}}, "ENCLUME_BOOT_INTERFACE"),
    ({"boot": {"public_url": "ftp://10.20.0.1/"}}, "ENCLUME_BOOT_PUBLIC_URL"),
    ({"boot": {"http_host": "127.0.0.1"}}, "http://127.0.0.1:8080 is on loopback"),
    ({"boot": {"public_url": "http://localhost:8080"}}, "http://localhost:8080 is on loopback"),
])
def test_settings_at_fault_are_named(tmp_path: Path, values: Sections,
                                     message: str) -> None:
    with pytest.raises(BootConfigError, match=re.escape(message)):
        network(tmp_path, **values)


def test_a_missing_interface_is_named(tmp_path: Path) -> None:
    with pytest.raises(BootConfigError, match="ENCLUME_BOOT_INTERFACE=no-such-if0: there is no "
                                              "network interface"):
        network_from_settings(settings(tmp_path, boot={"interface": "no-such-if0"}))


def test_proxy_mode_needs_no_range(tmp_path: Path) -> None:
    net = network(tmp_path, dhcp={"mode": "proxy", "range_start": None})
    assert net.range_start is None and net.mode == "proxy"


def test_a_missing_dnsmasq_is_named(tmp_path: Path) -> None:
    with pytest.raises(BootConfigError, match=r"ENCLUME_BOOT_DNSMASQ_BINARY=/nonexistent/dnsmasq: "
                                              r"no such program .*dnsmasq-base"):
        Dnsmasq(network(tmp_path), Path("/nonexistent/dnsmasq"))


# -- host files ----------------------------------------------------------------------------

def test_answered_macs_are_tagged_and_nothing_else_is_written() -> None:
    files = host_files(DesiredBoot(entries={MAC_A: entry(MAC_A)}), {})
    assert files == {"52-54-00-00-00-0a": f"{MAC_A},set:enclume\n"}


def test_an_answered_mac_gets_its_reserved_address() -> None:
    files = host_files(DesiredBoot(entries={MAC_A: entry(MAC_A), MAC_B: entry(MAC_B)}), {},
                       {MAC_A: IPv4Address("10.20.0.150")})
    assert files == {"52-54-00-00-00-0a": f"{MAC_A},set:enclume,10.20.0.150\n",
                     "52-54-00-00-00-0b": f"{MAC_B},set:enclume\n"}


def test_a_mac_with_a_reserved_address_keeps_its_entry_when_no_longer_answered() -> None:
    """Rewritten, the entry could never come back (see host_files); the DHCP filter cuts the
    MAC off instead."""
    reserved = {MAC_A: IPv4Address("10.20.0.150")}
    written = host_files(DesiredBoot(entries={MAC_A: entry(MAC_A)}), {}, reserved)
    assert host_files(DesiredBoot(entries={}), written, reserved) == written
    assert host_files(DesiredBoot(quiet_macs=frozenset({MAC_A}), discovery=True), written,
                      reserved)["52-54-00-00-00-0a"] == f"{MAC_A},set:enclume,10.20.0.150\n"


def test_addresses_are_reserved_in_full_dhcp_only_and_never_the_router_s(
        tmp_path: Path) -> None:
    assert reserved_addresses(network(tmp_path, dhcp={"mode": "proxy"})) is None
    book = reserved_addresses(network(tmp_path, dhcp={"router": "10.20.0.100"}))
    assert book is not None
    assert (book.start, book.end) == (int(IPv4Address("10.20.0.100")),
                                      int(IPv4Address("10.20.0.200")))
    assert not book.usable(IPv4Address("10.20.0.100"))
    assert book.usable(IPv4Address("10.20.0.101"))


def test_a_mac_no_longer_answered_is_rewritten_to_ignore_never_deleted() -> None:
    written = host_files(DesiredBoot(entries={MAC_A: entry(MAC_A), MAC_B: entry(MAC_B)}), {})
    files = host_files(DesiredBoot(entries={MAC_B: entry(MAC_B)}), written)
    assert files == {"52-54-00-00-00-0a": f"{MAC_A},ignore\n",
                     "52-54-00-00-00-0b": f"{MAC_B},set:enclume\n"}


def test_discovery_tags_every_mac_but_the_quiet_ones() -> None:
    files = host_files(DesiredBoot(entries={MAC_A: entry(MAC_A)}, quiet_macs=frozenset({MAC_Q}),
                                   discovery=True), {})
    assert files == {"52-54-00-00-00-0a": f"{MAC_A},set:enclume\n",
                     "52-54-00-00-00-99": f"{MAC_Q},ignore\n",
                     "any-mac": "*:*:*:*:*:*,set:enclume\n"}


def test_hosts_dir_writes_only_what_changed(tmp_path: Path) -> None:
    hosts = HostsDir(tmp_path / "hosts")
    hosts.reset()
    assert hosts.sync(DesiredBoot(entries={MAC_A: entry(MAC_A)})) == 1
    assert hosts.sync(DesiredBoot(entries={MAC_A: replace(entry(MAC_A), mode="local")})) == 0
    assert hosts.sync(DesiredBoot(entries={MAC_B: entry(MAC_B)})) == 2
    assert {p.name: p.read_text() for p in (tmp_path / "hosts").iterdir()} == {
        "52-54-00-00-00-0a": f"{MAC_A},ignore\n", "52-54-00-00-00-0b": f"{MAC_B},set:enclume\n"}
    assert oct((tmp_path / "hosts" / "52-54-00-00-00-0b").stat().st_mode & 0o777) == "0o644"
    assert list((tmp_path / "hosts.new").iterdir()) == []  # staged files were moved in
    hosts.reset()
    assert list((tmp_path / "hosts").iterdir()) == []
