"""Ironic's own policy defaults (PyPI ``ironic``, loaded with oslo.policy), asked from the tests.

Ironic lives in its own venv under .cache/ironic-policy (as Keystone's does), built once from
tests/ironic_policy/requirements.txt under a file lock (pytest-xdist workers: one builds, the
others wait) and rebuilt when that file changes (tests/support/cached_venv.py). Ironic goes in
without its dependencies: its policy module needs oslo.policy, oslo.concurrency and oslo.log
only, a venv of seconds instead of Ironic's whole stack. ``ask`` answers a batch of questions
in one process.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.cached_venv import ensure_venv

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "ironic_policy" / "requirements.txt"
ENFORCE = ROOT / "tests" / "ironic_policy" / "enforce.py"
CACHE = ROOT / ".cache" / "ironic-policy"
VENV = CACHE / "venv"
# Where this module kept it before cached_venv.py (which keeps a stamp inside the venv unless
# told): a venv built then stays valid.
STAMP = CACHE / ".requirements-sha256"


@dataclass(frozen=True)
class Question:
    rule: str
    creds: dict[str, Any]
    target: dict[str, Any]


@dataclass(frozen=True)
class Answers:
    rules: set[str]  # every rule Ironic's defaults define
    allowed: list[bool]  # one per question


def ask(questions: list[Question], policy_file: Path | None = None) -> Answers:
    """``policy_file``: an operator's policy.yaml over the defaults (an absolute path)."""
    venv = ensure_venv(REQUIREMENTS, VENV, no_deps=("ironic",), stamp=STAMP)
    payload = json.dumps([q.__dict__ for q in questions])
    extra = [str(policy_file)] if policy_file else []
    done = subprocess.run([str(venv / "bin" / "python"), str(ENFORCE), *extra], input=payload,
                          capture_output=True, text=True, check=True, cwd=CACHE)
    result = json.loads(done.stdout)
    return Answers(set(result["rules"]), list(result["answers"]))


def disagreements(cases: list[tuple[str, str, str, bool]], answers: Answers) -> list[str]:
    """Where Ironic's answer (one per case, in order) is not Enclume's; a case is (rule,
    persona, target, Enclume's answer)."""
    assert len(answers.allowed) == len(cases)
    return [f"{rule} for {persona} on {target}: Ironic {theirs}, Enclume {ours}"
            for (rule, persona, target, ours), theirs in zip(cases, answers.allowed,
                                                               strict=True)
            if ours != theirs]
