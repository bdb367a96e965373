"""ARI round trip and event-to-action latency, against a real sandbox Asterisk and Redis.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/ari_latency.py --pings 2000 --calls 300

1. REST round trip: sequential GET /asterisk/ping through our client (p50/p99), then the same
   number fired concurrently (the pool must not serialise a burst).
2. Event-to-action: a burst of N Local-channel callers dials the inbound extension at once. An
   observer (its own WebSocket, subscribeAll) stamps each caller's StasisStart and the
   PlaybackStarted of its greeting: the gap is the app's whole reaction (queue, Redis load and
   save, answer and play over REST) plus Asterisk starting the playback.
Not a test: no assertion on speed. Prints figures and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.app import build_app  # noqa: E402
from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.keys import inbound_key  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.policy import load_policy  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import SandboxInstance, SandboxPorts  # noqa: E402
from ari_app.settings import Settings  # noqa: E402

POLICY = """
company = "Example Corp"
[operators]
endpoints = ["PJSIP/operator1"]
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> dict:
    return {"n": len(values_ms), "p50_ms": round(pct(values_ms, 50), 2),
            "p99_ms": round(pct(values_ms, 99), 2), "max_ms": round(max(values_ms), 2),
            "mean_ms": round(statistics.fmean(values_ms), 2)}


async def bench_pings(ari: AriClient, n: int) -> dict:
    await ari.ping()
    seq = []
    for _ in range(n):
        t = time.perf_counter()
        await ari.ping()
        seq.append((time.perf_counter() - t) * 1000)
    t0 = time.perf_counter()

    async def one() -> float:
        t = time.perf_counter()
        await ari.ping()
        return (time.perf_counter() - t) * 1000

    burst = await asyncio.gather(*(one() for _ in range(n)))
    return {"sequential": summary(seq), "concurrent": summary(list(burst)),
            "concurrent_total_s": round(time.perf_counter() - t0, 3)}


async def bench_calls(ari: AriClient, app: web.Application, n: int) -> dict:
    starts: dict[str, float] = {}
    greets: dict[str, float] = {}
    done = asyncio.Event()

    def on_event(e: dict) -> None:
        now = time.perf_counter()
        kind = e.get("type")
        if kind == "StasisStart" and e.get("application") == "ari-etiquette":
            starts.setdefault(e["channel"]["id"], now)
        elif kind == "PlaybackStarted" and e["playback"]["id"].endswith("~greeting"):
            greets.setdefault(e["playback"]["target_uri"].split(":", 1)[1], now)
            if len(greets) >= n:
                done.set()

    observer = EventStream(ari, "bench-observer", on_event, subscribe_all=True)
    callers = EventStream(ari, "bench-caller", lambda e: None)
    tasks = [asyncio.create_task(s.run()) for s in (observer, callers)]
    await asyncio.gather(observer.connected.wait(), callers.connected.wait())
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    tags = [uuid.uuid4().hex[:10] for _ in range(n)]
    await asyncio.gather(*(ari.originate("Local/100@etiquette-inbound/n", app="bench-caller",
                                         channel_id=f"bc-{t}", other_channel_id=f"call-{t}",
                                         caller_id=f'"Bench" <+1212555{i:04d}>', timeout=30)
                           for i, t in enumerate(tags)))
    originated = time.perf_counter() - t0
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        pass
    elapsed = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    gaps = [(greets[c] - starts[c]) * 1000 for c in greets if c in starts]
    lanes_peak = len(app[inbound_key].lanes)
    await asyncio.gather(*(ari.hangup(f"bc-{t}") for t in tags), return_exceptions=True)
    await asyncio.sleep(2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"calls": n, "greeted": len(greets), "originate_burst_s": round(originated, 3),
            "all_greeted_s": round(elapsed, 3), "event_to_greeting": summary(gaps) if gaps else None,
            "process_cpu_s": round((ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), 2),
            "lanes_still_busy_after": lanes_peak}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    state = instance.up(SandboxPorts.free(), phones="none",
                        prompts_dir_hook=lambda d: install_prompts(d, {"company": "Example Corp"},
                                                                   ("en", "ru")))
    env = instance.app_env(state)
    policy_file = instance.dir / "bench-policy.toml"
    policy_file.write_text(POLICY)
    settings = Settings(ari_url=env["ETIQUETTE_ARI_URL"], ari_password=env["ETIQUETTE_ARI_PASSWORD"],
                        redis_url=env["ETIQUETTE_REDIS_URL"], policy_file=policy_file,
                        _env_file=None)
    app = build_app(settings, load_policy(policy_file))
    runner = web.AppRunner(app)
    await runner.setup()
    ari = AriClient(settings.ari_url, settings.ari_user, env["ETIQUETTE_ARI_PASSWORD"])
    try:
        result = {"asterisk": state.suite, "pings": await bench_pings(ari, args.pings),
                  "burst": await bench_calls(ari, app, args.calls)}
    finally:
        await ari.close()
        await runner.cleanup()
        instance.destroy()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"ari_latency-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    asyncio.run(main())
