"""A venv of pinned PyPI packages cached under .cache/ for the tests that drive other projects'
code (the clients' functional suites, metalsmith, Ironic's policy defaults).

Built once from a requirements file, and built again when that file changes (a stamp holds its
sha256) or when the venv was copied from another place; one builder at a time under a file
lock beside the venv (pytest-xdist workers wait for it). Packages named in ``no_deps`` go in
first without their dependencies, then the other pins: a project whose whole stack is not
wanted (Ironic, for its policy module alone).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Collection
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ramdisk.buildcache import exclusive

STAMP_NAME = ".requirements-sha256"


def ensure_venv(requirements: Path, venv: Path, *, no_deps: Collection[str] = (),
                stamp: Path | None = None) -> Path:
    """``venv`` with ``requirements`` installed, built again when that file changes.

    ``stamp`` is where the requirements' sha256 is kept (inside the venv unless given).
    """
    venv = venv.absolute()  # as the scripts' first lines name it
    venv.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(venv.parent / f".{venv.name}.lock"):
        return _ensure_venv(requirements, venv, frozenset(map(canonicalize_name, no_deps)),
                            stamp or venv / STAMP_NAME)


def _ensure_venv(requirements: Path, venv: Path, no_deps: frozenset[str], stamp: Path) -> Path:
    python = venv / "bin" / "python"
    wanted = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted \
            and _built_here(venv):
        return venv
    stamp.unlink(missing_ok=True)  # a build that fails half-way is not taken for a whole one
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pins = _pins(requirements)
    alone = [pin for pin in pins if canonicalize_name(Requirement(pin).name) in no_deps]
    pip = [str(python), "-m", "pip", "install", "-q"]
    rest = [pin for pin in pins if pin not in alone]
    for options, packages in ((["--no-deps"], alone), ([], rest)):
        if packages:  # pip refuses an install of nothing
            _install([*pip, *options, *packages], requirements)
    stamp.write_text(wanted)
    return venv


def _built_here(venv: Path) -> bool:
    """False for a venv copied from another place (`cp -a` of a worktree's .cache): its scripts
    still start the interpreter of the place it was built in, which may be gone."""
    pip = venv / "bin" / "pip"
    return pip.exists() and pip.read_text().startswith(f"#!{venv}/bin/")


def _pins(requirements: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in requirements.read_text().splitlines())
    return [line for line in lines if line]


def _install(command: list[str], requirements: Path) -> None:
    installed = subprocess.run(command, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        raise RuntimeError(f"pip could not install {requirements}:\n{installed.stderr}")
