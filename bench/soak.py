"""Soak: `--calls` callers cycling for `--minutes` against a real sandbox Asterisk and Redis,
the app as its own process (`ari-etiquette run`).

    ETIQUETTE_CACHE_DIR=~/.cache/ari-etiquette ~/.cache/ari-etiquette/venv/bin/python bench/soak.py --calls 200 --minutes 30

Each of `--calls` slots runs one caller after another, for as long as the soak lasts: the
caller dials in over a Local channel (greeting), waits in the queue when every operator is
busy (its check-ins), talks with an operator (a Local destination the bench answers; there
are `--operators` of them, fewer than the slots, so some callers always wait), is put on hold
over the REST API (the reason, music, check-ins), resumed, talks a little more and hangs up;
then the next caller of that slot dials in. Check-ins every 5 s on hold and in the queue.

Sampled every `--every` s: the app's RSS and asyncio tasks (/healthz `asyncio_tasks`), its
call lanes, Redis' memory and key count, Asterisk's channels and bridges, the calls done. At
the end every caller hangs up and the bench waits for the app to settle, then reads what is
left: Asterisk's channels, bridges and stored recordings; Redis' keys by kind, with and
without an expiry (the etiquette log and the timelines are kept for their retention: they must
have an expiry; nothing of a call may be left without one); the app's error lines.
Reported: growth of the app's RSS and task count under load, as means over `--window` minutes
after `--warm` minutes and over the last `--window` minutes (target: under 5 %), and the idle
task count before and after (the bench's HTTP connections closed first: the server holds a
task for each open keep-alive connection). Not a test: prints figures and writes JSON and Markdown to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.ari import operations as ops  # noqa: E402
from ari_app.ari.operations import Op  # noqa: E402
from ari_app.storage import Keyspace  # noqa: E402
from ari_app.sandbox.instance import PHONE_APP, interrupt_on_sigterm  # noqa: E402
from hold_checkins import (_quiet, asterisk_pid, command_line, free_port, proc_cpu,  # noqa: E402
                           proc_rss_mb, wait_healthy)

TOKEN = uuid.uuid4().hex
BRIDGE = Op("GET", "/bridges/{bridgeId}")
KEYS = Keyspace()
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def policy_text(operators: int) -> str:
    endpoints = ", ".join(f'"Local/sop{i}@sandbox-phones"' for i in range(operators))
    return (f'company = "Example Corp"\n[operators]\nendpoints = [{endpoints}]\nwrap_up = 0\n'
            "[recording]\nenabled = false\n"
            "[hold]\ncheck_in_interval = 5\nfallback_after = 180\n"
            '[[queues]]\nname = "soak"\ncheck_in_interval = 5\nthreshold = 180\nmax_wait = 900\n'
            'max_waiting = 1000\nhours = "00:00-23:59"\n')


class Soak:
    def __init__(self, args, env: dict, base_url: str) -> None:
        self.args, self.base_url = args, base_url
        self.ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])
        self.done = 0
        self.problems: Counter = Counter()
        self.running = True
        self.live: set[str] = set()

    async def slot(self, http: aiohttp.ClientSession, n: int) -> None:
        """One line into the call center: a caller after another until the soak ends."""
        await asyncio.sleep(random.uniform(0, 20))  # the slots start spread out
        while self.running:
            tag = uuid.uuid4().hex[:10]
            ours, call_id = f"sc-{tag}", f"call-{tag}"
            self.live.add(ours)
            try:
                await self.ari.originate("Local/100@etiquette-inbound/n", app="soak-caller",
                                         channel_id=ours, other_channel_id=call_id,
                                         caller_id=f'"Soak" <+1212555{n:04d}>', timeout=60)
                if not await self._talking(call_id, timeout=300):
                    if self.running:  # still waiting when the soak ends is no problem
                        self.problems["never put through"] += 1
                    continue
                await asyncio.sleep(random.uniform(3, 6))  # talk
                async with http.post(f"{self.base_url}/api/calls/{call_id}/hold", headers=HEADERS,
                                     json={"reason": "lookup"}) as r:
                    if r.status != 202:
                        self.problems[f"hold {r.status}"] += 1
                await asyncio.sleep(random.uniform(8, 14))  # on hold: two check-ins or so
                async with http.delete(f"{self.base_url}/api/calls/{call_id}/hold",
                                       headers=HEADERS) as r:
                    if r.status not in (200, 202):
                        self.problems[f"resume {r.status}"] += 1
                await asyncio.sleep(random.uniform(2, 4))  # talk again
                self.done += 1
            except Exception as exc:  # counted, never fatal: the soak goes on
                self.problems[type(exc).__name__] += 1
            finally:
                await _quiet(self.ari.hangup(ours))
                self.live.discard(ours)
            await asyncio.sleep(random.uniform(0.5, 2))

    async def _talking(self, call_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            try:
                bridge = await self.ari.call(BRIDGE, bridgeId=f"{call_id}~talk")
                if len(bridge.get("channels", [])) == 2:
                    return True
            except Exception:
                pass
            await asyncio.sleep(1.0)  # polling the call's talk bridge (a load generator)
        return False


async def sample(soak: Soak, app, ast_pid: int, redis: Redis, http, t0: float) -> dict:
    async with http.get(f"{soak.base_url}/healthz") as r:
        health = await r.json()
    info = await redis.info("memory")
    return {"t_min": round((time.time() - t0) / 60, 2), "calls_done": soak.done,
            "app_rss_mb": round(proc_rss_mb(app.pid), 1), "app_cpu_s": round(proc_cpu(app.pid), 1),
            "asterisk_cpu_s": round(proc_cpu(ast_pid), 1),
            "asyncio_tasks": health.get("asyncio_tasks"), "call_lanes": health.get("active_call_lanes"),
            "healthz": health.get("status"),
            "redis_used_mb": round(info["used_memory"] / 2**20, 2), "redis_keys": await redis.dbsize(),
            "channels": len(await soak.ari.channels()), "bridges": len(await soak.ari.bridges())}


async def redis_left(redis: Redis) -> dict:
    """Redis' keys by kind (the key with its hash tag and ids cut off), with and without an
    expiry, and the longest expiry."""
    kinds: dict[str, dict] = {}
    async for key in redis.scan_iter(count=1000):
        name = key.decode()
        kind = ":".join(p for p in name.split(":")[:3] if not any(c.isdigit() for c in p))
        ttl = await redis.ttl(key)
        entry = kinds.setdefault(kind, {"keys": 0, "no_expiry": 0, "max_ttl_days": 0.0,
                                        "examples_without_expiry": []})
        entry["keys"] += 1
        if ttl < 0:
            entry["no_expiry"] += 1
            if len(entry["examples_without_expiry"]) < 3:
                entry["examples_without_expiry"].append(name)
        else:
            entry["max_ttl_days"] = max(entry["max_ttl_days"], round(ttl / 86400, 1))
    return kinds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="callers at once (slots)")
    parser.add_argument("--operators", type=int, default=160)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--warm", type=float, default=5.0, help="minutes before the baseline")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--window", type=float, default=5.0,
                        help="minutes averaged at the start (after --warm) and at the end")
    args = parser.parse_args()
    command = command_line()
    from hold_checkins import bench_sandbox  # the queue benches' sandbox, phones answered here

    instance, env = bench_sandbox()
    policy = instance.dir / "bench-soak.toml"
    policy.write_text(policy_text(args.operators))
    port = free_port()
    log_path = Path(f"/tmp/bench-soak-app-{os.getpid()}.log")
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
               "ETIQUETTE_API_TOKEN": TOKEN, "ETIQUETTE_LOG_LEVEL": "WARNING",
               "ETIQUETTE_LOG_FORMAT": "json", "ETIQUETTE_CALLBACK_DIALER": "false"}
    result: dict = {"command": command, "calls": args.calls, "operators": args.operators,
                    "minutes": args.minutes}
    try:
        with log_path.open("wb") as log:
            app = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_app.cli", "run", env=app_env, cwd=ROOT,
                stdout=log, stderr=log)
        base_url = f"http://127.0.0.1:{port}"
        soak = Soak(args, env, base_url)
        ari = soak.ari

        def on_phone(e: dict) -> None:  # every operator answers at once
            if e.get("type") == "StasisStart":
                asyncio.get_running_loop().create_task(_quiet(ari.answer(e["channel"]["id"])))

        streams = [EventStream(ari, PHONE_APP, on_phone),
                   EventStream(ari, "soak-caller", lambda e: None)]
        readers = [asyncio.create_task(s.run()) for s in streams]
        await asyncio.gather(*(s.connected.wait() for s in streams))
        await wait_healthy(base_url, app, log_path, timeout=30)
        redis = Redis.from_url(env["ETIQUETTE_REDIS_URL"])
        ast_pid = asterisk_pid(instance.load_state().asterisk_pid)
        samples: list[dict] = []
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            t0 = time.time()
            samples.append(await sample(soak, app, ast_pid, redis, http, t0))
            idle_before = samples[0]["asyncio_tasks"]
            slots = [asyncio.create_task(soak.slot(http, n)) for n in range(args.calls)]
            while time.time() - t0 < args.minutes * 60:
                await asyncio.sleep(args.every)  # the sampling period
                samples.append(await sample(soak, app, ast_pid, redis, http, t0))
                print(json.dumps(samples[-1]), flush=True)
            soak.running = False
            await asyncio.gather(*slots, return_exceptions=True)
            await asyncio.gather(*(_quiet(ari.hangup(c)) for c in list(soak.live)))
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # the app closes every call
                await asyncio.sleep(1)
                if not await ari.channels() and not await redis.exists(KEYS.live_calls()):
                    break
        # the slots' keep-alive connections are closed (the server holds a task for each open
        # one): the idle figure after is the app's own, as before
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.sleep(5)  # lanes and timers settle
            end = await sample(soak, app, ast_pid, redis, http, t0)
            stored = await ari.call(ops.STORED_RECORDINGS)
        # under load the task count follows the calls of the moment: compared as means over
        # `--window` minutes, just after the warm-up and at the end
        early = [s for s in samples if args.warm <= s["t_min"] < args.warm + args.window]
        late = [s for s in samples if s["t_min"] > samples[-1]["t_min"] - args.window]

        def mean(rows: list[dict], key: str) -> float:
            return round(sum(r[key] for r in rows) / len(rows), 1)

        last = samples[-1]
        rss0, rss1 = mean(early, "app_rss_mb"), mean(late, "app_rss_mb")
        tasks0, tasks1 = mean(early, "asyncio_tasks"), mean(late, "asyncio_tasks")
        result.update({
            "calls_done": soak.done, "problems": dict(soak.problems),
            "rss_mb_warm": rss0, "rss_mb_last": rss1,
            "rss_growth_pct": round(100 * (rss1 / rss0 - 1), 1),
            "tasks_warm": tasks0, "tasks_last": tasks1,
            "tasks_growth_pct": round(100 * (tasks1 / tasks0 - 1), 1),
            "idle_tasks_before": idle_before, "idle_tasks_after": end["asyncio_tasks"],
            "app_cpu_pct_of_core": round(100 * (last["app_cpu_s"] - samples[0]["app_cpu_s"])
                                         / (60 * (last["t_min"] - samples[0]["t_min"])), 1),
            "asterisk_cpu_pct_of_core": round(100 * (last["asterisk_cpu_s"]
                                                     - samples[0]["asterisk_cpu_s"])
                                              / (60 * (last["t_min"] - samples[0]["t_min"])), 1),
            "left_channels": end["channels"], "left_bridges": end["bridges"],
            "left_call_lanes": end["call_lanes"], "left_stored_recordings": len(stored),
            "redis_keys_left": await redis_left(redis),
            "app_error_lines": sum(1 for line in log_path.read_text(errors="replace").splitlines()
                                   if '"level": "error"' in line or '"level":"error"' in line),
            "samples": samples + [end]})
        app.terminate()
        await app.wait()
        for r in readers:
            r.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        await ari.close()
        await redis.aclose()
    finally:
        instance.destroy()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"soak-{stamp}.json").write_text(json.dumps(result, indent=2))
    rows = [("calls done", result["calls_done"]), ("problems", result["problems"]),
            ("app RSS, mean early → late (MB)", f'{result["rss_mb_warm"]} → {result["rss_mb_last"]} '
             f'({result["rss_growth_pct"]:+} %)'),
            ("asyncio tasks, mean early → late", f'{result["tasks_warm"]} → {result["tasks_last"]} '
             f'({result["tasks_growth_pct"]:+} %)'),
            ("idle tasks before → after", f'{result["idle_tasks_before"]} → '
             f'{result["idle_tasks_after"]}'),
            ("app / Asterisk CPU (% of a core)", f'{result["app_cpu_pct_of_core"]} / '
             f'{result["asterisk_cpu_pct_of_core"]}'),
            ("left in Asterisk: channels, bridges, stored recordings",
             f'{result["left_channels"]}, {result["left_bridges"]}, '
             f'{result["left_stored_recordings"]}'),
            ("left in Redis (kind: keys / without expiry / longest expiry days)",
             "; ".join(f'{k}: {v["keys"]}/{v["no_expiry"]}/{v["max_ttl_days"]}'
                       for k, v in sorted(result["redis_keys_left"].items()))),
            ("app error lines", result["app_error_lines"])]
    table = "| what | figure |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)
    (out / f"soak-{stamp}.md").write_text(f"`{command}`\n\n{table}")
    print(table)


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
