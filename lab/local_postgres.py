"""A throw-away PostgreSQL server from Debian's package, for tests and benchmarks.

PostgreSQL refuses to run as root, so the server runs as a dedicated system user, in a
temporary directory, listening on loopback only, with durability switched off (its data is
thrown away afterwards). It is stopped by PID and its directory removed, also on failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from lab.local_service import free_port

SERVICE_USER = "enclume-pg"
USERADD_ATTEMPTS = 5
USERADD_RETRY_S = 0.5


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def ensure_user(name: str = SERVICE_USER) -> pwd.struct_passwd:
    """The system user a throw-away database server runs as (made when missing)."""
    for _ in range(USERADD_ATTEMPTS):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        # Another process (a pytest-xdist worker) may be adding the same user right now: useradd
        # then fails (user exists, /etc/passwd locked) and the next look finds it.
        added = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                                "/usr/sbin/nologin", name], capture_output=True, text=True)
        if added.returncode != 0:
            time.sleep(USERADD_RETRY_S)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"useradd {name} failed: {added.stderr.strip()}") from None


def stop_and_remove(server: subprocess.Popen[bytes], log: IO[bytes], workdir: Path,
                    timeout: float = 15) -> None:
    """Stop a throw-away server (SIGTERM, SIGKILL if it lingers) and remove its directory."""
    server.terminate()
    try:
        server.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)


def owned_workdir(service_user: str, prefix: str) -> tuple[pwd.struct_passwd, Path]:
    """The user a throw-away server runs as (``service_user`` when run as root) and a new
    temporary directory it owns."""
    user = ensure_user(service_user) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chown(workdir, user.pw_uid, user.pw_gid)
    return user, workdir


def wait_ready(server: subprocess.Popen[bytes], ping: list[str], name: str,
               timeout: float) -> None:
    """Wait until ``ping`` (the server's own client asking it) succeeds; RuntimeError when the
    server exits or ``timeout`` seconds pass first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"{name} exited with {server.returncode}")
        if subprocess.run(ping, capture_output=True).returncode == 0:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not become ready within {timeout:g} s")


def _as_user(user: pwd.struct_passwd) -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid}


@contextmanager
def running_postgres(database: str = "enclume") -> Iterator[str]:
    """Yield a SQLAlchemy URL of a new, empty database on a private PostgreSQL server."""
    with running_postgres_urls(database) as (tcp_url, _socket_url):
        yield tcp_url


@contextmanager
def running_postgres_urls(database: str = "enclume") -> Iterator[tuple[str, str]]:
    """Like ``running_postgres``, yielding (loopback TCP URL, Unix socket URL).

    The socket URL also works from inside a network namespace, which has no route to the root
    namespace's loopback but shares its file system.
    """
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql)")
    user, workdir = owned_workdir(SERVICE_USER, "enclume-pg-")
    data, port = workdir / "data", free_port()
    as_user = _as_user(user)
    subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True, **as_user)
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
         "-c", "full_page_writes=off", "-c", "max_connections=300"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **as_user)
    try:
        wait_ready(server, [str(bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                   "PostgreSQL", timeout=30)
        subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p",
                        str(port), "-U", "postgres", database], check=True, capture_output=True)
        yield (f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database}",
               f"postgresql+psycopg://postgres@/{database}?host={workdir}&port={port}")
    finally:
        stop_and_remove(server, log, workdir)
