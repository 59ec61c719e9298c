"""Debian packages in a local cache: download them with apt-get, read files out of them."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tarfile
from pathlib import Path

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


def read_members(deb: Path, patterns: list[str]) -> dict[str, bytes]:
    """Regular files of the package whose path (without "./") matches one of `patterns`."""
    with subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as extract:
        assert extract.stdout is not None
        found: dict[str, bytes] = {}
        with tarfile.open(fileobj=extract.stdout, mode="r|") as archive:
            for member in archive:
                path = member.name.removeprefix("./")
                if member.isfile() and any(fnmatch.fnmatch(path, p) for p in patterns):
                    reader = archive.extractfile(member)
                    assert reader is not None
                    found[path] = reader.read()
        stderr = extract.stderr.read().decode() if extract.stderr else ""
    if extract.returncode != 0:
        raise DebError(f"dpkg-deb --fsys-tarfile {deb} failed: {stderr.strip()}")
    for pattern in patterns:
        if not any(fnmatch.fnmatch(path, pattern) for path in found):
            raise DebError(f"{deb.name} has no file matching {pattern}")
    return found
