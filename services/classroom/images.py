"""The image catalogue: images and their versions (#12 adds the store, uploads, manifests)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.classroom import fields
from services.common import validation
from services.common.classroom_models import Image, ImageVersion
from services.common.exceptions import Conflict, Invalid, NotFound
from services.common.lookups import by_uuid_or_name
from services.common.validation import is_uuid

IMAGE_FIELDS = frozenset({"name", "description", "versions"})
VERSION_FIELDS = frozenset({"version", "source", "checksum", "disk_format", "image_type",
                            "kernel", "ramdisk", "boot_mode"})


def find_image(session: Session, ident: str) -> Image:
    image = session.scalar(select(Image).where(by_uuid_or_name(Image, ident)))
    if image is None:
        raise NotFound(f"Image {ident} could not be found.")
    return image


def find_version(session: Session, reference: Any) -> ImageVersion:
    """An image version by its UUID or as ``IMAGE:VERSION``; Invalid (400) if none."""
    if isinstance(reference, str) and is_uuid(reference):
        found = session.scalar(select(ImageVersion).where(
            ImageVersion.uuid == reference.lower()))
    elif isinstance(reference, str) and ":" in reference:
        image_name, _, version = reference.rpartition(":")
        found = session.scalar(select(ImageVersion).join(Image).where(
            Image.name == image_name, ImageVersion.version == version))
    else:
        raise Invalid(f"Invalid image version {validation.shown(reference)}: expected "
                      "IMAGE:VERSION or a version's UUID.")
    if found is None:
        raise Invalid(f"Image version {validation.shown(reference)} could not be found.")
    return found


def checked_version(body: Any) -> dict[str, Any]:
    """The columns of a new image version from a request body; Invalid if a field is wrong."""
    values = fields.known_keys("image version", body, VERSION_FIELDS)
    missing = [f for f in ("version", "source", "checksum") if f not in values]
    if missing:
        raise Invalid(f"Mandatory field(s) missing for an image version: {', '.join(missing)}.")
    image_type = fields.choice("image_type", values.get("image_type", "whole-disk"),
                               fields.IMAGE_TYPES)
    clean = {
        "version": validation.name(values["version"], "image version"),
        "source": fields.source("source", values["source"]),
        "checksum": fields.checksum(values["checksum"]),
        "disk_format": fields.choice("disk_format", values.get("disk_format", "raw"),
                                     fields.DISK_FORMATS),
        "image_type": image_type,
        "boot_mode": fields.choice("boot_mode", values.get("boot_mode", "uefi"),
                                   fields.BOOT_MODES),
        **boot_files(image_type, values),
    }
    return clean


def boot_files(image_type: str, values: dict[str, Any]) -> dict[str, str | None]:
    """``kernel`` and ``ramdisk`` of a version of ``image_type``: a partition image's are
    required, a whole-disk image has none; Invalid otherwise."""
    if image_type == "partition":
        for part in ("kernel", "ramdisk"):
            if values.get(part) is None:
                raise Invalid(f"A partition image needs a {part} (a URL or a file name).")
        return {part: fields.source(part, values[part]) for part in ("kernel", "ramdisk")}
    if values.get("kernel") is not None or values.get("ramdisk") is not None:
        raise Invalid("kernel and ramdisk belong to partition images only.")
    return {"kernel": None, "ramdisk": None}


def _description(values: dict[str, Any]) -> str | None:
    value = values.get("description")
    return None if value is None else validation.text("description", value)


def _refuse_taken_name(session: Session, name: str, image_id: int | None = None) -> None:
    if session.scalar(select(Image.id).where(Image.name == name,
                                             Image.id != (image_id or -1))) is not None:
        raise Conflict(f"An image named {name} already exists.")


def create_image(session: Session, body: Any) -> Image:
    values = fields.known_keys("image", body, IMAGE_FIELDS)
    name = validation.name(values.get("name"), "image")
    description = _description(values)
    versions = values.get("versions", [])
    if not isinstance(versions, list):
        raise Invalid("Invalid versions: expected a list of image versions.")
    checked = [checked_version(v) for v in versions]
    if len({v["version"] for v in checked}) != len(checked):
        raise Invalid("Two versions of the image have the same version name.")
    _refuse_taken_name(session, name)
    image = Image(name=name, description=description)
    image.versions = [ImageVersion(**v) for v in checked]
    session.add(image)
    session.flush()
    return image


def update_image(session: Session, image: Image, body: Any) -> Image:
    """Rename or describe an image (its versions are added and deleted one by one)."""
    values = fields.known_keys("image update", body, frozenset({"name", "description"}))
    if "name" in values:
        name = validation.name(values["name"], "image")
        _refuse_taken_name(session, name, image.id)
        image.name = name
    if "description" in values:
        image.description = _description(values)
    session.flush()
    return image


def add_version(session: Session, image: Image, body: Any) -> ImageVersion:
    values = checked_version(body)
    if session.scalar(select(ImageVersion.id).where(
            ImageVersion.image_id == image.id,
            ImageVersion.version == values["version"])) is not None:
        raise Conflict(f"Image {image.name} already has a version {values['version']}.")
    version = ImageVersion(image_id=image.id, **values)
    session.add(version)
    session.flush()
    return version
