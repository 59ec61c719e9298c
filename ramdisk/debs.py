"""Debian packages in a local cache: download them with apt-get, read files out of them."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

KERNEL_METAPACKAGE = "linux-image-amd64"
# linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb, not the -dbg/-unsigned/cloud/rt flavours.
KERNEL_DEB = re.compile(r"^linux-image-(\d+)\.(\d+)\.(\d+)-(\d+)-amd64_[^_]+_amd64\.deb$")


class DebError(RuntimeError):
    """A package could not be found, downloaded or read."""


def _run(args: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise DebError(f"{args[0]} is not installed (Debian's apt/dpkg are needed)") from exc
    if done.returncode != 0:
        raise DebError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def resolve_kernel_package() -> str:
    """The versioned kernel package the metapackage points at, e.g. linux-image-6.1.0-50-amd64."""
    output = _run(["apt-cache", "depends", KERNEL_METAPACKAGE])
    for line in output.splitlines():
        match = re.match(r"\s*Depends:\s*(linux-image-\S+-amd64)\s*$", line)
        if match:
            return match.group(1)
    raise DebError(f"{KERNEL_METAPACKAGE} has no kernel dependency; run apt-get update first")


def cached_kernel_deb(debs_dir: Path) -> Path | None:
    """The newest standard amd64 kernel package already in the cache, if any."""
    candidates = []
    for deb in debs_dir.glob("linux-image-*.deb"):
        match = KERNEL_DEB.match(deb.name)
        if match:
            candidates.append((tuple(int(part) for part in match.groups()), deb))
    return max(candidates)[1] if candidates else None


def package_name(deb: Path) -> str:
    return _run(["dpkg-deb", "--field", str(deb), "Package"]).strip()


def download(package: str, debs_dir: Path) -> Path:
    """The package's .deb in `debs_dir`, downloaded with apt-get when not cached yet."""
    debs_dir.mkdir(parents=True, exist_ok=True)
    for deb in sorted(debs_dir.glob(f"{package}_*.deb")):
        if package_name(deb) == package:
            return deb
    _run(["apt-get", "download", "-q", package], cwd=debs_dir)
    for deb in sorted(debs_dir.glob(f"{package}_*.deb")):
        if package_name(deb) == package:
            return deb
    raise DebError(f"apt-get download {package} left no {package}_*.deb in {debs_dir}")


@dataclass(frozen=True)
class Member:
    """A file, symlink or hard link of a package (directories are implied by their contents)."""

    path: str  # without the leading "./"
    kind: Literal["file", "symlink", "hardlink"]
    mode: int  # permission bits
    data: bytes = b""  # contents of a file
    target: str = ""  # what a symlink points at, or the package path a hard link repeats


def _kind(member: tarfile.TarInfo) -> Literal["file", "symlink", "hardlink"] | None:
    if member.isfile():
        return "file"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return None


def iter_tree(deb: Path, wanted: Callable[[str], bool]) -> Iterator[Member]:
    """Files, symlinks and hard links of the package whose path (without "./") is `wanted`,
    one at a time (a kernel package holds hundreds of MiB of modules)."""
    unreadable = None
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as extract:
        assert extract.stdout is not None
        try:
            with tarfile.open(fileobj=extract.stdout, mode="r|") as archive:
                for member in archive:
                    path, kind = member.name.removeprefix("./"), _kind(member)
                    if kind is None or not wanted(path):
                        continue
                    data = b""
                    if kind == "file":
                        reader = archive.extractfile(member)
                        assert reader is not None
                        data = reader.read()
                    target = member.linkname.removeprefix("./") if kind == "hardlink" else \
                        member.linkname
                    yield Member(path, kind, member.mode & 0o7777, data, target)
        except tarfile.TarError as exc:
            unreadable = str(exc)
            extract.stdout.close()
        stderr = extract.stderr.read().decode() if extract.stderr else ""
    if extract.returncode != 0 or unreadable:
        raise DebError(f"dpkg-deb --fsys-tarfile {deb} failed: "
                       f"{stderr.strip() or unreadable}")


def read_tree(deb: Path, wanted: Callable[[str], bool]) -> list[Member]:
    return list(iter_tree(deb, wanted))


def read_members(deb: Path, patterns: list[str]) -> dict[str, bytes]:
    """Regular files of the package whose path (without "./") matches one of `patterns`."""
    members = read_tree(deb, lambda path: any(fnmatch.fnmatch(path, p) for p in patterns))
    found = {member.path: member.data for member in members if member.kind == "file"}
    for pattern in patterns:
        if not any(fnmatch.fnmatch(path, pattern) for path in found):
            raise DebError(f"{deb.name} has no file matching {pattern}")
    return found


def version(deb: Path) -> str:
    return _run(["dpkg-deb", "--field", str(deb), "Version"]).strip()


_DEPENDENCY_LINE = re.compile(r"^ ([ |])(?:Pre)?Depends: (\S+)$")
_PROVIDER_LINE = re.compile(r"^    (\S+)$")


def parse_depends(output: str) -> list[str]:
    """The packages an `apt-cache depends PACKAGE` output says PACKAGE needs (Depends and
    PreDepends): of each group of alternatives the first real package, else the first package
    providing its first virtual one ("<python3:any>" -> "python3"). In order, without repeats."""
    groups: list[list[tuple[str, list[str]]]] = []
    group: list[tuple[str, list[str]]] = []
    last: tuple[str, list[str]] | None = None
    for line in output.splitlines()[1:]:
        provider = _PROVIDER_LINE.match(line)
        if provider and last is not None:
            last[1].append(provider.group(1))
            continue
        dependency = _DEPENDENCY_LINE.match(line)
        last = None
        if dependency is None:
            continue
        last = (dependency.group(2), [])
        group.append(last)
        if dependency.group(1) != "|":  # "|" means: or the next line
            groups.append(group)
            group = []
    chosen: list[str] = []
    for alternatives in groups:
        real = [name for name, _ in alternatives if not name.startswith("<")]
        providers = [p for name, found in alternatives if name.startswith("<") for p in found]
        pick = (real or providers or [None])[0]
        if pick is not None and pick not in chosen:
            chosen.append(pick)
    return chosen


def depends(packages: list[str]) -> dict[str, list[str]]:
    """What each package Depends or PreDepends on, as apt resolves it here (see parse_depends);
    one apt-cache run for all of them (each run reads the whole package index)."""
    if not packages:
        return {}
    output = _run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts",
                   "--no-breaks", "--no-replaces", "--no-enhances", *packages])
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if line and not line.startswith(" "):
            current = sections.setdefault(line.strip(), [])
        current.append(line)
    missing = [package for package in packages if package not in sections]
    if missing:
        raise DebError(f"apt-cache knows no package {', '.join(missing)} (are the package "
                       f"lists there? run `apt-get update`)")
    return {package: parse_depends("\n".join(sections[package])) for package in packages}
