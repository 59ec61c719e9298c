"""A lab machine's disk compared block by block with an image version's manifest."""

from __future__ import annotations

import hashlib
import struct
import subprocess
from pathlib import Path

from services.images.manifest import Manifest
from tests.lab.harness.provisioning import LabMachine, disk_head


def block_digests(machine: LabMachine, manifest: Manifest, workdir: Path) -> list[str | None]:
    """The sha256 of each of the manifest's blocks on the machine's disk (read shared: QEMU
    may run), None for a block of zeros (as the manifest writes it)."""
    raw = workdir / f"{machine.name}.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw",
                    str(machine.qemu.disk), str(raw)], check=True, capture_output=True)
    digests: list[str | None] = []
    with raw.open("rb") as disk:
        for index in range(len(manifest.blocks)):
            block = disk.read(manifest.block_length(index))
            digests.append(None if block.count(0) == len(block)
                           else hashlib.sha256(block).hexdigest())
    raw.unlink()
    return digests


def differing_blocks(machine: LabMachine, manifest: Manifest, workdir: Path) -> list[int]:
    """The blocks of the machine's disk that differ from the manifest's."""
    return [index for index, found in enumerate(block_digests(machine, manifest, workdir))
            if found != manifest.blocks[index]]


def config_drive_blocks(machine: LabMachine, manifest: Manifest) -> set[int]:
    """The blocks of the config-2 partition the conductor's config drive went to: the last
    entry of the disk's MBR (the test image's table is an MBR)."""
    mbr = disk_head(machine, 512)
    entries = [struct.unpack_from("<II", mbr, 446 + 16 * slot + 8) for slot in range(4)]
    start, count = [entry for entry in entries if entry[1]][-1]
    first, end = start * 512, (start + count) * 512
    return set(range(first // manifest.block_size, -(-end // manifest.block_size)))
