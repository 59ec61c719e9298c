"""The pure parts of the protocol peers: magic-packet parsing and the in-memory machine."""

from __future__ import annotations

import time

import pytest

from tests.support.ipmi_bmc import BootSetting, MachineStateError, MemoryMachine
from tests.support.wol_listener import parse_magic_packet

MAC = bytes.fromhex("525400abcdef")


def magic(mac: bytes = MAC, repeats: int = 16) -> bytes:
    return b"\xff" * 6 + mac * repeats


@pytest.mark.parametrize(("payload", "expected"), [
    (magic(), ("52:54:00:ab:cd:ef", None, 0)),
    (magic() + b"\x01\x02\x03\x04", ("52:54:00:ab:cd:ef", "01:02:03:04", 4)),
    (magic() + bytes(range(6)), ("52:54:00:ab:cd:ef", "00:01:02:03:04:05", 6)),
    (magic() + b"\x01\x02\x03\x04\x05", ("52:54:00:ab:cd:ef", None, 5)),
    (b"prefix" + magic(), ("52:54:00:ab:cd:ef", None, 0)),
    (b"\xff" * 3 + magic(), ("52:54:00:ab:cd:ef", None, 0)),
    (magic(b"\xff" * 6), ("ff:ff:ff:ff:ff:ff", None, 0)),
])
def test_magic_packets_are_recognised(payload: bytes,
                                      expected: tuple[str, str | None, int]) -> None:
    packet = parse_magic_packet(payload)
    assert packet is not None
    assert (packet.mac, packet.password, packet.trailing_bytes) == expected


@pytest.mark.parametrize("payload", [
    b"", b"\xff" * 6, magic(repeats=15), magic()[:-1], b"\xff" * 5 + MAC * 16,
    b"\xff" * 6 + MAC * 15 + bytes.fromhex("525400abcdee"),
])
def test_other_datagrams_are_not_magic(payload: bytes) -> None:
    assert parse_magic_packet(payload) is None


def test_one_time_override_is_used_by_the_next_boot_only() -> None:
    machine = MemoryMachine()
    machine.set_boot_setting(BootSetting("pxe", uefi=True))
    machine.power_on()
    assert machine.boots == [BootSetting("pxe", uefi=True)]
    assert machine.boot_setting() == BootSetting()
    machine.power_reset()
    assert machine.boots[-1] == BootSetting()


def test_persistent_override_stays() -> None:
    machine = MemoryMachine(power="on")
    machine.set_boot_setting(BootSetting("disk", persistent=True))
    machine.power_cycle()
    machine.power_reset()
    assert machine.boots == [BootSetting("disk", persistent=True)] * 2
    assert machine.boot_setting() == BootSetting("disk", persistent=True)


def test_reset_and_cycle_need_a_running_machine() -> None:
    machine = MemoryMachine()
    for action in (machine.power_reset, machine.power_cycle):
        with pytest.raises(MachineStateError):
            action()
    assert machine.actions == [] and machine.boots == []


def test_power_on_of_a_running_machine_does_not_boot_it_again() -> None:
    machine = MemoryMachine(power="on")
    machine.power_on()
    assert machine.boots == []


def test_soft_shutdown_lands_after_the_delay_or_never() -> None:
    delayed = MemoryMachine(power="on", soft_off_delay_s=0.05)
    delayed.soft_shutdown()
    assert delayed.power_state() == "on"
    time.sleep(0.06)
    assert delayed.power_state() == "off"

    deaf = MemoryMachine(power="on", soft_off_delay_s=None)
    deaf.soft_shutdown()
    assert deaf.power_state() == "on"


def test_unknown_boot_device_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown boot device"):
        MemoryMachine().set_boot_setting(BootSetting("usb-stick"))
