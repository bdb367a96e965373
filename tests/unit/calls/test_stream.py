"""The live stream: SSE frames, one per call event, to every client; a slow client is dropped
(never waited for), keep-alive comments, every stream ended on close."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ari_app.calls.events import CallEvent
from ari_app.calls.stream import _CLOSED, LiveEvents, _Client, sse_frame

EVENT = CallEvent("hold:check_in_played", "call-1", 12.5, "hold", "check-in",
                  operator="PJSIP/operator1", data={"prompt": "checkin-1"})


def test_given_event_when_framed_then_event_name_and_json_data():
    frame = sse_frame(EVENT).decode()
    head, data, blank = frame.split("\n", 2)
    assert head == "event: hold:check_in_played" and blank == "\n"
    assert json.loads(data.removeprefix("data: ")) == EVENT.to_dict()


def test_given_slow_client_when_queue_full_then_dropped_not_waited_for():
    live = LiveEvents(queue_size=2)
    queue: asyncio.Queue = asyncio.Queue(maxsize=2)
    live._clients.add(_Client(queue, None, True))
    for _ in range(3):
        live.on_event(EVENT)
    assert live.clients == 0 and live.dropped == 1


def test_given_operator_client_then_only_their_calls_events_unnamed_when_asked():
    live = LiveEvents()
    theirs, others = asyncio.Queue(), asyncio.Queue()
    live._clients.update({_Client(theirs, "PJSIP/operator1", False),
                          _Client(others, "PJSIP/operator2", True)})
    live.on_event(EVENT)
    live.on_event(CallEvent("operator:paused", "", 13.0, "operator", operator="PJSIP/operator2"))
    frame = theirs.get_nowait().decode()
    assert frame.startswith("data: {") and json.loads(frame[6:])["name"] == EVENT.name
    assert theirs.empty()
    assert json.loads(others.get_nowait().decode().split("data: ")[1])["name"] == \
        "operator:paused"
    assert others.empty()


async def client_for(live: LiveEvents) -> TestClient:
    app = web.Application()
    app.router.add_get("/api/events", live.serve)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def read_frame(resp) -> str:
    lines = []
    while True:
        line = (await asyncio.wait_for(resp.content.readline(), 2)).decode()
        if line == "\n":
            return "".join(lines)
        lines.append(line)


async def test_given_open_stream_when_events_then_streamed_with_keep_alives_and_closed():
    live = LiveEvents(keep_alive=0.05)
    client = await client_for(live)
    try:
        resp = await client.get("/api/events")
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert await read_frame(resp) == ": connected\n"
        live.on_event(EVENT)
        assert (await read_frame(resp)).startswith("event: hold:check_in_played\ndata: {")
        assert await read_frame(resp) == ": keep-alive\n"
        await live.close()
        assert await asyncio.wait_for(resp.content.read(), 2) == b""  # the stream ended
        assert live.clients == 0
    finally:
        await client.close()


async def test_given_events_queued_together_when_streamed_then_all_in_order_then_closed():
    live = LiveEvents(keep_alive=5)
    client = await client_for(live)
    try:
        resp = await client.get("/api/events")
        assert await read_frame(resp) == ": connected\n"
        for n in range(5):  # queued in one go: written together, none lost, order kept
            live.on_event(CallEvent(f"hold:step_{n}", "call-1", 12.5 + n, "hold"))
        [opened] = live._clients  # an end queued behind them still ends the stream
        opened.queue.put_nowait(_CLOSED)
        frames = [await read_frame(resp) for _ in range(5)]
        assert [f.split("\n")[0] for f in frames] == [f"event: hold:step_{n}" for n in range(5)]
        assert await asyncio.wait_for(resp.content.read(), 2) == b""
    finally:
        await client.close()
