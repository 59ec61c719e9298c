"""The initramfs writer of the test kernel: the newc layout the kernel unpacks, byte for byte."""

from __future__ import annotations

import gzip
import io
import stat
from pathlib import Path

import pytest

from ramdisk import cpio

FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
          "rdevmajor", "rdevminor", "namesize", "check")


def read_newc(data: bytes) -> list[tuple[str, dict[str, int], bytes]]:
    """(name, header fields, content) of every entry, checking magic and 4-byte alignment."""
    entries, offset = [], 0
    while True:
        assert offset % 4 == 0
        assert data[offset:offset + 6] == b"070701"
        values = [int(data[offset + 6 + 8 * i: offset + 14 + 8 * i], 16) for i in range(13)]
        header = dict(zip(FIELDS, values, strict=True))
        name_start = offset + 110
        name = data[name_start:name_start + header["namesize"] - 1].decode()
        assert data[name_start + header["namesize"] - 1] == 0
        content_start = name_start + header["namesize"] + (-(110 + header["namesize"]) % 4)
        content = data[content_start:content_start + header["filesize"]]
        offset = content_start + header["filesize"] + (-header["filesize"] % 4)
        entries.append((name, header, content))
        if name == cpio.TRAILER:
            assert offset == len(data)
            return entries


def test_entries_are_written_in_order_with_their_types_and_contents() -> None:
    out = io.BytesIO()
    cpio.write_newc([cpio.directory("bin"),
                     cpio.regular_file("bin/tool", b"12345", executable=True),
                     cpio.char_device("dev/console", 5, 1),
                     cpio.symlink("sh", "bin/tool")], out)
    entries = read_newc(out.getvalue())
    assert [name for name, _, _ in entries] == ["bin", "bin/tool", "dev/console", "sh",
                                                cpio.TRAILER]
    modes = {name: header["mode"] for name, header, _ in entries}
    contents = {name: content for name, _, content in entries}
    assert modes["bin"] == stat.S_IFDIR | 0o755
    assert (modes["bin/tool"], contents["bin/tool"]) == (stat.S_IFREG | 0o755, b"12345")
    assert (modes["sh"], contents["sh"]) == (stat.S_IFLNK | 0o777, b"bin/tool")
    console = entries[2][1]
    assert (console["mode"], console["rdevmajor"], console["rdevminor"]) == (
        stat.S_IFCHR | 0o600, 5, 1)
    for _, header, _ in entries:
        assert (header["uid"], header["gid"], header["mtime"]) == (0, 0, 0)


def test_the_same_entries_give_the_same_gzip_bytes(tmp_path: Path) -> None:
    entries = [cpio.directory("etc"), cpio.regular_file("etc/motd", b"hello\n")]
    first, second = tmp_path / "first.gz", tmp_path / "second.gz"
    cpio.write_gzipped_newc(entries, first)
    cpio.write_gzipped_newc(entries, second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes()[4:8] == b"\0\0\0\0"  # gzip mtime
    assert [name for name, _, _ in read_newc(gzip.decompress(first.read_bytes()))] == [
        "etc", "etc/motd", cpio.TRAILER]


@pytest.mark.parametrize("path", ["/init", "bin"])
def test_absolute_or_repeated_paths_are_refused(path: str) -> None:
    with pytest.raises(ValueError, match="relative and unique"):
        cpio.write_newc([cpio.directory("bin"), cpio.directory(path)], io.BytesIO())
