"""dnsmasq, driven by generated files: per-MAC host files, its leases, its process (its
configuration file and what each client is answered: ``dnsmasq_config.py``).

A MAC is answered only if its host file tags it ``enclume`` (``dhcp-ignore=tag:!enclume``);
with discovery on, a wildcard host file tags every MAC and the host files of known nodes
without a planned boot say ``ignore`` (a per-MAC entry wins over the wildcard).

dnsmasq re-reads changed and new host files by itself (inotify) but does not notice a deleted
one, so a MAC that stops being answered gets its file rewritten to ``ignore``, never deleted.
Files are written beside the directory and renamed into it, so dnsmasq never reads half a file.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time
from collections.abc import Mapping
from ipaddress import IPv4Address
from pathlib import Path

from services.boot.dnsmasq_config import (
    ANSWER_TAG,
    DNSMASQ_TEST_TIMEOUT_S,
    LEASE_FILE,
    PID_FILE,
    WILDCARD_FILE,
    WILDCARD_MAC,
    BootConfigError,
    DhcpNetwork,
    render_config,
    reserved_addresses,
)
from services.boot.interfaces import ipv6_addresses
from services.boot.supervisor import ProcessSupervisor, stop_pid
from services.common.bootconfig.entry import DesiredBoot
from services.common.macs import parse_mac
from services.common.metrics import count_dnsmasq_line

LOG = logging.getLogger(__name__)

LEASE_READ_ATTEMPTS = 5


def _stable_text(path: Path) -> str:
    """The lease file read until two reads agree: dnsmasq rewrites it in place (rewind, write,
    truncate), so one read may catch it half-written."""
    previous = path.read_text(errors="replace")
    for _ in range(LEASE_READ_ATTEMPTS):
        current = path.read_text(errors="replace")
        if current == previous:
            break
        previous = current
    return previous


def read_leases(path: Path, now: float | None = None) -> dict[str, IPv4Address]:
    """dnsmasq's unexpired IPv4 leases by MAC (lower case). A line is ``EXPIRY MAC ADDRESS
    HOSTNAME CLIENT-ID``, EXPIRY 0 for an infinite lease; other lines are skipped, and so is
    a last line without its newline (cut by a rewrite: its address may be cut short too)."""
    now = time.time() if now is None else now
    try:
        text = _stable_text(path)
    except OSError:
        return {}
    leases: dict[str, IPv4Address] = {}
    for line in text.split("\n")[:-1]:
        fields = line.split()
        if len(fields) < 3 or not fields[0].isdigit():
            continue
        expiry, mac = int(fields[0]), parse_mac(fields[1])
        try:
            address = IPv4Address(fields[2])
        except ValueError:
            continue
        if mac is not None and (expiry == 0 or expiry > now):
            leases[mac] = address
    return leases


def host_file_name(mac: str) -> str:
    return mac.replace(":", "-")


def host_files(desired: DesiredBoot, written: dict[str, str],
               addresses: Mapping[str, IPv4Address] | None = None) -> dict[str, str]:
    """File name → content of every host file ``desired`` needs, given the ones ``written``;
    ``addresses``: the address reserved for each MAC (full DHCP with the DHCP filter).

    MACs that had a file and are no longer answered get ``ignore``: dnsmasq would keep their
    old entry if the file were deleted. A MAC with a reserved address keeps its entry instead:
    dnsmasq keeps the records of a file it read before when the file changes, and refuses a
    new record for an address an old one holds ("duplicate dhcp-host IP address"), so the MAC
    could never be answered again; the DHCP filter cuts it off meanwhile.
    """
    addresses = addresses or {}

    def answer(mac: str) -> str:
        return f"{mac},set:{ANSWER_TAG}{f',{addresses[mac]}' if mac in addresses else ''}\n"

    wanted = {host_file_name(mac): answer(mac) for mac in desired.entries}
    for mac in desired.quiet_macs:
        wanted[host_file_name(mac)] = answer(mac) if mac in addresses else f"{mac},ignore\n"
    if desired.discovery:
        wanted[WILDCARD_FILE] = f"{WILDCARD_MAC},set:{ANSWER_TAG}\n"
    for name, content in written.items():
        if name not in wanted:
            mac = content.split(",", 1)[0]
            wanted[name] = answer(mac) if mac in addresses else f"{mac},ignore\n"
    return wanted


class HostsDir:
    """The ``dhcp-hostsdir`` of dnsmasq, kept equal to the desired boot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._staging = path.parent / (path.name + ".new")
        self.written: dict[str, str] = {}

    def reset(self) -> None:
        """Empty it (only while dnsmasq is not running: it would not notice the deletions)."""
        for directory in (self.path, self._staging):
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True, mode=0o755)
            directory.chmod(0o755)  # dnsmasq reads it after dropping privileges
        self.written = {}

    def sync(self, desired: DesiredBoot,
             addresses: Mapping[str, IPv4Address] | None = None) -> int:
        """Write the files that changed; returns how many."""
        changed = 0
        for name, content in sorted(host_files(desired, self.written, addresses).items()):
            if self.written.get(name) == content:
                continue
            staged = self._staging / name
            staged.write_text(content)
            staged.chmod(0o644)
            os.replace(staged, self.path / name)
            self.written[name] = content
            changed += 1
        return changed


class Dnsmasq:
    """dnsmasq for one network: configuration, host files, and its supervised process."""

    def __init__(self, net: DhcpNetwork, binary: Path, reserve_addresses: bool = True) -> None:
        self.net = net
        resolved = shutil.which(str(binary))
        if resolved is None:
            raise BootConfigError(f"ENCLUME_BOOT_DNSMASQ_BINARY={binary}: no such program "
                                  f"(install the Debian package dnsmasq-base)")
        self.binary = resolved
        self.hosts = HostsDir(net.hosts_dir)
        self.addresses = reserved_addresses(net) if reserve_addresses else None
        self.process = ProcessSupervisor(
            "dnsmasq",
            [self.binary, "--keep-in-foreground", "--log-facility=-",
             f"--conf-file={net.config_file}"],
            logging.getLogger("enclume.boot.dnsmasq"), on_line=count_dnsmasq_line)

    @property
    def pid_file(self) -> Path:
        return self.net.directory / PID_FILE

    def stop_leftover(self) -> int | None:
        """Stops a dnsmasq an earlier life of this service left running (killed outright, it
        could not stop its child), found by the PID file and its own configuration file on its
        command line; returns its PID."""
        try:
            pid = int(self.pid_file.read_text().strip())
            command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if f"--conf-file={self.net.config_file}".encode() not in command_line:
            return None
        LOG.warning("stopping dnsmasq (pid %d) left running by an earlier enclume-boot", pid)
        stop_pid(pid)
        return pid

    def prepare(self) -> None:
        """Write the configuration and an empty host directory, and have dnsmasq check them."""
        self.net.directory.mkdir(parents=True, exist_ok=True)
        self.net.directory.chmod(0o755)
        self.stop_leftover()
        self.hosts.reset()
        self.net.config_file.write_text(render_config(self.net))
        self.net.config_file.chmod(0o644)
        if self.net.router_advertisement and not any(
                not address.is_link_local for address in ipv6_addresses(self.net.interface)):
            LOG.warning("%s has no IPv6 address other than link-local: dnsmasq cannot send "
                        "router advertisements and iPXE will wait ~13 s for IPv6 at each boot "
                        "(add e.g. a ULA address, or set ENCLUME_BOOT_ROUTER_ADVERTISEMENT=false)",
                        self.net.interface)
        result = subprocess.run([self.binary, "--test", f"--conf-file={self.net.config_file}"],
                                capture_output=True, text=True, timeout=DNSMASQ_TEST_TIMEOUT_S)
        if result.returncode != 0:
            raise BootConfigError(f"dnsmasq refuses the generated configuration "
                                  f"{self.net.config_file}: {result.stderr.strip()}")

    @property
    def lease_file(self) -> Path:
        return self.net.directory / LEASE_FILE

    def apply(self, desired: DesiredBoot) -> None:
        addresses = None
        if self.addresses is not None:
            addresses = self.addresses.assign(desired.entries, read_leases(self.lease_file))
        changed = self.hosts.sync(desired, addresses)
        if changed:
            LOG.info("dnsmasq: %d host file(s) rewritten; %d MAC(s) answered%s", changed,
                     len(desired.entries), ", and unknown MACs (discovery)"
                     if desired.discovery else "")

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()
