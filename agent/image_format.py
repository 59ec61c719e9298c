"""What an image really is, from its first bytes, checked against what the deploy says.

Only raw and qcow2 images can be written. Without ``image_disk_format`` the format found is used;
with it, a mismatch fails the write before any byte reaches the disk: a qcow2 written as raw
bytes would leave a disk that looks deployed and does not boot, and a raw disk that claims to
be qcow2 is how an image gets qemu-img to read files it should not (Ironic's format inspector
refuses both as well).
"""

from __future__ import annotations

from agent.download import open_url
from agent.errors import CommandError

HEADER_BYTES = 512
WRITABLE = ("raw", "qcow2")
# (offset, magic, format): formats recognised by their header; anything else is raw.
SIGNATURES = (
    (0, b"QFI\xfb", "qcow2"),
    (0, b"QED\x00", "qed"),
    (0, b"KDMV", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"conectix", "vpc"),
    (0, b"LUKS\xba\xbe", "luks"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
)


def sniff(head: bytes) -> str:
    """The format whose signature ``head`` (the image's first bytes) carries, else ``raw``."""
    for offset, magic, name in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return name
    return "raw"


def read_head(url: str, timeout_s: float, headers: dict[str, str] | None = None) -> bytes:
    download = open_url(url, timeout_s, first_bytes=HEADER_BYTES, extra_headers=headers)
    try:
        buffer = bytearray(HEADER_BYTES)
        view = memoryview(buffer)
        count = 0
        while count < HEADER_BYTES:
            got = download.readinto(view[count:])
            if got == 0:
                break
            count += got
    finally:
        download.close()
    return bytes(buffer[:count])


def resolve(declared: str | None, head: bytes, url: str) -> str:
    """The format to write ``url`` as: ``declared`` if the image is that, the one found if
    nothing was declared; CommandError otherwise."""
    found = sniff(head)
    if found not in WRITABLE:
        raise CommandError(f"the image at {url} is a {found} image; only raw and qcow2 images "
                           f"can be written")
    if declared is not None and declared != found:
        raise CommandError(f"the image at {url} is {found}, but image_disk_format says "
                           f"{declared}: correct image_disk_format (or leave it out to use the "
                           f"format found)")
    return found
