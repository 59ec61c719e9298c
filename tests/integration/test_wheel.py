"""The shipped package on its own: `python -m build` makes a wheel (without the lab, with the
migrations), installed in a fresh venv, whose enclume-dbsync and enclume-aio start from a
directory that is not the repository's and serve."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from lab.local_service import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without Enclume settings or paths leading back to the repository."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ENCLUME_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("services", "agent"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist),
                    str(source)], check=True, capture_output=True, timeout=600, env=clean_env())
    (built,) = dist.glob("enclume-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)], check=True,
                   capture_output=True, timeout=900, env=clean_env())
    return venv / "bin"


def test_the_wheel_ships_the_migrations_and_not_the_lab(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "services/common/migrations/env.py" in names
    assert "services/common/migrations/script.py.mako" in names
    assert any(n.startswith("services/common/migrations/versions/0001_") for n in names)
    assert not [n for n in names if n.startswith(("lab/", "tests/", "benchmarks/"))]
    # The web page's templates and static files (services/api/ui).
    assert {"services/api/ui/templates/room.html", "services/api/ui/templates/pc_status.html",
            "services/api/ui/static/app.js", "services/api/ui/static/app.css",
            "services/api/ui/static/vendor/htmx-2.0.11.min.js",
            "services/api/ui/static/vendor/pico-2.1.1.classless.min.css",
            "services/api/ui/static/vendor/LICENSE.pico"} <= set(names)


def test_the_installed_aio_serves_from_any_directory(installed: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = clean_env(ENCLUME_DATA_DIR=str(tmp_path / "data"))
    dbsync = subprocess.run([str(installed / "enclume-dbsync")], cwd=workdir, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert dbsync.returncode == 0, dbsync.stderr
    assert "is at the newest schema" in dbsync.stderr

    port = free_port()
    log = (tmp_path / "aio.log").open("wb")
    aio = subprocess.Popen([str(installed / "enclume-aio")], cwd=workdir, stdout=log,
                           stderr=subprocess.STDOUT,
                           env={**env, "ENCLUME_API_PORT": str(port)})
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and aio.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/v1", timeout=2).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.2)
        assert status == 200, (tmp_path / "aio.log").read_text()
        drivers = httpx.get(f"http://127.0.0.1:{port}/v1/drivers", timeout=5,
                            headers={"X-OpenStack-Ironic-API-Version": "1.31"}).json()
        assert "fake-hardware" in {d["name"] for d in drivers["drivers"]}
        # The web page renders from the installed templates and serves its static files.
        rooms = httpx.get(f"http://127.0.0.1:{port}/ui/rooms", timeout=5)
        assert rooms.status_code == 200 and 'src="/ui/static/app.js"' in rooms.text
        assert httpx.get(f"http://127.0.0.1:{port}/ui/static/vendor/htmx-2.0.11.min.js",
                         timeout=5).status_code == 200
    finally:
        aio.terminate()
        aio.wait(timeout=30)
        log.close()
