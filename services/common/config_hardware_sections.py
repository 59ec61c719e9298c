"""Settings sections of the hardware side: drivers, deploy, boot, DHCP/TFTP, images, network."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from services.common.config_fields import DelayRange, env_var, section_config
from services.common.validation import MAX_VLAN, MIN_VLAN


class FakeSettings(BaseSettings):
    """Random delay ranges [min, max] seconds of the fake interfaces' calls."""

    model_config = section_config("FAKE_")
    power_delay_s: DelayRange = (0.0, 0.0)
    management_delay_s: DelayRange = (0.0, 0.0)
    boot_delay_s: DelayRange = (0.0, 0.0)
    deploy_delay_s: DelayRange = (0.0, 0.0)
    network_delay_s: DelayRange = (0.0, 0.0)

    @field_validator("*")
    @classmethod
    def _ordered_range(cls, value: DelayRange) -> DelayRange:
        low, high = value
        if low < 0 or high < low:
            raise ValueError("a delay range is [min, max] seconds with 0 <= min <= max")
        return value


class DeploySettings(BaseSettings):
    """Agent deploys, cleaning, inspection: the deploy ramdisk and the conductor's side."""

    model_config = section_config("DEPLOY_")
    kernel: str | None = None  # URL, or a file name in the boot files dir
    ramdisk: str | None = None
    kernel_append_params: str = env_var("KERNEL_APPEND_PARAMS", "")
    agent_api_url: str | None = env_var("AGENT_API_URL")  # default PUBLIC_URL, else the API's
    # the CA that signed the API's certificate: the boot service hands it to the ramdisk
    agent_api_ca_file: Path | None = env_var("AGENT_API_CA_FILE")
    agent_command_timeout_s: float = env_var("AGENT_COMMAND_TIMEOUT_S", 30.0)
    agent_heartbeat_timeout_s: float = env_var("AGENT_HEARTBEAT_TIMEOUT_S", 90.0)
    # Ironic's [deploy]fast_track and fast_track_timeout (services/common/fast_track.py)
    fast_track: bool = False
    fast_track_timeout_s: float = Field(default=300.0, ge=0, le=300)
    image_download_source: Literal["local", "http"] = env_var("IMAGE_DOWNLOAD_SOURCE", "local")
    automated_clean_steps: list[str] = env_var("AUTOMATED_CLEAN_STEPS", ["erase_devices_metadata"])
    # default DATA_DIR/conductor-image-cache/HOST
    conductor_image_cache_dir: Path | None = env_var("CONDUCTOR_IMAGE_CACHE_DIR")
    iscsi_portal_port: int = env_var("ISCSI_PORTAL_PORT", 3260)
    iscsi_write_timeout_s: float = env_var("ISCSI_WRITE_TIMEOUT_S", 3600.0)


class BootSettings(BaseSettings):
    """The boot service: its HTTP server, its interface, following the desired boots."""

    model_config = section_config("BOOT_")
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    public_url: str | None = None  # what machines use; default http://HOST:PORT
    files_dir: Path | None = None  # default DATA_DIR/boot-files
    file_check_timeout_s: float = 5.0
    interface: str | None = None  # the provisioning network's interface (enclume-boot)
    # enclume-aio: how long it waits for its boot child
    aio_ready_timeout_s: float = env_var("AIO_BOOT_READY_TIMEOUT_S", 60.0, gt=0)
    poll_interval_s: float = Field(default=0.5, gt=0)
    resync_interval_s: float = Field(default=30.0, gt=0)


class TftpSettings(BaseSettings):
    model_config = section_config("TFTP_")
    host: str = "127.0.0.1"
    port: int = 69
    root: Path = Path("/usr/lib/ipxe")
    files: list[str] = ["undionly.kpxe", "ipxe.efi"]
    timeout_s: float = 5.0
    retries: int = 3
    max_sessions: int = 64


class DhcpSettings(BaseSettings):
    """The boot service's DHCP (dnsmasq) and the DHCP filter."""

    model_config = section_config("BOOT_DHCP_")
    mode: Literal["full", "proxy"] = "full"
    range_start: IPv4Address | None = None  # full mode: the addresses to lease
    range_end: IPv4Address | None = None
    netmask: IPv4Address | None = None  # default: the interface's
    lease_time_s: int = Field(default=3600, ge=120)
    router: IPv4Address | None = None  # full mode; None: no default route given
    no_ping: bool = False
    filter: bool = True
    router_advertisement: bool = env_var("BOOT_ROUTER_ADVERTISEMENT", True)
    dnsmasq_binary: Path = env_var("BOOT_DNSMASQ_BINARY", Path("/usr/sbin/dnsmasq"))
    dnsmasq_user: str = env_var("BOOT_DNSMASQ_USER", "nobody")
    dnsmasq_dir: Path | None = env_var("BOOT_DNSMASQ_DIR")  # default DATA_DIR/dnsmasq


class ImageSettings(BaseSettings):
    """The boot service's image cache and the image store (docs/images.md)."""

    model_config = section_config("IMAGE_")
    cache_dir: Path | None = None  # default DATA_DIR/image-cache
    cache_max_bytes: int = 20 * 1024**3
    download_timeout_s: float = 60.0
    store_dir: Path | None = None  # default DATA_DIR/image-store
    store_max_bytes: int = Field(default=200 * 1024**3, gt=0)
    upload_timeout_s: float = Field(default=86400.0, gt=0)  # idle uploads: gc removes
    token_secret: str | None = None  # shared by conductors and boot services
    token_secret_file: Path | None = None  # default DATA_DIR/image-token.secret
    token_ttl_s: float = Field(default=6 * 3600.0, gt=0)


class DiscoverySettings(BaseSettings):
    """Discovery of unknown machines (docs/discovery.md)."""

    model_config = section_config("DISCOVERY_")
    # THE discovery switch: the boot service answers unknown MACs with the discovery ramdisk
    # and the API accepts their inventories (POST /v1/continue_inspection).
    enabled: bool = env_var("BOOT_DISCOVERY", False)
    driver: str = "fake-hardware"  # of new nodes no rule gives a driver
    rules_file: Path | None = None  # YAML: what new nodes get, by inventory
    # Discovered nodes still in enroll (not yet taken on by an operator): beyond it, 503.
    max_enroll_nodes: int = Field(default=1000, ge=0)


class NetworkSettings(BaseSettings):
    """VLANs and switches (the ``vlan`` network interface)."""

    model_config = section_config("NETWORK_")
    switches_file: Path | None = env_var("SWITCHES_FILE")  # YAML or JSON: the switches
    provisioning_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    # None: the provisioning VLAN
    cleaning_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    rescuing_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)  # as cleaning's
    tenant_vlan: int | None = Field(default=None, ge=MIN_VLAN, le=MAX_VLAN)
    switch_batch_window_s: float = env_var("SWITCH_BATCH_WINDOW_S", 0.2, ge=0)
    switch_timeout_s: float = env_var("SWITCH_TIMEOUT_S", 30.0, gt=0)
    # Ironic's [neutron]allow_disabling_power_off: a node with disable_power_off keeps running
    # while its ports move (tear down leaves the instance up on the provisioning VLAN)
    allow_disabling_power_off: bool = False


class MulticastSettings(BaseSettings):
    """Multicast sessions of the boot service (uftp), for room restores."""

    model_config = section_config("MULTICAST_")
    group_range: str = "239.192.77.0/24"  # one group address per session, in this range
    port_base: int = Field(default=9200, gt=0, le=65000)  # session n: port PORT_BASE + 2n
    max_sessions: int = Field(default=16, ge=1)
    rate_mbit: float = Field(default=95.0, gt=0)  # the sender's fixed rate cap (uftp's -R)
    fec: str = "8x16/128"  # ignored since uftp (NAK passes, no FEC): udpcast's --fec was
    start_wait_s: float = Field(default=30.0, ge=0)  # after the 1st joined: start anyway
    interface: str | None = None  # default: ENCLUME_BOOT_INTERFACE, else eth0
    receive_timeout_s: float = Field(default=5.0, gt=0)  # agents: silence that ends the stream
    # uftp's -N and -m: a PC NAKing more than this share of a section, this many times, is
    # dropped from the stream (it repairs over HTTP) instead of keeping the passes going
    max_nak_percent: int = Field(default=50, ge=0)  # above 100: as 100, nobody dropped
    max_nak_times: int = Field(default=2, ge=1)  # uftp takes 1-10: above 10, as 10
