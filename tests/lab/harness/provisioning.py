"""The whole virtual lab of issue #7: Enclume provisioning QEMU machines over a VLAN switch.

    with ProvisioningLab(workdir, ramdisk, images) as lab:
        ipmi = lab.add_machine("ipmi-1", "ipmi")
        wol = lab.add_machine("wol-1", "wol")
        nodes = lab.enroll(lab.write_inventory())      # name -> node UUID, through the API
        lab.api.put(...)                               # drive it through the Ironic API

What it builds (everything stopped and removed on leaving, whatever ends the block):

- a vde_switch with the **provisioning VLAN** (100) and the **tenant VLAN** (200);
- the **service host** namespace on the provisioning VLAN: `enclume-boot` (DHCP, TFTP, HTTP with
  the deploy kernel and ramdisk of `make ramdisk` and the test images of `make testimages`) and
  `enclume-aio` (API + conductor) on one SQLite database, with the `vde` switch in its switches
  file (docs/networking.md); the virtual BMCs listen on 127.0.0.1 of that namespace;
- the **tenant gateway** namespace on the tenant VLAN: its own DHCP (dnsmasq) and the listener
  collecting the "booted HOSTNAME UUID" reports of the test images (tests/lab/harness/tenant.py),
  and a relay of the API's address and port to the service host, so that the session service of
  a deployed test OS reaches the API (tests/lab/harness/forward.py; enclume-aio runs with
  ENCLUME_SESSION_SERVICE_ENABLED: each direct deploy's config drive carries its token);
- a Wake-on-LAN listener host on the provisioning VLAN (the stand-in for the NICs of machines
  without BMC), and a DHCP sniffer on the service host's interface (what the provisioning
  network hears, before any filter);
- machines: QEMU (TCG), a disk, a NIC on a switch port of the provisioning VLAN, and a virtual
  BMC each: IPMI, Redfish, or none (Wake-on-LAN);
- `api`: an httpx client of the Ironic API through a loopback forwarder (`api_url`, usable by
  any client on this machine while the lab runs).

`write_inventory()` writes the machines as `baremetal create` reads them (nodes with their
ports); `enroll()` does what that command does, through the REST API.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx
import yaml
from sqlalchemy import select

from ramdisk.build import BuiltRamdisk
from ramdisk.testimages import REPORT_PORT, BuiltTestImages
from services.boot.dnsmasq import read_leases
from services.boot.dnsmasq_config import LEASE_FILE
from services.common.db import Database
from services.common.models import Node, NodeHistory
from tests.lab.harness.aio import (
    API_PORT,
    API_VERSION_HEADER,
    ApiTls,
    EnclumeAio,
    start_enclume_aio,
)
from tests.lab.harness.bmc import QemuBackedMachine
from tests.lab.harness.bmc_wol import WolListener
from tests.lab.harness.bmcs import VirtualBmcs
from tests.lab.harness.boot_service import BootService, start_boot_service
from tests.lab.harness.dhcp_sniffer import DhcpSniffer
from tests.lab.harness.forward import gateway_relay, loopback_forwarder
from tests.lab.harness.lab import Lab
from tests.lab.harness.netns import NetnsHost
from tests.lab.harness.processes import LabError, require_tool
from tests.lab.harness.qemu import Firmware, QemuMachine
from tests.lab.harness.tenant import TenantNetwork
from tests.lab.harness.vde import VdeSwitch

MachineKind = Literal["ipmi", "redfish", "wol"]
KINDS: tuple[MachineKind, ...] = ("ipmi", "redfish", "wol")
PROVISIONING_VLAN = 100
TENANT_VLAN = 200
# The provisioning network is a /16 with a wide DHCP range: dnsmasq picks a client's address
# by a hash of its MAC and does not hold an offered address back, so two machines whose DHCP
# requests cross can be offered the same address when their MACs hash alike (one then gets only
# NAKs and its iPXE gives up). In 101 addresses that happened to 1 of 3 machines provided
# together; in 64,000 it is unlikely.
SERVICE_IPV4, SERVICE_IPV6 = "10.87.0.1/16", "fd00:87::1/64"
PROVISIONING_DHCP_RANGE = ("10.87.1.0", "10.87.250.255")
DHCP_OFFER = re.compile(r"DHCPOFFER\(\S+\) (\S+) ((?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2})")
WOL_LISTENER_IPV4 = "10.87.0.250/16"
TENANT_IPV4, TENANT_IPV6 = "10.88.0.1/24", "fd00:88::1/64"
SWITCH_NAME = "lab"  # in the switches file and the ports' local_link_connection
BMC_USER = "admin"
# Heartbeats every 4 s: the conductor advances a deploy on each one, so this bounds the idle
# time between the steps of a deploy. (Ironic's 300 s default suits hardware, not a lab.)
HEARTBEAT_TIMEOUT_S = 12
SESSION_RESTORE_LEAD_S = 3600
SESSION_GRACE_S = 7200
MACHINE_MEMORY_MIB = 1024  # the ramdisk unpacks ~60 MiB and may stage a qcow2 image in /tmp
MACHINE_DISK_SIZE = "2G"
DEPLOY_DIR = "deploy"
IMAGES_DIR = "images"
KERNEL_APPEND_PARAMS = "console=ttyS0"  # the deploy ramdisk's console in the machine's log
CONFIG_DRIVE_LABEL = "config-2"
HTTP_TIMEOUT_S = 30.0
LOCKED_RETRY_S = 30.0  # how long a request on a locked node is tried again
LOCKED_RETRY_INTERVAL_S = 0.5
BOOT_SIGNATURE_END = 512
# Test image file name -> the instance_info that describes it (besides source and checksum).
IMAGE_KINDS: dict[str, dict[str, Any]] = {
    "disk.raw": {"image_disk_format": "raw", "image_type": "whole-disk"},
    "disk.qcow2": {"image_disk_format": "qcow2", "image_type": "whole-disk"},
    "partition.img": {"image_disk_format": "raw", "image_type": "partition", "root_mb": 64},
    "partition.qcow2": {"image_disk_format": "qcow2", "image_type": "partition",
                        "root_mb": 64},
}


@dataclass
class LabMachine:
    """A QEMU machine of the lab, its BMC (or Wake-on-LAN listener) and how to enroll it."""

    name: str
    kind: MachineKind
    bmc: QemuBackedMachine
    driver_info: dict[str, Any]
    deploy_interface: str
    wake_listener: WolListener | None = None  # Wake-on-LAN machines: what wakes them
    node_uuid: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # more node fields for the inventory

    @property
    def qemu(self) -> QemuMachine:
        return self.bmc.machine

    @property
    def mac(self) -> str:
        return self.qemu.mac

    @property
    def switch_port(self) -> int:
        assert self.qemu.port is not None
        return self.qemu.port

    def inventory_entry(self) -> dict[str, Any]:
        """The node as `baremetal create` reads it: its fields and its ports."""
        return {
            "name": self.name,
            "driver": self.kind,
            "driver_info": dict(self.driver_info),
            "properties": {"capabilities": f"boot_mode:{self.qemu.firmware}",
                           "memory_mb": self.qemu.memory_mib, "cpus": 1, "cpu_arch": "x86_64"},
            "network_interface": "vlan",
            "deploy_interface": self.deploy_interface,
            **self.extra,
            "ports": [{"address": self.mac, "pxe_enabled": True,
                       "local_link_connection": {"switch_info": SWITCH_NAME,
                                                 "switch_id": SWITCH_NAME,
                                                 "port_id": str(self.switch_port)}}],
        }


def sha256_of(checksum_file: Path) -> str:
    """The digest of a `sha256sum` line."""
    digest = checksum_file.read_text().split()[0]
    if len(digest) != 64:
        raise LabError(f"{checksum_file} holds no sha256 digest")
    return digest


def config_drive(meta_data: dict[str, Any]) -> str:
    """A config drive as Ironic takes it: a base64-encoded gzipped ISO 9660 image labelled
    config-2 holding openstack/latest/meta_data.json (made with genisoimage, as Ironic does)."""
    genisoimage = require_tool("genisoimage")
    with tempfile.TemporaryDirectory(prefix="enclume-configdrive-") as directory:
        root = Path(directory) / "root"
        latest = root / "openstack" / "latest"
        latest.mkdir(parents=True)
        (latest / "meta_data.json").write_text(json.dumps(meta_data))
        iso = Path(directory) / "configdrive.iso"
        done = subprocess.run([genisoimage, "-quiet", "-o", str(iso), "-V", CONFIG_DRIVE_LABEL,
                               "-J", "-r", str(root)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise LabError(f"genisoimage failed: {done.stderr.strip()}")
        return base64.b64encode(gzip.compress(iso.read_bytes(), mtime=0)).decode()


@dataclass(frozen=True)
class LabLogins:
    """Users log in (at the PCs' boot prompt too): the API serves https (`tls`; the boot service
    hands its CA to the deploy ramdisk) and checks users in `users_file`; the lab's own client
    logs in as `admin` (user, password)."""

    tls: ApiTls
    users_file: Path
    admin: tuple[str, str]


class ProvisioningLab:
    def __init__(self, workdir: Path, ramdisk: BuiltRamdisk, images: BuiltTestImages,
                 heartbeat_timeout_s: int = HEARTBEAT_TIMEOUT_S,
                 discovery_rules: str | None = None, logins: LabLogins | None = None) -> None:
        """``discovery_rules``: turn discovery on (boot service and API) with these rules
        (YAML text, docs/discovery.md): machines no port knows boot the ramdisk and enroll.
        ``logins``: an https API with users instead of an http one with noauth."""
        self.workdir = workdir
        self.ramdisk = ramdisk
        self.images = images
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.discovery_rules = discovery_rules
        self.logins = logins
        self.machines: dict[str, LabMachine] = {}
        self._stack = ExitStack()
        self._bmc_password = secrets.token_urlsafe(12)
        self.image_token_secret = secrets.token_urlsafe(24)
        self.image_store_dir = workdir / "image-store"
        self.tenant_networks: dict[int, TenantNetwork] = {}  # added by add_tenant_network
        # Set while the lab is built (see _build).
        self.lab: Lab
        self.switch: VdeSwitch
        self.service: NetnsHost
        self.tenant: TenantNetwork
        self.wol_host: NetnsHost
        self.provisioning_dhcp: DhcpSniffer
        self.boot: BootService
        self.aio: EnclumeAio
        self.bmcs: VirtualBmcs
        self.api: httpx.Client
        self.api_url: str
        self.database: Database

    def __enter__(self) -> ProvisioningLab:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    # -- building -------------------------------------------------------------------------

    def _build(self) -> None:
        stack = self._stack
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.lab = stack.enter_context(Lab(self.workdir / "lab"))
        self.switch = self.lab.switch()
        for vlan in (PROVISIONING_VLAN, TENANT_VLAN):
            self.switch.create_vlan(vlan)
        self.service = self.lab.host("service", self.switch, SERVICE_IPV4, SERVICE_IPV6,
                                     vlan=PROVISIONING_VLAN)
        self.provisioning_dhcp = DhcpSniffer(self.service)
        stack.callback(self.provisioning_dhcp.close)
        tenant_host = self.lab.host("tenant", self.switch, TENANT_IPV4, TENANT_IPV6,
                                    vlan=TENANT_VLAN)
        self.tenant = TenantNetwork(tenant_host, REPORT_PORT)
        stack.callback(self.tenant.close)
        stack.callback(gateway_relay(tenant_host, self.service, API_PORT).close)
        self.wol_host = self.lab.host("wol", self.switch, WOL_LISTENER_IPV4,
                                      vlan=PROVISIONING_VLAN)

        database_url = f"sqlite:///{self.workdir / 'enclume.sqlite'}"
        self.database = Database(database_url)
        first, last = PROVISIONING_DHCP_RANGE
        self.boot = start_boot_service(self.service, self.workdir / "boot", database_url, {
            "ENCLUME_BOOT_DHCP_RANGE_START": first, "ENCLUME_BOOT_DHCP_RANGE_END": last,
            **self._discovery_boot_settings(), **self._image_settings(),
            **self._ca_settings()})
        self._publish_files()
        logins = self.logins
        self.aio = start_enclume_aio(self.service, self.workdir / "aio", database_url,
                                     self.boot, self._aio_settings(),
                                     tls=logins.tls if logins else None)
        forwarder = loopback_forwarder(self.service.name, self.service.ipv4, API_PORT)
        stack.callback(forwarder.close)
        self.api_url = forwarder.url.replace("http://", "https://") if logins else forwarder.url
        self.api = httpx.Client(base_url=self.api_url, timeout=HTTP_TIMEOUT_S,
                                headers={API_VERSION_HEADER: "latest"},
                                verify=ssl.create_default_context(
                                    cafile=logins.tls.ca_file) if logins else True,
                                auth=logins.admin if logins else None)
        stack.callback(self.api.close)
        self.bmcs = stack.enter_context(VirtualBmcs(self.service, self.workdir / "bmcs",
                                                    BMC_USER, self._bmc_password))

    def _publish_files(self) -> None:
        """The deploy kernel and ramdisk, and the test images, in the boot service's files."""
        deploy = self.boot.files_dir / DEPLOY_DIR
        deploy.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.ramdisk.vmlinuz, deploy / "vmlinuz")
        shutil.copyfile(self.ramdisk.initramfs, deploy / self.ramdisk.initramfs.name)
        images = self.boot.files_dir / IMAGES_DIR
        images.mkdir(parents=True, exist_ok=True)
        for name in IMAGE_KINDS:
            shutil.copyfile(self.images.directory / name, images / name)

    def _discovery_boot_settings(self) -> dict[str, str]:
        """With discovery, the boot service answers unknown MACs with the deploy ramdisk,
        whose agent posts to the API in this namespace."""
        if self.discovery_rules is None:
            return {}
        return {"ENCLUME_BOOT_DISCOVERY": "true",
                "ENCLUME_DEPLOY_KERNEL": f"{DEPLOY_DIR}/vmlinuz",
                "ENCLUME_DEPLOY_RAMDISK": f"{DEPLOY_DIR}/{self.ramdisk.initramfs.name}",
                "ENCLUME_KERNEL_APPEND_PARAMS": KERNEL_APPEND_PARAMS,
                "ENCLUME_AGENT_API_URL": f"http://{self.service.ipv4}:{API_PORT}"}

    def _discovery_aio_settings(self) -> dict[str, str]:
        if self.discovery_rules is None:
            return {}
        rules = self.workdir / "discovery-rules.yaml"
        descriptor = os.open(rules, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(self.discovery_rules)
        return {"ENCLUME_BOOT_DISCOVERY": "true", "ENCLUME_DISCOVERY_RULES_FILE": str(rules)}

    def _ca_settings(self) -> dict[str, str]:
        """The API's CA, which the boot service serves to the ramdisk (`enclume.api_ca_url=`)."""
        if self.logins is None:
            return {}
        return {"ENCLUME_AGENT_API_CA_FILE": str(self.logins.tls.ca_file)}

    def _login_settings(self) -> dict[str, str]:
        if self.logins is None:
            return {}
        return {**self._ca_settings(), "ENCLUME_AUTH_STRATEGY": "users_file",
                "ENCLUME_USERS_FILE": str(self.logins.users_file)}

    def _image_settings(self) -> dict[str, str]:
        """What the boot service and enclume-aio share for block and multicast restores: the
        image store (the API fetches versions into it, the boot service serves them), the image
        tokens' secret, and the multicast sessions' timing (the agents wait for the stream that
        much longer than the sender waits for them)."""
        return {"ENCLUME_IMAGE_STORE_DIR": str(self.image_store_dir),
                "ENCLUME_IMAGE_TOKEN_SECRET": self.image_token_secret,
                # the PCs boot their ramdisks tens of seconds apart under TCG
                "ENCLUME_MULTICAST_START_WAIT_S": "90",
                # as the test's unicast throttle: the progress climbs over several heartbeats
                "ENCLUME_MULTICAST_RATE_MBIT": "16"}

    def _aio_settings(self) -> dict[str, str]:
        switches = self.workdir / "switches.yaml"
        switches.write_text(yaml.safe_dump({"switches": {SWITCH_NAME: {
            "driver": "vde", "socket": str(self.switch.management_socket)}}}))
        return {
            **self._discovery_aio_settings(), **self._image_settings(),
            **self._login_settings(),
            "ENCLUME_SWITCHES_FILE": str(switches),
            "ENCLUME_DEPLOY_KERNEL": f"{DEPLOY_DIR}/vmlinuz",
            "ENCLUME_DEPLOY_RAMDISK": f"{DEPLOY_DIR}/{self.ramdisk.initramfs.name}",
            "ENCLUME_KERNEL_APPEND_PARAMS": KERNEL_APPEND_PARAMS,
            "ENCLUME_AGENT_HEARTBEAT_TIMEOUT_S": str(self.heartbeat_timeout_s),
            # A session a test creates starts minutes ahead: its restore is due at once (the
            # timetable runner fires it on its next pass) and is not missed meanwhile.
            "ENCLUME_RESTORE_LEAD_S": str(SESSION_RESTORE_LEAD_S),
            "ENCLUME_OCCURRENCE_GRACE_S": str(SESSION_GRACE_S),
            # Direct deploys write a config drive with a session service token; the test OS
            # runs the service (through the tenant gateway's relay to the API).
            "ENCLUME_SESSION_SERVICE_ENABLED": "true",
        }

    # -- machines and enrolment -----------------------------------------------------------

    def add_machine(self, name: str, kind: MachineKind, firmware: Firmware = "bios",
                    deploy_interface: str = "direct", **qemu_options: Any) -> LabMachine:
        """A machine (off) on a provisioning VLAN port with its BMC. Machines with a BMC boot
        their disk first (the conductor asks for the network when it needs it); Wake-on-LAN
        machines boot the network first, as PCs woken for PXE are set up."""
        if kind not in KINDS:
            raise LabError(f"unknown machine kind {kind!r}: one of {', '.join(KINDS)}")
        options: dict[str, Any] = {"memory_mib": MACHINE_MEMORY_MIB,
                                   "disk_size": MACHINE_DISK_SIZE,
                                   "boot_device": "network" if kind == "wol" else "disk",
                                   **qemu_options}
        qemu = self.lab.machine(name, self.switch, vlan=PROVISIONING_VLAN, firmware=firmware,
                                **options)
        backed = self.bmcs.machine(qemu)
        if kind == "ipmi":
            driver_info = self.bmcs.ipmi(backed)
        elif kind == "redfish":
            driver_info = self.bmcs.redfish(backed)
        else:
            driver_info = self.bmcs.wol(backed, self.wol_host)
        driver_info.update(provisioning_vlan=PROVISIONING_VLAN, tenant_vlan=TENANT_VLAN)
        machine = LabMachine(name, kind, backed, driver_info, deploy_interface,
                             self.bmcs.wol_listeners[-1] if kind == "wol" else None)
        self.machines[name] = machine
        return machine

    def inventory(self) -> dict[str, Any]:
        return {"nodes": [machine.inventory_entry() for machine in self.machines.values()]}

    def write_inventory(self, path: Path | None = None) -> Path:
        """The inventory as YAML (`baremetal create` format); readable by its owner only, as it
        holds the BMC passwords."""
        path = path or self.workdir / "inventory.yaml"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            yaml.safe_dump(self.inventory(), out, sort_keys=False)
        return path

    def enroll(self, inventory: Path) -> dict[str, str]:
        """Create the inventory's nodes and ports through the API; node name -> UUID."""
        loaded = yaml.safe_load(inventory.read_text())
        created: dict[str, str] = {}
        for entry in loaded["nodes"]:
            fields = {key: value for key, value in entry.items() if key != "ports"}
            node = self.call("POST", "/v1/nodes", fields)
            for port in entry.get("ports", []):
                self.call("POST", "/v1/ports", {**port, "node_uuid": node["uuid"]})
            created[entry["name"]] = node["uuid"]
            if entry["name"] in self.machines:
                self.machines[entry["name"]].node_uuid = node["uuid"]
        return created

    # -- the API --------------------------------------------------------------------------

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of an API request that must succeed; LabError with the API's
        message otherwise. A node locked by a short operation (409 "locked", e.g. the
        conductor's power sync) is asked again, as Ironic's clients do."""
        deadline = time.monotonic() + LOCKED_RETRY_S
        while True:
            response = self.api.request(method, path, json=body)
            if not (response.status_code == 409 and "is locked by" in response.text
                    and time.monotonic() < deadline):
                break
            time.sleep(LOCKED_RETRY_INTERVAL_S)
        if not response.is_success:
            raise LabError(f"{method} {path} answered {response.status_code}: "
                           f"{response.text[:500]}")
        return response.json() if response.content else None

    def node(self, ident: str) -> dict[str, Any]:
        answer: dict[str, Any] = self.call("GET", f"/v1/nodes/{ident}")
        return answer

    def provision(self, ident: str, target: str, **body: Any) -> float:
        """Ask for a provision state change; the monotonic time it was asked at."""
        asked = time.monotonic()
        self.call("PUT", f"/v1/nodes/{ident}/states/provision", {"target": target, **body})
        return asked

    def set_image(self, ident: str, image: str, **overrides: Any) -> None:
        """Point the node's instance_info at a test image (source and checksum)."""
        self.call("PATCH", f"/v1/nodes/{ident}", [
            {"op": "add", "path": f"/instance_info/{key}", "value": value}
            for key, value in self.image_info(image, **overrides).items()])

    def image_info(self, image: str, **overrides: Any) -> dict[str, Any]:
        """instance_info of test image `image` (a key of IMAGE_KINDS) served by enclume-boot."""
        if image not in IMAGE_KINDS:
            raise LabError(f"unknown test image {image!r}: one of {', '.join(IMAGE_KINDS)}")
        checksum = self.images.checksum_file(self.images.directory / image)
        return {"image_source": self.boot.file_url(f"{IMAGES_DIR}/{image}"),
                "image_os_hash_algo": "sha256", "image_os_hash_value": sha256_of(checksum),
                **IMAGE_KINDS[image], **overrides}

    # -- where machines are ---------------------------------------------------------------

    def switch_vlan(self, machine: LabMachine) -> int:
        """The VLAN the machine's switch port is in now."""
        return self.switch.port_status(machine.switch_port)[0]

    def add_tenant_network(self, name: str, vlan: int, ipv4: str,
                           ipv6: str | None = None) -> TenantNetwork:
        """Another tenant network (DHCP and report listener) on VLAN `vlan` of the switch,
        closed with the lab: e.g. a room's class VLAN."""
        self.switch.create_vlan(vlan)
        gateway = self.lab.host(name, self.switch, ipv4, ipv6, vlan=vlan)
        network = TenantNetwork(gateway, REPORT_PORT)
        self._stack.callback(network.close)
        self._stack.callback(gateway_relay(gateway, self.service, API_PORT).close)
        self.tenant_networks[vlan] = network
        return network

    def tenant_address_of(self, machine: LabMachine,
                          network: TenantNetwork | None = None) -> str | None:
        """The address the tenant DHCP (of `network`, default the tenant VLAN's) leased to the
        machine, if any."""
        try:
            lines = (network or self.tenant).leases_file.read_text().splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            words = line.split()
            if len(words) >= 3 and words[1].lower() == machine.mac.lower():
                return words[2]
        return None

    def provisioning_lease_of(self, machine: LabMachine) -> str | None:
        """The address enclume-boot's dnsmasq leased to the machine, if any."""
        leased = read_leases(self._dnsmasq_dir / LEASE_FILE).get(machine.mac.lower())
        return str(leased) if leased is not None else None

    def provisioning_offers(self) -> list[tuple[str, str]]:
        """(address, MAC) of every DHCPOFFER enclume-boot's dnsmasq logged (log-dhcp)."""
        log = self.boot.process.log_path.read_text(errors="replace")
        return [(address, mac.lower()) for address, mac in DHCP_OFFER.findall(log)]

    @property
    def _dnsmasq_dir(self) -> Path:
        return self.workdir / "boot" / "data" / "dnsmasq"  # start_boot_service's data dir

    def tenant_report(self, machine: LabMachine, since: float = 0.0,
                      network: TenantNetwork | None = None) -> str | None:
        """The latest "booted ..." report that reached the tenant listener (of `network`,
        default the tenant VLAN's) from the machine (by its lease there) at or after `since`
        (monotonic), or None."""
        network = network or self.tenant
        address = self.tenant_address_of(machine, network)
        found = [line for at, peer, line in network.reports.reports
                 if peer == address and at >= since and line.startswith("booted ")]
        return found[-1] if found else None

    def history(self, ident: str) -> list[str]:
        """The events the conductor recorded for the node (its history), oldest first. (The
        API has no history endpoint yet: read from the database.)"""
        with self.database.session() as session:
            return list(session.scalars(
                select(NodeHistory.event).join(Node).where(
                    (Node.uuid == ident) | (Node.name == ident)).order_by(NodeHistory.id)))


def disk_head(machine: LabMachine, size: int) -> bytes:
    """The first `size` bytes of the machine's disk (read shared: QEMU may be running)."""
    qemu_img = require_tool("qemu-img")
    with tempfile.TemporaryDirectory(prefix="enclume-disk-head-") as directory:
        out = Path(directory) / "head.raw"
        done = subprocess.run([qemu_img, "dd", "-U", "-f", "qcow2", "-O", "raw",
                               f"bs={size}", "count=1", f"if={machine.qemu.disk}",
                               f"of={out}"], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise LabError(f"qemu-img dd of {machine.qemu.disk} failed: {done.stderr.strip()}")
        return out.read_bytes()


def has_boot_signature(head: bytes) -> bool:
    """Whether the first sector ends in the 0x55AA signature BIOS looks for."""
    return len(head) >= BOOT_SIGNATURE_END and head[510:BOOT_SIGNATURE_END] == b"\x55\xaa"
