"""Virtual media attach and detach (API 1.89), as Ironic does them: the management interface
validated under the lock (400), then a worker attaches or detaches; the outcome is a node
history event, a failure also the node's ``last_error`` (Ironic's texts), never a change of
state. An image whose ``image_download_source`` is ``local`` (the default) is downloaded into
the boot service's files and the BMC is given its URL there; ``http`` hands the BMC the URL
as it is. Swift is refused: Enclume has none. Listing the drives (API 1.93) is a read under
no lock, answered at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.common.bootconfig.files import served_url
from services.common.config import Settings
from services.common.exceptions import DriverError, EnclumeError, Invalid
from services.common.hardware_types import VMEDIA_DEVICES
from services.conductor.flows.boot_mode import check_management, validated_management
from services.conductor.flows.steps import Step
from services.conductor.task import Task
from services.drivers.driver_errors import UnsupportedDriverExtension
from services.drivers.url_download import download

DIRECTORY = "vmedia"
SOURCES = ("local", "http")


def _file_name(task: Task, device_type: str) -> str:
    return f"{DIRECTORY}/{task.node.uuid}-{device_type}.img"


def _path(settings: Settings, name: str) -> Path:
    return settings.effective_boot_files_dir / name


def attach(settings: Settings, device_type: str, image_url: str,
           image_download_source: str) -> tuple[Step, Step]:
    if image_download_source not in SOURCES:
        raise Invalid(f"Image download source {image_download_source} is not supported: "
                      f"Enclume serves {' or '.join(SOURCES)} (it has no Swift).")

    def work(task: Task) -> None:
        name = _file_name(task, device_type)
        try:
            url = image_url
            if image_download_source == "local":
                _path(settings, name).parent.mkdir(parents=True, exist_ok=True)
                download("image", image_url, _path(settings, name),
                         settings.boot.file_check_timeout_s)
                url = served_url(settings.effective_boot_url, name)
            task.driver.management.attach_virtual_media(task, device_type, url)
        except Exception as exc:
            _path(settings, name).unlink(missing_ok=True)
            _failed(task, f"Could not attach device {device_type} to node {task.node.uuid}: "
                          f"{exc}")
            return
        task.record("management", f"Device {device_type} attached to node {task.node.uuid}")

    return validated_management, work


def detach(settings: Settings, device_types: list[str] | None) -> tuple[Step, Step]:
    def work(task: Task) -> None:
        named = ", ".join(device_types or ["all"])
        try:
            task.driver.management.detach_virtual_media(task, device_types)
        except Exception as exc:
            _failed(task, f"Could not detach device(s) {named} from node {task.node.uuid}: "
                          f"{exc}")
            return
        for device_type in device_types or VMEDIA_DEVICES:
            _path(settings, _file_name(task, device_type)).unlink(missing_ok=True)
        task.record("management", f"Device(s) {named} detached from node {task.node.uuid}")

    return validated_management, work


def listed(task: Task) -> list[dict[str, Any]]:
    """The BMC's virtual media (API 1.93), as Ironic's get_virtual_media: the management
    interface validated, then read; an interface without it, or a BMC with no drive, is 400
    (Ironic's texts); a BMC that fails, 500."""
    check_management(task)
    try:
        media = task.driver.management.get_virtual_media(task)
    except UnsupportedDriverExtension as exc:
        raise Invalid(str(exc)) from exc
    except DriverError as exc:
        raise EnclumeError(f"Failed to get the virtual media of node {task.node.uuid}: "
                           f"{exc}") from exc
    if not media:
        raise Invalid("No suitable virtual media device found")
    return media


def _failed(task: Task, message: str) -> None:
    task.node.last_error = message
    task.record("management", message, severity="ERROR")
