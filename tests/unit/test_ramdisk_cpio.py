"""Reading back the ramdisk's archive: what the writer wrote comes back, and unpacks."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest

from ramdisk import cpio

ENTRIES = [
    cpio.directory("bin"),
    cpio.regular_file("bin/tool", b"12345", executable=True),
    cpio.regular_file("bin/empty", b""),
    cpio.char_device("dev/console", 5, 1),
    cpio.symlink("sh", "bin/tool"),
    cpio.Entry("tmp", stat.S_IFDIR | 0o1777),
]


def _archive() -> bytes:
    out = io.BytesIO()
    cpio.write_newc(ENTRIES, out)
    return out.getvalue()


def test_entries_read_back_as_written() -> None:
    assert list(cpio.read_newc(io.BytesIO(_archive()))) == ENTRIES


def test_unpack_makes_directories_files_and_symlinks_but_no_devices(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cpio.unpack(io.BytesIO(_archive()), root)
    assert (root / "bin/tool").read_bytes() == b"12345"
    assert stat.S_IMODE((root / "bin/tool").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "bin/empty").stat().st_mode) == 0o644
    assert (root / "sh").is_symlink() and (root / "sh").readlink() == Path("bin/tool")
    assert stat.S_IMODE((root / "tmp").stat().st_mode) == 0o1777
    assert not (root / "dev/console").exists()


def test_truncated_or_foreign_archives_are_errors() -> None:
    data = _archive()
    with pytest.raises(ValueError, match="ends in the middle"):
        list(cpio.read_newc(io.BytesIO(data[:150])))
    with pytest.raises(ValueError, match="not a newc"):
        list(cpio.read_newc(io.BytesIO(b"070707" + data[6:])))
