"""The driver_info keys each hardware type reads, as ``GET /v1/drivers/{name}/properties`` lists
them: key -> description, required keys ending in "Required." as Ironic's do (clients such as
``enclume enroll`` rely on that marker to check inventories before writing anything).

The keys are those read by ``ipmi.access_of``, ``redfish.access_of``, ``wol._target``,
``boot.ipxe`` (deploy files, kernel parameters), ``deploy.image`` (image download source) and
``network.vlan.node_vlans``; ``tests/unit/test_driver_properties.py`` checks that the required
ones are exactly what those functions refuse to go without.
"""

from __future__ import annotations

REQUIRED = "Required."

IPMI = {
    "ipmi_address": f"IP address or host name of the BMC. {REQUIRED}",
    "ipmi_port": "Remote IPMI RMCP port. Optional, default 623.",
    "ipmi_username": "User name on the BMC. Optional, default: the null user.",
    "ipmi_password": "Password of the BMC user. Optional.",
    "ipmi_priv_level": "Privilege level: CALLBACK, USER, OPERATOR or ADMINISTRATOR. "
                       "Optional, default ADMINISTRATOR.",
    "ipmi_hex_kg_key": "IPMI 2.0 K_g key, in hexadecimal (at most 40 digits). Optional.",
    "ipmi_terminal_port": "TCP port of the node's ipmitool-socat console on its conductor. "
                          "Optional, default: a free port.",
}

REDFISH = {
    "redfish_address": f"URL of the Redfish service (https:// assumed without a scheme). "
                       f"{REQUIRED}",
    "redfish_system_id": "Path of the system, such as /redfish/v1/Systems/1. Optional when "
                         "the service has one system.",
    "redfish_username": "User name on the Redfish service. Optional.",
    "redfish_password": "Password of the Redfish user. Optional.",
    "redfish_verify_ca": "true, false or the path of a CA bundle to check the certificate "
                         "with. Optional, default true.",
}

WOL = {
    "wol_host": "IPv4 (broadcast) address the magic packet is sent to. Optional, default "
                "ENCLUME_WOL_DEFAULT_HOST.",
    "wol_port": "UDP port of the magic packet. Optional, default ENCLUME_WOL_DEFAULT_PORT.",
    "wol_password": "SecureOn password: 4 or 6 bytes written like a MAC address. Optional.",
}

# Read whatever the power protocol: by the boot, deploy and network interfaces.
COMMON = {
    "deploy_kernel": "Deploy kernel: an http(s) URL or a file of the boot service. Optional, "
                     "default ENCLUME_DEPLOY_KERNEL.",
    "deploy_ramdisk": "Deploy ramdisk: an http(s) URL or a file of the boot service. Optional, "
                      "default ENCLUME_DEPLOY_RAMDISK.",
    "kernel_append_params": "Extra kernel parameters of the deploy ramdisk. Optional, default "
                            "ENCLUME_KERNEL_APPEND_PARAMS.",
    "image_download_source": "How the agent gets the image: local (through the boot service) "
                             "or http (from its URL). Optional, default "
                             "ENCLUME_IMAGE_DOWNLOAD_SOURCE.",
    "provisioning_vlan": "VLAN (1-4094) of the provisioning network, for the vlan network "
                         "interface. Optional, default ENCLUME_NETWORK_PROVISIONING_VLAN.",
    "cleaning_vlan": "VLAN (1-4094) cleaning runs in, for the vlan network interface. "
                     "Optional, default ENCLUME_NETWORK_CLEANING_VLAN, else the provisioning "
                     "VLAN.",
    "rescuing_vlan": "VLAN (1-4094) the rescue ramdisk boots on, for the vlan network "
                     "interface. Optional, default ENCLUME_NETWORK_RESCUING_VLAN, else the "
                     "provisioning VLAN.",
    "tenant_vlan": "VLAN (1-4094) of the deployed instance, for the vlan network interface. "
                   "Optional, default ENCLUME_NETWORK_TENANT_VLAN.",
}

BY_POWER_INTERFACE: dict[str, dict[str, str]] = {
    "ipmi": IPMI, "redfish": REDFISH, "wol": WOL, "fake": {}}


def for_power(power_interface: str) -> dict[str, str]:
    """The properties of a hardware type whose power interface is ``power_interface``."""
    return {**BY_POWER_INTERFACE[power_interface], **COMMON}


def required(properties: dict[str, str]) -> list[str]:
    return [key for key, text in properties.items() if text.rstrip().endswith(REQUIRED)]
