"""services/common/file_lock.exclusive, seen from another process: util-linux's ``flock -n``
fails while the block holds the lock and takes it once the block ended (also after an error)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from services.common.file_lock import exclusive


def taken_by_another_process(lock: Path) -> bool:
    return subprocess.run(["flock", "--nonblock", str(lock), "true"]).returncode == 0


def test_the_lock_is_held_for_the_block_only(tmp_path: Path) -> None:
    lock = tmp_path / "store.lock"
    with exclusive(lock):
        assert lock.exists()
        assert not taken_by_another_process(lock)
    assert taken_by_another_process(lock)
    with pytest.raises(RuntimeError), exclusive(lock):
        raise RuntimeError("the block failed")
    assert taken_by_another_process(lock)
