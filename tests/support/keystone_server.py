"""A real Keystone (PyPI ``keystone``) on SQLite, served on loopback for the tests.

Keystone lives in its own venv under .cache/keystone (tests/support/cached_venv.py builds it,
as it does the clients' venv: once from tests/keystone/requirements.txt under a file lock, again
when that file changes). Then, under the same lock, a template is bootstrapped once: a
database after ``db_sync`` and ``bootstrap`` with fernet and credential keys, so that each test
module copies it instead of spending ~20 s in keystone-manage; ``seeded_template`` caches a
copy with a module's projects and users too. ``KeystoneServer`` serves a copy
with tests/keystone/serve.py; ``Keystone`` (its admin's client) creates projects, users, role
assignments and tokens through the real identity API.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ramdisk.buildcache import exclusive
from tests.support.cached_venv import ensure_venv
from tests.support.procfs import stop_process

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "tests" / "keystone" / "requirements.txt"
SERVE = ROOT / "tests" / "keystone" / "serve.py"
CACHE = ROOT / ".cache" / "keystone"
VENV = CACHE / "venv"
TEMPLATE = CACHE / "template"
STAMP = CACHE / ".requirements-sha256"
TEMPLATE_STAMP = TEMPLATE / ".requirements-sha256"  # written last: the template is whole
LOCK = CACHE / f".{VENV.name}.lock"  # ensure_venv's lock, beside the venv
ADMIN_PASSWORD = "keystone-test-admin"  # the throw-away Keystone's bootstrap admin
PLACEHOLDER_URL = "http://keystone.invalid/v3"  # the template's endpoint, rewritten per copy


def _config(home: Path, token_expiration_s: int = 3600) -> str:
    return (f"[database]\nconnection = sqlite:///{home}/keystone.db\n"
            f"[fernet_tokens]\nkey_repository = {home}/fernet-keys\n"
            f"[fernet_receipts]\nkey_repository = {home}/fernet-keys\n"
            f"[credential]\nkey_repository = {home}/credential-keys\n"
            f"[token]\nexpiration = {token_expiration_s}\n"
            # Keystone's own cache (in process; a revocation invalidates it): each call costs
            # a loaded machine seconds without it.
            "[cache]\nenabled = true\nbackend = dogpile.cache.memory\n"
            # Test users' passwords: bcrypt's fewest rounds, not a loaded machine's seconds.
            "[identity]\npassword_hash_rounds = 4\n")


def ensure_keystone() -> Path:
    """The Keystone venv and its bootstrapped template, built when missing or outdated."""
    ensure_venv(REQUIREMENTS, VENV, stamp=STAMP)  # takes LOCK itself: not under it here
    with exclusive(LOCK):
        wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
        if TEMPLATE_STAMP.exists() and TEMPLATE_STAMP.read_text() == wanted:
            return VENV
        shutil.rmtree(TEMPLATE, ignore_errors=True)
        TEMPLATE.mkdir(parents=True)
        config = TEMPLATE / "keystone.conf"
        config.write_text(_config(TEMPLATE))
        manage = [str(VENV / "bin" / "keystone-manage"), "--config-file", str(config)]
        owner = ["--keystone-user", _user(), "--keystone-group", _group()]
        _run([*manage, "db_sync"])
        for keys in ("fernet-keys", "credential-keys"):
            (TEMPLATE / keys).mkdir()
        _run([*manage, "fernet_setup", *owner])
        _run([*manage, "credential_setup", *owner])
        _run([*manage, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
              "--bootstrap-public-url", PLACEHOLDER_URL])
        TEMPLATE_STAMP.write_text(wanted)
        return VENV


def seeded_template(key: str, seed: Callable[[str], dict[str, Any]]
                    ) -> tuple[Path, dict[str, Any]]:
    """A template holding what ``seed`` created through the API of a Keystone at the URL it
    is given (projects, users, role assignments: each call costs a loaded machine a second or
    more), made once per ``key`` and cached; with what ``seed`` returned (their ids)."""
    ensure_keystone()
    with exclusive(LOCK):
        digest = hashlib.sha256(key.encode() + REQUIREMENTS.read_bytes()).hexdigest()[:16]
        directory = CACHE / f"seeded-{digest}"
        answers = directory / "seed.json"
        if answers.exists():
            return directory, dict(json.loads(answers.read_text()))
        work = CACHE / "seeding"
        shutil.rmtree(work, ignore_errors=True)
        server = KeystoneServer(work)
        server.prepare(TEMPLATE)  # not prepare(): it would take the lock held here again
        server.start()
        try:
            result = seed(server.url)
        finally:
            server.stop()
        (work / "seed.json").write_text(json.dumps(result))
        shutil.rmtree(directory, ignore_errors=True)
        work.rename(directory)
        return directory, result


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed:\n{done.stderr[-4000:]}")


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _group() -> str:
    return grp.getgrgid(os.getgid()).gr_name


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class KeystoneServer:
    """A copy of the template served on a loopback port; ``stop()``/``start()`` take it down
    and bring it back on the same port (the "Keystone is down" tests)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self._process: subprocess.Popen[str] | None = None

    def prepare(self, template: Path | None = None) -> None:
        """Copy ``template`` (the bootstrapped one by default) and point it at this port."""
        if template is None:
            ensure_keystone()
        shutil.copytree(template or TEMPLATE, self.home, dirs_exist_ok=True)
        (self.home / "keystone.conf").write_text(_config(self.home))
        with sqlite3.connect(self.home / "keystone.db") as database:
            database.execute("UPDATE endpoint SET url = ?", (self.url,))

    def start(self, timeout: float = 120.0) -> None:
        self._process = subprocess.Popen(
            [str(VENV / "bin" / "python"), str(SERVE), str(self.home / "keystone.conf"),
             str(self.port)],
            stdout=subprocess.PIPE, stderr=(self.home / "keystone.log").open("a"), text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()  # blocks until served or dead
        if "listening" not in line:
            self.stop()
            raise RuntimeError("Keystone did not start:\n"
                               + (self.home / "keystone.log").read_text()[-4000:])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url, timeout=10).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("Keystone does not answer on " + self.url)

    def stop(self) -> None:
        if self._process is not None:
            stop_process(self._process, 10)
            self._process = None


@dataclass
class Keystone:
    """The admin's view of a running Keystone: what the tests create and the tokens they get."""

    url: str

    def __post_init__(self) -> None:
        self._client = httpx.Client(base_url=self.url, timeout=60)
        self._admin_token = self.token("admin", ADMIN_PASSWORD, system=True)
        self.roles = {role["name"]: role["id"] for role in self._get("/roles")["roles"]}

    def _get(self, path: str) -> Any:
        answer = self._client.get(path, headers={"X-Auth-Token": self._admin_token})
        answer.raise_for_status()
        return answer.json()

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        answer = self._client.post(path, json=body, headers={"X-Auth-Token": self._admin_token})
        answer.raise_for_status()
        return answer.json() if answer.content else None

    def _put(self, path: str) -> None:
        self._client.put(path, headers={"X-Auth-Token": self._admin_token}).raise_for_status()

    def role(self, name: str) -> str:
        if name not in self.roles:
            self.roles[name] = str(self._post("/roles", {"role": {"name": name}})["role"]["id"])
        return self.roles[name]

    def project(self, name: str) -> str:
        created = self._post("/projects", {"project": {"name": name, "domain_id": "default"}})
        return str(created["project"]["id"])

    def user(self, name: str, password: str) -> str:
        created = self._post("/users", {"user": {"name": name, "password": password,
                                                 "domain_id": "default"}})
        return str(created["user"]["id"])

    def grant(self, user_id: str, role: str, project_id: str | None = None) -> None:
        """``role`` on the project, or on the whole system when no project is given."""
        where = f"/projects/{project_id}" if project_id else "/system"
        self._put(f"{where}/users/{user_id}/roles/{self.roles[role]}")

    def token(self, user: str, password: str, project: str | None = None,
              system: bool = False) -> str:
        scope: dict[str, Any] = (
            {"system": {"all": True}} if system
            else {"project": {"name": project, "domain": {"id": "default"}}})
        answer = self._client.post("/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": password, "domain": {"id": "default"}}}},
            "scope": scope}})
        answer.raise_for_status()
        return answer.headers["X-Subject-Token"]

    def expiring_token(self, user_id: str, user_token: str, seconds: int) -> tuple[str, float]:
        """A token of the user's project that expires in ``seconds`` (Keystone caps a token at
        its application credential's expiry); with the expiry as a time.time() value."""
        expires = time.time() + seconds
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(expires))
        answer = self._client.post(
            f"/users/{user_id}/application_credentials", headers={"X-Auth-Token": user_token},
            json={"application_credential": {"name": f"short-{expires}", "expires_at": stamp}})
        answer.raise_for_status()
        credential = answer.json()["application_credential"]
        answer = self._client.post("/auth/tokens", json={"auth": {"identity": {
            "methods": ["application_credential"], "application_credential": {
                "id": credential["id"], "secret": credential["secret"]}}}})
        answer.raise_for_status()
        return answer.headers["X-Subject-Token"], float(int(expires))

    def revoke(self, token: str) -> None:
        self._client.delete("/auth/tokens", headers={
            "X-Auth-Token": self._admin_token, "X-Subject-Token": token}).raise_for_status()

    def close(self) -> None:
        self._client.close()
