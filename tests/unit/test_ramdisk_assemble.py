"""Filling the ramdisk from packages: selected paths, merged /usr, and the shared libraries the
programs need, found in the programs and taken from their package's dependencies. Packages are
built here with dpkg-deb; apt's dependency answers are given as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from ramdisk.assemble import Assembly, AssemblyError
from ramdisk.contents import LIBRARIES, Selection
from tests.support.elf_files import build_deb, program

LOADER = "/lib64/ld-linux-x86-64.so.2"
LIBS = "usr/lib/x86_64-linux-gnu"
DEPENDS = {
    "prog": ["decoy", "libfoo1", "libc6"],
    "libfoo1": ["libbar0", "libc6"],
    "libbar0": ["libc6"],
    "libc6": [],
    "decoy": ["libc6"],
    "python3-tool": ["python3-helper", "python3", "libbar0"],
    "python3-helper": ["python3"],
    "lonely": ["decoy", "libc6"],
}


@pytest.fixture
def debs_dir(tmp_path: Path) -> Path:
    out = tmp_path / "debs"
    out.mkdir()
    build_deb(out, "prog", {"usr/bin/prog": program(["libfoo.so.1", "libc.so.6"], None, LOADER),
                            "usr/bin/other": b"#!/bin/sh\n",
                            "usr/share/doc/prog/README": "docs"})
    build_deb(out, "libfoo1", {f"{LIBS}/libfoo.so.1.2": program(["libbar.so.0"], None, None),
                               f"{LIBS}/libfoo.so.1": "->libfoo.so.1.2",
                               f"{LIBS}/libfoo-extra.so.2": program([], None, None),
                               "usr/share/libfoo/data": "not a library"})
    # in /lib, as Debian 12 packages still ship many libraries
    build_deb(out, "libbar0", {"lib/x86_64-linux-gnu/libbar.so.0": program([], None, None)})
    build_deb(out, "libc6", {f"{LIBS}/libc.so.6": program(["ld-linux-x86-64.so.2"], None, None),
                             f"{LIBS}/ld-linux-x86-64.so.2": program([], None, None),
                             "lib64/ld-linux-x86-64.so.2": f"->/{LIBS}/ld-linux-x86-64.so.2",
                             f"{LIBS}/gconv/UTF-16.so": "not taken"})
    build_deb(out, "decoy", {f"{LIBS}/libdecoy.so.3": program([], None, None)})
    build_deb(out, "python3-tool", {"usr/lib/python3/dist-packages/tool/__init__.py": "x = 1\n"})
    build_deb(out, "python3-helper", {"usr/lib/python3/dist-packages/helper.py": "y = 2\n"})
    build_deb(out, "lonely", {"usr/bin/lonely": program(["libmissing.so.9"], None, LOADER)})
    return out


def _assembly(debs_dir: Path) -> Assembly:
    def query(packages: list[str]) -> dict[str, list[str]]:
        return {package: DEPENDS[package] for package in packages}

    return Assembly(debs_dir, pruned=("usr/share/doc/**",),
                    not_needed={"python3": "the interpreter comes from elsewhere"},
                    query_depends=query)


def test_programs_get_the_libraries_they_need_and_nothing_else(debs_dir: Path) -> None:
    """Only the needed library of a package, with the symlink leading to it: not the other
    libraries (libfoo-extra), nor the package that comes first but lacks it (decoy)."""
    assembly = _assembly(debs_dir)
    assembly.take(Selection("prog", ("usr/bin/prog",)))
    assembly.take(Selection("libc6", (*LIBRARIES, "usr/lib64/ld-linux-x86-64.so.2")))
    assembly.complete_libraries()
    assert sorted(assembly.taken) == ["libbar0", "libc6", "libfoo1", "prog"]  # not "decoy"
    tree = assembly.tree
    files = {path for path, _ in tree.files()}
    assert files == {"usr/bin/prog", f"{LIBS}/libfoo.so.1.2", f"{LIBS}/libbar.so.0",
                     f"{LIBS}/libc.so.6", f"{LIBS}/ld-linux-x86-64.so.2"}
    assert tree.resolve(f"{LIBS}/libfoo.so.1") == f"{LIBS}/libfoo.so.1.2"
    assert tree.resolve("lib64/ld-linux-x86-64.so.2") == f"{LIBS}/ld-linux-x86-64.so.2"
    assert tree.nodes["usr/bin/prog"].origin == "prog"
    assert assembly.dangling_symlinks() == []
    assert assembly.package_files["libfoo1"].name == "libfoo1_1.0-1_amd64.deb"
    assert assembly.taken["libfoo1"] == (f"{LIBS}/libfoo.so.1", f"{LIBS}/libfoo.so.1.2")


def test_a_library_no_dependency_ships_is_a_clear_error(debs_dir: Path) -> None:
    assembly = _assembly(debs_dir)
    assembly.take(Selection("lonely", ("usr/bin/lonely",)))
    assembly.take(Selection("libc6", (*LIBRARIES, "usr/lib64/ld-linux-x86-64.so.2")))
    with pytest.raises(AssemblyError, match=r"/usr/bin/lonely \(from lonely\) needs "
                                            r"libmissing\.so\.9"):
        assembly.complete_libraries()


def test_a_missing_interpreter_is_reported(debs_dir: Path) -> None:
    assembly = _assembly(debs_dir)
    assembly.take(Selection("prog", ("usr/bin/prog",)))
    with pytest.raises(AssemblyError, match=r"ld-linux-x86-64\.so\.2"):
        assembly.complete_libraries()


def test_python_dependencies_come_whole_others_must_be_taken(debs_dir: Path) -> None:
    assembly = _assembly(debs_dir)
    assembly.take(Selection("python3-tool", with_depends=True))
    assert "usr/lib/python3/dist-packages/helper.py" in assembly.tree
    assert assembly.unmet_dependencies() == ["python3-tool needs libbar0"]
    assembly.take(Selection("libbar0", LIBRARIES))
    assert assembly.unmet_dependencies() == []


def test_selections_of_one_package_add_up_and_prune_still_applies(debs_dir: Path) -> None:
    assembly = _assembly(debs_dir)
    assembly.take(Selection("prog", ("usr/bin/prog",)))
    assembly.take(Selection("prog", ("usr/bin/other", "usr/share/doc/**")))
    assert assembly.taken["prog"] == ("usr/bin/prog", "usr/bin/other", "usr/share/doc/**")
    assert "usr/bin/other" in assembly.tree
    assert "usr/share/doc/prog/README" not in assembly.tree
    with pytest.raises(AssemblyError, match="nothing matching usr/sbin/nothing"):
        assembly.take(Selection("prog", ("usr/sbin/nothing",)))


def test_dangling_symlinks_are_found(debs_dir: Path) -> None:
    assembly = _assembly(debs_dir)
    assembly.take(Selection("libfoo1", (f"{LIBS}/libfoo.so.1",)))
    assert assembly.dangling_symlinks() == [f"{LIBS}/libfoo.so.1"]
