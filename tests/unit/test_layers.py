"""The layer contracts (pyproject.toml's [tool.importlinter], run by `make lint`) hold for the
tree, and an import that breaks one makes `lint-imports` fail naming the contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True,
                          text=True, timeout=120, check=False)


def copy_of_the_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("services", "agent", "lab", "session_service"):
        shutil.copytree(REPO / package, root / package, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_every_layer_contract() -> None:
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("module", "forbidden", "contract"), [
    ("services/api/root.py", "services.drivers", "The API imports no driver"),
    ("services/api/versions.py", "services.boot.files", "The API imports no driver"),
    ("services/common/macs.py", "fastapi", "The core knows no web layer"),
    ("services/common/states.py", "services.conductor.task", "The core knows no web layer"),
    ("services/boot/http.py", "services.conductor.rpc", "The boot service imports no API"),
    ("services/drivers/wol.py", "services.boot.dnsmasq", "Drivers reach no API, boot service"),
    ("services/classroom/rooms.py", "fastapi", "The classroom layer knows no web layer"),
    ("services/images/store.py", "services.api.app", "The image store knows no web layer"),
    ("services/cli/enclume/output.py", "sqlalchemy", "The CLI and the agent import nothing"),
    ("agent/main.py", "services.drivers.ipmi", "The CLI and the agent import nothing"),
    ("services/conductor/main.py", "lab.local_service", "The shipped package imports nothing"),
    ("session_service/enclume_session_service.py", "services.common.session_service",
     "The session service ships alone"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, forbidden: str,
                                                contract: str) -> None:
    root = copy_of_the_tree(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy itself is clean
    with (root / module).open("a") as source:
        source.write(f"\nimport {forbidden}  # noqa: E402\n")
    result = lint_imports(root)
    assert result.returncode != 0
    broken = result.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and forbidden.split(".")[0] in broken, result.stdout
