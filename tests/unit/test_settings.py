"""Settings: only connections (and a pod's per-process settings) fall back to `MLBUS_`; every
worker keeps its own consumer group; the README's tables are the models'."""

from __future__ import annotations

import pytest

from mlbus import settings_doc
from mlbus.readme_part import README
from runtime.settings import BusSettings, WorkerSettings
from services.enqueuer.settings import EnqueuerSettings
from services.inference_router.settings import InferenceRouterSettings
from services.ingest.settings import IngestSettings
from services.logger.settings import LoggerSettings
from services.monitor.settings import MonitorSettings
from services.notifier.settings import NotifierSettings

WORKERS: tuple[type[WorkerSettings], ...] = (
    EnqueuerSettings,
    InferenceRouterSettings,
    MonitorSettings,
    NotifierSettings,
    LoggerSettings,
)


def test_mlbus_group_gives_no_two_services_one_consumer_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLBUS_GROUP", "one-group-for-all")
    monkeypatch.setenv("MLBUS_RETRY_ATTEMPTS", "1")
    monkeypatch.setenv("MLBUS_KAFKA_BOOTSTRAP", "kafka.example:9092")
    workers = [model() for model in WORKERS]
    assert len({w.group for w in workers}) == len(WORKERS)
    assert "one-group-for-all" not in {w.group for w in workers}
    assert {w.retry_attempts for w in workers} == {8, 4}  # their own defaults
    # ...while the connection still comes from the shared prefix.
    assert {w.kafka_bootstrap for w in workers} == {"kafka.example:9092"}


def test_own_prefix_first_then_shared_for_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLBUS_ENQUEUER_GROUP", "enq")
    monkeypatch.setenv("MLBUS_MONGO_URI", "mongodb://shared:27017/")
    monkeypatch.setenv("MLBUS_LOGGER_MONGO_URI", "mongodb://logger:27017/")
    monkeypatch.setenv("MLBUS_CLEARML_API_HOST", "http://clearml:8008")
    monkeypatch.setenv("MLBUS_MONITOR_CLEARML_API_HOST", "http://monitor-clearml:8008")
    monkeypatch.setenv("MLBUS_INSTANCE", "pod-7")
    monkeypatch.setenv("MLBUS_ID_SECRET", "not-a-shared-setting")
    assert EnqueuerSettings().group == "enq"
    assert LoggerSettings().mongo_uri.get_secret_value() == "mongodb://logger:27017/"
    assert NotifierSettings().mongo_uri.get_secret_value() == "mongodb://shared:27017/"
    assert EnqueuerSettings().clearml_api_host == "http://clearml:8008"
    assert MonitorSettings().clearml_api_host == "http://monitor-clearml:8008"
    assert IngestSettings().instance == "pod-7"
    assert IngestSettings().id_secret.get_secret_value() == "mlbus-dev-id-secret"


def test_shared_fields_are_bus_fields() -> None:
    """A name in `shared_fields` that is no field would silently share nothing."""
    assert BusSettings.shared_fields <= set(BusSettings.model_fields)
    assert MonitorSettings.shared_fields <= set(MonitorSettings.model_fields)
    assert {"group", "retry_attempts", "retry_cap_s"}.isdisjoint(WorkerSettings.shared_fields)


def test_readme_settings_tables_are_the_models() -> None:
    """Fails when a setting is added, renamed or re-documented without
    `python -m mlbus.settings_doc` (which rewrites README.md)."""
    assert settings_doc.main(["--check"]) == 0, "run: python -m mlbus.settings_doc"


def test_stale_readme_is_caught() -> None:
    readme = README.read_text()
    stale = readme.replace(
        "| `MLBUS_LOGGER_MAX_BATCH` | `500` |", "| `MLBUS_LOGGER_MAX_BATCH` | `50` |"
    )
    assert stale != readme
    assert settings_doc.rewritten(stale) == readme


def test_monitor_group_session_is_bounded_and_outlasts_heartbeats() -> None:
    """The broker refuses a session under its least (6 s by default), and a member whose
    heartbeats are not well inside its session is taken for dead between two of them."""
    assert MonitorSettings().group_session_s == 6.0
    assert MonitorSettings().group_heartbeat_s == 1.0
    with pytest.raises(ValueError, match="group_session_s"):
        MonitorSettings(group_session_s=5.0)
    with pytest.raises(ValueError, match="a third of group_session_s"):
        MonitorSettings(group_session_s=6.0, group_heartbeat_s=2.5)
    assert MonitorSettings(group_session_s=9.0, group_heartbeat_s=3.0).group_heartbeat_s == 3.0
