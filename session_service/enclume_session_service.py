#!/usr/bin/env python3
"""Enclume's session service: tells Enclume a deployed PC is up, and obeys its power commands.

Runs on the deployed OS (a systemd unit, enclume-session.service). At start it reads its
settings, written by Enclume into the deploy's config drive as ``enclume/session-service.json``
(``{"api_url": ..., "node": ..., "token": ...}``): from ``--config`` if that file exists, else
from the config drive (the partition labelled config-2, mounted read-only for a moment), and
keeps a copy in ``--config`` (mode 0600).

Then it heartbeats: ``POST <api_url>/enclume/v1/session-service/<node>`` with
``Authorization: Bearer <token>`` and ``{"booted_at": ..., "wait_s": ...}``; the API holds the
request until a command is asked (a long poll) or ``wait_s`` passed, and answers
``{"command": null | "power-off" | "reboot" | "reboot-to-network"}``. A command is run with
``--poweroff-command`` / ``--reboot-command`` (default ``systemctl poweroff`` / ``reboot``);
``reboot-to-network`` first sets the firmware's next boot to the network with
``efibootmgr --bootnext`` (UEFI, an entry whose name says PXE, IPv4, network or NIC) when it can.

Python 3.8 or later, standard library only: copy this one file to the OS image.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

LOG = logging.getLogger("enclume-session-service")
DEFAULT_CONFIG = "/var/lib/enclume/session-service.json"
CONFIG_DRIVE = "/dev/disk/by-label/config-2"
CONFIG_FILE_ON_DRIVE = "enclume/session-service.json"
NETWORK_ENTRY = re.compile(r"pxe|ipv4|ipv6|network|nic|lan", re.IGNORECASE)
BOOT_ENTRY = re.compile(r"^Boot([0-9A-Fa-f]{4})\*?\s+(.*)$")
COMMANDS = ("power-off", "reboot", "reboot-to-network")
HTTP_MARGIN_S = 15.0


class Refused(Exception):
    """The API refused the token (HTTP 401): wrong, or replaced by a later deploy."""


def boot_time() -> str | None:
    """When this OS booted (``btime`` of /proc/stat), as ISO 8601 UTC."""
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                utc = timezone.utc  # noqa: UP017 (datetime.UTC is Python 3.11+)
                return datetime.fromtimestamp(int(line.split()[1]), utc).isoformat()
    except (OSError, ValueError):
        pass
    return None


def _from_config_drive(device: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="enclume-config-drive-") as mountpoint:
        subprocess.run(["mount", "-o", "ro", device, mountpoint], check=True,
                       capture_output=True)
        try:
            return json.loads((Path(mountpoint) / CONFIG_FILE_ON_DRIVE).read_text())
        finally:
            subprocess.run(["umount", mountpoint], check=False, capture_output=True)


def load_config(path: Path, device: str) -> dict[str, Any]:
    """The service's settings: the kept copy, else the config drive's (then kept)."""
    if path.is_file():
        config = json.loads(path.read_text())
    else:
        config = _from_config_drive(device)
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as kept:
            json.dump(config, kept)
    missing = [key for key in ("api_url", "node", "token") if not config.get(key)]
    if missing:
        raise ValueError(f"the session service settings lack {', '.join(missing)}")
    return config


def heartbeat(config: dict[str, Any], booted_at: str | None, wait_s: float
              ) -> str | None:
    """One heartbeat; the command the API answers (None: none)."""
    url = f"{config['api_url'].rstrip('/')}/enclume/v1/session-service/{config['node']}"
    body = json.dumps({"booted_at": booted_at, "wait_s": wait_s}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {config['token']}"})
    try:
        with urllib.request.urlopen(request, timeout=wait_s + HTTP_MARGIN_S) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise Refused("the API refused this deploy's token (wrong, or replaced by a "
                          "later deploy)") from None
        raise
    command = answer.get("command")
    return command if command in COMMANDS else None


def network_boot_entry(efibootmgr: str) -> str | None:
    """The number of the first UEFI boot entry that boots from the network, if any."""
    listing = subprocess.run([efibootmgr], capture_output=True, text=True, check=False)
    for line in listing.stdout.splitlines():
        match = BOOT_ENTRY.match(line.strip())
        if match and NETWORK_ENTRY.search(match.group(2)):
            return match.group(1)
    return None


def set_next_boot_to_network(efibootmgr: str) -> bool:
    tool = shutil.which(efibootmgr)
    if tool is None:
        LOG.warning("no %s here: the firmware's boot order decides what boots next", efibootmgr)
        return False
    entry = network_boot_entry(tool)
    if entry is None:
        LOG.warning("no network boot entry in the firmware: its boot order decides")
        return False
    done = subprocess.run([tool, "--bootnext", entry], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        LOG.warning("efibootmgr --bootnext %s failed: %s", entry, done.stderr.strip())
        return False
    LOG.info("next boot: entry %s (network)", entry)
    return True


def run_command(command: str, options: argparse.Namespace) -> bool:
    """Run ``command``; whether it was started successfully."""
    if command == "reboot-to-network":
        set_next_boot_to_network(options.efibootmgr)
    argv: list[str] = shlex.split(options.poweroff_command if command == "power-off"
                                  else options.reboot_command)
    LOG.info("running %s: %s", command, " ".join(argv))
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        LOG.error("%s exited with %d", argv[0], done.returncode)
    return done.returncode == 0


def serve(options: argparse.Namespace) -> int:
    config = load_config(Path(options.config), options.config_drive)
    booted_at = boot_time()
    LOG.info("reporting node %s up to %s", config["node"], config["api_url"])
    while True:
        try:
            command = heartbeat(config, booted_at, options.wait_s)
        except Refused as refusal:
            LOG.error("%s; trying again in %.0f s", refusal, options.retry_s)
            time.sleep(options.retry_s)
            continue
        except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors
            LOG.warning("heartbeat failed: %s; trying again in %.0f s", error, options.retry_s)
            time.sleep(options.retry_s)
            continue
        if command is not None and run_command(command, options):
            return 0  # the OS goes down: no more heartbeats
        if options.once:
            return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Enclume's session service for deployed OSes.")
    parser.add_argument("--config", default=os.environ.get("ENCLUME_SESSION_CONFIG",
                                                           DEFAULT_CONFIG))
    parser.add_argument("--config-drive", default=CONFIG_DRIVE)
    parser.add_argument("--wait-s", type=float, default=20.0,
                        help="how long the API may hold a heartbeat for a command")
    parser.add_argument("--retry-s", type=float, default=30.0)
    parser.add_argument("--poweroff-command", default="systemctl poweroff")
    parser.add_argument("--reboot-command", default="systemctl reboot")
    parser.add_argument("--efibootmgr", default="efibootmgr")
    parser.add_argument("--once", action="store_true", help="one heartbeat, then exit")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(name)s: %(levelname)s %(message)s")
    try:
        return serve(options)
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        LOG.error("cannot start: %s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main())
