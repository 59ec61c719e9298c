"""Reserved DHCP addresses: one per answered MAC, never two MACs on one address, never moved,
leases respected (services/boot/addresses.py, read_leases)."""

from __future__ import annotations

import logging
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.boot.addresses import AddressBook
from services.boot.dnsmasq import read_leases

START, END = IPv4Address("10.20.0.100"), IPv4Address("10.20.0.109")


def mac(number: int) -> str:
    return "52:54:00:" + ":".join(f"{(number >> shift) & 0xFF:02x}" for shift in (16, 8, 0))


@given(st.sets(st.integers(0, 2**24 - 1), max_size=10), st.sets(st.integers(0, 9)))
def test_every_mac_gets_its_own_usable_address(numbers: set[int], excluded: set[int]) -> None:
    book = AddressBook(START, END, {START + offset for offset in excluded})
    reserved = book.assign(mac(number) for number in numbers)
    capacity = 10 - len(excluded)
    assert len(reserved) == min(len(numbers), capacity)
    assert len(set(reserved.values())) == len(reserved)
    assert all(book.usable(address) for address in reserved.values())


def test_a_reservation_is_never_moved_to_another_mac() -> None:
    """dnsmasq keeps every record it read: an address, once written for a MAC, stays its."""
    book = AddressBook(START, END)
    first = book.assign(mac(n) for n in range(1, 10))
    later = book.assign([mac(10), mac(11)])  # mac(1..9) no longer answered: kept all the same
    assert all(later[mac(n)] == first[mac(n)] for n in range(1, 10))
    assert later[mac(10)] not in first.values()
    assert mac(11) not in later  # the range is full
    assert book.assign([mac(1)])[mac(1)] == first[mac(1)]


def test_a_leased_mac_keeps_its_lease_and_other_leases_are_not_given_out() -> None:
    book = AddressBook(START, START + 2)
    leases = {mac(1): START + 1, mac(9): START}  # mac(9): a discovery client, not answered
    reserved = book.assign([mac(1), mac(2)], leases)
    assert reserved == {mac(1): START + 1, mac(2): START + 2}


def test_a_full_range_leaves_the_extra_macs_out_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    book = AddressBook(START, START + 1)
    with caplog.at_level(logging.WARNING, "services.boot.addresses"):
        reserved = book.assign(mac(n) for n in range(4))
    assert len(reserved) == 2
    assert "no address left for 2 answered MAC(s)" in caplog.text


def test_the_lease_file_is_read_for_unexpired_leases(tmp_path: Path) -> None:
    leases = tmp_path / "dnsmasq.leases"
    leases.write_text("1900000000 52:54:00:00:00:01 10.20.0.101 * 01:52:54:00:00:00:01\n"
                      "100 52:54:00:00:00:02 10.20.0.102 * *\n"  # expired
                      "0 52:54:00:00:00:03 10.20.0.103 pc3 *\n"  # infinite
                      "duid 00:01:00:01:2c:7a:3b:4d:52:54:00:00:00:01\n"
                      "1900000000 not-a-mac 10.20.0.104 * *\n"
                      "1900000000 52:54:00:00:00:05 fd00::5 * *\n")
    assert read_leases(leases, now=1_800_000_000) == {
        "52:54:00:00:00:01": IPv4Address("10.20.0.101"),
        "52:54:00:00:00:03": IPv4Address("10.20.0.103")}
    assert read_leases(tmp_path / "missing") == {}


def test_a_lease_line_cut_by_a_rewrite_is_not_read(tmp_path: Path) -> None:
    leases = tmp_path / "dnsmasq.leases"
    # dnsmasq caught mid-rewrite: the second line's address ("10.20.0.102") is cut short
    leases.write_text("1900000000 52:54:00:00:00:01 10.20.0.101 * *\n"
                      "1900000000 52:54:00:00:00:02 10.20.0.10")
    assert read_leases(leases, now=1_800_000_000) == {
        "52:54:00:00:00:01": IPv4Address("10.20.0.101")}
