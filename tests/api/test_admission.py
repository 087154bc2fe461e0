"""Abuse limits: per-client chats a minute and streams, a global cap on answers, the LLM budget."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest

from bookchat.api.admission import AdmissionPolicy, client_of
from bookchat.config import Settings
from tests.api.conftest import answer_text, app_client, assert_contract, widget_events
from tests.books import NO_LIMITS, base_env
from tests.fakes.gemini import Stall

KEY = "AIzaFAKE-admission-test-key-77d1"


def _scope(peer: str, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    return {"type": "http", "client": (peer, 40000), "headers": headers}


@pytest.fixture
def limited(make_settings, data_dir):
    """Settings with the abuse limits at their defaults unless overridden."""

    def make(database_url: str | None = None, **overrides: Any) -> Settings:
        env = {k: v for k, v in base_env(data_dir, database_url).items() if k not in NO_LIMITS}
        return Settings(**{**env, **overrides})

    return make


@pytest.fixture
def gemini_limited(limited, fake_gemini):
    def make(**overrides: Any) -> Settings:
        return limited(GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url, **overrides)

    return make


async def _wait_for(predicate, what: str) -> None:
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"timed out waiting for {what}")


def _assert_refused(response: httpx.Response, code: str) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    assert body["retry_after"] == retry_after
    # Refused before any stream started: a JSON error, not an event stream.
    assert response.headers["content-type"].startswith("application/json")


# The defaults ---------------------------------------------------------------------------------


def test_limits_are_on_by_default():
    settings = Settings(_env_file=None)
    assert settings.chats_per_minute > 0
    assert settings.streams_per_client > 0
    assert settings.concurrent_llm_calls > 0
    assert settings.daily_llm_calls > 0
    assert settings.trusted_proxies == []
    assert settings.max_connections > 0


async def test_default_limits_refuse_a_flood_from_one_client(limited):
    settings = limited()
    async with app_client(settings) as (app, client):
        codes = []
        for _ in range(settings.chats_per_minute + 3):
            response = await client.post("/api/chat", json={"message": "How do I install it?"})
            codes.append(response.status_code)
        refused = response
    assert codes[: settings.chats_per_minute] == [200] * settings.chats_per_minute
    assert codes[settings.chats_per_minute :] == [429] * 3
    _assert_refused(refused, "rate_limited")
    assert app.state.admission.answering == 0


async def test_refused_chat_stores_nothing(limited, database_url):
    async with app_client(limited(database_url, BOOKCHAT_CHATS_PER_MINUTE=1)) as (_, client):
        first = await client.post("/api/chat", json={"message": "What is bookchat?"})
        conversation_id = widget_events(first.text)[0]["conversation_id"]
        refused = await client.post(
            "/api/chat", json={"message": "And again?", "conversation_id": conversation_id}
        )
        stored = await client.get(f"/api/conversation/{conversation_id}")
    _assert_refused(refused, "rate_limited")
    messages = stored.json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "And again?" not in stored.text


# Who the client is ----------------------------------------------------------------------------


def test_forwarded_for_is_ignored_from_an_untrusted_peer():
    policy = AdmissionPolicy()
    assert client_of(_scope("198.51.100.7", "203.0.113.1"), policy) == "198.51.100.7"
    assert client_of(_scope("198.51.100.7", "203.0.113.2"), policy) == "198.51.100.7"


def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    import ipaddress

    policy = AdmissionPolicy(trusted_proxies=(ipaddress.ip_network("10.1.0.0/16"),))
    # The proxy appends the address it saw; whatever the client wrote is to its left.
    assert client_of(_scope("10.1.2.3", "6.6.6.6, 203.0.113.9"), policy) == "203.0.113.9"
    assert client_of(_scope("10.1.2.3", "7.7.7.7, 203.0.113.9"), policy) == "203.0.113.9"
    # Two trusted hops: the first address that is not one of them is the client.
    assert client_of(_scope("10.1.2.3", "203.0.113.9, 10.1.9.9"), policy) == "203.0.113.9"
    # A peer outside the trusted networks: its header is ignored.
    assert client_of(_scope("192.0.2.1", "203.0.113.9"), policy) == "192.0.2.1"


def test_on_a_space_the_rightmost_public_hop_is_the_client():
    policy = AdmissionPolicy(on_space=True)
    assert client_of(_scope("10.20.0.5", "1.2.3.4, 203.0.113.9"), policy) == "203.0.113.9"
    assert client_of(_scope("10.20.0.5", "203.0.113.9, 10.20.0.4"), policy) == "203.0.113.9"
    assert client_of(_scope("10.20.0.5", "9.9.9.9", "203.0.113.9"), policy) == "203.0.113.9"
    assert client_of(_scope("10.20.0.5"), policy) == "10.20.0.5"


def test_ipv6_clients_are_counted_per_64_and_ports_are_dropped():
    policy = AdmissionPolicy()
    assert client_of(_scope("2001:db8:1:2::a"), policy) == "2001:db8:1:2::/64"
    assert client_of(_scope("2001:db8:1:2:ffff::1"), policy) == "2001:db8:1:2::/64"
    assert client_of(_scope("::ffff:203.0.113.4"), policy) == "203.0.113.4"
    spaced = AdmissionPolicy(on_space=True)
    assert client_of(_scope("10.0.0.1", "203.0.113.4:5123"), spaced) == "203.0.113.4"
    assert client_of(_scope("10.0.0.1", "[2001:db8::1]:443"), spaced) == "2001:db8::/64"


def test_trusted_proxies_setting_is_validated():
    with pytest.raises(ValueError, match="not an IP address or network"):
        Settings(BOOKCHAT_TRUSTED_PROXIES="10.0.0.0/8,proxy.internal")
    parsed = Settings(BOOKCHAT_TRUSTED_PROXIES=" 10.0.0.0/8, 127.0.0.1 ,")
    assert [str(n) for n in parsed.trusted_proxies] == ["10.0.0.0/8", "127.0.0.1/32"]


async def test_rotating_forwarded_for_does_not_escape_the_limit(limited):
    settings = limited(BOOKCHAT_CHATS_PER_MINUTE=2)
    async with app_client(settings) as (_, client):
        codes = [
            (
                await client.post(
                    "/api/chat",
                    json={"message": "What is bookchat?"},
                    headers={"X-Forwarded-For": f"203.0.113.{n}"},
                )
            ).status_code
            for n in range(4)
        ]
    assert codes == [200, 200, 429, 429]


async def test_clients_behind_a_trusted_proxy_are_limited_separately(limited):
    # The in-process transport connects from 127.0.0.1: that is the proxy here.
    settings = limited(BOOKCHAT_CHATS_PER_MINUTE=1, BOOKCHAT_TRUSTED_PROXIES="127.0.0.1")
    async with app_client(settings) as (_, client):

        async def ask(address: str) -> int:
            response = await client.post(
                "/api/chat",
                json={"message": "What is bookchat?"},
                headers={"X-Forwarded-For": address},
            )
            return response.status_code

        assert await ask("203.0.113.1") == 200
        assert await ask("203.0.113.2") == 200
        assert await ask("203.0.113.1") == 429
        # What the client prepends itself changes nothing.
        assert await ask("198.51.100.1, 203.0.113.2") == 429


# Streams and answer slots ---------------------------------------------------------------------


async def test_one_client_cannot_hold_more_streams_than_its_limit(gemini_limited, fake_gemini):
    fake_gemini.script(Stall(1.0), Stall(1.0))
    settings = gemini_limited(BOOKCHAT_STREAMS_PER_CLIENT=2)
    async with app_client(settings) as (app, client):
        held = [
            asyncio.create_task(client.post("/api/chat", json={"message": f"Question {n}?"}))
            for n in range(2)
        ]
        await _wait_for(lambda: len(fake_gemini.generate_requests()) == 2, "two streams")
        refused = await client.post("/api/chat", json={"message": "A third one?"})
        answered = await asyncio.gather(*held)
        # Both streams ended: their slots are free again.
        assert app.state.admission.streams_of("127.0.0.1") == 0
        after = await client.post("/api/chat", json={"message": "Now a third?"})
    _assert_refused(refused, "too_many_streams")
    for response in answered:
        assert_contract(widget_events(response.text))
    assert after.status_code == 200
    assert len(fake_gemini.generate_requests()) == 3


async def test_answer_slots_are_global_and_queue_briefly(gemini_limited, fake_gemini):
    fake_gemini.script(Stall(1.0))
    settings = gemini_limited(
        BOOKCHAT_CONCURRENT_LLM_CALLS=1,
        BOOKCHAT_LLM_QUEUE=1,
        BOOKCHAT_LLM_QUEUE_SECONDS=60,
        BOOKCHAT_TRUSTED_PROXIES="127.0.0.1",
    )
    async with app_client(settings) as (app, client):

        def ask(address: str) -> asyncio.Task[httpx.Response]:
            return asyncio.create_task(
                client.post(
                    "/api/chat",
                    json={"message": "What is bookchat?"},
                    headers={"X-Forwarded-For": address},
                )
            )

        first = ask("203.0.113.1")
        await _wait_for(lambda: len(fake_gemini.generate_requests()) == 1, "the first answer")
        queued = ask("203.0.113.2")
        await _wait_for(lambda: app.state.admission.waiting == 1, "a queued chat")
        # The queue is full: a third client is told to come back, at once.
        refused = await ask("203.0.113.3")
        answers = await asyncio.gather(first, queued)
        assert app.state.admission.answering == 0
    _assert_refused(refused, "server_busy")
    for response in answers:
        assert_contract(widget_events(response.text))


async def test_a_queued_chat_gives_up_after_the_queue_wait(gemini_limited, fake_gemini):
    fake_gemini.script(Stall(2.0))
    settings = gemini_limited(
        BOOKCHAT_CONCURRENT_LLM_CALLS=1,
        BOOKCHAT_LLM_QUEUE_SECONDS=0.2,
        BOOKCHAT_TRUSTED_PROXIES="127.0.0.1",
    )
    async with app_client(settings) as (app, client):
        first = asyncio.create_task(client.post("/api/chat", json={"message": "First?"}))
        await _wait_for(lambda: len(fake_gemini.generate_requests()) == 1, "the first answer")
        refused = await client.post(
            "/api/chat", json={"message": "Second?"}, headers={"X-Forwarded-For": "203.0.113.2"}
        )
        assert app.state.admission.waiting == 0
        await first
    _assert_refused(refused, "server_busy")


# The daily LLM budget -------------------------------------------------------------------------


async def test_past_the_daily_budget_the_offline_answerer_answers_and_says_so(
    gemini_limited, fake_gemini, caplog
):
    settings = gemini_limited(BOOKCHAT_DAILY_LLM_CALLS=1)
    with caplog.at_level(logging.WARNING, logger="bookchat"):
        async with app_client(settings) as (_, client):
            paid = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
            free = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
            again = await client.post("/api/chat", json={"message": "What is a chunk?"})
            conversation_id = widget_events(free.text)[0]["conversation_id"]
            stored = await client.get(f"/api/conversation/{conversation_id}")
    paid_events, free_events = widget_events(paid.text), widget_events(free.text)
    assert paid_events[0]["answerer"]["backend"] == "gemini"
    assert "notice" not in paid_events[0]
    assert free_events[0]["answerer"]["backend"] == "offline"
    assert free_events[0]["notice"]["code"] == "llm_budget_spent"
    assert free_events[0]["notice"]["message"]
    assert widget_events(again.text)[0]["notice"]["code"] == "llm_budget_spent"
    assert_contract(free_events)
    assert len(fake_gemini.generate_requests()) == 1
    assert stored.json()["messages"][-1]["content"] == answer_text(free_events)
    spent = [r for r in caplog.records if "daily budget" in r.getMessage()]
    assert len(spent) == 1  # said once, not once per chat
    assert spent[0].levelno == logging.WARNING


async def test_the_budget_does_not_apply_to_the_offline_answerer(limited):
    async with app_client(limited(BOOKCHAT_DAILY_LLM_CALLS=1)) as (_, client):
        events = [
            widget_events((await client.post("/api/chat", json={"message": "What is it?"})).text)
            for _ in range(3)
        ]
    assert all("notice" not in e[0] for e in events)


async def test_a_client_disconnecting_frees_its_stream(gemini_limited, fake_gemini, live_server):
    fake_gemini.script(Stall(30.0, after_chunks=1))
    settings = gemini_limited(BOOKCHAT_STREAMS_PER_CLIENT=1)
    server = live_server(settings)
    from tests.api.conftest import wait_live_ready

    await wait_live_ready(server)
    admission = server.app.state.admission
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat", json={"message": "Long one?"}) as stream:
            async for line in stream.aiter_lines():
                if '"token"' in line:
                    break
            assert admission.streams_of("127.0.0.1") == 1
        await _wait_for(lambda: admission.streams_of("127.0.0.1") == 0, "the stream to be freed")
        after = await client.post("/api/chat", json={"message": f"Next {uuid.uuid4()}?"})
    assert after.status_code == 200


async def test_one_client_past_its_share_gets_offline_answers_while_others_get_gemini(
    gemini_limited, fake_gemini
):
    # The in-process transport connects from 127.0.0.1: a trusted proxy naming two clients.
    settings = gemini_limited(
        BOOKCHAT_DAILY_LLM_CALLS=10,
        BOOKCHAT_DAILY_LLM_CALLS_PER_CLIENT=1,
        BOOKCHAT_TRUSTED_PROXIES="127.0.0.1",
    )
    async with app_client(settings) as (_, client):

        async def ask(address: str) -> list[dict[str, Any]]:
            response = await client.post(
                "/api/chat",
                json={"message": "How do I install bookchat?"},
                headers={"X-Forwarded-For": address},
            )
            return widget_events(response.text)

        first, second = await ask("203.0.113.1"), await ask("203.0.113.1")
        other = await ask("203.0.113.2")
    assert first[0]["answerer"]["backend"] == "gemini"
    assert second[0]["answerer"]["backend"] == "offline"
    assert second[0]["notice"]["code"] == "llm_client_budget_spent"
    assert second[0]["notice"]["message"]
    assert_contract(second)
    assert other[0]["answerer"]["backend"] == "gemini"
    assert "notice" not in other[0]
    assert len(fake_gemini.generate_requests()) == 2


async def test_the_daily_budget_survives_a_restart(limited, fake_gemini, database_url):
    settings = limited(
        database_url,
        GEMINI_API_KEY=KEY,
        GEMINI_BASE_URL=fake_gemini.base_url,
        BOOKCHAT_DAILY_LLM_CALLS=1,
    )
    async with app_client(settings) as (_, client):
        paid = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
    async with app_client(settings) as (_, client):  # the same database after a restart
        after = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
    assert widget_events(paid.text)[0]["answerer"]["backend"] == "gemini"
    assert widget_events(after.text)[0]["notice"]["code"] == "llm_budget_spent"
    assert len(fake_gemini.generate_requests()) == 1
