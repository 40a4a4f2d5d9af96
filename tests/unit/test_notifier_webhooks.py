"""Webhook delivery at the transport boundary (httpx.MockTransport), filters and settings."""

from __future__ import annotations

import json

import httpx
import pytest

from runtime.retry import PermanentError, RetriableError
from schemas.notifications import Notification, Severity
from services.notifier.errors import WebhookRejected, WebhookUnavailable
from services.notifier.settings import NotifierSettings, Webhook
from services.notifier.webhooks import WebhookClient

NOTE = Notification(kind="task_failed", severity=Severity.WARNING, subject="r1", message="m")


def client_answering(status: int, seen: list[httpx.Request]) -> WebhookClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="nope" if status >= 400 else "ok")

    transport = httpx.MockTransport(answer)
    return WebhookClient(Webhook(url="http://hook/in"), httpx.AsyncClient(transport=transport))


async def test_a_notification_is_posted_as_json_with_its_id() -> None:
    seen: list[httpx.Request] = []
    await client_answering(204, seen).post(NOTE)
    [request] = seen
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-mlbus-notification-id"] == NOTE.id
    assert json.loads(request.content)["kind"] == "task_failed"


@pytest.mark.parametrize(
    ("status", "error", "base"),
    [
        (503, WebhookUnavailable, RetriableError),
        (500, WebhookUnavailable, RetriableError),
        (429, WebhookUnavailable, RetriableError),
        (408, WebhookUnavailable, RetriableError),
        (400, WebhookRejected, PermanentError),
        (404, WebhookRejected, PermanentError),
        (301, WebhookRejected, PermanentError),
    ],
)
async def test_answers_are_retriable_or_permanent(
    status: int, error: type[Exception], base: type[Exception]
) -> None:
    with pytest.raises(error, match=f"HTTP {status}") as caught:
        await client_answering(status, []).post(NOTE)
    assert isinstance(caught.value, base)


async def test_a_timeout_is_retriable() -> None:
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = WebhookClient(
        Webhook(url="http://hook/in"), httpx.AsyncClient(transport=httpx.MockTransport(hang))
    )
    with pytest.raises(WebhookUnavailable, match="ReadTimeout"):
        await client.post(NOTE)


def test_filters_by_kind_severity_and_user() -> None:
    alice = NOTE.model_copy(update={"user": "alice"})
    assert Webhook(url="u").wants(NOTE)
    assert Webhook(url="u", kinds=("task_failed",)).wants(NOTE)
    assert not Webhook(url="u", kinds=("machine_offline",)).wants(NOTE)
    assert not Webhook(url="u", severities=(Severity.CRITICAL,)).wants(NOTE)
    assert Webhook(url="u", users=("alice",)).wants(alice)
    assert not Webhook(url="u", users=("alice",)).wants(NOTE)
    assert Webhook(url="u").label == Webhook(url="u").label != Webhook(url="v").label
    assert Webhook(url="u", name="nodered").label == "nodered"


def test_webhooks_are_configured_as_json_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MLBUS_NOTIFIER_WEBHOOKS",
        '[{"url": "http://nodered:1880/mlbus", "severities": ["critical"]}]',
    )
    monkeypatch.setenv("MLBUS_NOTIFIER_REPEAT_INTERVAL_S", "60")
    settings = NotifierSettings()
    assert settings.webhooks == (
        Webhook(url="http://nodered:1880/mlbus", severities=(Severity.CRITICAL,)),
    )
    assert settings.repeat_interval_s == 60
