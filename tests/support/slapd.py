"""A throw-away OpenLDAP slapd (Debian's ``slapd``) on a loopback port, with a small school.

Everything lives in one temporary directory: a ``slapd.conf`` (``slapd -f``, no cn=config, no
debconf), an mdb database filled by ``slapadd`` before the start, and a certificate of a
throw-away CA for StartTLS and ldaps. The system's slapd, if any, is not touched; the process is
stopped by its PID.

The directory (base ``dc=school,dc=test``): people under ``ou=people`` (password
``<name>-pw``), groups under ``ou=groups`` as posixGroup (memberUid) and groupOfNames (member)::

    staff-net (posixGroup)  : tina, tom
    admins    (groupOfNames): ada
    l3-net    (posixGroup)  : sam, sue
    l3-b12    (groupOfNames): sam
    nobody-group            : nora   (a group no setting maps)
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.config_classroom_sections import LdapSettings
from tests.support.procfs import stop_process
from tests.support.throwaway_ca import create_ca, issue_server_certificate

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMAS = ("core", "cosine", "nis", "inetorgperson")
BASE = "dc=school,dc=test"
PEOPLE = {"tina": "Tina Teacher", "tom": "Tom Teacher", "ada": "Ada Admin",
          "sam": "Sam Student", "sue": "Sue Student", "nora": "Nora Nogroup"}
POSIX_GROUPS = {"staff-net": ["tina", "tom"], "l3-net": ["sam", "sue"], "nobody-group": ["nora"]}
NAMED_GROUPS = {"admins": ["ada"], "l3-b12": ["sam"]}
ROLE_GROUPS = {"staff-net": "teacher", "l3-net": "student", "admins": "admin"}
ROOM_GROUPS = {"staff-net": ["B12", "B14"], "l3-b12": ["B12"]}


def ldap_settings(url: str, **overrides: Any) -> LdapSettings:
    values: dict[str, Any] = {
        "url": url, "user_dn_template": f"uid={{user}},ou=people,{BASE}",
        "group_base": f"ou=groups,{BASE}", "role_groups": ROLE_GROUPS,
        "room_groups": ROOM_GROUPS, "connect_timeout_s": 2, "timeout_s": 3}
    return LdapSettings(**{**values, **overrides})


def available() -> bool:
    return SLAPD.exists() and SLAPADD.exists()


def password_of(user: str) -> str:
    return f"{user}-pw"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _directory_ldif() -> str:
    entries = [f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: school\n"
               "o: Test school\n",
               f"dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n",
               f"dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n"]
    for number, (user, full_name) in enumerate(PEOPLE.items()):
        entries.append(
            f"dn: uid={user},ou=people,{BASE}\nobjectClass: inetOrgPerson\n"
            f"objectClass: posixAccount\nuid: {user}\ncn: {full_name}\n"
            f"sn: {full_name.split()[1]}\nuidNumber: {2000 + number}\ngidNumber: 2000\n"
            f"homeDirectory: /home/{user}\nuserPassword: {password_of(user)}\n")
    for number, (group, members) in enumerate(POSIX_GROUPS.items()):
        entries.append(f"dn: cn={group},ou=groups,{BASE}\nobjectClass: posixGroup\n"
                       f"cn: {group}\ngidNumber: {3000 + number}\n"
                       + "".join(f"memberUid: {m}\n" for m in members))
    for group, members in NAMED_GROUPS.items():
        entries.append(f"dn: cn={group},ou=groups,{BASE}\nobjectClass: groupOfNames\n"
                       f"cn: {group}\n"
                       + "".join(f"member: uid={m},ou=people,{BASE}\n" for m in members))
    return "\n".join(entries)


@dataclass
class Slapd:
    directory: Path
    port: int = 0
    tls_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca" / "ca.pem"

    def _write_config(self) -> Path:
        ca = create_ca(self.directory / "ca", "Enclume test directory CA")
        server = issue_server_certificate(ca, self.directory / "tls")
        (self.directory / "db").mkdir()
        includes = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in SCHEMAS)
        config = self.directory / "slapd.conf"
        config.write_text(
            f"{includes}pidfile {self.directory}/slapd.pid\n"
            "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
            f"TLSCACertificateFile {ca.cert_file}\nTLSCertificateFile {server.cert_file}\n"
            f"TLSCertificateKeyFile {server.key_file}\n"
            f"database mdb\nsuffix \"{BASE}\"\nrootdn \"cn=admin,{BASE}\"\n"
            f"rootpw admin-secret\ndirectory {self.directory}/db\nmaxsize 10485760\n"
            "access to attrs=userPassword by anonymous auth by * none\n"
            "access to * by users read by * none\n")
        return config

    def start(self) -> Slapd:
        config = self._write_config()
        ldif = self.directory / "school.ldif"
        ldif.write_text(_directory_ldif())
        subprocess.run([str(SLAPADD), "-f", str(config), "-l", str(ldif)], check=True,
                       capture_output=True)
        self.port = self.port or _free_port()
        self.tls_port = self.tls_port or _free_port()
        self._launch(config)
        return self

    def _launch(self, config: Path) -> None:
        urls = f"{self.url}/ {self.ldaps_url}/"
        # -d 0: stays in the foreground (its PID is ours to stop), logs nothing.
        self.process = subprocess.Popen([str(SLAPD), "-f", str(config), "-h", urls, "-d", "0"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                raise RuntimeError(f"slapd exited ({self.process.returncode}): {error}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("slapd did not listen within 15 s")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        """Start again on the same ports (after ``stop``: the directory comes back)."""
        self._launch(self.directory / "slapd.conf")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
