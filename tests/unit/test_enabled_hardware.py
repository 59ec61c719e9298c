"""Conductors register the hardware types and interfaces they enable
(``conductor_hardware_interfaces``); the API lists drivers and checks node interfaces from the
registrations of the live conductors, not from driver code of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from services.api.app import create_app
from services.common.config import Settings
from services.common.db import Database, upgrade_schema
from services.common.membership import Membership
from services.common.models import ConductorHardwareInterface
from services.conductor.manager import ConductorManager
from services.drivers.registry import Drivers

HEADERS = {"X-OpenStack-Ironic-API-Version": "1.31"}


@pytest.fixture
def db(tmp_path: Path) -> Database:
    url = f"sqlite:///{tmp_path / 'hardware.sqlite'}"
    upgrade_schema(url)
    return Database(url)


def started(db: Database, hostname: str, hardware_types: list[str]) -> ConductorManager:
    settings = Settings(
        conductor={"hostname": hostname},
        drivers={"enabled_hardware_types": hardware_types},
    )
    manager = ConductorManager(db, settings, Drivers(settings))
    manager.start()
    return manager


def test_a_conductor_registers_every_interface_of_its_hardware_types(db: Database) -> None:
    manager = started(db, "c-1", ["ipmi"])
    try:
        with db.session() as session:
            rows = session.query(ConductorHardwareInterface).all()
            defaults = {(r.interface_type, r.interface_name) for r in rows if r.default}
            assert {r.hardware_type for r in rows} == {"ipmi"}
            assert {(r.interface_type, r.interface_name) for r in rows} >= {
                ("power", "ipmi"), ("management", "noop"), ("deploy", "iscsi")}
            assert ("power", "ipmi") in defaults and ("deploy", "direct") in defaults
            assert len(defaults) == 13  # one default per interface
        hardware = Membership(db, manager.settings).hardware()
        assert list(hardware.hardware_types) == ["ipmi"]
        assert hardware.hardware_type("ipmi").default("deploy") == "direct"
        assert hardware.hardware_type("ipmi").supported["management"] == ("ipmi", "noop")
    finally:
        manager.stop()


def test_the_api_answers_from_what_live_conductors_registered(db: Database) -> None:
    first = started(db, "c-1", ["fake-hardware"])
    settings = Settings(
        drivers={"enabled_hardware_types": ["fake-hardware", "ipmi", "redfish", "wol"]},
    )
    app = create_app(settings, db, first, Membership(db, settings))
    try:
        with TestClient(app, headers=HEADERS) as api:
            assert [d["name"] for d in api.get("/v1/drivers").json()["drivers"]] == [
                "fake-hardware"]
            assert api.get("/v1/drivers/redfish").status_code == 404
            refused = api.post("/v1/nodes", json={"driver": "redfish"})
            assert refused.status_code == 400
            assert "Cannot find the hardware type redfish" in refused.text
            assert api.post("/v1/nodes", json={"driver": "fake-hardware"}).status_code == 201

            second = started(db, "c-2", ["redfish"])
            try:
                app.state.membership.refresh_now()
                names = {d["name"] for d in api.get("/v1/drivers").json()["drivers"]}
                assert names == {"fake-hardware", "redfish"}
                detail = api.get("/v1/drivers/redfish").json()
                assert detail["default_power_interface"] == "redfish"
                assert "redfish_address" in api.get("/v1/drivers/redfish/properties").json()
                bad = api.post("/v1/nodes", json={"driver": "redfish", "power_interface": "ipmi"})
                assert bad.status_code == 400 and "suitable power interface" in bad.text
                assert api.post("/v1/nodes", json={"driver": "redfish"}).status_code == 201
            finally:
                second.stop()

            first.stop()  # no live conductor left: nothing is enabled
            app.state.membership.refresh_now()
            assert api.get("/v1/drivers").json()["drivers"] == []
            assert api.post("/v1/nodes", json={"driver": "fake-hardware"}).status_code == 400
    finally:
        first.stop()
