"""Names of files served from a directory, checked so that no request reaches outside it.

A name is a relative POSIX path of plain segments: no NUL or control characters, no
backslash, no absolute path, no empty, ``.`` or ``..`` segment. Its resolved location (symbolic
links followed) must still lie inside the directory and be a regular file.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from services.common.bootconfig.params import check_url

MAX_NAME_LENGTH = 1024
FILES_PATH = "/files/"  # where the boot service's HTTP server serves the files directory


class UnsafeName(ValueError):
    """A name that could reach outside the served directory."""


def checked_name(name: str) -> PurePosixPath:
    """``name`` as a relative path of plain segments, or UnsafeName saying what is wrong."""
    if not name:
        raise UnsafeName("the file name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise UnsafeName(f"the file name is longer than {MAX_NAME_LENGTH} characters")
    if any(ord(char) < 0x20 or char == "\x7f" for char in name):
        raise UnsafeName("the file name contains control characters")
    if "\\" in name:
        raise UnsafeName("the file name contains a backslash")
    if name.startswith("/"):
        raise UnsafeName("the file name is an absolute path")
    segments = name.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise UnsafeName("the file name has an empty, '.' or '..' segment")
    return PurePosixPath(*segments)


def file_inside(root: Path, name: str) -> Path | None:
    """The regular file ``name`` names inside ``root`` (links resolved), or None.

    Raises UnsafeName for names that are not plain relative paths.
    """
    relative = checked_name(name)
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / relative))
    if not target.is_relative_to(base) or target == base:
        return None
    try:
        return target if target.is_file() else None
    except OSError:
        return None


def served_url(base_url: str, value: str) -> str:
    """``value`` if it is an http(s) URL, else the URL the boot service serves the file at.

    Raises ValueError (UnsafeName, UnsafeScriptValue) saying why ``value`` is neither.
    """
    if value.startswith(("http://", "https://")):
        return check_url("the URL", value)
    if "://" in value:
        raise UnsafeName("only http(s) URLs or names of files in the boot service's files "
                         "directory are supported")
    checked_name(value)
    return f"{base_url.rstrip('/')}{FILES_PATH}{quote(value)}"
