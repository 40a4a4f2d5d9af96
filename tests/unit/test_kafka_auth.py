"""Kafka clients log in as their Kafka user where the cluster enforces ACLs (Strimzi's
KafkaUser, SCRAM-SHA-512), and stay plain for the local broker."""

from __future__ import annotations

from pydantic import SecretStr

from runtime.kafka import client_auth
from runtime.rdkafka import _common
from runtime.settings import BusSettings


def test_a_local_broker_needs_no_login() -> None:
    settings = BusSettings(instance="t")
    assert client_auth(settings) == {}
    assert "security.protocol" not in _common(settings)


def test_a_kafka_user_logs_in_with_scram_on_both_clients() -> None:
    settings = BusSettings(
        instance="t",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_username="mlbus-enqueuer",
        kafka_password=SecretStr("s3cret"),
    )
    assert client_auth(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "mlbus-enqueuer",
        "sasl_plain_password": "s3cret",
    }
    rd = _common(settings)
    assert rd["security.protocol"] == "SASL_PLAINTEXT"
    assert rd["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (rd["sasl.username"], rd["sasl.password"]) == ("mlbus-enqueuer", "s3cret")


def test_tls_gets_a_verifying_context() -> None:
    settings = BusSettings(instance="t", kafka_security_protocol="SASL_SSL")
    options = client_auth(settings)
    assert options["ssl_context"].check_hostname is True
