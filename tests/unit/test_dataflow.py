"""The topic registry's writers and readers are the services' code, and the README's "Data
flow" tables are the registry.

A service "uses" a topic when one of its modules imports it from schemas.topics, directly or
through the runtime modules it imports (the log bus, the consumer loop's dead letters). Whether
it writes or reads the topic is the registry's word: the check is that the two sets agree."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from mlbus import dataflow_doc
from mlbus.readme_part import README
from runtime.worker import Worker
from schemas import topics
from schemas.base import utcnow
from schemas.topics import REGISTRY, REPLY_TEMPLATE, TopicSpec
from services.enqueuer.app import worker as enqueuer_worker
from services.enqueuer.settings import EnqueuerSettings
from services.logger.app import worker as logger_worker
from services.logger.settings import LoggerSettings
from services.monitor.app import worker as monitor_worker
from services.monitor.lifecycle import WatchSet
from services.monitor.settings import MonitorSettings
from services.monitor.shares import Shares
from services.notifier.app import subscribe as subscribe_notifier
from services.notifier.app import worker as notifier_worker
from services.notifier.settings import NotifierSettings

ROOT = Path(__file__).resolve().parents[2]
#: What a module may import from schemas.topics that names a topic, and the topic it names.
NAMES: dict[str, TopicSpec] = {
    name: value for name, value in vars(topics).items() if isinstance(value, TopicSpec)
} | {"reply_topic": REPLY_TEMPLATE, "REPLIES_PREFIX": REPLY_TEMPLATE}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Topics a module imports from schemas.topics, and the runtime modules it imports."""
    named: set[str] = set()
    runtime: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "schemas.topics":
            named |= {NAMES[a.name].name for a in node.names if a.name in NAMES}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "runtime":
                runtime |= {f"runtime.{a.name}" for a in node.names}
            elif node.module.startswith("runtime."):
                runtime.add(node.module)
    return named, runtime


def _runtime_topics(module: str, seen: set[str]) -> set[str]:
    """Topics a runtime module names, with those of the runtime modules it imports."""
    if module in seen:
        return set()
    seen.add(module)
    path = ROOT / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = ROOT / module.replace(".", "/") / "__init__.py"
    if not path.exists():
        return set()
    named, runtime = _imports(path)
    for inner in runtime:
        named |= _runtime_topics(inner, seen)
    return named


def uses(service: str) -> tuple[set[str], set[str]]:
    """Topics the service's own modules import, and those reached through runtime modules too."""
    own: set[str] = set()
    reached: set[str] = set()
    seen: set[str] = set()
    for path in (ROOT / "services" / service).rglob("*.py"):
        named, runtime = _imports(path)
        own |= named
        for module in runtime:
            reached |= _runtime_topics(module, seen)
    return own, own | reached


def declared(service: str) -> set[str]:
    return {
        t.name
        for t in (*REGISTRY, REPLY_TEMPLATE)
        if service in t.producers or service in t.consumers
    }


def test_every_topic_a_service_names_is_declared_with_it_and_no_more() -> None:
    services = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "__init__.py").exists())
    assert len(services) >= 8
    for service in services:
        own, reached = uses(service)
        assert own <= declared(service), (service, "undeclared", own - declared(service))
        assert declared(service) <= reached, (
            service,
            "not in its code",
            declared(service) - reached,
        )


def test_every_topic_has_a_writer_and_every_service_is_a_service() -> None:
    known = {p.name for p in (ROOT / "services").iterdir()} | {"mlbus dlq"}
    for t in (*REGISTRY, REPLY_TEMPLATE):
        assert t.producers, t.name
        assert set(t.producers) | set(t.consumers) <= known, t.name


def test_readme_data_flow_is_the_registry() -> None:
    assert dataflow_doc.main(["--check"]) == 0, "run: python -m mlbus.dataflow_doc"
    readme = README.read_text()
    stale = readme.replace("| `mlbus.logs` | request id | 3 |", "| `mlbus.logs` | request id | 6 |")
    assert stale != readme
    assert dataflow_doc.PART.rewritten(stale) == readme


def _declared_workers() -> dict[str, Worker]:
    """The workers whose wiring is a function of their clients (built here with none: only
    their declarations are read)."""
    none: Any = None
    watch = WatchSet()
    notifier = notifier_worker(NotifierSettings())
    subscribe_notifier(
        notifier, NotifierSettings(), engine=none, publish=none, store=none, webhooks=()
    )
    return {
        "enqueuer": enqueuer_worker(EnqueuerSettings(), none, none),
        "logger": logger_worker(LoggerSettings(), none),
        "monitor": monitor_worker(
            MonitorSettings(), watch, Shares(watch, none, 3), seeded_at=utcnow()
        ),
        "notifier": notifier,
    }


#: Topics a worker reads outside its subscriptions, without a group (runtime/broadcast.py): the
#: monitor's heartbeat feed, the notifier's state topic read back at start and followed.
GROUPLESS = {"monitor": {topics.HEARTBEATS.name}, "notifier": {topics.NOTIFIER_STATE.name}}


def test_what_a_worker_subscribes_and_publishes_is_what_the_registry_says() -> None:
    """The workers' own declarations (runtime/worker.py), not their imports: every topic a
    worker subscribes is one the registry says it reads, and the other way round (but for its
    group-less readers); every topic it publishes (dead letters, where it consumes) is one the
    registry says it writes."""
    for service, worker in _declared_workers().items():
        subscribed = {s.spec.name for s in worker.subscriptions}
        published = {p.spec.name for p in worker.publishers}
        if subscribed:
            published.add(topics.DEAD_LETTERS.name)  # every consumer loop may dead-letter
        reads = {t.name for t in (*REGISTRY, REPLY_TEMPLATE) if service in t.consumers}
        writes = {t.name for t in (*REGISTRY, REPLY_TEMPLATE) if service in t.producers}
        assert subscribed == reads - GROUPLESS.get(service, set()), (service, subscribed ^ reads)
        assert published == writes, (service, published ^ writes)
