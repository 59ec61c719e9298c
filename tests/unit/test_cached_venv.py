"""tests/support/cached_venv.py builds a venv again when its requirements changed, and keeps it
while they stay the same (no package pinned: nothing leaves this machine; one real build)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.support.cached_venv import ensure_venv


def test_a_venv_is_built_again_when_its_requirements_change_and_kept_after(
        tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# nothing pinned\n")
    venv = tmp_path / "cache" / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()  # a venv built from other requirements
    (venv / ".requirements-sha256").write_text(hashlib.sha256(b"older\n").hexdigest())

    assert ensure_venv(requirements, venv) == venv
    python = venv / "bin" / "python"
    assert python.stat().st_size > 0  # a real interpreter (or its link) now
    assert (venv / ".requirements-sha256").read_text() == hashlib.sha256(
        requirements.read_bytes()).hexdigest()
    assert (tmp_path / "cache" / ".venv.lock").exists()

    marker = venv / "built-before"
    marker.touch()
    ensure_venv(requirements, venv)
    assert marker.exists()  # the same requirements: the venv is kept


def test_a_venv_copied_from_elsewhere_is_built_again(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (venv / "bin" / "pip").write_text("#!/elsewhere/venv/bin/python3.11\n")
    (venv / ".requirements-sha256").write_text(hashlib.sha256(b"\n").hexdigest())

    ensure_venv(requirements, venv)
    assert (venv / "bin" / "pip").read_text().startswith(f"#!{venv}/bin/")
