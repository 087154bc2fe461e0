"""POST /api/chat/stop (an answer ends as "stopped") and POST /api/feedback, on both stores."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from bookchat.stores.conversation_models import FeedbackRow
from tests.api.conftest import (
    app_client,
    wait_live_ready,
    widget_events,
    widget_events_as_they_come,
)
from tests.fakes.gemini import Reply

KEY = "AIzaFAKE-stop-test-key-7c31"
LONG_REPLY = " ".join(f"word{i} [1]." for i in range(300))


async def test_stop_ends_the_answer_and_stores_it_as_stopped(
    make_settings, live_server, fake_gemini, database_url
) -> None:
    fake_gemini.script(Reply(LONG_REPLY, tokens_per_second=20))
    settings = make_settings(database_url, GEMINI_API_KEY=KEY, GEMINI_BASE_URL=fake_gemini.base_url)
    server = live_server(settings)
    await wait_live_ready(server)
    seen: list[str] = []
    events: list[dict] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        async with client.stream("POST", "/api/chat", json={"message": "Install?"}) as response:
            assert response.status_code == 200
            async for event in widget_events_as_they_come(response):
                events.append(event)
                if event["type"] == "metadata":
                    question = event["user_message_id"]
                elif event["type"] == "token":
                    seen.append(event["content"])
                    if len(seen) == 3:
                        # Another connection, as the page's Stop button sends it.
                        async with httpx.AsyncClient(base_url=server.url, timeout=10) as other:
                            stop = await other.post(
                                "/api/chat/stop", json={"user_message_id": question}
                            )
                        assert stop.status_code == 202, stop.text
                        assert stop.json() == {"user_message_id": question, "stopping": True}
        done = events[-1]
        assert done["type"] == "done", events[-3:]
        assert done["stopped"] is True
        assert done["message_id"]
        streamed = "".join(e["content"] for e in events if e["type"] == "token")
        assert streamed.startswith("".join(seen))
        assert streamed != LONG_REPLY
        conversation = (
            await client.get(f"/api/conversation/{events[0]['conversation_id']}")
        ).json()
        answer = conversation["messages"][-1]
        assert answer["status"] == "stopped"
        assert answer["id"] == done["message_id"]
        assert answer["content"] == streamed
        # The answer is over: stopping it again, or a question never asked, is a 404.
        again = await client.post("/api/chat/stop", json={"user_message_id": question})
        assert again.status_code == 404
        assert again.json()["code"] == "not_streaming"
        unknown = await client.post("/api/chat/stop", json={"user_message_id": str(uuid.uuid4())})
        assert unknown.status_code == 404
        bad = await client.post("/api/chat/stop", json={"user_message_id": "nope"})
        assert bad.status_code == 422


async def test_feedback_is_stored_with_the_answer_and_updated(make_settings, database_url) -> None:
    async with app_client(make_settings(database_url)) as (app, client):
        response = await client.post("/api/chat", json={"message": "How do I install bookchat?"})
        events = widget_events(response.text)
        answer_id = events[-1]["message_id"]
        question_id = events[0]["user_message_id"]
        conversation_id = events[0]["conversation_id"]

        up = await client.post("/api/feedback", json={"message_id": answer_id, "rating": "up"})
        assert up.status_code == 200, up.text
        assert up.json()["rating"] == "up"
        assert up.json()["reason"] is None
        down = await client.post(
            "/api/feedback",
            json={"message_id": answer_id, "rating": "down", "reason": "  misses the pip step  "},
        )
        assert down.status_code == 200
        assert down.json()["rating"] == "down"
        assert down.json()["reason"] == "misses the pip step"

        messages = (await client.get(f"/api/conversation/{conversation_id}")).json()["messages"]
        assert messages[0]["feedback"] is None
        assert messages[1]["feedback"] == {"rating": "down", "reason": "misses the pip step"}
        async with app.state.runtime.conversations.sessionmaker() as session:
            rows = await session.scalar(select(func.count()).select_from(FeedbackRow))
        assert rows == 1  # the second vote replaced the first

        cases = [
            ({"message_id": str(uuid.uuid4()), "rating": "up"}, 404, "message_not_found"),
            ({"message_id": question_id, "rating": "up"}, 404, "message_not_found"),
            ({"message_id": answer_id, "rating": "meh"}, 422, "invalid_request"),
            ({"message_id": answer_id}, 422, "invalid_request"),
            ({"message_id": "not-a-uuid", "rating": "up"}, 422, "invalid_request"),
            ({"message_id": answer_id, "rating": "down", "reason": "x" * 501}, 422, None),
            ({"message_id": answer_id, "rating": "down", "reason": "a\x00b"}, 422, None),
        ]
        for body, status, code in cases:
            refused = await client.post("/api/feedback", json=body)
            assert refused.status_code == status, (body, refused.text)
            if code:
                assert refused.json()["code"] == code, refused.json()
        # A refused vote changed nothing.
        messages = (await client.get(f"/api/conversation/{conversation_id}")).json()["messages"]
        assert messages[1]["feedback"] == {"rating": "down", "reason": "misses the pip step"}
