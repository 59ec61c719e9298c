"""Handing the C heap's free memory back to the kernel once a server has started."""

from __future__ import annotations

import ctypes


def release_free_heap() -> None:
    """glibc's ``malloc_trim(0)``: what the imports and the app's build freed stops counting in
    the process's RSS until it is needed again. Nothing happens without glibc."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim(0)
