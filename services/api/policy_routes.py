"""Which of Ironic's rules each /v1 route needs, and on what object (services/api/policy_gate.py).

As Ironic's controllers pick them: the rule of the action, checked on the object the path names
(a node, a port or port group, a volume connector or target, an allocation, a runbook) or on
nothing (the system's resources: chassis, drivers, conductors, deploy templates, inspection
rules, shards).
Lists have their own table: the rule pair ``list_all``/``list`` and the query parameter that
asks for another project's share (Ironic's ``check_list_policy``).
"""

from __future__ import annotations

from dataclasses import dataclass

NODE, PORT, PORTGROUP = "node", "port", "portgroup"
CONNECTOR, VOLUME_TARGET, ALLOCATION = "volume_connector", "volume_target", "allocation"
RUNBOOK = "runbook"
BODY_NODE = "body_node"  # a create naming its node in the body (node_uuid)

_N = "/v1/nodes/{ident}"
ROUTES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("GET", _N): ("baremetal:node:get", NODE),
    ("DELETE", _N): ("baremetal:node:delete", NODE),
    ("GET", f"{_N}/inventory"): ("baremetal:node:inventory:get", NODE),
    ("GET", f"{_N}/history"): ("baremetal:node:history:get", NODE),
    ("GET", f"{_N}/history/{{event_uuid}}"): ("baremetal:node:history:get", NODE),
    ("GET", f"{_N}/bios"): ("baremetal:node:bios:get", NODE),
    ("GET", f"{_N}/bios/{{name}}"): ("baremetal:node:bios:get", NODE),
    ("GET", f"{_N}/firmware"): ("baremetal:node:firmware:get", NODE),
    ("GET", f"{_N}/states"): ("baremetal:node:get_states", NODE),
    ("GET", f"{_N}/states/console"): ("baremetal:node:get_console", NODE),
    ("PUT", f"{_N}/states/console"): ("baremetal:node:set_console_state", NODE),
    ("PUT", f"{_N}/states/provision"): ("baremetal:node:set_provision_state", NODE),
    ("PUT", f"{_N}/states/power"): ("baremetal:node:set_power_state", NODE),
    ("PUT", f"{_N}/states/raid"): ("baremetal:node:set_raid_state", NODE),
    ("PUT", f"{_N}/states/boot_mode"): ("baremetal:node:set_boot_mode", NODE),
    ("PUT", f"{_N}/states/secure_boot"): ("baremetal:node:set_secure_boot", NODE),
    ("GET", f"{_N}/management/boot_device"): ("baremetal:node:get_boot_device", NODE),
    ("GET", f"{_N}/management/boot_device/supported"): ("baremetal:node:get_boot_device", NODE),
    ("PUT", f"{_N}/management/boot_device"): ("baremetal:node:set_boot_device", NODE),
    ("PUT", f"{_N}/management/inject_nmi"): ("baremetal:node:inject_nmi", NODE),
    ("GET", f"{_N}/management/indicators"): ("baremetal:node:get_indicator_state", NODE),
    ("PUT", f"{_N}/maintenance"): ("baremetal:node:set_maintenance", NODE),
    ("DELETE", f"{_N}/maintenance"): ("baremetal:node:clear_maintenance", NODE),
    ("GET", f"{_N}/validate"): ("baremetal:node:validate", NODE),
    ("GET", f"{_N}/traits"): ("baremetal:node:traits:list", NODE),
    ("PUT", f"{_N}/traits"): ("baremetal:node:traits:set", NODE),
    ("PUT", f"{_N}/traits/{{trait}}"): ("baremetal:node:traits:set", NODE),
    ("DELETE", f"{_N}/traits"): ("baremetal:node:traits:delete", NODE),
    ("DELETE", f"{_N}/traits/{{trait}}"): ("baremetal:node:traits:delete", NODE),
    ("GET", f"{_N}/vifs"): ("baremetal:node:vif:list", NODE),
    ("POST", f"{_N}/vifs"): ("baremetal:node:vif:attach", NODE),
    ("DELETE", f"{_N}/vifs/{{vif_id}}"): ("baremetal:node:vif:detach", NODE),
    ("GET", f"{_N}/vmedia"): ("baremetal:node:vmedia:get", NODE),
    ("POST", f"{_N}/vmedia"): ("baremetal:node:vmedia:attach", NODE),
    ("DELETE", f"{_N}/vmedia"): ("baremetal:node:vmedia:detach", NODE),
    ("GET", f"{_N}/volume"): ("baremetal:volume:get", NODE),
    ("GET", f"{_N}/volume/"): ("baremetal:volume:get", NODE),
    ("POST", f"{_N}/volume/connectors"): ("baremetal:volume:create", NODE),
    ("POST", f"{_N}/volume/targets"): ("baremetal:volume:create", NODE),
    ("GET", f"{_N}/volume/connectors/{{_volume}}"): ("baremetal:volume:get", NODE),
    ("GET", f"{_N}/volume/targets/{{_volume}}"): ("baremetal:volume:get", NODE),
    ("PATCH", f"{_N}/volume/connectors/{{_volume}}"): ("baremetal:volume:update", NODE),
    ("PATCH", f"{_N}/volume/targets/{{_volume}}"): ("baremetal:volume:update", NODE),
    ("DELETE", f"{_N}/volume/connectors/{{_volume}}"): ("baremetal:volume:delete", NODE),
    ("DELETE", f"{_N}/volume/targets/{{_volume}}"): ("baremetal:volume:delete", NODE),
    ("GET", "/v1/ports/{ident}"): ("baremetal:port:get", PORT),
    ("PATCH", "/v1/ports/{ident}"): ("baremetal:port:update", PORT),
    ("DELETE", "/v1/ports/{ident}"): ("baremetal:port:delete", PORT),
    ("POST", "/v1/ports"): ("baremetal:port:create", BODY_NODE),
    ("GET", "/v1/portgroups/{ident}"): ("baremetal:portgroup:get", PORTGROUP),
    ("PATCH", "/v1/portgroups/{ident}"): ("baremetal:portgroup:update", PORTGROUP),
    ("DELETE", "/v1/portgroups/{ident}"): ("baremetal:portgroup:delete", PORTGROUP),
    ("POST", "/v1/portgroups"): ("baremetal:portgroup:create", BODY_NODE),
    ("GET", "/v1/volume/connectors/{ident}"): ("baremetal:volume:get", CONNECTOR),
    ("PATCH", "/v1/volume/connectors/{ident}"): ("baremetal:volume:update", CONNECTOR),
    ("DELETE", "/v1/volume/connectors/{ident}"): ("baremetal:volume:delete", CONNECTOR),
    ("POST", "/v1/volume/connectors"): ("baremetal:volume:create", BODY_NODE),
    ("GET", "/v1/volume/targets/{ident}"): ("baremetal:volume:get", VOLUME_TARGET),
    ("PATCH", "/v1/volume/targets/{ident}"): ("baremetal:volume:update", VOLUME_TARGET),
    ("DELETE", "/v1/volume/targets/{ident}"): ("baremetal:volume:delete", VOLUME_TARGET),
    ("POST", "/v1/volume/targets"): ("baremetal:volume:create", BODY_NODE),
    # The volume root is a page of links: Ironic checks volume:get on no node.
    ("GET", "/v1/volume"): ("baremetal:volume:get", None),
    ("GET", "/v1/volume/"): ("baremetal:volume:get", None),
    ("GET", "/v1/allocations/{ident}"): ("baremetal:allocation:get", ALLOCATION),
    ("PATCH", "/v1/allocations/{ident}"): ("baremetal:allocation:update", ALLOCATION),
    ("DELETE", "/v1/allocations/{ident}"): ("baremetal:allocation:delete", ALLOCATION),
    # A runbook's get also shows a public one (policy_gate); create and PATCH: policy_gate.
    ("GET", "/v1/runbooks/{ident}"): ("baremetal:runbook:get", RUNBOOK),
    ("DELETE", "/v1/runbooks/{ident}"): ("baremetal:runbook:delete", RUNBOOK),
    ("GET", "/v1/runbooks/{ident}/traits"): ("baremetal:runbook:get", RUNBOOK),
    ("PUT", "/v1/runbooks/{ident}/traits"): ("baremetal:runbook:update", RUNBOOK),
    ("PUT", "/v1/runbooks/{ident}/traits/{trait}"): ("baremetal:runbook:update", RUNBOOK),
    ("DELETE", "/v1/runbooks/{ident}/traits"): ("baremetal:runbook:update", RUNBOOK),
    ("DELETE", "/v1/runbooks/{ident}/traits/{trait}"): ("baremetal:runbook:update", RUNBOOK),
    ("GET", "/v1/chassis"): ("baremetal:chassis:get", None),
    ("GET", "/v1/chassis/detail"): ("baremetal:chassis:get", None),
    ("GET", "/v1/chassis/{ident}"): ("baremetal:chassis:get", None),
    ("POST", "/v1/chassis"): ("baremetal:chassis:create", None),
    ("PATCH", "/v1/chassis/{ident}"): ("baremetal:chassis:update", None),
    ("DELETE", "/v1/chassis/{ident}"): ("baremetal:chassis:delete", None),
    ("GET", "/v1/drivers"): ("baremetal:driver:get", None),
    ("GET", "/v1/drivers/{name}"): ("baremetal:driver:get", None),
    ("GET", "/v1/drivers/{name}/properties"): ("baremetal:driver:get_properties", None),
    ("GET", "/v1/drivers/{name}/raid/logical_disk_properties"): (
        "baremetal:driver:get_raid_logical_disk_properties", None),
    ("GET", "/v1/conductors"): ("baremetal:conductor:get", None),
    ("GET", "/v1/conductors/{hostname}"): ("baremetal:conductor:get", None),
    ("GET", "/v1/shards"): ("baremetal:shards:get", None),
    ("GET", "/v1/deploy_templates"): ("baremetal:deploy_template:get", None),
    ("GET", "/v1/deploy_templates/detail"): ("baremetal:deploy_template:get", None),
    ("GET", "/v1/deploy_templates/{ident}"): ("baremetal:deploy_template:get", None),
    ("POST", "/v1/deploy_templates"): ("baremetal:deploy_template:create", None),
    ("PATCH", "/v1/deploy_templates/{ident}"): ("baremetal:deploy_template:update", None),
    ("DELETE", "/v1/deploy_templates/{ident}"): ("baremetal:deploy_template:delete", None),
    ("GET", "/v1/inspection_rules"): ("baremetal:inspection_rule:list_all", None),
    ("GET", "/v1/inspection_rules/detail"): ("baremetal:inspection_rule:list_all", None),
    ("GET", "/v1/inspection_rules/{ident}"): ("baremetal:inspection_rule:get", None),
    ("POST", "/v1/inspection_rules"): ("baremetal:inspection_rule:create", None),
    ("PATCH", "/v1/inspection_rules/{ident}"): ("baremetal:inspection_rule:update", None),
    ("DELETE", "/v1/inspection_rules/{ident}"): ("baremetal:inspection_rule:delete", None),
}


@dataclass(frozen=True)
class ListRoute:
    kind: str  # baremetal:<kind>:list_all / :list
    parent: str | None = None  # NODE or PORTGROUP: its visibility first (404)
    asked: str | None = "project"  # the query parameter asking for a project's share


LISTS: dict[str, ListRoute] = {
    "/v1/nodes": ListRoute("node"),
    "/v1/nodes/detail": ListRoute("node"),
    f"{_N}/children": ListRoute("node", NODE),
    "/v1/chassis/{ident}/nodes": ListRoute("node"),
    "/v1/chassis/{ident}/nodes/detail": ListRoute("node"),
    "/v1/ports": ListRoute("port"),
    "/v1/ports/detail": ListRoute("port"),
    f"{_N}/ports": ListRoute("port", NODE),
    f"{_N}/ports/detail": ListRoute("port", NODE),
    "/v1/portgroups/{ident}/ports": ListRoute("port", PORTGROUP),
    "/v1/portgroups/{ident}/ports/detail": ListRoute("port", PORTGROUP),
    "/v1/portgroups": ListRoute("portgroup"),
    "/v1/portgroups/detail": ListRoute("portgroup"),
    f"{_N}/portgroups": ListRoute("portgroup", NODE),
    f"{_N}/portgroups/detail": ListRoute("portgroup", NODE),
    "/v1/volume/connectors": ListRoute("volume", asked=None),
    "/v1/volume/targets": ListRoute("volume", asked=None),
    f"{_N}/volume/connectors": ListRoute("volume", NODE, asked=None),
    f"{_N}/volume/targets": ListRoute("volume", NODE, asked=None),
    "/v1/allocations": ListRoute("allocation", asked="owner"),
    f"{_N}/allocation": ListRoute("allocation", NODE, asked=None),
    # A project's share: its runbooks and the public ones (services/api/runbooks.py).
    "/v1/runbooks": ListRoute("runbook", asked=None),
    "/v1/runbooks/detail": ListRoute("runbook", asked=None),
}
