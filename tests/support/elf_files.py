"""Small ELF files and Debian packages written by tests, field by field (for the ramdisk
builder's tests: programs that need libraries, kernel modules, packages holding them)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from ramdisk import elf


def elf_header(kind: int, phoff: int, phnum: int, shoff: int, shnum: int,
               shstrndx: int) -> bytes:
    ident = b"\x7fELF" + bytes([elf.ELFCLASS64, elf.ELFDATA2LSB, 1]) + b"\0" * 9
    return struct.pack("<16sHHIQQQIHHHHHH", ident, kind, elf.EM_X86_64, 1, 0, phoff, shoff, 0,
                       64, 56, phnum, 64, shnum, shstrndx)


def program(needed: list[str], runpath: str | None, interpreter: str | None) -> bytes:
    """A program with one loaded segment holding everything, PT_INTERP and PT_DYNAMIC."""
    strings = b"\0"
    offsets = {}
    for text in [*needed, *([runpath] if runpath else [])]:
        offsets[text] = len(strings)
        strings += text.encode() + b"\0"
    interp = (interpreter.encode() + b"\0") if interpreter else b""
    headers = 3 if interpreter else 2
    data_start = 64 + 56 * headers
    strtab_at = data_start
    interp_at = strtab_at + len(strings)
    dynamic_at = interp_at + len(interp)
    entries = [(elf.DT_NEEDED, offsets[name]) for name in needed]
    if runpath:
        entries.append((elf.DT_RUNPATH, offsets[runpath]))
    base = 0x400000  # virtual address of file offset 0
    entries += [(elf.DT_STRTAB, base + strtab_at), (elf.DT_NULL, 0)]
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    total = dynamic_at + len(dynamic)
    segments = [struct.pack("<IIQQQQQQ", elf.PT_LOAD, 5, 0, base, base, total, total, 0x1000),
                struct.pack("<IIQQQQQQ", elf.PT_DYNAMIC, 6, dynamic_at, base + dynamic_at, 0,
                            len(dynamic), len(dynamic), 8)]
    if interpreter:
        segments.append(struct.pack("<IIQQQQQQ", elf.PT_INTERP, 4, interp_at, base + interp_at,
                                    0, len(interp), len(interp), 1))
    return (elf_header(2, 64, headers, 0, 0, 0) + b"".join(segments) + strings + interp
            + dynamic)


def kernel_module(fields: list[str]) -> bytes:
    """A relocatable object with a .modinfo section of `fields` ("key=value")."""
    modinfo = b"".join(field.encode() + b"\0" for field in fields)
    names = b"\0.modinfo\0.shstrtab\0"
    modinfo_at = 64
    names_at = modinfo_at + len(modinfo)
    sections_at = names_at + len(names)
    null = b"\0" * 64
    modinfo_header = struct.pack("<IIQQQQIIQQ", 1, 1, 2, 0, modinfo_at, len(modinfo), 0, 0, 1, 0)
    names_header = struct.pack("<IIQQQQIIQQ", 10, 3, 0, 0, names_at, len(names), 0, 0, 1, 0)
    return (elf_header(elf.ET_REL, 0, 0, sections_at, 3, 2) + modinfo + names + null
            + modinfo_header + names_header)


def build_deb(out_dir: Path, package: str, files: dict[str, bytes | str],
              version: str = "1.0-1", depends: str = "") -> Path:
    """A .deb of `package` holding `files` (path -> contents, or "->target" for a symlink),
    built with dpkg-deb into `out_dir` under apt's file name."""
    root = out_dir / f".{package}-root"
    (root / "DEBIAN").mkdir(parents=True)
    control = (f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
               f"Maintainer: Enclume tests <tests@example.invalid>\n"
               f"Description: test package {package}\n")
    if depends:
        control += f"Depends: {depends}\n"
    (root / "DEBIAN" / "control").write_text(control)
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("->"):
            target.symlink_to(content[2:])
        else:
            target.write_bytes(content.encode() if isinstance(content, str) else content)
            target.chmod(0o755)
    deb = out_dir / f"{package}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, capture_output=True)
    return deb
