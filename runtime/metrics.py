"""Every Prometheus metric mlbus exposes, declared in one place."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

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

NOTIFICATIONS = Counter(
    "mlbus_notifications_total", "Notifications the notifier published.", ["kind", "status"]
)
ALERTS_FIRING = Gauge("mlbus_alerts_firing", "Alerts told and not resolved yet.", ["kind"])
WEBHOOK_DELIVERIES = Counter(
    "mlbus_webhook_deliveries_total",
    "Webhook POST attempts (outcome: delivered, unavailable, rejected).",
    ["webhook", "outcome"],
)


def start_metrics(port: int) -> None:
    """Serve /metrics on 127.0.0.1:`port` for a worker (0: don't)."""
    if port:
        start_http_server(port, addr="127.0.0.1")
