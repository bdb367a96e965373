"""What one ARI request costs the app's process: over HTTP (our AriClient on aiohttp, as the app
sends every request today) against REST over the events WebSocket (Asterisk 22's RESTRequest /
RESTResponse messages), side by side in one run, against a real sandbox Asterisk.

    ~/.cache/ari-etiquette/venv/bin/python bench/ari_transport.py --channels 30 --rounds 200

The requests are a check-in's own: music on hold started and stopped on callers parked in
Stasis (Local channels), one request at a time per caller (a check-in awaits each answer), all
callers at once. Measured: this process's CPU per request (time.process_time, the client's
whole share: building, sending, reading, parsing the answer), and the round trip's p50/p99.
Not a test: no assertion on speed. Prints figures and writes JSON and a Markdown table to
bench/results/. Why: a check-in is three such requests, and the hold bench's profile puts
aiohttp's client and the sockets under most of the app's CPU per check-in (issue 14).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.ari import AriClient  # noqa: E402
from ari_app.ari import operations as ops  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    SandboxInstance, SandboxPorts, interrupt_on_sigterm)

APP, PARKED = "bench-transport", "ari-etiquette"  # the callers' side, the inbound side


class WebSocketRest:
    """REST over the events WebSocket: one socket, answers matched by request id."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.waiting: dict[str, asyncio.Future] = {}
        self.ids = itertools.count()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data.get("type") == "RESTResponse":
                future = self.waiting.pop(data.get("request_id"), None)
                if future is not None and not future.done():
                    future.set_result(data)

    async def request(self, method: str, uri: str) -> dict:
        rid = str(next(self.ids))
        future = asyncio.get_running_loop().create_future()
        self.waiting[rid] = future
        await self.ws.send_str(json.dumps({"type": "RESTRequest", "request_id": rid,
                                           "method": method, "uri": uri}))
        answer = await future
        if answer.get("status_code", 500) >= 400:
            raise RuntimeError(f"{method} {uri}: {answer.get('status_code')} "
                               f"{answer.get('message_body')}")
        return answer


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def load(send, channels: list[str], rounds: int) -> dict:
    """Every caller: music on, music off, `rounds` times, one request at a time; all at once."""
    latencies: list[float] = []

    async def caller(channel: str) -> None:
        for _ in range(rounds):
            for start in (True, False):
                t = time.perf_counter()
                await send(channel, start)
                latencies.append((time.perf_counter() - t) * 1000)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(c) for c in channels))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = len(latencies)
    return {"requests": n, "cpu_ms_per_request": round(cpu * 1000 / n, 4),
            "requests_per_s": round(n / wall), "p50_ms": round(pct(latencies, 50), 2),
            "p99_ms": round(pct(latencies, 99), 2),
            "mean_ms": round(statistics.fmean(latencies), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=200, help="music on/off pairs per caller")
    parser.add_argument("--repeat", type=int, default=3, help="alternations of the two transports")
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    state = instance.up(SandboxPorts.free(), phones="none")
    env = instance.app_env(state)
    ari = AriClient(env["ETIQUETTE_ARI_URL"], env["ETIQUETTE_ARI_USER"],
                    env["ETIQUETTE_ARI_PASSWORD"])
    ws = await ari.session.ws_connect(ari.api.replace("http", "ws", 1) + "/events",
                                      params={"app": f"{APP},{PARKED}"})
    rest = WebSocketRest(ws)
    channels: list[str] = []
    try:
        for i in range(args.channels):
            tag = uuid.uuid4().hex[:10]
            await ari.originate("Local/100@etiquette-inbound/n", app=APP, channel_id=f"bt-{tag}",
                                other_channel_id=f"call-{tag}", timeout=30)
            channels.append(f"call-{tag}")  # the half in Stasis (the other waits for an answer)
        await asyncio.sleep(1)  # the parked halves reach Stasis (nothing measured yet)

        async def over_http(channel: str, start: bool) -> None:
            if start:
                await ari.call(ops.START_MOH, channelId=channel)
            else:
                await ari.call(ops.STOP_MOH, channelId=channel)

        async def over_ws(channel: str, start: bool) -> None:
            await rest.request("POST" if start else "DELETE", f"channels/{channel}/moh")

        await load(over_http, channels, 5)  # warm both: pooled connections, first frames
        await load(over_ws, channels, 5)
        runs = []
        for r in range(args.repeat):
            for name, send in (("http", over_http), ("websocket", over_ws)):
                figures = await load(send, channels, args.rounds)
                runs.append({"transport": name, "repeat": r + 1, **figures})
                print(json.dumps(runs[-1]))
    finally:
        await asyncio.gather(*(ari.hangup(c) for c in channels), return_exceptions=True)
        await asyncio.sleep(0.5)
        rest.reader.cancel()
        await ws.close()
        await ari.close()
        instance.destroy()
    http = [r["cpu_ms_per_request"] for r in runs if r["transport"] == "http"]
    wsr = [r["cpu_ms_per_request"] for r in runs if r["transport"] == "websocket"]
    result = {"asterisk": state.suite, "channels": args.channels, "rounds": args.rounds,
              "runs": runs, "websocket_over_http_cpu": [round(w / h, 2) for w, h in zip(wsr, http)]}
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"ari_transport-{stamp}.json").write_text(json.dumps(result, indent=2))
    table = ["| transport | repeat | requests | CPU ms/request | requests/s | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['transport']} | {r['repeat']} | {r['requests']} | {r['cpu_ms_per_request']} "
              f"| {r['requests_per_s']} | {r['p50_ms']} | {r['p99_ms']} |" for r in runs]
    (out / f"ari_transport-{stamp}.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print("websocket / http CPU per request:", result["websocket_over_http_cpu"])


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
