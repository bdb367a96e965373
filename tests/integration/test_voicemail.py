"""Voice messages after they are left: the webhook is told, and an operator's tool lists them,
downloads the audio from Asterisk, marks them heard and deletes them (real Asterisk, Redis)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from ari_app.ari import operations as ops

from conftest import API_TOKEN
from test_hold import connected_call, wait_prompt

pytestmark = pytest.mark.integration


async def test_given_voicemail_left_when_webhook_and_rest_used_then_notified_listed_played_heard_deleted(
        app_runner, settings, parties, ari, redis, spool):
    received: list[dict] = []
    hook = web.Application()

    async def on_post(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.json_response({"ok": True})

    hook.router.add_post("/hooks/voicemail", on_post)
    runner = web.AppRunner(hook)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    app_runner.settings = settings.model_copy(
        update={"voicemail_webhook": f"http://127.0.0.1:{port}/hooks/voicemail"})
    try:
        await app_runner.start()
        callers, phones, observer = parties
        ours, call_id = await connected_call(callers, ari)
        await app_runner.api("POST", f"/api/calls/{call_id}/hold", {"reason": "lookup"})
        await wait_prompt(observer, call_id, "hold-fallback-menu", "PlaybackStarted", timeout=30)
        await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="2")
        await wait_prompt(observer, call_id, "voicemail-intro", timeout=15)
        await ari.play(ours, "sound:queue-thankyou", playback_id=f"speak-{ours}")
        await callers.wait_for(lambda e: e.get("type") == "PlaybackFinished"
                               and e["playback"]["id"] == f"speak-{ours}", what="caller spoke")
        await ari.call(ops.SEND_DTMF, channelId=ours, dtmf="#")
        await wait_prompt(observer, call_id, "voicemail-saved", timeout=15)
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.1)
        assert len(received) == 1 and received[0]["event"] == "voicemail"
        vm = received[0]["voicemail"]
        assert (vm["call_id"], vm["for_whom"]) == (call_id, "PJSIP/operator1")

        status, body = await app_runner.api("GET", "/api/voicemails?for=PJSIP/operator1&heard=false")
        assert status == 200 and [v["id"] for v in body["voicemails"]] == [vm["id"]]
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_TOKEN}"}) as s:
            async with s.get(f"{app_runner.base_url}/api/voicemails/{vm['id']}/audio") as resp:
                audio = await resp.read()
                assert resp.status == 200 and resp.content_type == "audio/wav"
        assert audio[:4] == b"RIFF" and len(audio) > 8000
        status, body = await app_runner.api("POST", f"/api/voicemails/{vm['id']}/heard")
        assert (status, body["heard"]) == (200, True)
        status, body = await app_runner.api("GET", "/api/voicemails?heard=false")
        assert body["voicemails"] == []
        status, _ = await app_runner.api("DELETE", f"/api/voicemails/{vm['id']}")
        assert status == 200
        assert not (spool / f"{vm['recording']}.wav").exists(), "the recording is gone too"
        status, body = await app_runner.api("GET", f"/api/voicemails/{vm['id']}")
        assert (status, body["error_id"]) == (404, "no-such-voicemail")
        status, _ = await app_runner.api("GET", "/api/voicemails", token=None)
        assert status == 401
        await wait_prompt(observer, f"{call_id}~op1", "operator-freed-voicemail", timeout=15)
    finally:
        await runner.cleanup()
