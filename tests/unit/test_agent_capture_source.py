"""What a partition capture reads: the root partition named, or the largest Linux one."""

from __future__ import annotations

import pytest

from agent import capture_source
from agent.capture_source import PARTITION, WHOLE_DISK, check_params
from agent.errors import BadParams
from agent.partitions import Partition

MiB = 1 << 20
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_SWAP = "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F"


def test_the_largest_linux_partition_is_the_root() -> None:
    parts = (Partition(1, MiB, 512 * MiB, GPT_ESP), Partition(2, 513 * MiB, 900 * MiB, GPT_SWAP),
             Partition(3, 2000 * MiB, 300 * MiB, GPT_LINUX.lower()),
             Partition(4, 3000 * MiB, 800 * MiB, GPT_LINUX))
    assert capture_source._root(parts, None) == parts[3]
    assert capture_source._root(parts, 1) == parts[0]  # named: whatever its type
    assert capture_source._root(parts, 7) is None
    assert capture_source._root(parts[:2], None) is None
    dos = (Partition(1, MiB, 100 * MiB, "83"), Partition(2, 101 * MiB, 100 * MiB, "83"))
    assert capture_source._root(dos, None) == dos[0]  # a tie: the first


def test_params() -> None:
    assert check_params(None, None) == (WHOLE_DISK, None)
    assert check_params("partition", 2) == (PARTITION, 2)
    for image_type, root in (("qcow2", None), ("whole-disk", 1), ("partition", 0),
                             ("partition", "2"), ("partition", True)):
        with pytest.raises(BadParams):
            check_params(image_type, root)
