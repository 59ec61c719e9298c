"""A multicast session announces and sends on its own group: uftp's announcements and data go
to the session's group (which a switch with IGMP snooping sends only to the PCs that
joined it), not to 224.0.0.1 (flooded to every port); the agent's receiver is given that group
by the conductor (tests/integration/test_room_simulation.py restores two rooms at once through
a snooping bridge). The agent reads back the blocks the stream wrote while it goes on
(``agent.stream_verify``)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from agent.block_manifest import BlockManifest
from agent.disks import Disk
from agent.errors import BadParams
from agent.multicast_restore import Receiver, parse_params, uftp_id
from agent.stream_verify import StreamVerifier
from services.boot.multicast_sender import MulticastSession, sender_argv
from services.common.config import Settings
from services.common.config_hardware_sections import MulticastSettings
from services.drivers.deploy.multicast import multicast_params

RESTORE = {"image_token": "t", "manifest_url": "http://10.0.0.1/m", "manifest_sha256": "0" * 64,
           "disk_url": "http://10.0.0.1/d"}


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_sender_rendezvous_and_sends_on_the_sessions_group() -> None:
    session = MulticastSession("s1", "v1", 3, "239.192.77.5", 9208, 4)
    argv = sender_argv(MulticastSettings(), "eth1", session, Path("/tmp/image"))
    assert option(argv, "-M") == "239.192.77.5"
    assert option(argv, "-P") == "239.192.77.5"
    assert option(argv, "-t") == "1"
    assert option(argv, "-p") == "9208"


def test_the_conductor_hands_the_group_to_the_agent_whose_receiver_uses_it() -> None:
    session: dict[str, Any] = {"id": "s1", "port": 9208, "group": "239.192.77.5"}
    params = multicast_params(Settings(), session, RESTORE)
    assert params["multicast"]["group"] == "239.192.77.5"
    request = parse_params(params)
    argv = Receiver(request, None, 0, None, print).argv("eth0")  # type: ignore[arg-type]
    assert option(argv, "-M") == "239.192.77.5"
    assert option(argv, "-p") == "9208"


def test_a_receiver_without_a_group_listens_on_uftps_default_group() -> None:
    request = parse_params({**RESTORE, "multicast": {"port": 9208}})
    argv = Receiver(request, None, 0, None, print).argv("eth0")  # type: ignore[arg-type]
    assert option(argv, "-M") == "230.4.4.1"


def test_the_sender_sends_only_to_the_receivers_that_joined_in_time() -> None:
    """uftp's closed group: the joined uftpd ids (``-H``), so it waits for no PC not there;
    the receiver's id is its address, as uftpd's default."""
    session = MulticastSession("s1", "v1", 3, "239.192.77.5", 9208, 4)
    session.clients = [uftp_id("10.0.0.11"), uftp_id("10.0.0.12")]
    argv = sender_argv(MulticastSettings(rate_mbit=90), "eth1", session, Path("/tmp/image"))
    assert option(argv, "-H") == "0x0a00000b,0x0a00000c"
    assert option(argv, "-R") == "90000"
    assert option(argv, "-r") == "0.2"  # uftp's first round trip guess: a LAN's, not 0.5 s
    assert argv[-1] == "/tmp/image"
    assert "-H" not in sender_argv(MulticastSettings(), "eth1",
                                   MulticastSession("s2", "v1", 3, "239.192.77.6", 9210, 5),
                                   Path("/tmp/image"))


@pytest.mark.parametrize("group", ["10.0.0.1", "not an address", 239, ""])
def test_a_group_that_is_not_multicast_is_refused(group: object) -> None:
    with pytest.raises(BadParams, match=r"multicast\.group"):
        parse_params({**RESTORE, "multicast": {"port": 9208, "group": group}})


def test_blocks_written_from_the_stream_are_read_back_and_only_good_ones_kept(
        tmp_path: Path) -> None:
    """The stream's blocks are checked from the disk as they are written: a block whose bytes on
    the disk differ from the manifest (a slice the FEC could not mend) is left to the repair."""
    size = 4 * 4096
    good = [os.urandom(4096) for _ in range(4)]
    manifest = BlockManifest(size, 4096, "0" * 64,
                             tuple(hashlib.sha256(block).hexdigest() for block in good))
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(size))
    disk = Disk(str(path), size, False)
    fd = disk.open()
    try:
        verifier = StreamVerifier(fd, disk, manifest)
        for index, block in enumerate(good):
            os.pwrite(fd, block if index != 2 else b"lost" + block[4:], index * 4096)
            if index != 3:  # block 3 never came
                verifier.written(index)
        assert verifier.finish() == {0, 1}
    finally:
        os.close(fd)
