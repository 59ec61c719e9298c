"""The driver contract of services/drivers/base.py: checked when a class is defined and when
the registry builds an implementation, so a misspelt method cannot stall a node silently."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.config import Settings
from services.common.node_fields import INTERFACES
from services.drivers import base, fake, node_driver
from services.drivers.base import DeployInterface, PowerInterface
from services.drivers.contract_check import ContractError
from services.drivers.node_driver import NodeDriver
from services.drivers.registry import (
    CLIENT_IMPLEMENTATIONS,
    FAKE_HARDWARE,
    IMPLEMENTATIONS,
    Drivers,
)


def test_a_misspelt_method_is_refused_when_the_class_is_defined() -> None:
    with pytest.raises(ContractError, match="continue_deploi is not a method of DeployInterface"):
        class Misspelt(fake.FakeDeploy):
            def continue_deploi(self, task: Any, resume: Any) -> str | None:
                return None


def test_a_missing_required_method_cannot_be_built() -> None:
    class NoReboot(PowerInterface):
        def validate(self, task: Any) -> None:
            return None

        def get_power_state(self, task: Any) -> str:
            return base.POWER_OFF

        def set_power_state(self, task: Any, state: str) -> None:
            return None

    with pytest.raises(TypeError, match="reboot"):
        NoReboot()  # type: ignore[abstract]


def test_private_helpers_are_allowed() -> None:
    class WithHelper(fake.FakeDeploy):
        def _helper(self) -> None:
            return None

    assert WithHelper().deploy.__name__ == "deploy"


def test_an_implementation_in_the_wrong_slot_is_refused() -> None:
    driver = NodeDriver(FAKE_HARDWARE, {"power": fake.FakeDeploy()})
    with pytest.raises(ContractError, match="FakeDeploy is not a PowerInterface"):
        _ = driver.power
    with pytest.raises(ContractError):
        node_driver.check_implementation("power", fake.FakeDeploy())


def test_every_registered_implementation_follows_its_interface_contract() -> None:
    drivers = Drivers(Settings(
        drivers={"enabled_hardware_types": ["fake-hardware", "ipmi", "redfish",
                                                       "wol"]},
    ))
    for interface, name in [*IMPLEMENTATIONS, *CLIENT_IMPLEMENTATIONS]:
        made = drivers.implementation(interface, name)
        assert isinstance(made, base.CONTRACTS[interface]), (interface, name)
    assert set(base.CONTRACTS) == set(INTERFACES)


def test_interfaces_that_do_not_wait_for_an_agent_keep_waiting_on_a_heartbeat() -> None:
    assert fake.FakeDeploy().continue_deploy(None, lambda: None) == base.WAIT  # type: ignore[arg-type]
    assert isinstance(fake.FakeDeploy(), DeployInterface)
    assert not fake.NoInspect().supported and fake.FakeInspect().supported
