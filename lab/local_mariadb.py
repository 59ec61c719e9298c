"""A throw-away MariaDB server from Debian's package (mariadb-server), for tests and benchmarks.

As ``lab/local_postgres.py`` does for PostgreSQL: a temporary data directory, loopback only,
durability off, a dedicated system user when run as root; stopped by PID and its directory
removed, also on failure. The URL uses PyMySQL (``mysql+pymysql://``), the driver Ironic's
MySQL deployments use.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lab.local_postgres import owned_workdir, stop_and_remove, wait_ready
from lab.local_service import free_port

SERVICE_USER = "enclume-mariadb"
SERVER = Path("/usr/sbin/mariadbd")
INSTALL_DB = Path("/usr/bin/mariadb-install-db")
ADMIN = Path("/usr/bin/mariadb-admin")
CLIENT = Path("/usr/bin/mariadb")


def mariadb_installed() -> bool:
    return SERVER.exists() and INSTALL_DB.exists()


@contextmanager
def running_mariadb(database: str = "enclume") -> Iterator[str]:
    """Yield a SQLAlchemy URL of a new, empty database on a private MariaDB server."""
    with running_mariadb_urls(database) as (tcp_url, _socket_url):
        yield tcp_url


@contextmanager
def running_mariadb_urls(database: str = "enclume") -> Iterator[tuple[str, str]]:
    """Like ``running_mariadb``, yielding (loopback TCP URL, Unix socket URL).

    The socket URL also works from inside a network namespace, which has no route to the root
    namespace's loopback but shares its file system.
    """
    if not mariadb_installed():
        raise RuntimeError("MariaDB is not installed (Debian package mariadb-server)")
    user, workdir = owned_workdir(SERVICE_USER, "enclume-mariadb-")
    data, port, socket = workdir / "data", free_port(), workdir / "mysqld.sock"
    subprocess.run([str(INSTALL_DB), f"--user={user.pw_name}", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--skip-name-resolve"], check=True, capture_output=True)
    log = (workdir / "server.log").open("wb")
    server = subprocess.Popen(
        [str(SERVER), "--no-defaults", f"--user={user.pw_name}", f"--datadir={data}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--socket={socket}",
         f"--pid-file={workdir / 'mysqld.pid'}", "--skip-name-resolve", "--skip-log-bin",
         "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--sync-binlog=0",
         "--innodb-buffer-pool-size=64M", "--max-connections=300",
         "--character-set-server=utf8mb4", "--collation-server=utf8mb4_bin",
         f"--log-error={workdir / 'error.log'}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(server, [str(ADMIN), f"--socket={socket}", "-uroot", "ping"], "MariaDB",
                   timeout=60)
        # 'enclume'@'localhost' is the same user over the Unix socket.
        users = " ".join(f"CREATE USER 'enclume'@'{host}' IDENTIFIED BY 'enclume';"
                         f" GRANT ALL ON `{database}`.* TO 'enclume'@'{host}';"
                         for host in ("127.0.0.1", "localhost"))
        subprocess.run([str(CLIENT), f"--socket={socket}", "-uroot", "-e",
                        f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
                        f" {users}"],
                       check=True, capture_output=True)
        yield (f"mysql+pymysql://enclume:enclume@127.0.0.1:{port}/{database}?charset=utf8mb4",
               f"mysql+pymysql://enclume:enclume@localhost/{database}"
               f"?unix_socket={socket}&charset=utf8mb4")
    finally:
        stop_and_remove(server, log, workdir, timeout=30)
