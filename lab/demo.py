"""``make demo``: Enclume provisions two QEMU machines in a virtual lab built on this machine.

What it does, every step for real (root needed: network namespaces, tap devices):

1. the deploy kernel and ramdisk (with the agent) and the test OS images, from the cache
   (``make ramdisk``, ``make testimages`` build them);
2. the lab (tests/lab/harness/provisioning.py): a vde_switch with the provisioning VLAN 100 and
   the tenant VLAN 200, enclume-boot and enclume-aio (API + conductor, SQLite) in the service
   host namespace, the tenant gateway (DHCP + a listener for "booted HOSTNAME UUID" reports);
3. two machines (QEMU, TCG) with their BMCs: by default ``ipmi`` (whole-disk raw image, ``direct``
   deploy) and ``wol`` (Wake-on-LAN, no BMC: partition image, ``direct``), each with a config
   drive naming it; ``redfish`` (qcow2 image, ``iscsi`` deploy) can replace either;
4. an inventory file, enrolled through the Ironic API; manage, provide (cleaning in the deploy
   ramdisk), deploy, with each machine's state shown as it changes;
5. where each machine ended (its switch port's VLAN, its tenant address, what its OS reported)
   and how long each step took; then everything is torn down.

The API stays reachable on 127.0.0.1 while the demo runs (``--pause`` keeps the lab up at the
end until Enter is pressed, e.g. to try ``baremetal --os-endpoint <URL> node list``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ramdisk.build import ensure_built as ensure_ramdisk
from ramdisk.testimages import ensure_built as ensure_test_images
from tests.lab.harness.processes import LabError
from tests.lab.harness.progress import Change, NodeProgress
from tests.lab.harness.provisioning import (
    KINDS,
    PROVISIONING_VLAN,
    TENANT_VLAN,
    LabMachine,
    MachineKind,
    ProvisioningLab,
    config_drive,
)

# What each kind of machine is deployed with: (deploy interface, test image, config drive?).
PLANS: dict[str, tuple[str, str, bool]] = {
    "ipmi": ("direct", "disk.raw", True),
    "redfish": ("iscsi", "disk.qcow2", False),  # iscsi writes no config drive
    "wol": ("direct", "partition.img", True),
}
MANAGE_TIMEOUT_S = 60.0
CLEAN_TIMEOUT_S = 300.0
DEPLOY_TIMEOUT_S = 300.0
REPORT_TIMEOUT_S = 180.0
STATUS_INTERVAL_S = 0.5


class Display:
    """Lines of events; on a terminal, also a status line updated in place."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stdout.isatty()
        self.status_text = ""

    def clock(self) -> str:
        return f"{time.monotonic() - self.started:6.1f}s"

    def say(self, text: str) -> None:
        if self.tty and self.status_text:
            sys.stdout.write("\r\033[K")
        print(text, flush=True)
        self.status_text = ""

    def status(self, text: str) -> None:
        if self.tty:
            sys.stdout.write(f"\r\033[K{text}")
            sys.stdout.flush()
            self.status_text = text


@dataclass
class Run:
    """One machine's deploy: what it got and when each step ended (monotonic times)."""

    machine: LabMachine
    image: str
    hostname: str | None
    times: dict[str, float]
    report: str | None = None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Provision QEMU machines in a virtual lab.")
    parser.add_argument("--machines", default="ipmi,wol",
                        help=f"comma-separated kinds, from {', '.join(KINDS)} (default ipmi,wol)")
    parser.add_argument("--pause", action="store_true",
                        help="keep the lab up at the end until Enter is pressed")
    args = parser.parse_args(argv)
    args.kinds = [kind.strip() for kind in args.machines.split(",") if kind.strip()]
    unknown = [kind for kind in args.kinds if kind not in KINDS]
    if unknown or not args.kinds:
        parser.error(f"--machines: unknown kind(s) {', '.join(unknown) or '(none)'}")
    return args


def follow(display: Display, progress: NodeProgress, runs: list[Run], wanted: str,
           timeout: float) -> None:
    names = [run.machine.name for run in runs]

    def show() -> None:
        parts = []
        for name in names:
            changes = progress.changes.get(name) or []
            if changes:
                seconds = time.monotonic() - changes[-1].at
                parts.append(f"{name}: {changes[-1].provision_state} {seconds:.0f}s")
        display.status(f"{display.clock()}  " + " | ".join(parts))

    progress.wait(names, wanted, timeout, between=show)


def wait_for_reports(display: Display, lab: ProvisioningLab, runs: list[Run],
                     since: float) -> None:
    deadline = time.monotonic() + REPORT_TIMEOUT_S
    while any(run.report is None for run in runs):
        for run in runs:
            if run.report is None and (report := lab.tenant_report(run.machine, since)):
                run.report = report
                run.times["os up"] = time.monotonic()
                display.say(f"{display.clock()}  {run.machine.name:<10} tenant listener got "
                            f"{report!r} from {lab.tenant_address_of(run.machine)}")
        if time.monotonic() > deadline:
            missing = ", ".join(run.machine.name for run in runs if run.report is None)
            raise LabError(f"no report from {missing} within {REPORT_TIMEOUT_S:.0f} s")
        display.status(f"{display.clock()}  waiting for the tenant OS to report: " + ", ".join(
            run.machine.name for run in runs if run.report is None))
        time.sleep(STATUS_INTERVAL_S)


def provision_all(display: Display, lab: ProvisioningLab, progress: NodeProgress,
                  runs: list[Run], target: str, wanted: str, timeout: float,
                  **body: Any) -> None:
    display.say(f"{display.clock()}  {target} -> {wanted}")
    for run in runs:
        extra = dict(body)
        if target == "active" and run.hostname is not None:
            extra["configdrive"] = config_drive({"hostname": run.hostname,
                                                 "uuid": run.machine.node_uuid,
                                                 "name": run.hostname})
        run.times[f"{target} asked"] = lab.provision(run.machine.name, target, **extra)
    follow(display, progress, runs, wanted, timeout)
    for run in runs:  # when this machine got there (the others may have taken longer)
        reached = progress.first_seen(run.machine.name, wanted, run.times[f"{target} asked"])
        run.times[target] = reached if reached is not None else time.monotonic()


def summary(display: Display, lab: ProvisioningLab, runs: list[Run]) -> None:
    display.say("\nSeconds per step (the machines went through them in parallel):")
    steps = (("manage", "manage asked", "manage"), ("provide", "provide asked", "provide"),
             ("deploy->active", "active asked", "active"), ("active->OS up", "active", "os up"),
             ("deploy->OS up", "active asked", "os up"))
    display.say("  " + f"{'machine':<11}" + "".join(f"{name:>16}" for name, _, _ in steps))
    for run in runs:
        cells = "".join(f"{run.times[end] - run.times[start]:>16.1f}" for _, start, end in steps)
        display.say(f"  {run.machine.name:<11}{cells}")
    display.say("\nWhere each machine ended:")
    for run in runs:
        machine = run.machine
        node = lab.node(machine.name)
        vlan = lab.switch_vlan(machine)
        where = "tenant" if vlan == TENANT_VLAN else (
            "provisioning" if vlan == PROVISIONING_VLAN else "?")
        display.say(f"  {machine.name:<11}{node['provision_state']}, {machine.kind} "
                    f"({node['deploy_interface']} deploy of {run.image}); switch port "
                    f"{machine.switch_port} in VLAN {vlan} ({where}); tenant address "
                    f"{lab.tenant_address_of(machine)}; its OS reported {run.report!r}")


def demo(args: argparse.Namespace, display: Display, workdir: Path) -> None:
    display.say("Deploy ramdisk and test images (cached; built when missing) ...")
    ramdisk, images = ensure_ramdisk(), ensure_test_images()
    display.say(f"  {ramdisk.initramfs} ({ramdisk.initramfs.stat().st_size >> 20} MiB), "
                f"{images.directory}")
    display.say("Building the lab: vde_switch (VLANs 100, 200), namespaces, enclume-boot, "
                "enclume-aio ...")
    with ProvisioningLab(workdir, ramdisk, images) as lab:
        display.say(f"{display.clock()}  Ironic API (through the lab's service host): "
                    f"{lab.api_url}")
        runs: list[Run] = []
        for kind in args.kinds:
            interface, image, with_drive = PLANS[kind]
            name = f"{kind}-{sum(run.machine.kind == kind for run in runs) + 1}"
            machine = lab.add_machine(name, cast(MachineKind, kind), deploy_interface=interface)
            runs.append(Run(machine, image, f"demo-{machine.name}" if with_drive else None, {}))
            display.say(f"  machine {machine.name}: QEMU (TCG, BIOS), MAC {machine.mac}, switch "
                        f"port {machine.switch_port}, {kind} "
                        f"{'BMC' if kind != 'wol' else '(Wake-on-LAN, no BMC)'}")
        inventory = lab.write_inventory()
        nodes = lab.enroll(inventory)
        display.say(f"{display.clock()}  enrolled {len(nodes)} nodes from {inventory} "
                    f"through the API")

        def changed(name: str, change: Change) -> None:
            target = f" (-> {change.target})" if change.target else ""
            display.say(f"{display.clock()}  {name:<10} {change.provision_state}{target}")

        progress = NodeProgress(lab.node, changed)
        provision_all(display, lab, progress, runs, "manage", "manageable", MANAGE_TIMEOUT_S)
        provision_all(display, lab, progress, runs, "provide", "available", CLEAN_TIMEOUT_S)
        for run in runs:
            lab.set_image(run.machine.name, run.image)
        provision_all(display, lab, progress, runs, "active", "active", DEPLOY_TIMEOUT_S)
        wait_for_reports(display, lab, runs, min(run.times["active asked"] for run in runs))
        summary(display, lab, runs)
        if args.pause:
            display.say(f"\nThe lab is up: {lab.api_url} (e.g. `baremetal --os-endpoint "
                        f"{lab.api_url} node list`). Press Enter to tear it down.")
            input()
        display.say("\nTearing the lab down ...")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the Redfish BMC's request log
    display = Display()
    try:
        with tempfile.TemporaryDirectory(prefix="enclume-demo-") as workdir:
            demo(args, display, Path(workdir))
    except LabError as exc:
        display.say(f"\nThe demo failed: {exc}")
        display.say("Everything it started was stopped and removed.")
        return 1
    except KeyboardInterrupt:
        display.say("\nInterrupted: everything the demo started was stopped and removed.")
        return 130
    display.say("Done: every process, namespace and file of the lab was removed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
