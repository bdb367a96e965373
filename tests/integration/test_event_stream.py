"""`GET /api/events` against the real Asterisk: a client that opened the stream (with the
bearer token) before the call sees the call's steps as server-sent events, in order: the
hold's start, its state changes and two check-ins, with the call id and the states. Without
the token the stream is refused. The operator's etiquette log of the day has the same steps."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

from ari_app.keys import etiquette_log_key, live_events_key

from conftest import API_TOKEN
from test_hold import connected_call, wait_prompt

pytestmark = pytest.mark.integration
SHORT_HOLD = "[hold]\ncheck_in_interval = 2\nfallback_after = 60\n"


class Stream:
    """An SSE client: every `event:`/`data:` frame read in the background, comments apart."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response, self.events, self.comments = response, [], []
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        name, data = None, []
        async for raw in self.response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and name is not None:
                self.events.append((name, json.loads("\n".join(data))))
                name, data = None, []

    async def wait_for(self, predicate, timeout: float = 15.0) -> tuple[str, dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(*event):
                    return event
            await asyncio.sleep(0.05)
        raise AssertionError(f"not streamed; got {[n for n, _ in self.events]}")

    async def close(self) -> None:
        self._task.cancel()
        self.response.close()


async def open_stream(session: aiohttp.ClientSession, app_runner) -> Stream:
    resp = await session.get(app_runner.base_url + "/api/events",
                             headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return Stream(resp)


async def test_given_no_token_when_events_opened_then_401(app, app_runner):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        async with session.get(app_runner.base_url + "/api/events") as resp:
            assert resp.status == 401
            assert (await resp.json())["error_id"] == "unauthorized"
        async with session.get(app_runner.base_url + "/api/events",
                               headers={"Authorization": "Bearer wrong"}) as resp:
            assert resp.status == 401
    assert app[live_events_key].clients == 0


@pytest.mark.policy(SHORT_HOLD)
async def test_given_stream_open_when_call_held_with_two_check_ins_then_steps_streamed_in_order(
        app, app_runner, parties, ari):
    callers, phones, observer = parties
    async with aiohttp.ClientSession() as session:
        stream = await open_stream(session, app_runner)
        try:
            ours, call_id = await connected_call(callers, ari)
            await stream.wait_for(lambda n, d: n == "inbound:call_started"
                                  and d["call_id"] == call_id)
            status, body = await app_runner.api("POST", f"/api/calls/{call_id}/hold",
                                                {"reason": "lookup"})
            assert status == 202, body
            intro = await wait_prompt(observer, call_id, "hold-intro")
            first = await wait_prompt(observer, call_id, "checkin-1", after=intro["_t"])
            await wait_prompt(observer, call_id, "checkin-2", after=first["_t"])
            # the app has taken the second check-in's end too (its socket is not the
            # observer's): the music is back before the resume
            await stream.wait_for(lambda n, d: n == "hold:state_changed" and sum(
                1 for m, e in stream.events if m == "hold:state_changed"
                and e["new"] == "holding") == 3)
            status, _ = await app_runner.api("DELETE", f"/api/calls/{call_id}/hold")
            assert status == 202
            await stream.wait_for(lambda n, d: n == "hold:ended")
            # the call takes its caller back after the hold's end: its own step, just after
            await stream.wait_for(lambda n, d: n == "inbound:state_changed"
                                  and d["call_id"] == call_id and d["old"] == "held")

            held = [(n, d) for n, d in stream.events if n.startswith("hold:")]
            assert all(d["call_id"] == call_id and d["rule"] == "hold" for _, d in held)
            assert all(d["operator"] == "PJSIP/operator1" for _, d in held)
            names = [n for n, _ in held]
            assert names[0] == "hold:started" and names[-1] == "hold:ended", names
            assert held[0][1]["data"]["reason"] == "lookup"
            check_ins = [d for n, d in held if n == "hold:check_in_played"]
            assert [d["data"]["prompt"] for d in check_ins] == ["checkin-1", "checkin-2"]
            assert all(d["at"] >= d["data"]["due_at"] for d in check_ins)
            states = [(d["old"], d["new"]) for n, d in held if n == "hold:state_changed"]
            assert states == [("announcing", "holding"), ("holding", "checking_in"),
                              ("checking_in", "holding"), ("holding", "checking_in"),
                              ("checking_in", "holding"), ("holding", "resuming"),
                              ("resuming", "ended")], states
            # the steps come in the order they happened
            stamps = [d["at"] for _, d in held]
            assert stamps == sorted(stamps)
            call_steps = [(d["old"], d["new"]) for n, d in stream.events
                          if n == "inbound:state_changed" and d["call_id"] == call_id]
            assert ("connected", "held") in call_steps and ("held", "connected") in call_steps

            # the operator's etiquette log of the day holds the same hold steps
            log = app[etiquette_log_key]
            day = time.strftime("%Y-%m-%d", time.gmtime(check_ins[0]["at"]))
            entries = [e for e in await log.read_operator("PJSIP/operator1", day)
                       if e["call_id"] == call_id and e["rule"] == "hold"]
            assert [e["step"] for e in entries] == [n for n in names if n != "hold:state_changed"]
            await callers.hang_up(ours)
            await stream.wait_for(lambda n, d: n == "inbound:call_ended")
        finally:
            await stream.close()
    for _ in range(30):  # the app notices the client left within a second or two
        if app[live_events_key].clients == 0:
            break
        await asyncio.sleep(0.1)
    assert app[live_events_key].clients == 0
