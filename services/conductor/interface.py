"""The conductor API as the API service sees it.

``ConductorManager`` implements it in process (enclume-aio); ``RpcClient`` implements it by
calling the conductor that owns the node (cluster). Arguments are plain JSON values.
"""

from __future__ import annotations

from typing import Any, Protocol


class ConductorAPI(Protocol):
    def do_provisioning_action(self, node_uuid: str, target: str,
                               options: dict[str, Any]) -> None: ...

    def change_power_state(self, node_uuid: str, target: str,
                           timeout: int | None = None) -> None: ...

    def set_boot_device(self, node_uuid: str, device: str, persistent: bool) -> None: ...

    def get_boot_device(self, node_uuid: str) -> dict[str, Any]: ...

    def get_supported_boot_devices(self, node_uuid: str) -> list[str]: ...

    def validate(self, node_uuid: str) -> dict[str, dict[str, Any]]: ...

    def update_node(self, node_uuid: str, values: dict[str, Any],
                    expected: dict[str, Any] | None = None) -> None: ...

    def destroy_node(self, node_uuid: str) -> None: ...

    def update_traits(self, node_uuid: str, add: list[str] | None = None,
                      remove: list[str] | None = None,
                      replace: list[str] | None = None) -> None: ...

    def update_port(self, port_uuid: str, values: dict[str, Any],
                    node_uuid: str | None = None,
                    expected: dict[str, Any] | None = None) -> None: ...

    def destroy_port(self, port_uuid: str) -> None: ...

    def issue_agent_token(self, node_uuid: str) -> str | None: ...

    def heartbeat(self, node_uuid: str, callback_url: str, agent_token: str | None,
                  agent_version: str | None = None) -> None: ...

    def process_discovery(self, node_uuid: str, inventory: dict[str, Any],
                          new_node: dict[str, Any] | None = None, boot_mac: str | None = None,
                          applied_rules: list[str] | None = None) -> dict[str, Any]: ...
