"""Running the ramdisk's tools (sfdisk, qemu-img, mkswap, extlinux, mount …) with clear errors."""

from __future__ import annotations

import logging
import shutil
import subprocess

from agent.errors import CommandError

LOG = logging.getLogger(__name__)
DEFAULT_TIMEOUT_S = 600.0


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise CommandError(f"the ramdisk has no `{tool}`; it is needed for this command")
    return path


def run(argv: list[str], what: str, stdin: bytes | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S, secret: bool = False) -> str:
    """Run ``argv``; its stdout, or a CommandError naming ``what`` with the tool's stderr.
    ``secret`` keeps the command line itself out of logs and messages."""
    require(argv[0])
    LOG.debug("running %s", what if secret else " ".join(argv))
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        raise CommandError(f"{what} did not finish within {timeout_s:.0f} s") from None
    if done.returncode != 0:
        error = done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
        raise CommandError(f"{what} failed: {error[-500:]}")
    return done.stdout.decode(errors="replace")
