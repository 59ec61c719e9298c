"""What the metrics take from dnsmasq's log lines and from state changes: bounded label values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.common import metrics
from services.common.metrics_asgi import UNMATCHED_ROUTE, metrics_bearer, route_template


def dhcp_count(kind: str) -> float:
    return metrics.DHCP_MESSAGES.labels(kind)._value.get()


def test_dnsmasq_dhcp_lines_count_their_message_type_only() -> None:
    before = {kind: dhcp_count(kind) for kind in ("DHCPDISCOVER", "DHCPACK", "PXE")}
    metrics.count_dnsmasq_line(
        "dnsmasq-dhcp[812]: 3152946434 DHCPDISCOVER(veth-srv) 52:54:00:12:34:56")
    metrics.count_dnsmasq_line(
        "dnsmasq-dhcp[812]: 3152946434 DHCPACK(veth-srv) 10.9.0.50 52:54:00:12:34:56")
    metrics.count_dnsmasq_line("dnsmasq-dhcp[812]: 2 PXE(veth-srv) 52:54:00:12:34:56 proxy")
    metrics.count_dnsmasq_line("dnsmasq-dhcp[812]: 3152946434 tags: ipxe, known, veth-srv")
    metrics.count_dnsmasq_line("dnsmasq-dhcp[812]: DHCPEVIL(veth) forged")  # not a type
    assert dhcp_count("DHCPDISCOVER") == before["DHCPDISCOVER"] + 1
    assert dhcp_count("DHCPACK") == before["DHCPACK"] + 1
    assert dhcp_count("PXE") == before["PXE"] + 1
    families = {sample.labels.get("type") for family in metrics.DHCP_MESSAGES.collect()
                for sample in family.samples}
    assert "DHCPEVIL" not in families


def test_time_in_a_state_is_observed_on_leaving_it_naive_or_aware() -> None:
    histogram = metrics.PROVISION_STATE_SECONDS.labels("cleaning")
    count, total = histogram._sum.get(), sum(b.get() for b in histogram._buckets)
    entered = datetime.now(UTC) - timedelta(seconds=90)
    metrics.count_transition("cleaning", "available", entered.replace(tzinfo=None))
    metrics.count_transition("cleaning", "clean failed", entered)
    assert sum(b.get() for b in histogram._buckets) == total + 2
    assert 180 <= histogram._sum.get() - count < 190


def test_routes_are_templates_and_unrouted_requests_share_one_label() -> None:
    class Route:
        path = "/v1/nodes/{ident}"

    assert route_template({"path": "/v1/nodes/abc", "route": Route()}) == "/v1/nodes/{ident}"
    assert route_template({"path": "/no/such/thing/1234"}) == UNMATCHED_ROUTE
    assert route_template({"path": "/metrics"}) == "/metrics"


def test_the_bearer_asked_for() -> None:
    assert metrics_bearer(False, "s") is None
    assert metrics_bearer(True, "s") == "s"
    assert metrics_bearer(True, None) == ""  # required without a secret: nobody
