"""The console's own rules, without servers: the language chosen, redirect targets kept on the
site, PKCE, one-use logins bound to the browser, CSRF tokens, the CSP, forms to API bodies."""

from __future__ import annotations

import base64
import hashlib

from services.console.errors import ApiFailed
from services.console.i18n import EN, IT, choose, state_label, translator, when
from services.console.mappings import KINDS, body_of, field_errors
from services.console.oidc import Tokens, challenge, new_login
from services.console.sessions import MemorySessions, Session, key_of
from services.console.settings import ConsoleSettings
from services.console.web import csp, local_path


def test_language_follows_the_switch_then_accept_language_then_english() -> None:
    assert choose("it", "en-US,en;q=0.9") == "it"
    assert choose(None, "it-IT,it;q=0.9,en;q=0.8") == "it"
    assert choose(None, "de-DE,en;q=0.5,it;q=0.7") == "it"
    assert choose(None, "de-DE") == "en"
    assert choose("fr", None) == "en"
    assert choose(None, "it;q=0") == "en"
    t = translator("it")
    assert t("showing", first=1, last=10, total=42) == "Mostrati da 1 a 10 di 42 risultati"


def test_every_english_text_has_an_italian_one() -> None:
    missing = sorted(set(EN) - set(IT) - {"ms", "gpu"})
    assert missing == []


def test_redirect_targets_stay_on_the_site() -> None:
    assert local_path("/logs/enqueue?status=failed") == "/logs/enqueue?status=failed"
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example", "evil", None, ""):
        assert local_path(bad) == "/"


def test_pkce_is_s256_of_a_fresh_verifier() -> None:
    one, two = new_login("/"), new_login("/")
    assert len({one.state, two.state, one.nonce, one.verifier}) == 4
    digest = hashlib.sha256(one.verifier.encode()).digest()
    assert challenge(one.verifier) == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(one.verifier) >= 43


async def test_a_login_finishes_once_in_the_browser_that_started_it() -> None:
    sessions = MemorySessions(idle_s=60)
    login = new_login("/dashboard")
    key = await sessions.start_login(login)
    assert await sessions.finish_login(key, "another-state") is None
    key = await sessions.start_login(login)
    assert await sessions.finish_login(None, login.state) is None  # no cookie: another browser
    assert await sessions.finish_login(key, login.state) == login
    assert await sessions.finish_login(key, login.state) is None  # used once


async def test_sessions_check_csrf_and_end() -> None:
    sessions = MemorySessions(idle_s=60)
    session = Session("alice", frozenset({"user"}), Tokens("a", "r", "i", 0.0))
    secret = await sessions.create(session)
    found = await sessions.get(secret)
    assert found is not None
    assert (found.user, found.csrf, found.tokens) == ("alice", session.csrf, session.tokens)
    assert session.key == key_of(secret) != secret  # the store keeps a hash, not the secret
    assert session.csrf_ok(session.csrf)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok(session.csrf + "x")
    assert not session.is_operator
    await sessions.end(secret)
    assert await sessions.get(secret) is None


def test_csp_forbids_inline_script_and_framing() -> None:
    policy = csp("http://127.0.0.1:8090/realms/mlbus")
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self' http://127.0.0.1:8090" in policy


def test_forms_become_api_bodies_and_api_errors_come_back_at_their_fields() -> None:
    body = body_of(
        KINDS["tasks"],
        {"clearml_task_id": " ab ", "default_queue": "q", "allowed_queues": "a, b,,"},
    )
    assert body == {
        "clearml_task_id": "ab",
        "default_queue": "q",
        "allowed_queues": ["a", "b"],
        "description": "",
    }
    machines = body_of(KINDS["machines"], {"base_urls": "http://a\n\nhttp://b\n"})
    assert machines["base_urls"] == ["http://a", "http://b"]
    failure = ApiFailed(
        422, "invalid_request", "bad", [{"field": "clearml_task_id", "error": "pattern"}]
    )
    assert field_errors(failure) == {"clearml_task_id": "pattern"}
    assert field_errors(ApiFailed(409, "mapping_exists", "exists")) == {"": "exists"}


def test_cookies_are_secure_whenever_the_console_is_reached_by_https() -> None:
    assert not ConsoleSettings(public_url="http://127.0.0.1:8001").secure_cookies
    assert ConsoleSettings(public_url="https://console.example.org").secure_cookies
    assert ConsoleSettings(public_url="http://127.0.0.1:8001", cookie_secure=True).secure_cookies


def test_states_and_times_read_in_the_page_language() -> None:
    assert state_label("it")("completed") == "completata"
    assert state_label("en")("completed") == "completed"  # the API's own word
    assert state_label("it")("something-new") == "something-new"
    shown = str(when("2026-12-03T10:53:54.016000Z", decimals=3))
    assert (
        shown == '<time datetime="2026-12-03T10:53:54.016000Z">2026-12-03 10:53:54.016 UTC</time>'
    )
    assert str(when(None)) == "<time></time>"
    assert "&lt;" in str(when("<script>alert(1)</script>"))
