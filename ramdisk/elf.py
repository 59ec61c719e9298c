"""Just enough of ELF to build a ramdisk: what a program needs to be loaded (its interpreter and
shared libraries), and the metadata of a kernel module (its `.modinfo`: depends=, softdep=)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

ELF_MAGIC = b"\x7fELF"
ELFCLASS64, ELFDATA2LSB = 2, 1
EM_X86_64 = 62
ET_REL = 1
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
DT_NULL, DT_NEEDED, DT_STRTAB, DT_RUNPATH, DT_RPATH = 0, 1, 5, 29, 15
_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_PROGRAM_HEADER = struct.Struct("<IIQQQQQQ")
_SECTION_HEADER = struct.Struct("<IIQQQQIIQQ")
_DYNAMIC_ENTRY = struct.Struct("<qQ")


class ElfError(ValueError):
    """The bytes are not an ELF file this module can read (64-bit little-endian)."""


@dataclass(frozen=True)
class Dynamic:
    """How the dynamic loader would load a program or library."""

    interpreter: str | None  # PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2 (programs only)
    needed: tuple[str, ...]  # DT_NEEDED sonames, in order
    runpath: tuple[str, ...]  # DT_RUNPATH or else DT_RPATH directories


@dataclass(frozen=True)
class _Header:
    kind: int
    machine: int
    phoff: int
    shoff: int
    phentsize: int
    phnum: int
    shentsize: int
    shnum: int
    shstrndx: int


def is_elf(data: bytes) -> bool:
    return data[:4] == ELF_MAGIC


def _header(data: bytes) -> _Header:
    if len(data) < _HEADER.size or not is_elf(data):
        raise ElfError("not an ELF file")
    ident = data[:16]
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB:
        raise ElfError("not a 64-bit little-endian ELF file")
    (_, kind, machine, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     shstrndx) = _HEADER.unpack_from(data)
    return _Header(kind, machine, phoff, shoff, phentsize, phnum, shentsize, shnum, shstrndx)


def is_x86_64_elf(data: bytes) -> bool:
    try:
        return _header(data).machine == EM_X86_64
    except ElfError:
        return False


def _c_string(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    if offset >= len(data) or end < 0:
        raise ElfError(f"string at offset {offset} runs past the end of the file")
    return data[offset:end].decode()


def _program_headers(data: bytes, header: _Header) -> list[tuple[int, int, int, int]]:
    """(type, file offset, virtual address, file size) of each segment."""
    segments = []
    for index in range(header.phnum):
        offset = header.phoff + index * header.phentsize
        if offset + _PROGRAM_HEADER.size > len(data):
            raise ElfError("program header table runs past the end of the file")
        p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = _PROGRAM_HEADER.unpack_from(data, offset)
        segments.append((p_type, p_offset, p_vaddr, p_filesz))
    return segments


def _file_offset(segments: list[tuple[int, int, int, int]], address: int) -> int:
    for p_type, p_offset, p_vaddr, p_filesz in segments:
        if p_type == PT_LOAD and p_vaddr <= address < p_vaddr + p_filesz:
            return address - p_vaddr + p_offset
    raise ElfError(f"address {address:#x} is in no loaded segment")


def dynamic(data: bytes) -> Dynamic | None:
    """The loading needs of an ELF program or shared library; None when it is statically linked
    (no dynamic section). ElfError for files that are not 64-bit ELF."""
    header = _header(data)
    segments = _program_headers(data, header)
    interpreter = None
    entries: list[tuple[int, int]] = []
    for p_type, p_offset, _, p_filesz in segments:
        if p_type == PT_INTERP:
            interpreter = data[p_offset:p_offset + p_filesz].rstrip(b"\0").decode()
        elif p_type == PT_DYNAMIC:
            for offset in range(p_offset, p_offset + p_filesz, _DYNAMIC_ENTRY.size):
                tag, value = _DYNAMIC_ENTRY.unpack_from(data, offset)
                if tag == DT_NULL:
                    break
                entries.append((tag, value))
    if not entries:
        return None
    strtab = [value for tag, value in entries if tag == DT_STRTAB]
    if not strtab:
        raise ElfError("dynamic section without a string table")
    strings = _file_offset(segments, strtab[0])

    def texts(wanted: int) -> list[str]:
        return [_c_string(data, strings + value) for tag, value in entries if tag == wanted]

    runpath = texts(DT_RUNPATH) or texts(DT_RPATH)
    return Dynamic(interpreter, tuple(texts(DT_NEEDED)),
                   tuple(part for path in runpath for part in path.split(":") if part))


def section(data: bytes, name: str) -> bytes | None:
    """The contents of the section called `name`, None when there is none."""
    header = _header(data)

    def entry(index: int) -> tuple[int, int, int]:
        offset = header.shoff + index * header.shentsize
        if offset + _SECTION_HEADER.size > len(data):
            raise ElfError("section header table runs past the end of the file")
        sh_name, _, _, _, sh_offset, sh_size, _, _, _, _ = _SECTION_HEADER.unpack_from(data, offset)
        return sh_name, sh_offset, sh_size

    if header.shnum == 0:
        return None
    _, names_offset, _ = entry(header.shstrndx)
    for index in range(header.shnum):
        name_index, offset, size = entry(index)
        if _c_string(data, names_offset + name_index) == name:
            return data[offset:offset + size]
    return None


def modinfo(data: bytes) -> dict[str, list[str]]:
    """The `key=value` fields of a kernel module (each key may repeat, e.g. alias)."""
    if _header(data).kind != ET_REL:
        raise ElfError("not a kernel module (ELF relocatable object)")
    fields: dict[str, list[str]] = {}
    for item in (section(data, ".modinfo") or b"").split(b"\0"):
        key, separator, value = item.decode(errors="replace").partition("=")
        if separator:
            fields.setdefault(key, []).append(value)
    return fields


def module_dependencies(data: bytes) -> list[str]:
    """Modules that must be loaded before this one (`depends=`, names as the kernel writes
    them, e.g. "libata"). Soft dependencies name aliases; the ramdisk lists those itself."""
    fields = modinfo(data).get("depends", [])
    return [name for field in fields for name in field.split(",") if name]
