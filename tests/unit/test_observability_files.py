"""The Prometheus rules and the Grafana dashboard read metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from runtime import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "mlbus.rules.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "mlbus.dashboard.json"
#: Series from outside mlbus: Strimzi's Kafka Exporter and kube-state-metrics.
OUTSIDE = {"kafka_consumergroup_lag", "kube_pod_status_ready"}
_NAME = re.compile(r"\b(mlbus[_:][a-z0-9_:]+|kafka_[a-z_]+|kube_[a-z_]+)\b")


def _ours() -> set[str]:
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            base = value._name  # prometheus_client keeps a counter's name without `_total`
            names |= {base, f"{base}_total", f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return names


def _recorded(text: str) -> set[str]:
    return set(re.findall(r"record: (\S+)", text))


def _used(texts: list[str]) -> set[str]:
    return {name for text in texts for name in _NAME.findall(text)}


def test_the_rules_read_only_metrics_that_exist() -> None:
    yaml = pytest.importorskip("yaml")
    text = RULES.read_text()
    rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"]]
    exprs = [str(r["expr"]) for r in rules]
    assert len(exprs) >= 8
    assert _used(exprs) - _ours() - _recorded(text) - OUTSIDE == set()


def test_the_dashboard_reads_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 10
    assert _used(exprs) - _ours() - OUTSIDE == set()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_a_renamed_metric_would_be_caught() -> None:
    assert _used(["rate(mlbus_http_requestz_total[5m])"]) - _ours() == {"mlbus_http_requestz_total"}
