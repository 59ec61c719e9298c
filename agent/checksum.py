"""The checksum an image must match: Glance's (algorithm, value) pair or Ironic's image_checksum."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from agent.errors import BadParams, CommandError

ALGORITHMS = ("md5", "sha256", "sha384", "sha512")
_BY_LENGTH = {32: "md5", 64: "sha256", 96: "sha384", 128: "sha512"}
_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    value: str  # lower-case hex

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)

    def verify(self, digest: str, what: str) -> None:
        if digest != self.value:
            raise CommandError(f"checksum mismatch for {what}: its {self.algorithm} is {digest}, "
                               f"expected {self.value}")


def _checked(algorithm: str, value: str) -> Checksum:
    algorithm, value = algorithm.strip().lower(), value.strip().lower()
    if algorithm not in ALGORITHMS:
        raise BadParams(f"unsupported checksum algorithm {algorithm!r}; use one of "
                        f"{', '.join(ALGORITHMS)}")
    expected = hashlib.new(algorithm).digest_size * 2
    if len(value) != expected or not _HEX.match(value):
        raise BadParams(f"{algorithm} checksum must be {expected} hex digits, got {value!r}")
    return Checksum(algorithm, value)


def from_params(params: dict[str, Any]) -> Checksum:
    """``image_os_hash_algo`` + ``image_os_hash_value``, else ``image_checksum`` (``hex`` whose
    length names the algorithm, or ``algo:hex``). An image without a checksum is refused."""
    algo, value = params.get("image_os_hash_algo"), params.get("image_os_hash_value")
    if algo or value:
        if not isinstance(algo, str) or not isinstance(value, str):
            raise BadParams("image_os_hash_algo and image_os_hash_value go together, as strings")
        return _checked(algo, value)
    legacy = params.get("image_checksum")
    if not isinstance(legacy, str) or not legacy.strip():
        raise BadParams("no image checksum: pass image_os_hash_algo and image_os_hash_value, "
                        "or image_checksum")
    if ":" in legacy:
        algo, _, value = legacy.partition(":")
        return _checked(algo, value)
    algorithm = _BY_LENGTH.get(len(legacy.strip()))
    if algorithm is None:
        raise BadParams(f"image_checksum {legacy!r} is no md5/sha256/sha384/sha512 hex digest")
    return _checked(algorithm, legacy)
