"""How long callers wait for a survivor when their instance dies: the pool's takeover against
today's recovery (the same instance restarted in place), side by side in one run, on one
sandbox Asterisk and Redis of the bench's own.

    ETIQUETTE_CACHE_DIR=~/.cache/ari-etiquette ~/.cache/ari-etiquette/venv/bin/python bench/pool_takeover.py --calls 100 500 --interval 20

(smoke run, under 3 minutes: `... bench/pool_takeover.py`, i.e. `--calls 20 --interval 10`)

The callers wait in a queue, as in bench/queue_checkins.py (its policy: one queue, its only
operator PJSIP/operator1 never registers, so nobody is ever free and every caller keeps
waiting, with a `queue-checkin-*` prompt every `--interval` s start to start). That is simpler
to reuse than bench/hold_checkins.py's holds, which need N operators answered by the bench, a
talk bridge each and a hold request each. For each N, each side in turn (`--order`):

The callers dial in paced over one interval (at most `--rate` a second; `--no-spread`: all
at `--rate`), so that at the kill their next check-ins fall due at every phase of the interval,
as with independent calls; the kill comes once the last of them has had its first check-in.

- reference (today's single-instance recovery): one instance, no pool (`ari-etiquette run`,
  app name ari-etiquette); N Local-channel callers dial 100@etiquette-inbound (paced, `--rate`
  a second). Once every caller has had a first check-in, the instance is killed with SIGKILL
  and started again at once with the same settings, as tests/integration/test_hold_restart.py
  does: how long the process takes to come back is part of this side's figure.
- pool: instance 1 (etiquette-pool-1) alone; the N callers dial 100@etiquette-pool
  (StasisBroadcast: instance 1 claims them all). Then instance 2 (etiquette-pool-2) starts;
  once every caller has had a first check-in, instance 1 is killed with SIGKILL and instance 2
  takes its app name over when its lease expires (ETIQUETTE_POOL_LEASE `--lease`, default the
  shipped 5 s; the shipped call lease, 15 s, is left alone).

Measured per caller, from the kill, by an observer WebSocket with subscribeAll (the caller's
channel's PlaybackStarted of a `queue-checkin-*` prompt): the time to the first check-in after
the kill; its lateness (its PlaybackStarted minus when it was due: ari_app/calls/pacing.py
`next_check_in` after the previous check-in: what the outage added to the caller's schedule);
the longest gap between two check-ins across the kill (start to start); how many callers
missed more than one check-in (the first after the kill more than one interval + 1 s late)
or got none (counted in every figure with the window's end instead: a lower bound; a few of
them are shown with what they heard and their timeline's last steps); how many were dropped (their channel gone). Per side: the new process's CPU
(the survivor; the restarted instance) over the first 30 s after the kill, from /proc, and
Asterisk's; the time until the survivor's /metrics `etiquette_pool_takeovers_total` reaches N
(the callers served: a caller no instance claimed within the claim timeout goes to
etiquette-away and is counted as "not served", outside every other figure) (reference: until the restarted process answers /healthz). Reported: p50/p95/max
time-to-first-check-in after the kill per side and the ratio pool/reference.

On a 2-core machine 500 waiting callers saturate it (Asterisk at about 135% of a core over the
window here): figures at 500 are taken saturated, and some pool callers then miss the 1.5 s
claim window (not served). Ratios matter, not absolutes.

The whole run of a side must end before the first caller reaches the queue's `threshold`
(180 s, the way-out menu): with 500 callers, `--interval` 20 fits. Not a test: prints figures
and writes JSON and a Markdown table to bench/results/ (not committed); the apps' logs are in
/tmp/bench-takeover-*.log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hold_checkins import (BenchCallers, asterisk_pid, bench_sandbox,  # noqa: E402
                           command_line, free_port, pct, proc_cpu, wait_healthy)
from queue_checkins import POLICY, THRESHOLD  # noqa: E402

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.calls.ids import read_playback  # noqa: E402
from ari_app.calls.pacing import next_check_in  # noqa: E402
from ari_app.sandbox.instance import SandboxInstance, interrupt_on_sigterm  # noqa: E402
from ari_app.storage import Keyspace  # noqa: E402

TOKEN = uuid.uuid4().hex
CALLER_APP = "bench-caller"
OBSERVER_APP = "bench-observer"
POOL_APPS = ("etiquette-pool-1", "etiquette-pool-2")
LATE = 1.0        # s past due: a check-in missed
CPU_WINDOW = 30.0  # s after the kill: the new process's CPU
CHECKIN = "queue-checkin-"


class Observer(BenchCallers):
    """The callers' own halves (parked in the bench's app) and an observer that sees every
    channel (subscribeAll): each caller's check-ins, stamped on receipt."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self.check_ins: dict[str, list[float]] = {}   # call id -> PlaybackStarted times
        self.finished: dict[str, list[float]] = {}    # call id -> PlaybackFinished times (any prompt)
        self.heard: dict[str, list[tuple[str, str, float]]] = {}  # call -> (kind, prompt, t)
        seen: set[str] = set()  # a prompt of several parts has a PlaybackStarted per part

        def on_observed(e: dict) -> None:
            kind = e.get("type")
            if kind not in ("PlaybackStarted", "PlaybackFinished"):
                return
            target = e["playback"].get("target_uri", "")
            if not target.startswith("channel:"):
                return
            call = target.split(":", 1)[1]
            now = time.time()
            pb = read_playback(e["playback"]["id"])
            self.heard.setdefault(call, []).append(
                (kind, pb.prompt if pb else e["playback"]["id"], now))
            if kind == "PlaybackFinished":
                self.finished.setdefault(call, []).append(now)
                return
            if pb is not None and pb.prompt.startswith(CHECKIN) and e["playback"]["id"] not in seen:
                seen.add(e["playback"]["id"])
                self.check_ins.setdefault(call, []).append(now)

        self.streams = [EventStream(ari, OBSERVER_APP, on_observed, subscribe_all=True),
                        EventStream(ari, CALLER_APP, lambda e: None)]

    async def dial(self, endpoint: str, tags: list[str], rate: float) -> None:
        for i, tag in enumerate(tags):  # paced like real arrivals, not one stampede
            await self.ari.originate(endpoint, app=CALLER_APP, channel_id=f"bc-{tag}",
                                     other_channel_id=f"call-{tag}",
                                     caller_id=f'"Bench" <+1212555{i:04d}>', timeout=60)
            await asyncio.sleep(1 / rate)


class App:
    """One `ari-etiquette run` process, its own port and log; started again with the same
    settings after a kill."""

    def __init__(self, name: str, env: dict[str, str], log_path: str) -> None:
        self.name, self.port, self.log_path = name, free_port(), log_path
        self.env = {**env, "ETIQUETTE_HTTP_PORT": str(self.port)}
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def spawn(self) -> None:
        self.starts += 1
        with open(self.log_path, "ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_app.cli", "run", env=self.env, cwd=ROOT,
                stdout=log, stderr=log)

    async def start(self) -> None:
        await self.spawn()
        await wait_healthy(self.base, self.proc, self.log_path, timeout=30)

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 40)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def metric(self, http: aiohttp.ClientSession, name: str) -> float | None:
        try:
            async with http.get(f"{self.base}/metrics") as r:
                text = await r.text()
        except aiohttp.ClientError:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and not line.startswith("#"))


def app_env(base: dict[str, str], policy: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **base, "ETIQUETTE_POLICY_FILE": str(policy),
            "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_API_TOKEN": TOKEN,
            "ETIQUETTE_LOG_LEVEL": "WARNING", "ETIQUETTE_LOG_FORMAT": "json", **extra}


async def until_first_check_ins(obs: Observer, calls: list[str], timeout: float) -> list[str]:
    """The callers an instance took (they heard its greeting: a caller no pool instance claimed
    in time goes to etiquette-away, whose prompts are dialplan playbacks, not ARI ones), once
    each has had a first check-in (or the timeout passed)."""
    await asyncio.sleep(5)  # the last callers' greeting starts
    served = [c for c in calls if c in obs.heard]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(obs.check_ins.get(c) for c in served):
        await asyncio.sleep(0.2)
    return served


async def run_side(side: str, n: int, args, instance: SandboxInstance, env: dict,
                   ari: AriClient, obs: Observer) -> dict:
    redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
    await redis.flushdb()  # each side starts alike: no line, no leases, no returning callers
    interval = args.interval
    policy = instance.dir / f"bench-takeover-{interval:g}.toml"
    policy.write_text(POLICY.replace("check_in_interval = 25",
                                     f"check_in_interval = {int(interval)}"))
    log = f"/tmp/bench-takeover-{side}-{n}"
    for old in Path("/tmp").glob(f"bench-takeover-{side}-{n}*.log"):
        old.unlink()
    if side == "reference":
        victim = App("ari-etiquette", app_env(env, policy), f"{log}.log")
        apps, survivor, context = [victim], victim, "etiquette-inbound"
    else:
        pool = {"ETIQUETTE_POOL_APPS": ",".join(POOL_APPS),
                "ETIQUETTE_POOL_LEASE": f"{args.lease:g}"}
        victim, survivor = (App(a, app_env(env, policy, ETIQUETTE_ARI_APP=a,
                                           ETIQUETTE_INSTANCE_ID=f"bench/{a}", **pool),
                                f"{log}-{a}.log") for a in POOL_APPS)
        apps, context = [victim, survivor], "etiquette-pool"
    tags = [uuid.uuid4().hex[:10] for _ in range(n)]
    calls = [f"call-{t}" for t in tags]
    result: dict = {"side": side, "calls": n, "interval_s": interval}
    async with aiohttp.ClientSession() as http:
        try:
            await victim.start()
            t_dial = time.time()
            # arrivals spread over one interval (as independent calls come): at the kill, the
            # callers' next check-ins are due at every phase of the interval, not all at once
            rate = args.rate if args.no_spread else min(args.rate, n / interval)
            await obs.dial(f"Local/100@{context}/n", tags, rate)
            result["dial_s"] = round(time.time() - t_dial, 1)
            if side == "pool":
                await survivor.start()
                result["claims_won_by_instance_1"] = await victim.metric(
                    http, 'etiquette_pool_claims_total{outcome="won"}')
                result["claims_lost_by_instance_2"] = await survivor.metric(
                    http, 'etiquette_pool_claims_total{outcome="lost"}')
            served = await until_first_check_ins(obs, calls, interval + 40)
            result["not_served"] = n - len(served)  # pool: nobody claimed in time (away)
            calls = served
            result["had_a_first_check_in"] = sum(bool(obs.check_ins.get(c)) for c in calls)
            ast = asterisk_pid(instance.load_state().asterisk_pid)
            ast0 = proc_cpu(ast)
            # --- the kill -----------------------------------------------------------------
            killed_at = time.time()
            await victim.kill()
            if side == "reference":
                await survivor.spawn()  # at once, as an admin's service manager would
                cpu0 = 0.0              # a new process: all its CPU is in the window
                back = time.time()
                await wait_healthy(survivor.base, survivor.proc, survivor.log_path, timeout=60)
                result["restart_healthy_s"] = round(time.time() - killed_at, 2)
                result["respawn_s"] = round(back - killed_at, 3)
            else:
                cpu0 = proc_cpu(survivor.proc.pid)
            taken_at = None
            cpu_done = asyncio.get_running_loop().create_future()

            async def cpu_window() -> None:
                await asyncio.sleep(max(0.0, killed_at + CPU_WINDOW - time.time()))
                cpu_done.set_result((proc_cpu(survivor.proc.pid) - cpu0, proc_cpu(ast) - ast0))

            cpu_task = asyncio.create_task(cpu_window())
            # until every caller had a check-in after the kill (or it is clearly not coming),
            # and at least the CPU window
            give_up = killed_at + args.lease + 3 * interval + 20
            while time.time() < give_up:
                if side == "pool" and taken_at is None:
                    taken = await survivor.metric(http, "etiquette_pool_takeovers_total")
                    if taken is not None and taken >= len(calls):
                        taken_at = time.time()
                if (all(t > killed_at for c in calls for t in obs.check_ins.get(c, [])[-1:])
                        and (side == "reference" or taken_at is not None)
                        and time.time() >= killed_at + CPU_WINDOW):
                    break
                await asyncio.sleep(0.2)
            await cpu_task
            survivor_cpu, ast_cpu = cpu_done.result()
            window_end = time.time()
            if side == "pool":
                result["takeovers_metric"] = await survivor.metric(
                    http, "etiquette_pool_takeovers_total")
                result["takeovers_reach_n_s"] = (round(taken_at - killed_at, 2)
                                                 if taken_at else None)
                result["claim_ms_p50"], result["claim_ms_max"] = await claim_times(redis, calls)
            alive = {c["id"] for c in await ari.channels()}
            result.update(figures(obs, calls, killed_at, window_end, interval, alive))
            result["no_check_in_examples"] = await unheard(obs, redis, calls, killed_at)
            result["survivor_cpu_pct_of_core_30s"] = round(100 * survivor_cpu / CPU_WINDOW, 1)
            result["asterisk_cpu_pct_of_core_30s"] = round(100 * ast_cpu / CPU_WINDOW, 1)
            result["measured_after_kill_s"] = round(window_end - killed_at, 1)
            first = min((obs.finished.get(c, [time.time()])[0] for c in calls), default=t_dial)
            if window_end - first > THRESHOLD - 5:
                result["warning"] = "ran into the queue threshold (way-out menu): figures skewed"
        finally:
            result["channels_left_at_cleanup"] = await obs.hang_up_all(tags)
            await asyncio.sleep(1)
            for a in apps:
                await a.stop()
            await redis.aclose()
    result["app_logs"] = [a.log_path for a in apps]
    return result


async def claim_times(redis, calls: list[str]) -> tuple[float | None, float | None]:
    """The `pool:claimed` steps' round trips (ms) from the calls' timelines in Redis."""
    keys = Keyspace()
    async with redis.pipeline(transaction=False) as pipe:
        for c in calls:
            pipe.lrange(keys.timeline(c), 0, -1)
        raw = await pipe.execute()
    ms = [float(s.get("ms", (s.get("data") or {}).get("ms", 0)))
          for steps in raw for s in map(json.loads, steps) if s.get("step") == "pool:claimed"]
    return (round(pct(ms, 50), 1), round(max(ms), 1)) if ms else (None, None)


async def unheard(obs: Observer, redis, calls: list[str], killed_at: float,
                  limit: int = 3) -> list[dict]:
    """A few callers with no check-in after the kill: what they heard and what their timeline
    in Redis says since the kill (to tell a stuck call from a slow one)."""
    out = []
    for c in [c for c in calls if obs.check_ins.get(c)
              and not any(t > killed_at for t in obs.check_ins[c])][:limit]:
        steps = [json.loads(x) for x in await redis.lrange(Keyspace().timeline(c), -8, -1)]
        out.append({"call": c,
                    "heard_after_kill": [(k, p, round(t - killed_at, 1))
                                         for k, p, t in obs.heard.get(c, []) if t > killed_at - 25],
                    "timeline_tail": [(s.get("step"), round(s.get("t", 0) - killed_at, 1))
                                      for s in steps]})
    return out


def figures(obs: Observer, calls: list[str], killed_at: float, end: float, interval: float,
            alive: set[str]) -> dict:
    first_after, lateness, gaps = [], [], []
    missed_more_than_one = none_after = 0
    for c in calls:
        times = obs.check_ins.get(c, [])
        before = [t for t in times if t <= killed_at]
        after = [t for t in times if t > killed_at]
        if not before:
            continue  # never had a first check-in: counted in had_a_first_check_in
        ended = [t for t in obs.finished.get(c, []) if before[-1] <= t <= killed_at]
        # when the next was due (ended: the check-in's own end, when seen before the kill)
        due = next_check_in(interval, before[-1], ended[-1] if ended else before[-1])
        # none after the kill: counted with the window's end (a lower bound), not left out
        first = after[0] if after else end
        none_after += not after
        first_after.append(first - killed_at)
        lateness.append(first - due)
        gaps.append(first - before[-1])
        missed_more_than_one += first - due > interval + LATE
    dropped = sum(c not in alive for c in calls)

    def s(values: list[float], q: float) -> float | None:
        return round(pct(values, q), 2) if values else None

    return {"first_check_in_after_kill_p50_s": s(first_after, 50),
            "first_check_in_after_kill_p95_s": s(first_after, 95),
            "first_check_in_after_kill_max_s": round(max(first_after), 2) if first_after else None,
            "lateness_p50_s": s(lateness, 50), "lateness_p95_s": s(lateness, 95),
            "lateness_max_s": round(max(lateness), 2) if lateness else None,
            "longest_gap_across_kill_s": round(max(gaps), 2) if gaps else None,
            "gap_across_kill_p50_s": s(gaps, 50),
            "missed_more_than_one_check_in": missed_more_than_one,
            "no_check_in_after_kill": none_after, "dropped": dropped}


def ratio(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def compare(ref: dict, pool: dict) -> dict:
    out = {"calls": ref["calls"]}
    for q in ("p50", "p95", "max"):
        key = f"first_check_in_after_kill_{q}_s"
        out[f"{q}_ref_s"], out[f"{q}_pool_s"] = ref[key], pool[key]
        out[f"{q}_ratio_pool_over_ref"] = ratio(pool[key], ref[key])
        # what the outage added to the schedule (near 0 for a quick restart: no ratio)
        out[f"lateness_{q}_ref_s"], out[f"lateness_{q}_pool_s"] = (ref[f"lateness_{q}_s"],
                                                                  pool[f"lateness_{q}_s"])
    return out


def markdown(command: str, args, results: list[dict], pairs: list[dict]) -> str:
    lines = [f"# pool_takeover {time.strftime('%Y-%m-%d %H:%M:%S')}", "", f"`{command}`", "",
             f"interval {args.interval:g} s, pool lease {args.lease:g} s, call lease 15 s "
             f"(shipped), {os.cpu_count()} cores; times in s from the kill (SIGKILL)", "",
             "| side | N | first check-in p50 | p95 | max | lateness p50 | p95 | longest gap "
             "| missed >1 | none after | dropped | not served | new process CPU % (30 s) | Asterisk CPU % "
             "| takeovers = N / healthz |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        back = r.get("takeovers_reach_n_s") if r["side"] == "pool" else r.get("restart_healthy_s")
        lines.append(
            f"| {r['side']} | {r['calls']} | {r['first_check_in_after_kill_p50_s']} "
            f"| {r['first_check_in_after_kill_p95_s']} | {r['first_check_in_after_kill_max_s']} "
            f"| {r['lateness_p50_s']} | {r['lateness_p95_s']} | {r['longest_gap_across_kill_s']} "
            f"| {r['missed_more_than_one_check_in']} | {r['no_check_in_after_kill']} "
            f"| {r['dropped']} | {r['not_served']} | {r['survivor_cpu_pct_of_core_30s']} "
            f"| {r['asterisk_cpu_pct_of_core_30s']} | {back} |")
    lines += ["", "time to the first check-in after the kill, pool/reference; and the first "
              "check-in's lateness (s past due), reference -> pool", "",
              "| N | p50 pool/ref | p95 pool/ref | max pool/ref | lateness p50 | p95 | max |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for p in pairs:
        lines.append(f"| {p['calls']} | {p['p50_ratio_pool_over_ref']} "
                     f"| {p['p95_ratio_pool_over_ref']} | {p['max_ratio_pool_over_ref']} "
                     + "".join(f"| {p[f'lateness_{q}_ref_s']} -> {p[f'lateness_{q}_pool_s']} "
                               for q in ("p50", "p95", "max")) + "|")
    return "\n".join(lines) + "\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[20],
                        help="callers per run (e.g. 100 500)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="the queue's check-in interval, s (e.g. 20)")
    parser.add_argument("--lease", type=float, default=5.0,
                        help="ETIQUETTE_POOL_LEASE, s (default: the shipped 5)")
    parser.add_argument("--rate", type=float, default=25.0,
                        help="callers dialing in per second, at most")
    parser.add_argument("--no-spread", action="store_true",
                        help="dial every caller at --rate instead of spreading the arrivals "
                             "over one interval (then all check-ins fall due together)")
    parser.add_argument("--order", choices=("reference-first", "pool-first"),
                        default="reference-first")
    args = parser.parse_args()
    command = command_line()
    instance, env = bench_sandbox()
    ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])
    obs = Observer(ari)
    results, pairs = [], []
    sides = ["reference", "pool"] if args.order == "reference-first" else ["pool", "reference"]
    try:
        await obs.start()
        for n in args.calls:
            got = {}
            for side in sides:
                r = await run_side(side, n, args, instance, env, ari, obs)
                print(json.dumps(r), flush=True)
                results.append(r)
                got[side] = r
                await asyncio.sleep(3)  # the machine settles between runs
            pairs.append(compare(got["reference"], got["pool"]))
            print(json.dumps(pairs[-1]), flush=True)
    finally:
        await obs.close()
        await ari.close()
        instance.destroy()
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%S')
    table = markdown(command, args, results, pairs)
    (out / f"pool_takeover-{stamp}.md").write_text(table)
    path = out / f"pool_takeover-{stamp}.json"
    path.write_text(json.dumps({"command": command, "lease_s": args.lease,
                                "interval_s": args.interval, "runs": results, "pairs": pairs},
                               indent=2))
    print("\n" + table)
    print(f"written to {path} (and .md)")


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
