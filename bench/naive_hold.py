"""The reference for bench/hold_checkins.py --naive: the least a hold with check-ins must do on
ARI, written plainly.

    python bench/naive_hold.py --ari http://127.0.0.1:8088/ari --password SECRET \
        --redis redis://127.0.0.1:6379/0 --interval 25 --spread

aiohttp + redis-py in one process, on the same Stasis app as ours. A caller is answered and
given an operator (a Local leg the bench answers, as ours dials one), the two in a bridge. On
SIGUSR1 every caller goes on hold, spread over one interval with --spread: out of the bridge,
an announcement, then music; a check-in plays the next of the three check-in prompts to the
caller and the hold nudge to the operator, the prompt's end puts the music back, and the next
check-in is due an interval after this one started but never before 2 s of music
(ari_app/calls/pacing.py). Each step writes the caller's state with one plain SET. That is a
check-in's ARI work as ours does it (two prompts, the music back) and a write per step; it
reads only the events it needs (StasisStart, StasisEnd, PlaybackFinished), where ours also
reads each PlaybackStarted for the call's timeline. No lease or fencing, no timeline, no call
events, metrics or logs, no menu or way out, no restart or outage handling: what ours does
beyond this is what it costs. Not part of the app; the bench starts it as its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time

import aiohttp
import redis.asyncio as aioredis

CHECK_INS = ("checkin-1", "checkin-2", "checkin-3")
MIN_MUSIC = 2.0
WANTED = ("StasisStart", "StasisEnd", "PlaybackFinished")


class NaiveHold:
    def __init__(self, http: aiohttp.ClientSession, base: str, redis: aioredis.Redis,
                 interval: float, spread: bool) -> None:
        self.http, self.base, self.redis = http, base, redis
        self.interval, self.spread = interval, spread
        self.calls: dict[str, dict] = {}   # caller id -> its hold
        self.loop = asyncio.get_running_loop()

    async def ari(self, method: str, path: str, **params) -> None:
        params = {k: v for k, v in params.items() if v is not None}
        async with self.http.request(method, f"{self.base}{path}", params=params) as resp:
            await resp.read()
            if resp.status >= 300:
                print(f"{method} {path}: {resp.status}", file=sys.stderr, flush=True)

    async def save(self, call_id: str) -> None:
        await self.redis.set(f"naive:{call_id}", json.dumps(self.calls[call_id]), ex=3600)

    # --- what Asterisk says --------------------------------------------------------------------
    async def on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind == "StasisStart" and "~" not in event["channel"]["id"]:
            call_id = event["channel"]["id"]
            self.calls[call_id] = {"state": "talking", "check_ins": 0, "began": None}
            await self.ari("POST", f"/channels/{call_id}/answer")
            await self.ari("POST", "/channels",
                           endpoint=f"Local/n{len(self.calls)}@sandbox-phones",
                           app="ari-etiquette", channelId=f"{call_id}~op", timeout=60,
                           formats="ulaw")  # as ours: else the bridge resamples all along
            await self.save(call_id)
        elif kind == "StasisStart" and event["channel"]["id"].endswith("~op"):
            call_id = event["channel"]["id"].removesuffix("~op")  # the operator answered: talk
            await self.ari("POST", "/bridges", type="mixing", bridgeId=f"{call_id}~talk")
            await self.ari("POST", f"/bridges/{call_id}~talk/addChannel",
                           channel=f"{call_id},{call_id}~op")
        elif kind == "PlaybackFinished":
            call_id, _, what = event["playback"]["id"].partition("~")
            hold = self.calls.get(call_id)
            if hold is None or "-caller~" not in what:
                return  # the operator's nudge: nothing waits for its end
            hold["state"] = "music"
            await self.save(call_id)
            await self.ari("POST", f"/channels/{call_id}/moh")
            now = time.time()
            due = (max(hold["began"] + self.interval, now + MIN_MUSIC) if hold["began"]
                   else now + self.interval)  # after the announcement: a whole interval
            self.loop.call_later(due - now, self.due, call_id)
        elif kind == "StasisEnd" and "~" not in event["channel"]["id"]:
            self.calls.pop(event["channel"]["id"], None)

    # --- the hold ------------------------------------------------------------------------------
    def hold_all(self) -> None:
        callers = list(self.calls)
        for i, call_id in enumerate(callers):
            delay = i * self.interval / len(callers) if self.spread else 0.0
            self.loop.call_later(delay, lambda c=call_id: self.task(self.hold(c)))

    async def hold(self, call_id: str) -> None:
        """Why the caller waits first (as ours: the announcement, then the music)."""
        self.calls[call_id].update(state="announcing", since=time.time())
        await self.save(call_id)
        await self.ari("POST", f"/bridges/{call_id}~talk/removeChannel", channel=call_id)
        await self.ari("POST", f"/channels/{call_id}/play",
                       media="sound:etiquette/hold-intro,sound:etiquette/hold-no-reason",
                       playbackId=f"{call_id}~intro-caller~hold-intro")

    def due(self, call_id: str) -> None:
        if call_id in self.calls:
            self.task(self.check_in(call_id))

    def task(self, coro) -> None:
        """A step in its own task; what it raised goes to stderr (the bench's log)."""
        self.loop.create_task(coro).add_done_callback(
            lambda t: t.cancelled() or t.exception() is None
            or print(f"naive step failed: {t.exception()!r}", file=sys.stderr, flush=True))

    async def check_in(self, call_id: str) -> None:
        hold = self.calls.get(call_id)
        if hold is None:  # hung up since it was due
            return
        hold.update(state="checking-in", began=time.time(), check_ins=hold["check_ins"] + 1)
        await self.save(call_id)
        n = hold["check_ins"]
        prompt = CHECK_INS[(n - 1) % len(CHECK_INS)]
        # the prompt ends the music itself (Asterisk deactivates the generator), as in ours
        await self.ari("POST", f"/channels/{call_id}/play", media=f"sound:etiquette/{prompt}",
                       playbackId=f"{call_id}~checkin{n}-caller~{prompt}")
        held = round(time.time() - hold["since"])
        await self.ari("POST", f"/channels/{call_id}~op/play",
                       media=f"sound:etiquette/operator-nudge-hold,number:{held},sound:seconds",
                       playbackId=f"{call_id}~nudge{n}-operator~nudge")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ari", required=True, help="ARI's base URL, e.g. http://host:8088/ari")
    parser.add_argument("--user", default="etiquette")
    parser.add_argument("--password", required=True)
    parser.add_argument("--app", default="ari-etiquette")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--interval", type=float, default=25.0)
    parser.add_argument("--spread", action="store_true")
    args = parser.parse_args()
    auth = {"Authorization": aiohttp.encode_basic_auth(args.user, args.password)}
    redis = aioredis.from_url(args.redis)
    async with aiohttp.ClientSession(headers=auth) as http:
        naive = NaiveHold(http, args.ari.rstrip("/"), redis, args.interval, args.spread)
        naive.loop.add_signal_handler(signal.SIGUSR1, naive.hold_all)
        stop = asyncio.Event()
        naive.loop.add_signal_handler(signal.SIGTERM, stop.set)
        ws_url = args.ari.rstrip("/").replace("http", "ws", 1) + "/events"
        async with http.ws_connect(ws_url, params={"app": args.app}) as ws:
            # only the events it reads, as ours asks (Asterisk sends nothing else)
            async with http.put(f"{naive.base}/applications/{args.app}/eventFilter",
                                json={"allowed": [{"type": t} for t in WANTED]}) as resp:
                resp.raise_for_status()
            print("ready", flush=True)
            reader = asyncio.create_task(_read(ws, naive))
            await stop.wait()
            reader.cancel()
    await redis.aclose()


async def _read(ws: aiohttp.ClientWebSocketResponse, naive: NaiveHold) -> None:
    async for message in ws:
        if message.type is aiohttp.WSMsgType.TEXT:
            naive.task(naive.on_event(json.loads(message.data)))


if __name__ == "__main__":
    asyncio.run(main())
