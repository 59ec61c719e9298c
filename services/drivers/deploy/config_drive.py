"""Config drives the conductor builds: the session service's token for the deployed OS.

With ENCLUME_SESSION_SERVICE_ENABLED, a direct deploy without a config drive of its own (an
image write, or a block restore: the agent appends the partition after the restored image)
gets one (an ISO 9660 image labelled config-2, made with genisoimage as Ironic makes them,
gzipped and base64-encoded as the agent takes it) holding

- ``openstack/latest/meta_data.json``: the node's UUID and name (what cloud-init reads);
- ``enclume/session-service.json``: the API URL, the node's UUID and a token issued for this
  deploy (services/common/session_service.py; only its hash is kept). The token is in no text
  the conductor writes: it travels inside the config drive, an agent parameter masked by its
  key (``configdrive``) by the one scrubber, services/common/secrets.py.

A deploy that brings its own config drive keeps it untouched, without a session token
(docs/session-service.md says so).
"""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.common import session_service
from services.common.config import Settings
from services.common.models import utcnow
from services.drivers.base import DriverError

if TYPE_CHECKING:
    from services.conductor.task import Task

LABEL = "config-2"
SESSION_FILE = "enclume/session-service.json"
TOOL_TIMEOUT_S = 60


def build(files: dict[str, Any]) -> str:
    """A config drive holding ``files`` (path → JSON document), base64 of the gzipped ISO."""
    tool = shutil.which("genisoimage") or shutil.which("mkisofs")
    if tool is None:
        raise DriverError("building a config drive needs genisoimage (Debian: genisoimage) on "
                          "the conductor's host")
    with tempfile.TemporaryDirectory(prefix="enclume-configdrive-") as directory:
        root = Path(directory) / "root"
        for name, document in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(document))
        iso = Path(directory) / "configdrive.iso"
        done = subprocess.run([tool, "-quiet", "-o", str(iso), "-V", LABEL, "-J", "-r",
                               str(root)], capture_output=True, text=True, check=False,
                              timeout=TOOL_TIMEOUT_S)
        if done.returncode != 0:
            raise DriverError(f"genisoimage could not build the config drive: "
                              f"{done.stderr.strip()[-500:]}")
        return base64.b64encode(gzip.compress(iso.read_bytes(), mtime=0)).decode()


def with_session_token(task: Task, settings: Settings, params: dict[str, Any]
                       ) -> dict[str, Any]:
    """``params`` of the image write, with a config drive carrying a new session token when
    the session service is enabled and the deploy has no config drive of its own."""
    if not settings.session_service.enabled or params.get("configdrive"):
        return params
    node = task.node
    token = session_service.issue_token(task.session, node.id, utcnow())
    api_url = (settings.session_service.api_url or settings.effective_agent_api_url).rstrip("/")
    drive = build({
        "openstack/latest/meta_data.json": {"uuid": node.uuid, "name": node.name or node.uuid,
                                            "hostname": node.name or node.uuid},
        SESSION_FILE: {"api_url": api_url, "node": node.uuid, "token": token},
    })
    task.record("deploying", "A config drive with a new session service token was built.")
    return {**params, "configdrive": drive}
