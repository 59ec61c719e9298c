"""The clients' functional suites by name: the package each one's tests live in.

Imported by functional_driver.py inside the clients' venv too, so it imports nothing.
"""

SUITE_PACKAGES = {
    "ironicclient": "ironicclient.tests.functional",
    "openstacksdk": "openstack.tests.functional.baremetal",
}
