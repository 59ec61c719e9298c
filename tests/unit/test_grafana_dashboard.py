"""docs/grafana-enclume.json reads only metrics Enclume declares (services/common/metrics.py),
with the series names and labels each one really has."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY

import services.common.metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-enclume.json"
METRIC_NAME = re.compile(r"\benclume_[a-z_]+\b")
GROUPING = re.compile(r"\bby \(([^)]*)\)")
MATCHERS = re.compile(r"\{([^}]*)\}")
# Labels Prometheus adds to every series it scrapes, and the histogram bucket bound.
ADDED_LABELS = {"job", "instance", "le"}
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",)}


def declared_series() -> dict[str, set[str]]:
    """Every series name Enclume exposes, with the labels of its metric."""
    series: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("enclume_"):
            continue
        collector = getattr(services.common.metrics, _attribute_of(family.name))
        labels = set(collector._labelnames)
        for suffix in SUFFIXES[family.type]:
            series[family.name + suffix] = labels
    return series


def _attribute_of(family_name: str) -> str:
    for name, value in vars(services.common.metrics).items():
        if getattr(value, "_name", None) == family_name:
            return name
    raise AssertionError(f"{family_name} is not declared in services/common/metrics.py")


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += [variable["query"] for variable in dashboard["templating"]["list"]
              if variable["type"] == "query"]
    return found


def test_every_expression_reads_declared_metrics_and_their_labels() -> None:
    series = declared_series()
    assert len(series) >= 15, sorted(series)
    checked = expressions()
    assert len(checked) >= 12
    for expr in checked:
        names = set(METRIC_NAME.findall(expr))
        assert names, f"no Enclume metric in {expr!r}"
        unknown = names - set(series)
        assert not unknown, f"{expr!r} reads undeclared series {sorted(unknown)}"
        allowed = ADDED_LABELS.union(*(series[name] for name in names))
        used = {label.strip() for group in GROUPING.findall(expr) for label in group.split(",")}
        used |= {matcher.split("=")[0].rstrip("!~").strip()
                 for group in MATCHERS.findall(expr) for matcher in group.split(",")
                 if "=" in matcher}
        assert used <= allowed, f"{expr!r} uses labels {sorted(used - allowed)} it lacks"


def test_the_check_catches_a_misspelt_metric() -> None:
    series = declared_series()
    assert "enclume_power_sync_cycle_seconds_count" in series
    assert "enclume_power_sync_cycle_second_count" not in series
    assert "enclume_node_lock_attempts_total" in series
    assert "enclume_node_lock_attempts" not in series
