"""qemu-img, as the ``iscsi`` deploy interface uses it: what format an image is, and writing it
into a disk exported over iSCSI (libiscsi in user space: no kernel initiator needed).

The CHAP password goes to qemu-img in a file readable only by us (a QEMU ``secret`` object), so
it never appears on a command line, in the process list or in an error message.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from services.common.secrets import MASK
from services.drivers.base import DriverError

QEMU_IMG = "qemu-img"
INFO_TIMEOUT_S = 60.0
# Formats an operator may deploy; anything else could make qemu-img open other files.
DEPLOYABLE_FORMATS = ("raw", "qcow2")
ERROR_CHARS = 500


@dataclass(frozen=True)
class IscsiTarget:
    host: str
    port: int
    iqn: str
    lun: int
    username: str
    password: str

    def options(self, secret_id: str) -> str:
        for value in (self.host, self.iqn, self.username):
            if "," in value or "=" in value:
                raise DriverError(f"unusable iSCSI target value {value!r}")
        return (f"driver=iscsi,transport=tcp,portal={self.host}:{self.port},target={self.iqn},"
                f"lun={self.lun},user={self.username},password-secret={secret_id}")


def _run(args: list[str], timeout_s: float, secret: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except FileNotFoundError:
        raise DriverError(f"{QEMU_IMG} is not installed on the conductor (Debian packages "
                          f"qemu-utils and qemu-block-extra)") from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"{QEMU_IMG} {args[1]} did not finish within {timeout_s:.0f} s") \
            from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()[-ERROR_CHARS:]
        if secret:
            message = message.replace(secret, MASK)
        raise DriverError(f"{QEMU_IMG} {args[1]} failed: {message}")
    return done


def image_format(path: Path) -> str:
    """The format qemu-img finds in ``path``; only raw and self-contained qcow2 (no backing
    file, no external data file, not encrypted) pass."""
    done = _run([QEMU_IMG, "info", "--output=json", str(path)], INFO_TIMEOUT_S)
    try:
        info = json.loads(done.stdout)
    except ValueError:
        raise DriverError(f"{QEMU_IMG} info gave no JSON for the image") from None
    found = info.get("format")
    if found not in DEPLOYABLE_FORMATS:
        raise DriverError(f"the image is in format {found!r}; only "
                          f"{' and '.join(DEPLOYABLE_FORMATS)} images can be deployed")
    if info.get("backing-filename"):
        raise DriverError("the image has a backing file; deploy a self-contained image")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):  # qemu-img would read that file of this host into the disk
        raise DriverError("the image has an external data file; deploy a self-contained image")
    if info.get("encrypted"):
        raise DriverError("the image is encrypted; deploy an image qemu-img can read without a "
                          "key")
    return str(found)


def write_to_iscsi(path: Path, source_format: str, target: IscsiTarget, timeout_s: float
                   ) -> None:
    """Convert the image into the exported disk, as raw, over its whole beginning."""
    if source_format not in DEPLOYABLE_FORMATS:
        raise DriverError(f"cannot deploy an image in format {source_format!r}")
    with tempfile.TemporaryDirectory(prefix="enclume-chap-") as directory:
        secret_file = Path(directory) / "chap"
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(target.password)
        _run([QEMU_IMG, "convert", "-n", "-f", source_format,
              "--object", f"secret,id=chap,file={secret_file}",
              "--target-image-opts", str(path), target.options("chap")],
             timeout_s, secret=target.password)
