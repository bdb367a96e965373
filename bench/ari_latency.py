"""ARI round trip and event-to-action latency, against a real sandbox Asterisk and Redis.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/ari_latency.py --pings 2000 --calls 300

1. REST round trip: sequential GET /asterisk/ping through our client (p50/p99), then the same
   number fired concurrently (the pool must not serialise a burst).
2. Event-to-action: a burst of N Local-channel callers dials the inbound extension at once. An
   observer (its own WebSocket, subscribeAll) stamps each caller entering Stasis() (its
   ChannelDialplan event) and the PlaybackStarted of its greeting: the gap is Asterisk's
   StasisStart delivery, the app's whole reaction (lane queue, Redis load and save, answer and
   play over REST) and Asterisk starting the playback.
Not a test: no assertion on speed. Prints figures and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.ari import operations as ops  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    SandboxInstance, SandboxPorts, interrupt_on_sigterm)
from ari_app.settings import Settings  # noqa: E402
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench_calls(ari: AriClient, app_pid: int, n: int, rate: float | None) -> dict:
    starts: dict[str, float] = {}
    greets: dict[str, float] = {}
    done = asyncio.Event()

    def on_event(e: dict) -> None:
        now = time.perf_counter()
        kind = e.get("type")
        if kind == "ChannelDialplan" and e.get("dialplan_app") == "Stasis":
            starts.setdefault(e["channel"]["id"], now)  # the call enters Stasis() right now
        elif kind == "PlaybackStarted" and e["playback"]["id"].endswith("~greeting"):
            greets.setdefault(e["playback"]["target_uri"].split(":", 1)[1], now)
            if len(greets) >= n:
                done.set()

    observer = EventStream(ari, "bench-observer", on_event, subscribe_all=True)
    callers = EventStream(ari, "bench-caller", lambda e: None)
    tasks = [asyncio.create_task(s.run()) for s in (observer, callers)]
    await asyncio.gather(observer.connected.wait(), callers.connected.wait())
    cpu0 = cpu_seconds(app_pid)
    t0 = time.perf_counter()
    tags = [uuid.uuid4().hex[:10] for _ in range(n)]

    async def dial(i: int, tag: str) -> None:
        if rate:
            await asyncio.sleep(i / rate)
        await ari.originate("Local/100@etiquette-inbound/n", app="bench-caller",
                            channel_id=f"bc-{tag}", other_channel_id=f"call-{tag}",
                            caller_id=f'"Bench" <+1212555{i:04d}>', timeout=30)

    await asyncio.gather(*(dial(i, t) for i, t in enumerate(tags)))
    originated = time.perf_counter() - t0
    try:
        await asyncio.wait_for(done.wait(), 60)
    except asyncio.TimeoutError:
        pass
    elapsed = time.perf_counter() - t0
    app_cpu = cpu_seconds(app_pid) - cpu0
    gaps = [(greets[c] - starts[c]) * 1000 for c in greets if c in starts]
    await asyncio.gather(*(ari.hangup(f"bc-{t}") for t in tags), return_exceptions=True)
    await asyncio.sleep(2)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"calls": n, "rate_per_s": rate or "all at once", "greeted": len(greets),
            "originate_s": round(originated, 3), "all_greeted_s": round(elapsed, 3),
            "event_to_greeting": summary(gaps) if gaps else None,
            "app_cpu_s": round(app_cpu, 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pings", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=300, help="burst: all dialed at once")
    parser.add_argument("--paced-calls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="paced calls per second")
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
    env_file = instance.dir / "app.env"
    app_env = {**os.environ, "ETIQUETTE_POLICY_FILE": str(policy_file), "ETIQUETTE_HTTP_PORT": "0",
               "ETIQUETTE_LOG_LEVEL": "WARNING", "ETIQUETTE_LOG_FORMAT": "json"}
    app = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ari_app.cli", "run", "--env-file", str(env_file), env=app_env,
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    ari = AriClient(settings.ari_url, settings.ari_user, env["ETIQUETTE_ARI_PASSWORD"])
    try:
        for _ in range(100):  # until the app's events socket is registered
            apps = await ari.call(ops.APPLICATIONS)
            if any(a["name"] == settings.ari_app for a in apps):
                break
            await asyncio.sleep(0.1)
        result = {"asterisk": state.suite, "pings": await bench_pings(ari, args.pings),
                  "paced": await bench_calls(ari, app.pid, args.paced_calls, args.rate),
                  "burst": await bench_calls(ari, app.pid, args.calls, None)}
    finally:
        app.terminate()
        await app.wait()
        await ari.close()
        instance.destroy()
    print(json.dumps(result, indent=2))
    report.write("ari_latency", result)


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
