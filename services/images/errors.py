"""What the image store refuses, each with a message meant for the operator."""

from __future__ import annotations


class StoreError(Exception):
    """The image store cannot do what was asked."""


class StoreFull(StoreError):
    """Keeping the image would take the store past ENCLUME_IMAGE_STORE_MAX_BYTES."""


class ChecksumMismatch(StoreError):
    """The bytes received are not the ones announced: nothing was kept."""


class UnknownVersion(StoreError):
    """No version with that id in the store."""


class VersionExists(StoreError):
    """A version with that id is already in the store (versions never change)."""


class BadImage(StoreError):
    """The image cannot be stored as it is (a qcow2 with a backing file, an unknown format)."""
