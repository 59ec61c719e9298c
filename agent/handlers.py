"""The command table: each command's parameter check and what it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent import (
    capture_blocks,
    erase,
    inventory,
    iscsi,
    login_prompt,
    multicast_restore,
    power,
    rescue,
    restore_blocks,
    write_image,
)
from agent.commands import Commands, Progress, Runner, Spec
from agent.config import AgentConfig
from agent.disks import Disk, DiskError, choose, discover
from agent.errors import BadParams
from agent.lldp import LldpListener


@dataclass
class AgentContext:
    config: AgentConfig
    lldp: LldpListener | None
    advertise_host: Callable[[], str]
    token: Callable[[], str | None] = lambda: None  # the agent's own, from its lookup
    rescued: Callable[[], None] = lambda: None  # finalize_rescue succeeded: stop serving
    command_finished: Callable[[], None] = lambda: None  # a long command ended: heartbeat now
    locked_down: Callable[[], None] = lambda: None  # system.lockdown: stop serving, network down

    def disks(self) -> list[Disk]:
        return discover(self.config.disks)


def _choose(disks: list[Disk], requested: str | None) -> Disk:
    try:
        return choose(disks, requested, write_image.MIN_DEFAULT_DISK)
    except DiskError as exc:
        raise BadParams(str(exc)) from None


def _no_params(params: dict[str, Any]) -> None:
    if params:
        raise BadParams(f"this command takes no parameters, got {sorted(params)}")


def _disk_list(context: AgentContext, params: dict[str, Any]) -> list[Disk]:
    wanted = params.get("disks")
    disks = context.disks()
    if wanted is None:
        return disks
    if not isinstance(wanted, list) or not all(isinstance(path, str) for path in wanted):
        raise BadParams("disks must be a list of device paths")
    return [_choose(disks, path) for path in wanted]


def build(context: AgentContext) -> Commands:
    config = context.config

    def inventory_get(params: dict[str, Any]) -> Runner:
        _no_params(params)
        return lambda _: inventory.collect(
            context.disks(), context.lldp.neighbours() if context.lldp else {},
            config.boot_mac)

    def write(params: dict[str, Any]) -> Runner:
        request = write_image.parse(params, config.http_timeout_s)
        disks = context.disks()
        _choose(disks, request.target_disk)  # a wrong disk is a 400, before anything starts

        def run(progress: Progress) -> dict[str, Any]:
            return write_image.write_image(request, disks, config.staging_dir,
                                           config.http_timeout_s, progress.update)
        return run

    def restore(params: dict[str, Any]) -> Runner:
        request = restore_blocks.parse_params(params)
        disks = context.disks()
        _choose(disks, request.target_disk)

        def run(progress: Progress) -> dict[str, Any]:
            return restore_blocks.restore_blocks(request, disks, config.http_timeout_s,
                                                 progress.update)
        return run

    def multicast(params: dict[str, Any]) -> Runner:
        request = multicast_restore.parse_params(params)
        disks = context.disks()
        _choose(disks, request.restore.target_disk)

        def run(progress: Progress) -> dict[str, Any]:
            return multicast_restore.multicast_restore(request, disks, config.http_timeout_s,
                                                       progress.update)
        return run

    def capture(params: dict[str, Any]) -> Runner:
        request = capture_blocks.parse_params(params)
        disks = context.disks()
        _choose(disks, request.target_disk)

        def run(progress: Progress) -> dict[str, Any]:
            return capture_blocks.capture_blocks(request, disks, context.token(),
                                                 config.http_timeout_s, progress.update)
        return run

    def erase_metadata(params: dict[str, Any]) -> Runner:
        disks = _disk_list(context, params)

        def run(_: Progress) -> dict[str, Any]:
            return {"erased": {disk.path: {"partitions": erase.wipe_metadata(disk)}
                               for disk in disks}}
        return run

    def erase_full(params: dict[str, Any]) -> Runner:
        disks = _disk_list(context, params)

        def run(progress: Progress) -> dict[str, Any]:
            total, done = sum(disk.size for disk in disks), 0
            for disk in disks:
                erase.erase_full(disk, lambda count, base=done: progress.update(base + count,
                                                                                 total))
                done += disk.size
            return {"erased": [disk.path for disk in disks]}
        return run

    def iscsi_start(params: dict[str, Any]) -> Runner:
        request = iscsi.parse(params)
        disk = _choose(context.disks(), request.target_disk)
        return lambda _: iscsi.start(request, disk, context.advertise_host())

    def iscsi_stop(params: dict[str, Any]) -> Runner:
        iqn = params.get("iqn")
        if iqn is not None and not isinstance(iqn, str):
            raise BadParams("iqn must be a string")
        return lambda _: iscsi.stop(iqn)

    def login(params: dict[str, Any]) -> Runner:
        request = login_prompt.parse_params(params)
        return lambda _: login_prompt.run(request, config.api_url, context.token(),
                                          config.login_console, config.http_timeout_s)

    def power_off(params: dict[str, Any]) -> Runner:
        _no_params(params)
        return lambda _: power.schedule(config.poweroff_command, config.power_action_delay_s)

    def reboot(params: dict[str, Any]) -> Runner:
        _no_params(params)
        return lambda _: power.schedule(config.reboot_command, config.power_action_delay_s)

    def finalize_rescue(params: dict[str, Any]) -> Runner:
        hashed = rescue.parse_params(params)

        def run(_: Progress) -> dict[str, Any]:
            rescue.set_password(Path(config.rescue_root), hashed)
            context.rescued()
            return {}
        return run

    def sync(params: dict[str, Any]) -> Runner:
        _no_params(params)
        return lambda _: power.sync()

    def lockdown(params: dict[str, Any]) -> Runner:
        _no_params(params)

        def run(_: Progress) -> dict[str, Any]:
            power.sync()
            context.locked_down()
            return {}
        return run

    return Commands({
        "inventory.get": Spec(inventory_get),
        "standby.write_image": Spec(write, long=True),
        "deploy.restore_blocks": Spec(restore, long=True),
        "deploy.multicast_restore": Spec(multicast, long=True),
        "image.capture_blocks": Spec(capture, long=True),
        "deploy.erase_devices_metadata": Spec(erase_metadata, long=True),
        "deploy.erase_devices": Spec(erase_full, long=True),
        "iscsi.start_iscsi_target": Spec(iscsi_start),
        "login.prompt": Spec(login, long=True),
        "iscsi.stop_iscsi_target": Spec(iscsi_stop),
        "standby.power_off": Spec(power_off),
        "standby.reboot": Spec(reboot),
        "standby.sync": Spec(sync),
        "system.lockdown": Spec(lockdown),
        "rescue.finalize_rescue": Spec(finalize_rescue),
    }, on_finished=context.command_finished)
