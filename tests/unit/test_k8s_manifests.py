"""The Kubernetes manifests that follow from the topic registry (`python -m mlbus.k8s`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from mlbus import k8s
from schemas import topics
from schemas.access import ACCESS


def test_the_generated_manifests_are_what_the_registry_says() -> None:
    stale = k8s.differences()
    assert stale == [], f"run `python -m mlbus.k8s` and commit: {stale} differ from the registry"


def test_a_changed_registry_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    wider = dataclasses.replace(topics.ENQUEUE_REQUESTS, partitions=12)
    monkeypatch.setattr(k8s, "REGISTRY", (wider, *topics.REGISTRY[1:]))
    assert k8s.differences() == ["kafka/topics.yaml"]


def test_a_missing_file_is_caught(tmp_path: Path) -> None:
    assert "kafka/users.yaml" in k8s.differences(tmp_path)


def test_every_registry_topic_is_a_kafka_topic_with_its_settings() -> None:
    made = {t["spec"]["topicName"]: t["spec"] for t in map(k8s.kafka_topic, topics.REGISTRY)}
    assert set(made) == {s.name for s in topics.REGISTRY}
    assert topics.DLQ in made
    for spec in topics.REGISTRY:
        assert made[spec.name]["partitions"] == spec.partitions
        policy = made[spec.name]["config"]["cleanup.policy"]
        assert policy == ("compact" if spec.compacted else "delete")
        assert made[spec.name]["config"].get("retention.ms") == spec.retention_ms


def _ops(acls: list[dict[str, Any]], kind: str, name: str) -> set[str]:
    return {
        op
        for acl in acls
        if acl["resource"] == {"type": kind, "name": name, "patternType": "literal"}
        for op in acl["operations"]
    }


def test_each_service_may_read_and_write_only_what_the_registry_says() -> None:
    for service, access in ACCESS.items():
        acls = k8s.acls(access)
        for spec in topics.REGISTRY:
            ops = _ops(acls, "topic", spec.name)
            assert ("Read" in ops) == (spec in access.reads), (service, spec.name)
            assert ("Write" in ops) == (spec in access.writes), (service, spec.name)
        prefixed = [a for a in acls if a["resource"]["patternType"] == "prefix"]
        # by prefix: Describe on mlbus topics, the reply topics, the service's own groups
        for acl in prefixed:
            if acl["resource"]["name"] == "mlbus.":
                assert acl["operations"] == ["Describe"]


def test_the_router_writes_replies_and_ingest_owns_them() -> None:
    router = k8s.acls(ACCESS["inference-router"])
    ingest = k8s.acls(ACCESS["ingest"])
    replies = {"type": "topic", "name": topics.REPLIES_PREFIX, "patternType": "prefix"}
    assert [a["operations"] for a in router if a["resource"] == replies] == [["Write"]]
    assert [a["operations"] for a in ingest if a["resource"] == replies] == [["Create", "Read"]]


def test_workers_scale_on_the_lag_of_their_own_group_up_to_their_partitions() -> None:
    scaled = {w.name: k8s.scaled_object(w) for w in k8s.WORKLOADS if w.scaled_by}
    assert set(scaled) == {"enqueuer", "inference-router", "logger"}
    enqueuer = scaled["enqueuer"]["spec"]
    assert enqueuer["maxReplicaCount"] == topics.ENQUEUE_REQUESTS.partitions
    trigger = enqueuer["triggers"][0]["metadata"]
    assert trigger["consumerGroup"] == ACCESS["enqueuer"].group_prefix
    assert trigger["topic"] == topics.ENQUEUE_REQUESTS.name


def test_pods_run_unprivileged_with_probes() -> None:
    for w in k8s.WORKLOADS:
        pod = k8s.workload(w)[0]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_yaml_scalars_that_would_change_meaning_are_quoted() -> None:
    text = k8s.to_yaml([{"a": "true", "b": "9092", "c": "-m", "d": "", "e": "plain.name", "f": 3}])
    assert 'a: "true"' in text
    assert 'b: "9092"' in text
    assert 'c: "-m"' in text
    assert 'd: ""' in text
    assert "e: plain.name" in text
    assert "f: 3" in text


def test_the_yaml_reads_back_as_the_documents() -> None:
    yaml = pytest.importorskip("yaml")
    for w in k8s.WORKLOADS:
        docs = k8s.workload(w)
        assert [d for d in yaml.safe_load_all(k8s.to_yaml(docs)) if d] == docs
    users = [k8s.kafka_user(n, k8s.acls(a)) for n, a in ACCESS.items()]
    assert [d for d in yaml.safe_load_all(k8s.to_yaml(users)) if d] == users


def test_the_console_runs_two_copies_without_kafka_and_its_client_secret_from_a_secret() -> None:
    (console,) = [w for w in k8s.WORKLOADS if w.name == "console"]
    deployment, service, *_ = k8s.workload(console)
    assert deployment["spec"]["replicas"] == 2  # the sessions are shared (MongoDB)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "services.console"]
    env = {e["name"]: e for e in container["env"]}
    assert not any(name.startswith("MLBUS_KAFKA") for name in env)
    secret = env["MLBUS_CONSOLE_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "mlbus-console", "key": "client-secret"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 8001, "targetPort": "http"}]
