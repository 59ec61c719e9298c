"""The DHCP filter: DHCP requests reach dnsmasq only from the MACs answered right now.

An iptables chain of its own (python-iptables, legacy backend), ``ENCLUME-DHCP-<interface>``,
jumped to from the top of INPUT for udp/67 (DHCP) and udp/4011 (proxyDHCP boot requests)
arriving on the provisioning interface:

- without discovery: ``RETURN`` for each answered MAC, then ``DROP``;
- with discovery: ``DROP`` for each known MAC that must get nothing, then ``RETURN``.

``RETURN`` hands the packet back to INPUT, so the host's own firewall still has its say. Every
change rebuilds the chain in one commit (the kernel swaps the whole table at once: no moment
with a half-written chain). ``start`` removes whatever an earlier life left (jumps and chain)
and builds it anew; ``stop`` removes the jumps and the chain.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from services.common.bootconfig.entry import DesiredBoot

LOG = logging.getLogger(__name__)

CHAIN_PREFIX = "ENCLUME-DHCP-"
FILTERED_PORTS = ("67", "4011")
COMMIT_ATTEMPTS = 5
COMMIT_RETRY_PAUSE_S = 0.05


def chain_name(interface: str) -> str:
    return CHAIN_PREFIX + interface  # an interface name has 15 characters at most: fits in 28


class DhcpFilter:
    def __init__(self, interface: str) -> None:
        # Imported here: loading libiptc needs the iptables libraries, which only a process
        # that filters needs.
        try:
            import iptc
        except Exception as exc:  # python-iptables raises several kinds when libiptc is absent
            raise RuntimeError(f"python-iptables cannot load the iptables libraries ({exc}); "
                               f"install the Debian package iptables, or set "
                               f"ENCLUME_BOOT_DHCP_FILTER=false") from exc
        self._iptc: Any = iptc
        self.interface = interface
        self.chain = chain_name(interface)
        self.applied: DesiredBoot | None = None

    def start(self, desired: DesiredBoot | None = None) -> None:
        """Removes what an earlier life left, then filters (dropping everything until
        ``apply`` says otherwise, unless ``desired`` is given)."""
        self._commit(lambda table: self._rebuild(table, desired or DesiredBoot()))
        self.applied = desired or DesiredBoot()
        LOG.info("DHCP filter %s on %s is in place", self.chain, self.interface)

    def apply(self, desired: DesiredBoot) -> None:
        self._commit(lambda table: self._update(table, desired))
        self.applied = desired

    def _update(self, table: Any, desired: DesiredBoot) -> None:
        if table.is_chain(self.chain) and self._jumps(table) == len(FILTERED_PORTS):
            self._fill_chain(table, desired)
        else:
            LOG.warning("the DHCP filter %s was changed by someone else; building it again",
                        self.chain)
            self._rebuild(table, desired)

    def _jumps(self, table: Any) -> int:
        return sum(1 for rule in self._iptc.Chain(table, "INPUT").rules
                   if rule.target is not None and rule.target.name == self.chain)

    def stop(self) -> None:
        self._commit(self._remove)
        LOG.info("DHCP filter %s removed", self.chain)

    def _commit(self, change: Callable[[Any], None]) -> None:
        iptc = self._iptc
        for attempt in range(1, COMMIT_ATTEMPTS + 1):
            table = None
            try:
                table = iptc.Table(iptc.Table.FILTER, autocommit=False)
                table.refresh()  # start from the kernel's current table
                change(table)
                table.commit()
                return
            except iptc.IPTCError as exc:
                # Another program changed the table in between (EAGAIN): start again.
                if attempt == COMMIT_ATTEMPTS:
                    raise RuntimeError(f"cannot update the DHCP filter {self.chain} (iptables, "
                                       f"legacy backend; needs root or CAP_NET_ADMIN): {exc}"
                                       ) from exc
                time.sleep(COMMIT_RETRY_PAUSE_S)
            finally:
                if table is not None:
                    # The handle is spent after a commit, or holds a change that failed.
                    with contextlib.suppress(iptc.IPTCError):
                        table.refresh()

    def _remove(self, table: Any) -> None:
        iptc = self._iptc
        input_chain = iptc.Chain(table, "INPUT")
        for rule in list(input_chain.rules):
            if rule.target is not None and rule.target.name == self.chain:
                input_chain.delete_rule(rule)
        if table.is_chain(self.chain):
            table.flush_entries(self.chain)
            table.delete_chain(self.chain)

    def _rebuild(self, table: Any, desired: DesiredBoot) -> None:
        self._remove(table)
        table.create_chain(self.chain)
        self._fill_chain(table, desired)
        input_chain = self._iptc.Chain(table, "INPUT")
        for port in reversed(FILTERED_PORTS):
            input_chain.insert_rule(self._jump_rule(port))

    def _fill_chain(self, table: Any, desired: DesiredBoot) -> None:
        iptc = self._iptc
        table.flush_entries(self.chain)
        chain = iptc.Chain(table, self.chain)
        if desired.discovery:
            listed, verdict, otherwise = sorted(desired.quiet_macs), "DROP", "RETURN"
        else:
            listed, verdict, otherwise = sorted(desired.entries), "RETURN", "DROP"
        for mac in listed:
            rule = iptc.Rule()
            match = rule.create_match("mac")
            match.mac_source = mac
            rule.target = rule.create_target(verdict)
            chain.append_rule(rule)
        last = iptc.Rule()
        last.target = last.create_target(otherwise)
        chain.append_rule(last)

    def _jump_rule(self, port: str) -> Any:
        rule = self._iptc.Rule()
        rule.in_interface = self.interface
        rule.protocol = "udp"
        match = rule.create_match("udp")
        match.dport = port
        rule.target = rule.create_target(self.chain)
        return rule
