"""GET /v1/drivers/{name}/properties: the driver_info keys each hardware type reads, the
required ones being exactly those its power driver refuses to go without."""

from __future__ import annotations

import inspect

import pytest

from services.common import driver_properties as properties
from services.common.config import Settings
from services.drivers import ipmi, redfish, wol
from services.drivers.base import MissingParameters
from services.drivers.boot import ipxe
from services.drivers.deploy import image
from services.drivers.network import vlan
from services.drivers.registry import HARDWARE_TYPES


@pytest.mark.parametrize(("catalogue", "access_of", "address"), [
    (properties.IPMI, ipmi.access_of, {"ipmi_address": "192.0.2.1"}),
    (properties.REDFISH, redfish.access_of, {"redfish_address": "https://192.0.2.1"}),
])
def test_required_keys_are_what_the_driver_needs(catalogue: dict[str, str], access_of: object,
                                                 address: dict[str, str]) -> None:
    assert properties.required(catalogue) == list(address)
    with pytest.raises(MissingParameters) as caught:
        access_of({})  # type: ignore[operator]
    assert next(iter(address)) in str(caught.value)
    access_of(address)  # type: ignore[operator] - nothing else is required


def test_wake_on_lan_needs_nothing() -> None:
    assert properties.required(properties.WOL) == []
    assert wol._target({}, Settings()) == ("255.255.255.255", 9, None)


@pytest.mark.parametrize(("catalogue", "module"), [
    (properties.IPMI, ipmi), (properties.REDFISH, redfish), (properties.WOL, wol),
    ({k: v for k, v in properties.COMMON.items() if k.startswith("deploy_")}, ipxe),
    ({"kernel_append_params": ""}, ipxe), ({"image_download_source": ""}, image),
    ({k: v for k, v in properties.COMMON.items() if k.endswith("_vlan")}, vlan),
])
def test_every_listed_key_is_read_by_its_module(catalogue: dict[str, str],
                                                module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    for key in catalogue:
        assert f'"{key}"' in source, key


def test_hardware_types_serve_their_properties() -> None:
    assert "ipmi_address" in HARDWARE_TYPES["ipmi"].properties
    assert "redfish_address" not in HARDWARE_TYPES["ipmi"].properties
    assert "tenant_vlan" in HARDWARE_TYPES["wol"].properties
    assert properties.required(dict(HARDWARE_TYPES["fake-hardware"].properties)) == []
    assert HARDWARE_TYPES["redfish"].properties["redfish_address"].endswith("Required.")
