"""The ramdisk's ELF reader: what programs need to be loaded, and kernel module metadata.

Checked against real programs of this machine (the libraries glibc's own loader resolves for
them) and against small ELF files written field by field (tests/support/elf_files.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ramdisk import elf
from tests.support.elf_files import kernel_module, program

LOADER = Path("/lib64/ld-linux-x86-64.so.2")


def _realprogram(name: str) -> Path:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (`make deps`)")
    return Path(found)


def _loader_list(program: Path) -> set[str]:
    """The sonames glibc's dynamic loader loads for `program` (directly or not)."""
    done = subprocess.run([str(LOADER), "--list", str(program)], capture_output=True, text=True,
                          check=True)
    return {line.split()[0] for line in done.stdout.splitlines() if "=>" in line}


def test_needed_libraries_of_a_real_program_are_what_the_loader_loads() -> None:
    program = _realprogram("qemu-img")
    dynamic = elf.dynamic(program.read_bytes())
    assert dynamic is not None
    assert dynamic.interpreter == str(LOADER)
    assert "libc.so.6" in dynamic.needed and "libglib-2.0.so.0" in dynamic.needed
    assert set(dynamic.needed) <= _loader_list(program)
    assert len(dynamic.needed) == len(set(dynamic.needed))


def test_a_shared_library_has_needs_but_no_interpreter_entry_of_its_own() -> None:
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6")
    dynamic = elf.dynamic(libc.read_bytes())
    assert dynamic is not None
    assert dynamic.needed == ("ld-linux-x86-64.so.2",)


def test_static_busybox_needs_nothing() -> None:
    busybox = _realprogram("busybox").read_bytes()
    assert elf.is_x86_64_elf(busybox)
    assert elf.dynamic(busybox) is None


def test_files_that_are_not_64_bit_elf_are_refused_clearly() -> None:
    assert not elf.is_elf(b"#!/bin/sh\n")
    assert not elf.is_x86_64_elf(b"#!/bin/sh\n")
    with pytest.raises(elf.ElfError, match="not an ELF file"):
        elf.dynamic(b"#!/bin/sh\necho hello\n" + b"\0" * 64)
    elf32 = b"\x7fELF\x01\x01\x01" + b"\0" * 60
    with pytest.raises(elf.ElfError, match="64-bit"):
        elf.dynamic(elf32)
    assert not elf.is_x86_64_elf(elf32)


def test_needed_runpath_and_interpreter_are_read_from_the_dynamic_section() -> None:
    data = program(["libfoo.so.1", "libc.so.6"], "$ORIGIN/../lib:/opt/x",
                       "/lib64/ld-linux-x86-64.so.2")
    dynamic = elf.dynamic(data)
    assert dynamic == elf.Dynamic("/lib64/ld-linux-x86-64.so.2", ("libfoo.so.1", "libc.so.6"),
                                  ("$ORIGIN/../lib", "/opt/x"))


def test_a_library_without_interpreter_or_runpath() -> None:
    dynamic = elf.dynamic(program(["libc.so.6"], None, None))
    assert dynamic == elf.Dynamic(None, ("libc.so.6",), ())


def test_a_truncated_file_is_an_error_not_a_crash() -> None:
    data = program(["libc.so.6"], None, "/lib64/ld-linux-x86-64.so.2")
    with pytest.raises(elf.ElfError):
        elf.dynamic(data[:100])


def test_kernel_module_fields_and_dependencies() -> None:
    module = kernel_module(["license=GPL", "alias=fs-xfs", "alias=xfs", "depends=libcrc32c,",
                            "softdep=pre: crc32c", "name=xfs"])
    info = elf.modinfo(module)
    assert info["alias"] == ["fs-xfs", "xfs"]
    assert info["name"] == ["xfs"]
    assert elf.module_dependencies(module) == ["libcrc32c"]
    assert elf.module_dependencies(kernel_module(["depends=", "name=configfs"])) == []


def test_modinfo_refuses_programs() -> None:
    with pytest.raises(elf.ElfError, match="kernel module"):
        elf.modinfo(program(["libc.so.6"], None, None))
