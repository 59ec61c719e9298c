"""standby.write_image: an image from HTTP onto a disk, verified on the way, bootable at the end.

Any failure after the disk was touched (checksum mismatch, short download, write error, a tool
failing) wipes the disk's metadata, so no half-written image can boot, and fails the command.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent import bootloader, configdrive, erase, image_format, partitions, qcow2, stream
from agent.checksum import Checksum, from_params
from agent.disks import Disk, MiB, choose, flush, reread_partitions, write_all
from agent.download import check_url, image_token, open_url, token_headers
from agent.errors import BadParams, CommandError
from agent.partitions import Partition, Table
from agent.tools import run

LOG = logging.getLogger(__name__)
MIN_DEFAULT_DISK = 4 * 1024 * MiB
IMAGE_TYPES = ("whole-disk", "partition")
BOOT_MODES = ("bios", "uefi")
FIRST_PARTITION = 1 * MiB
ESP_SIZE = 128 * MiB  # systemd-boot + a kernel and initrd copy
# sfdisk's type shortcuts, the same for MBR (83, 82, ef) and GPT tables
LINUX, SWAP, ESP = "L", "S", "U"


@dataclass(frozen=True)
class WriteRequest:
    url: str
    checksum: Checksum
    disk_format: str | None  # None: the format found in the image's header
    image_type: str
    root_bytes: int
    swap_bytes: int
    configdrive: bytes | None  # decoded now when given inline
    configdrive_url: str | None  # fetched when the command runs
    target_disk: str | None
    boot_mode: str
    kernel_append: str | None
    image_token: str | None = None  # the image store's read credential (X-Image-Token)

    @property
    def headers(self) -> dict[str, str]:
        return token_headers(self.image_token)


def _choice(params: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(key) or default
    if value not in allowed:
        raise BadParams(f"{key} must be one of {', '.join(allowed)}, got {value!r}")
    return str(value)


def _mebibytes(params: dict[str, Any], key: str) -> int:
    value = params.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise BadParams(f"{key} must be a whole number of MiB, got {value!r}")
    return int(value) * MiB


def parse(params: dict[str, Any], timeout_s: float) -> WriteRequest:
    image_type = _choice(params, "image_type", IMAGE_TYPES, "whole-disk")
    root = _mebibytes(params, "root_mb")
    if image_type == "partition" and root == 0:
        raise BadParams("partition images need root_mb, the size of the root partition")
    boot_mode = _choice(params, "boot_mode", BOOT_MODES, "bios")
    drive, drive_url = params.get("configdrive"), None
    if isinstance(drive, str) and drive.startswith(("http://", "https://")):
        drive_url, drive = drive, None
    elif drive:
        drive = configdrive.load(drive, timeout_s)
    else:
        drive = None
    target = params.get("target_disk")
    if target is not None and not isinstance(target, str):
        raise BadParams(f"target_disk must be a device path, got {target!r}")
    append = params.get("kernel_append_params")
    if append is not None and not isinstance(append, str):
        raise BadParams("kernel_append_params must be a string")
    return WriteRequest(
        url=check_url(params.get("image_url"), "image_url"), checksum=from_params(params),
        disk_format=(_choice(params, "image_disk_format", image_format.WRITABLE, "raw")
                     if params.get("image_disk_format") else None), image_type=image_type,
        root_bytes=root, swap_bytes=_mebibytes(params, "swap_mb"), configdrive=drive,
        configdrive_url=drive_url, target_disk=target, boot_mode=boot_mode,
        kernel_append=append, image_token=image_token(params))


def partition_layout(disk: Disk, request: WriteRequest, drive: bytes | None) -> Table:
    """BIOS: MBR, root at 1 MiB (bootable). UEFI: GPT, the EFI system partition at 1 MiB, root
    after it. Then swap, and the config drive at the end of the disk."""
    uefi = request.boot_mode == "uefi"
    label = "gpt" if uefi else "dos"
    parts: list[Partition] = []
    end = FIRST_PARTITION
    if uefi:
        parts.append(Partition(1, end, ESP_SIZE, ESP, role="esp"))
        end += ESP_SIZE
    parts.append(Partition(len(parts) + 1, end, request.root_bytes, LINUX, bootable=not uefi,
                           role="root"))
    end += request.root_bytes
    if request.swap_bytes:
        parts.append(Partition(len(parts) + 1, end, request.swap_bytes, SWAP, role="swap"))
        end += request.swap_bytes
    limit = partitions.usable_end(disk, label)
    if drive is not None:
        size = configdrive.partition_size(drive)
        limit = (limit - size) // MiB * MiB
        parts.append(Partition(len(parts) + 1, limit, size, LINUX, role="configdrive"))
    if end > limit:
        raise CommandError(f"the partitions need {end // MiB} MiB before the "
                           f"{(disk.size - limit) // MiB} MiB at the end (config drive, GPT); "
                           f"{disk.path} has {disk.size // MiB} MiB")
    return Table(label=label, partitions=tuple(parts))


class ImageWriter:
    """One write_image run on one disk."""

    def __init__(self, request: WriteRequest, disk: Disk, staging_dir: str, timeout_s: float,
                 on_progress: Callable[[int, int | None], None]) -> None:
        self.request, self.disk = request, disk
        self.staging_dir, self.timeout_s = staging_dir, timeout_s
        self.on_progress = on_progress
        self.result: dict[str, Any] = {"target_disk": disk.path}
        self.disk_format = "raw"  # what the image really is: resolved first by run()

    def run(self) -> dict[str, Any]:
        request = self.request
        head = image_format.read_head(request.url, self.timeout_s, request.headers)
        self.disk_format = image_format.resolve(request.disk_format, head,
                                                request.url)  # before anything is written
        self.result["disk_format"] = self.disk_format
        drive = self.request.configdrive
        if self.request.configdrive_url:
            drive = configdrive.load(self.request.configdrive_url, self.timeout_s)
        layout = (partition_layout(self.disk, self.request, drive)
                  if self.request.image_type == "partition" else None)
        erase.wipe_metadata(self.disk)
        fd = self.disk.open()
        try:
            if layout is None:
                self._write(fd, 0, self.disk.size)
            else:
                root = next(part for part in layout.partitions if part.role == "root")
                self._write(fd, root.start, root.size)
        finally:
            os.close(fd)
        if layout is None:
            if drive is not None:
                self._add_configdrive(drive)
        else:
            self._finish_partitions(layout, drive)
        reread_partitions(self.disk)
        return self.result

    def _write(self, fd: int, offset: int, length: int) -> None:
        request = self.request
        download = open_url(request.url, self.timeout_s, extra_headers=request.headers)
        total = download.total

        def progress(done: int) -> None:
            self.on_progress(done, total)

        try:
            if self.disk_format == "qcow2":
                size, virtual = qcow2.write(download, request.checksum, self.disk, fd, offset,
                                            length, self.staging_dir, self.timeout_s,
                                            progress)
                self.result["virtual_size"] = virtual
            else:
                region = stream.Region(self.disk, fd, offset, length)
                written = stream.stream(download, region, request.checksum.hasher(), progress)
                request.checksum.verify(written.digest, request.url)
                if image_format.sniff(written.head) != "raw":  # the verified bytes, not the peek
                    raise CommandError(f"the image at {request.url} is "
                                       f"{image_format.sniff(written.head)}, not raw")
                stream.commit(region, written)
                size = written.size
                self.result["skipped_zero_bytes"] = written.skipped_bytes
        finally:
            download.close()
        self.result.update(image_size=size, checksum={
            "algorithm": request.checksum.algorithm, "value": request.checksum.value})

    def _write_at(self, data: bytes, offset: int) -> None:
        fd = self.disk.open()
        try:
            write_all(fd, data, offset, self.disk)
            flush(fd, self.disk)
        finally:
            os.close(fd)

    def _add_configdrive(self, drive: bytes) -> None:
        self.result["configdrive_partition"] = configdrive.append_partition(self.disk, drive)

    def _finish_partitions(self, layout: Table, drive: bytes | None) -> None:
        partitions.write(self.disk, layout)
        reread_partitions(self.disk)
        roles = {part.role: part for part in layout.partitions}
        if "swap" in roles:
            with bootloader.partition_device(self.disk, roles["swap"]) as device:
                run(["mkswap", device], f"making swap on {device}")
        if drive is not None:
            self._write_at(drive, roles["configdrive"].start)
        if "esp" in roles:
            self.result["root_uuid"] = bootloader.install_uefi(
                self.disk, roles["esp"], roles["root"], self.request.kernel_append)
        else:
            self.result["root_uuid"] = bootloader.install_bios(self.disk, roles["root"],
                                                               self.request.kernel_append)
        self.result["partitions"] = {role: part.number for role, part in roles.items()}


def write_image(request: WriteRequest, disks: list[Disk], staging_dir: str, timeout_s: float,
                on_progress: Callable[[int, int | None], None]) -> dict[str, Any]:
    disk = choose(disks, request.target_disk, MIN_DEFAULT_DISK)
    try:
        return ImageWriter(request, disk, staging_dir, timeout_s, on_progress).run()
    except BaseException:
        LOG.error("writing the image to %s failed: wiping its metadata", disk.path)
        erase.make_unbootable(disk)
        raise
