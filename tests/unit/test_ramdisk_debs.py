"""Reading apt's answers and Debian packages: dependencies as apt-cache prints them, files of a
package built here with dpkg-deb."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramdisk import debs
from tests.support.elf_files import build_deb

# `apt-cache depends --no-recommends ... python3-rtslib-fb libpython3.11-stdlib` on Debian 12.
APT_CACHE_DEPENDS = """\
python3-rtslib-fb
  Depends: lsb-base
    sysvinit-utils
  Depends: python3-pyudev
  Depends: python3-six
  Depends: <python3:any>
    python3
libpython3.11-stdlib
  Depends: libpython3.11-minimal
 |Depends: media-types
  Depends: mime-support
  PreDepends: libc6
  Depends: <libsystemd0-virtual>
 |Depends: <nothing-provides-this>
  Depends: libzstd1
"""


def _section(package: str) -> str:
    lines = APT_CACHE_DEPENDS.splitlines()
    start = lines.index(package)
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" ")),
               len(lines))
    return "\n".join(lines[start:end])


def test_first_real_alternative_or_first_provider_of_a_virtual_package() -> None:
    assert debs.parse_depends(_section("python3-rtslib-fb")) == [
        "lsb-base", "python3-pyudev", "python3-six", "python3"]
    # "media-types | mime-support": the first; a virtual package with no provider is skipped,
    # "<nothing> | libzstd1": the real one.
    assert debs.parse_depends(_section("libpython3.11-stdlib")) == [
        "libpython3.11-minimal", "media-types", "libc6", "libzstd1"]


def test_nothing_to_depend_on() -> None:
    assert debs.parse_depends("libgcc-s1\n") == []


def test_files_symlinks_and_hard_links_of_a_package(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "tools", {"sbin/mke2fs": b"\x7fELF...", "sbin/mkfs.ext4": "->mke2fs",
                                        "usr/share/doc/tools/README": "docs"}, version="2:1.0-3")
    assert debs.package_name(deb) == "tools"
    assert debs.version(deb) == "2:1.0-3"
    members = {member.path: member for member in debs.read_tree(
        deb, lambda path: not path.startswith("usr/share/doc"))}
    assert set(members) == {"sbin/mke2fs", "sbin/mkfs.ext4"}
    assert members["sbin/mke2fs"].kind == "file" and members["sbin/mke2fs"].data == b"\x7fELF..."
    assert members["sbin/mke2fs"].mode == 0o755
    assert (members["sbin/mkfs.ext4"].kind, members["sbin/mkfs.ext4"].target) == \
        ("symlink", "mke2fs")
    assert debs.read_members(deb, ["sbin/mke2fs"]) == {"sbin/mke2fs": b"\x7fELF..."}
    with pytest.raises(debs.DebError, match="no file matching"):
        debs.read_members(deb, ["sbin/e2fsck"])


def test_a_cached_package_is_used_without_asking_apt(tmp_path: Path) -> None:
    deb = build_deb(tmp_path, "cached-only", {"etc/x": "1"})
    assert debs.download("cached-only", tmp_path) == deb


def test_a_broken_package_file_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken_1.0_amd64.deb"
    broken.write_bytes(b"not an ar archive")
    with pytest.raises(debs.DebError, match="dpkg-deb"):
        debs.read_tree(broken, lambda path: True)
