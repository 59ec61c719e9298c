"""A cluster of real processes on loopback: enclume-api replicas and enclume-conductors.

Used by the cluster integration tests and the benchmarks.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from lab.local_service import Server, free_port, start_service, stop_service


@dataclass
class Cluster:
    workdir: Path
    database_url: str
    env: dict[str, str]
    apis: dict[str, Server] = field(default_factory=dict)
    conductors: dict[str, Server] = field(default_factory=dict)
    rpc_ports: dict[str, int] = field(default_factory=dict)

    def _common_env(self) -> dict[str, str]:
        return {"ENCLUME_DATABASE_URL": self.database_url, "ENCLUME_DATA_DIR": str(self.workdir),
                **self.env}

    def start_conductor(self, name: str) -> Server:
        port = self.rpc_ports.setdefault(name, free_port())
        env = {**self._common_env(), "ENCLUME_CONDUCTOR_HOSTNAME": name,
               "ENCLUME_RPC_HOST": "127.0.0.1", "ENCLUME_RPC_PORT": str(port)}
        server = start_service("enclume-conductor", name, port, self.workdir, env,
                               ready_path="/health")
        self.conductors[name] = server
        return server

    def start_api(self, name: str, port: int | None = None) -> Server:
        port = port or free_port()
        env = {**self._common_env(), "ENCLUME_API_HOST": "127.0.0.1",
               "ENCLUME_API_PORT": str(port)}
        server = start_service("enclume-api", name, port, self.workdir, env)
        self.apis[name] = server
        return server

    def kill(self, name: str) -> None:
        """kill -9 a conductor: no goodbye, its locks and heartbeat just stop."""
        stop_service(self.conductors[name], signal.SIGKILL)

    def stop(self) -> None:
        for server in [*self.apis.values(), *self.conductors.values()]:
            stop_service(server)

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.log_text()[-4000:]}"
                         for s in [*self.apis.values(), *self.conductors.values()])


@contextmanager
def running_cluster(workdir: Path, database_url: str, conductors: int = 3, apis: int = 2,
                    env: dict[str, str] | None = None,
                    api_ports: tuple[int, ...] = ()) -> Iterator[Cluster]:
    cluster = Cluster(workdir, database_url,
                      {"ENCLUME_RPC_SECRET": secrets.token_hex(16), "ENCLUME_ACCESS_LOG": "false",
                       **(env or {})})
    try:
        for i in range(conductors):
            cluster.start_conductor(f"conductor-{i + 1}")
        for i in range(apis):
            cluster.start_api(f"api-{i + 1}", api_ports[i] if i < len(api_ports) else None)
        yield cluster
    finally:
        cluster.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a local cluster in the foreground until SIGTERM or Ctrl-C (for benchmarks)."""
    import argparse
    import sys
    import tempfile
    import threading
    from contextlib import ExitStack, suppress

    from lab.local_mariadb import running_mariadb
    from lab.local_postgres import running_postgres

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--conductors", type=int, default=3)
    parser.add_argument("--apis", type=int, default=1)
    parser.add_argument("--api-port", type=int, action="append", default=[],
                        help="port of the next API replica (repeat; default: free ports)")
    parser.add_argument("--database-url", help="default: a throw-away PostgreSQL")
    parser.add_argument("--mariadb", action="store_true",
                        help="a throw-away MariaDB instead of PostgreSQL")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="enclume-")))
        url = args.database_url or stack.enter_context(
            running_mariadb() if args.mariadb else running_postgres())
        cluster = stack.enter_context(running_cluster(
            workdir, url, args.conductors, args.apis, {"ENCLUME_ACCESS_LOG": "false"},
            tuple(args.api_port)))
        print(" ".join(["ready", *(api.url for api in cluster.apis.values())]), flush=True)
        with suppress(KeyboardInterrupt):
            stop.wait()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
