"""Bad input gets a clear 4xx JSON error that names what is wrong; nothing becomes a 500."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from bookchat.api import errors
from tests.api.conftest import app_client

JSON = "application/json"


async def test_invalid_json_is_400_naming_the_problem(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=b'{"message": "hi"', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_json"
    assert "not valid JSON" in body["detail"]


async def test_invalid_json_names_no_field(make_settings) -> None:
    # The parser's character offset is not a field of the request.
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=b'{"message":', headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "", "message": response.json()["detail"]}]


@pytest.mark.parametrize(
    ("content", "content_type", "words"),
    [
        (b'{"message": "caf\xe9"}', JSON, "UTF-8"),
        ('{"message": "café"}'.encode("latin-1"), "application/json; charset=latin-1", "UTF-8"),
        (b'{"message": "hi", "x": ' + b"[" * 30000 + b"]" * 30000 + b"}", JSON, "deep"),
        (b'{"message": "hi", "x": ' + b"9" * 5000 + b"}", JSON, "number"),
    ],
)
async def test_json_the_parser_cannot_read_is_invalid_json_saying_why(
    make_settings, content: bytes, content_type: str, words: str
) -> None:
    # FastAPI turns these into a bare "There was an error parsing the body"; a client that
    # sent them deserves the same code as any other unreadable JSON, and the reason.
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=content, headers={"content-type": content_type}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_json"
    assert "not valid JSON" in body["detail"]
    assert words in body["detail"]


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"", "application/json", "empty"),
        (b'["a list"]', "application/json", "JSON object"),
        (b"message=hi", "application/x-www-form-urlencoded", "JSON object"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_422(
    make_settings, content: bytes, content_type: str, expected: str
) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=content, headers={"content-type": content_type}
        )
    assert response.status_code == 422
    assert expected in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"message": "x" * 2001}, "message", "2000"),
        ({"message": ""}, "message", "at least 1"),
        ({"message": "   "}, "message", "not only spaces"),
        ({}, "message", "required"),
        ({"message": 42}, "message", "string"),
        ({"message": "hi", "mode": "poetry"}, "mode", "'general' or 'selection'"),
        ({"message": "hi", "mode": "selection"}, "context", "highlighted text"),
        ({"message": "hi", "mode": "selection", "context": "  "}, "context", "required"),
        ({"message": "hi", "conversation_id": "123"}, "conversation_id", "UUID"),
    ],
)
async def test_out_of_range_fields_are_422_naming_the_field(
    make_settings, body: dict, field: str, words: str
) -> None:
    async with app_client(make_settings()) as (_, client):
        response = await client.post("/api/chat", json=body)
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["code"] == "invalid_request"
    assert payload["detail"].startswith(f"{field}: ")
    assert words in payload["detail"]
    assert [e["field"] for e in payload["errors"]] == [field]
    assert "Traceback" not in response.text


async def test_a_body_over_64_kib_is_413(make_settings) -> None:
    huge = b'{"message": "' + b"x" * (70 * 1024) + b'"}'
    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=huge, headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json() == {
        "detail": "the request body is larger than the 64 KiB limit",
        "code": "body_too_large",
    }


async def test_a_streamed_body_over_64_kib_is_413(make_settings) -> None:
    async def chunks():
        yield b'{"message": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=chunks(), headers={"content-type": "application/json"}
        )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"


async def test_nothing_is_stored_for_a_rejected_request(make_settings) -> None:
    async with app_client(make_settings()) as (app, client):
        await client.post("/api/chat", json={"message": "x" * 2001})
        from sqlalchemy import text

        async with app.state.runtime.conversations.sessionmaker() as session:
            count = (await session.execute(text("SELECT count(*) FROM messages"))).scalar_one()
    assert count == 0


async def test_unknown_paths_and_methods_are_json(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        missing = await client.get("/api/nothing-here")
        wrong_method = await client.get("/api/chat")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["code"] == "method_not_allowed"


async def test_an_unexpected_error_is_a_generic_500_and_a_logged_trace(
    make_settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import bookchat.stores.conversations as store

    async def broken(**_: object) -> None:
        raise RuntimeError("internal detail: /srv/secret/path")

    monkeypatch.setattr(store, "get_conversation", broken)
    caplog.set_level(logging.INFO)
    async with app_client(make_settings()) as (_, client):
        response = await client.get("/api/conversation/123e4567-e89b-12d3-a456-426614174000")
    assert response.status_code == 500
    assert response.json() == {
        "detail": "something went wrong on our side; please retry",
        "code": "internal_error",
    }
    assert "secret" not in response.text
    # The trace is in the log for the operator.
    assert any(r.exc_info and "internal detail" in str(r.exc_info[1]) for r in caplog.records)


@pytest.mark.parametrize("path", ["/api/feedback", "/api/chat/stop"])
@pytest.mark.parametrize("content", [b"", b'["a list"]'])
async def test_other_endpoints_do_not_suggest_the_chat_body(
    make_settings, path: str, content: bytes
) -> None:
    # {"message": "…"} is /api/chat's body: shown for a vote or a stop it misleads.
    async with app_client(make_settings()) as (_, client):
        response = await client.post(path, content=content, headers={"content-type": JSON})
    assert response.status_code == 422
    assert "JSON object" in response.json()["detail"]
    assert '"message"' not in response.json()["detail"]


async def test_a_body_trickling_in_is_cut_with_a_json_408(
    make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow-body client holds a connection while it sends; the body has a deadline.
    monkeypatch.setattr(errors, "BODY_SECONDS", 0.2)
    never = asyncio.Event()

    async def trickle():
        yield b'{"message": "'
        await never.wait()  # the rest never comes

    async with app_client(make_settings()) as (_, client):
        response = await client.post(
            "/api/chat", content=trickle(), headers={"content-type": "application/json"}
        )
        # A whole body is untouched by it.
        answered = await client.post("/api/chat", json={"message": "What is bookchat?"})
    assert response.status_code == 408
    assert response.json()["code"] == "body_timeout"
    assert response.headers["connection"] == "close"
    assert answered.status_code == 200


async def test_an_error_quotes_a_long_or_odd_path_bounded_and_escaped(make_settings) -> None:
    async with app_client(make_settings()) as (_, client):
        long = await client.get("/" + "a" * 20_000)
        odd = await client.get("/x%0a%1b%5b31mFAKE")
        method = await client.delete("/api/chat" + "b" * 5_000)
    assert long.status_code == 404
    assert len(long.json()["detail"]) < 200
    assert long.json()["detail"].endswith("…")
    assert "\x1b" not in odd.json()["detail"]
    assert "\n" not in odd.json()["detail"]
    assert "\\x1b[31mFAKE" in odd.json()["detail"]
    assert len(method.json()["detail"]) < 200


async def test_the_body_deadline_ends_with_the_body() -> None:
    # After the body, a streaming response waits on receive() for the reader to leave, for as
    # long as the answer takes: that wait has no deadline.
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": b"{}", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(0.3)  # longer than the deadline below
        return {"type": "http.disconnect"}

    seen: list[str] = []

    async def app(scope, receive, send) -> None:
        seen.append((await receive())["type"])
        seen.append((await receive())["type"])

    limited = errors.BodyLimitMiddleware(app, seconds=0.05)
    await limited({"type": "http", "headers": []}, receive, None)
    assert seen == ["http.request", "http.disconnect"]


def _documented(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return schema["paths"][path][method]["responses"]


@pytest.mark.parametrize("path", ["/api/chat", "/api/chat/stop", "/api/feedback"])
async def test_every_error_a_body_can_get_is_in_the_schema_with_its_shape(
    make_settings, path: str
) -> None:
    """What a client generated from /openapi.json (or a fuzzer) meets is what it documents."""
    async with app_client(make_settings()) as (_, client):
        schema = (await client.get("/openapi.json")).json()
        error = schema["components"]["schemas"]["Error"]
        responses = _documented(schema, "post", path)
        bad_bodies = [b"\x00", b'{"a":', b"[]", b"{}", b'{"message": "x\\u0000"}', b"x" * 70_000]
        for body in bad_bodies:
            response = await client.post(path, content=body, headers={"content-type": JSON})
            status = str(response.status_code)
            assert status in responses, (body[:20], status)
            assert responses[status]["content"][JSON]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }
            got = response.json()
            assert set(error["required"]) <= set(got)
            assert set(got) <= set(error["properties"])


async def test_the_schema_states_the_text_rules_the_validators_apply(make_settings) -> None:
    import re

    async with app_client(make_settings()) as (_, client):
        schema = (await client.get("/openapi.json")).json()
    chat = schema["components"]["schemas"]["ChatRequest"]
    message = re.compile(chat["properties"]["message"]["pattern"].replace("\\u0000", "\\x00"))
    assert message.search("How do I install it?")
    assert not message.search("   ")
    assert not message.search("hi\x00")
    assert chat["then"]["required"] == ["context"]
    reason = schema["components"]["schemas"]["FeedbackRequest"]["properties"]["reason"]
    # On the property: JSON Schema applies a pattern to strings only, so null stays allowed.
    assert reason["pattern"] == errors.NO_NUL_PATTERN
    assert chat["properties"]["context"]["pattern"] == errors.NO_NUL_PATTERN
