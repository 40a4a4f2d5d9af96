"""Every Prometheus metric mlbus exposes, declared in one place."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from schemas.heartbeat import AgentHeartbeat

HTTP_REQUESTS = Counter(
    "mlbus_http_requests_total", "HTTP requests served.", ["service", "route", "method", "status"]
)
HTTP_LATENCY = Histogram(
    "mlbus_http_request_seconds",
    "HTTP request latency.",
    ["service", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
MESSAGES_HANDLED = Counter(
    "mlbus_messages_handled_total", "Messages handled successfully.", ["service", "topic"]
)
MESSAGES_FAILED = Counter(
    "mlbus_messages_failed_total",
    "Message handling failures (kind: retriable, permanent, or schema: did not decode).",
    ["service", "topic", "kind"],
)
DEAD_LETTERS = Counter("mlbus_dead_letters_total", "Messages dead-lettered.", ["service", "topic"])
CONSUMER_LAG = Gauge(
    "mlbus_consumer_lag", "Messages behind the partition end.", ["service", "topic", "partition"]
)
HANDLE_LATENCY = Histogram(
    "mlbus_message_handle_seconds",
    "Time to handle one message, retries included.",
    ["service", "topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
MESSAGES_PUBLISHED = Counter(
    "mlbus_messages_published_total", "Messages published by producers.", ["service", "topic"]
)

POLL_FAILURES = Counter(
    "mlbus_poll_failures_total", "Polls of an outside system that cost a tick.", ["service", "what"]
)
MACHINES = Gauge("mlbus_machines", "GPU machines known to the monitor, by state.", ["state"])
LOG_FOLDS = Counter(
    "mlbus_log_folds_total",
    "Facts the logger folded into the read models (result: folded or duplicate).",
    ["source", "result"],
)
LOG_PUBLISH_FAILURES = Counter(
    "mlbus_log_publish_failures_total",
    "RequestLogged messages that were not published.",
    ["service"],
)

CLEARML_CALLS = Counter(
    "mlbus_clearml_calls_total",
    "ClearML API calls (outcome: ok, rejected: a 4xx answer, unavailable: 5xx, timeout, refused).",
    ["endpoint", "outcome"],
)
BREAKER_OPEN = Gauge(
    "mlbus_breaker_open",
    "1 while the router's breaker for a model replica is open (the replica is left out).",
    ["machine", "replica"],
)

GPU_UTILIZATION = Gauge(
    "mlbus_gpu_utilization_percent", "GPU busy %, from the last heartbeat.", ["machine", "gpu"]
)
GPU_MEMORY_USED = Gauge(
    "mlbus_gpu_memory_used_ratio",
    "GPU memory used / total, from the last heartbeat.",
    ["machine", "gpu"],
)


def observe_gpus(heartbeat: AgentHeartbeat) -> None:
    """A heartbeat's GPU readings as gauges (the dashboard's GPU panels)."""
    for gpu in heartbeat.gpus:
        labels = (heartbeat.machine_id, str(gpu.index))
        if gpu.utilization_pct is not None:
            GPU_UTILIZATION.labels(*labels).set(gpu.utilization_pct)
        if gpu.memory_used_mb is not None and gpu.memory_total_mb:
            GPU_MEMORY_USED.labels(*labels).set(gpu.memory_used_mb / gpu.memory_total_mb)


NOTIFICATIONS = Counter(
    "mlbus_notifications_total", "Notifications the notifier published.", ["kind", "status"]
)
ALERTS_FIRING = Gauge("mlbus_alerts_firing", "Alerts told and not resolved yet.", ["kind"])
WEBHOOK_DELIVERIES = Counter(
    "mlbus_webhook_deliveries_total",
    "Webhook POST attempts (outcome: delivered, unavailable, rejected).",
    ["webhook", "outcome"],
)


READY = Gauge(
    "mlbus_ready",
    "1 while the service's loop runs (a worker's /readyz, ingest's readiness checks), else 0.",
    ["service"],
)


def ready(service: str, flag: bool) -> None:
    """Say whether this process is ready (its /readyz and the `mlbus_ready` gauge)."""
    READY.labels(service).set(1 if flag else 0)


def _is_ready() -> bool:
    return any(
        sample.value == 1
        for metric in READY.collect()
        for sample in metric.samples
        if sample.name == "mlbus_ready"
    )


StartResponse = Callable[..., Any]


def probes_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """A worker's HTTP face: `/metrics`, `/healthz` (the process is up) and `/readyz` (its
    consumer or tick loop runs), what a Kubernetes probe and Prometheus read."""
    path = environ.get("PATH_INFO", "")
    if path in ("/healthz", "/readyz"):
        ok = path == "/healthz" or _is_ready()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "application/json")])
        return [b'{"status":"ok"}' if ok else b'{"status":"not ready"}']
    result: Iterable[bytes] = _METRICS_APP(environ, start_response)
    return result


_METRICS_APP = make_wsgi_app()


class _Server(ThreadingMixIn, WSGIServer):
    """One thread a request, as prometheus_client's own server: a slow scrape holds up no probe."""

    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds are not worth a log line each."""


def start_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Serve `/metrics`, `/healthz` and `/readyz` on `host:port` for a worker, from a daemon
    thread (0: don't). In a pod the host is 0.0.0.0 (`MLBUS_METRICS_HOST`)."""
    if not port:
        return
    server = make_server(host, port, probes_app, server_class=_Server, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="probes", daemon=True).start()
