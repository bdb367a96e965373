"""kill -9 of the app with a hundred callers waiting and a transfer ringing (issue 14): every
caller is still on the line, each hears a check-in again within one interval of the app being
back, and the transfer whose target's phone was ringing at the kill completes when the target
answers after the restart (introduced, accepted, bridged with the caller).

The app runs as its own process (`ari-etiquette run`) and is started again at once with the
same settings, as a service manager would; its state is in Redis. Callers wait in a queue
(check-ins every 6 s); operator1 is in wrap-up after the transfer, so the queue stays as it
is. `ETIQUETTE_CROWD=300` runs it at 300 callers."""

from __future__ import annotations

import time

import aiohttp
import pytest

from ari_app.ari import operations as ops

from conftest import API_TOKEN
from harness import AppProcess
from test_first_call import talk_bridge_with
from test_hold import wait_prompt
from test_redis_restart import AUTH, CROWD, INTERVAL, POLICY, app_and_crowd, nothing_left

pytestmark = pytest.mark.integration
KILLED = POLICY.replace("wrap_up = 0", "wrap_up = 300") + "\n[transfer]\nring_timeout = 30\n"


async def api(app: AppProcess, method: str, path: str, body: dict | None = None):
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.request(method, app.base_url + path, json=body) as r:
            return r.status, await r.json(content_type=None)


@pytest.mark.timeout(300)
@pytest.mark.policy(KILLED)
async def test_given_hundred_callers_and_a_transfer_ringing_when_app_killed_then_all_kept_and_transfer_completes(
        settings, parties, ari, redis, tmp_path):
    callers, phones, observer = parties
    app, crowd = await app_and_crowd(settings, tmp_path, parties)
    try:
        first, first_id = await crowd.waiting(parties, ari)

        # operator1 transfers their caller to billing (operator2), whose phone rings unanswered
        phones.mode["operator2"] = "ignore"
        status, body = await api(app, "POST", f"/api/calls/{first_id}/transfer",
                                 {"target": "billing", "reason": "question"})
        assert status == 202, body
        await wait_prompt(observer, first_id, "transfer-announce", "PlaybackStarted", timeout=20)
        await ari.call(ops.SEND_DTMF, channelId=first, dtmf="1")  # the caller goes on
        ringing = await phones.wait_for(
            lambda e: e.get("type") == "StasisStart" and (e.get("args") or [""])[1:2] == [
                "operator2"], timeout=20, what="operator2's phone ringing")

        app.proc.kill()  # no goodbye: whatever was in memory is gone
        await app.proc.wait()
        killed = time.time()
        app = await AppProcess(settings, tmp_path, settings.ari_app, API_TOKEN,
                               ETIQUETTE_CALLBACK_DIALER="false").start()
        up = time.time()

        # everybody is still on the line, and hears a check-in within one interval
        alive = {c["id"] for c in await ari.channels()}
        assert set(crowd.legs) <= alive and {first, first_id} <= alive, "a caller was dropped"
        heard = await crowd.all_heard("queue-checkin-", timeout=INTERVAL + 10, since=up)
        resumed = sorted(times[0] - up for times in heard.values())
        assert resumed[-1] <= INTERVAL + 3, f"a check-in {resumed[-1]:.1f} s after the restart"

        # the target answers now: introduced to the caller, accepts, and they are connected
        phone = ringing["channel"]["id"]
        await ari.answer(phone)
        await ari.call(ops.START_SILENCE, channelId=phone)
        leg = f"{first_id}~tx1"
        await wait_prompt(observer, leg, "transfer-intro-to-target", timeout=20)
        await ari.call(ops.SEND_DTMF, channelId=phone, dtmf="1")
        await talk_bridge_with(ari, first_id, leg, timeout=20)
        print(f"kill -9 with {CROWD} callers and a transfer ringing: back {up - killed:.1f} s "
              f"after the kill; first check-in after it p50 {resumed[len(resumed) // 2]:.1f} s, "
              f"max {resumed[-1]:.1f} s; the transfer completed")
    finally:
        code = await crowd.end(app, redis)
    await nothing_left(app, code, ari, redis)
