"""The pool's first-claim cost: callers taken by StasisBroadcast + first claim with 1, 2 and 4
app instances, against the same callers entering one instance through plain `Stasis()`, side by
side in one run, on one sandbox Asterisk and Redis of the bench's own.

    ETIQUETTE_CACHE_DIR=~/.cache/ari-etiquette ~/.cache/ari-etiquette/venv/bin/python bench/pool_claims.py --calls 600 --rate 20 40 80 --instances 1 2 4 --rounds 2

(the defaults, `--calls 60 --rate 20 --instances 1 2 4 --rounds 1`, are a smoke run of about
a minute and a half; each configuration takes about `--calls / --rate` + 15 s.)

For each offered rate R and round, each configuration runs in turn (the order flips every
round: the machine's speed drifts, read the ratios of one round):

- reference: one app instance without pool settings (ETIQUETTE_ARI_APP=ari-etiquette, the
  dialplan's ETIQUETTE_APP); callers dial `Local/100@etiquette-inbound/n`: plain `Stasis()`.
- pool xK: K instances, each its own process with ETIQUETTE_ARI_APP=etiquette-pool-i,
  ETIQUETTE_POOL_APPS=etiquette-pool-1,...,etiquette-pool-K, its own ETIQUETTE_INSTANCE_ID
  (as tests/integration/test_pool.py starts them); callers dial `Local/100@etiquette-pool/n`:
  StasisBroadcast offers each caller to every instance, the first claim wins, the caller is
  greeted by the winner; nobody claiming within ETIQUETTE_CLAIM_MS (1500 ms) sends the caller
  to etiquette-away (the way out).

Callers: `--calls` Local channels originated at a paced offered rate (scheduled at t0 + i/R,
not after the previous one answered), the ;1 half in the bench's own ARI app. The policy is the
one of bench/queue_checkins.py: one queue, one operator logged in but never registered (the
sandbox runs with phones="none"), so nobody is ever free and every caller takes the same path
on both sides: greeting, then the queue. An observer WebSocket (its own app, subscribeAll)
stamps per caller:

- time to greeting: the first PlaybackStarted on the caller's channel minus when the bench
  sent its originate (what the caller notices: the time to the first word);
- the outcome: greeted; way out (the channel entering dialplan context etiquette-away:
  ChannelDialplan, or STASISSTATUS=TIMEOUT in a ChannelVarset); failed (originate refused, the
  channel gone, or neither within `--timeout` s).

Each caller hangs up `--hold` s after its greeting starts (shortened so that at most
`--max-alive` callers, two channels each, are up at once at the offered rate; the dialer also
waits while that many are up, and says how often: at --rate 40 and up with --instances 0 the
1.5 s claim window alone keeps more up); one sent the way out hangs up at once.

Measured over the window from the first dial until every caller's channel is gone: the CPU of
each instance and of Asterisk (from /proc; also with the instances' idle CPU, read before
dialing, taken off), of the sandbox's Redis, the machine's busy time and other processes
(another test suite on this machine shows there); claims won and lost per instance (/metrics
`etiquette_pool_claims_total`); the claim's round trip (the `pool:claimed` steps' `ms` in each
call's timeline in Redis). Ratios pool / reference (same rate, same round): time to greeting p50
and p99, app CPU per call.

`--instances 0` adds a pool with no instance at all: every caller must get the way out after
the claim window (a check of the bench's way-out detection).

Not a test: prints figures and a Markdown table, writes JSON and the table to bench/results/
(not committed).
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

from hold_checkins import (_quiet, asterisk_pid, bench_sandbox, command_line,  # noqa: E402
                           free_port, pct, proc_cpu, system_cpu, wait_healthy)
from queue_checkins import POLICY, all_processes, wait_quiet  # noqa: E402

from ari_app.ari import AriClient, AriError, EventStream  # noqa: E402
from ari_app.calls.ids import read_playback  # noqa: E402
from ari_app.sandbox.instance import SandboxInstance, interrupt_on_sigterm  # noqa: E402
from ari_app.storage.keyspace import Keyspace  # noqa: E402

TOKEN = uuid.uuid4().hex
CALLER_APP = "bench-pool-caller"
OBSERVER_APP = "bench-pool-observer"
REFERENCE_APP = "ari-etiquette"   # the dialplan's ETIQUETTE_APP (context etiquette-inbound)
POOL_PREFIX = "etiquette-pool-"   # the dialplan's ETIQUETTE_POOL (context etiquette-pool)
AWAY_CONTEXT = "etiquette-away"
POOL_LEASE = 5.0                  # the default pool_lease


class Caller:
    __slots__ = ("tag", "dialed", "greeted", "prompt", "away", "failed", "gone", "hung_up")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.dialed: float | None = None
        self.greeted: float | None = None
        self.prompt: str | None = None
        self.away: float | None = None
        self.failed: str | None = None
        self.gone: float | None = None
        self.hung_up = False

    @property
    def resolved(self) -> bool:
        return self.greeted is not None or self.away is not None or self.failed is not None


class Observer:
    """The bench's two apps: the callers' own halves (parked, events ignored) and an observer
    that sees every channel (subscribeAll; one app on its WebSocket, see ASTERISK-SANDBOX.md)."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self.callers: dict[str, Caller] = {}  # "call-<tag>" -> caller
        self.on_greeted = lambda caller: None
        self.on_away = lambda caller: None
        self.events = 0
        self.streams = [EventStream(ari, OBSERVER_APP, self._on_event, subscribe_all=True),
                        EventStream(ari, CALLER_APP, lambda e: None)]

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(s.run()) for s in self.streams]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in self.streams)), 15)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _on_event(self, e: dict) -> None:
        self.events += 1
        kind = e.get("type")
        now = time.time()
        if kind == "PlaybackStarted":
            target = e["playback"].get("target_uri", "")
            caller = self.callers.get(target.removeprefix("channel:"))
            if caller is not None and caller.greeted is None and caller.away is None:
                caller.greeted = now
                pb = read_playback(e["playback"]["id"])
                caller.prompt = pb.prompt if pb else e["playback"].get("media_uri")
                self.on_greeted(caller)
            return
        channel = e.get("channel") or {}
        caller = self.callers.get(channel.get("id", ""))
        if caller is None:
            return
        if kind == "ChannelDialplan":
            if (channel.get("dialplan") or {}).get("context") == AWAY_CONTEXT:
                self._away(caller, now)
        elif kind == "ChannelVarset":
            if e.get("variable") == "STASISSTATUS" and e.get("value") == "TIMEOUT":
                self._away(caller, now)
        elif kind == "ChannelDestroyed":
            caller.gone = now
            if not caller.resolved:
                caller.failed = f"gone before a greeting ({channel.get('state')})"

    def _away(self, caller: Caller, now: float) -> None:
        if caller.away is None and caller.greeted is None:
            caller.away = now
            self.on_away(caller)


class CpuWindow:
    """CPU of Asterisk, each app instance and the machine, from /proc, between start and stop."""

    def __init__(self, ast_pid: int, redis_pid: int, app_pids: list[int]) -> None:
        self.ast_pid, self.redis_pid, self.app_pids = ast_pid, redis_pid, app_pids

    def start(self) -> None:
        self.t0 = time.time()
        self.ast0 = proc_cpu(self.ast_pid)
        self.redis0 = proc_cpu(self.redis_pid)
        self.apps0 = [proc_cpu(p) for p in self.app_pids]
        self.stat0 = system_cpu()
        self.own0 = sum(os.times()[:2])
        self.procs0 = all_processes()
        self.loadavg = float(Path("/proc/loadavg").read_text().split()[0])

    def stop(self) -> dict:
        elapsed = max(1e-3, time.time() - self.t0)
        ast = proc_cpu(self.ast_pid) - self.ast0
        apps = [proc_cpu(p) - c for p, c in zip(self.app_pids, self.apps0)]
        stat1 = system_cpu()
        total = max(1, sum(stat1.values()) - sum(self.stat0.values()))
        cores = os.cpu_count() or 1
        busy = 100 * (1 - (stat1["idle"] - self.stat0["idle"]) / total) * cores
        own = 100 * (sum(os.times()[:2]) - self.own0) / elapsed
        redis = proc_cpu(self.redis_pid) - self.redis0
        ours = {self.ast_pid, self.redis_pid, os.getpid(), *self.app_pids}
        others = sorted(((cpu - self.procs0[pid][1], f"{name}[{pid}]")
                         for pid, (name, cpu) in all_processes().items()
                         if pid in self.procs0 and pid not in ours), reverse=True)
        return {
            "window_s": round(elapsed, 2), "loadavg_before": self.loadavg,
            "asterisk_cpu_pct_of_core": round(100 * ast / elapsed, 1),
            "asterisk_cpu_s": round(ast, 3),
            "app_cpu_pct_of_core": [round(100 * a / elapsed, 1) for a in apps],
            # the sandbox's Redis: the calls' state and logs, the pool's leases
            "redis_cpu_pct_of_core": round(100 * redis / elapsed, 1),
            "app_cpu_s": round(sum(apps), 3),
            "machine_busy_pct_of_core": round(busy, 1),
            "bench_cpu_pct_of_core": round(own, 1),
            "other_processes_cpu_pct_of_core": round(100 * sum(c for c, _ in others) / elapsed, 1),
            "other_processes_top": [(who, round(100 * c / elapsed, 1))
                                    for c, who in others[:3] if c > 0.01 * elapsed],
        }


async def start_instances(kind: str, k: int, instance: SandboxInstance, env: dict
                          ) -> list[tuple[str, int, asyncio.subprocess.Process, str]]:
    """The app instances of one configuration, each its own process, once all answer /healthz:
    [(app name, HTTP port, process, log path)]."""
    policy = instance.dir / "bench-pool.toml"
    policy.write_text(POLICY)
    apps = [REFERENCE_APP] if kind == "reference" else [f"{POOL_PREFIX}{i}" for i in
                                                        range(1, k + 1)]
    started = []
    for app in apps:
        port = free_port()
        app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
                   "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
                   "ETIQUETTE_API_TOKEN": TOKEN, "ETIQUETTE_LOG_LEVEL": "WARNING",
                   "ETIQUETTE_LOG_FORMAT": "json", "ETIQUETTE_ARI_APP": app}
        if kind == "pool":
            app_env.update(ETIQUETTE_POOL_APPS=",".join(apps),
                           ETIQUETTE_POOL_LEASE=str(POOL_LEASE),
                           ETIQUETTE_INSTANCE_ID=f"bench/{app}")
        log_path = f"/tmp/bench-pool-{kind}{k if kind == 'pool' else ''}-{app}.log"
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_app.cli", "run", env=app_env, cwd=ROOT,
                stdout=log, stderr=log)
        started.append((app, port, proc, log_path))
    try:
        await asyncio.gather(*(wait_healthy(f"http://127.0.0.1:{port}", proc, log_path,
                                            timeout=45)
                               for _, port, proc, log_path in started))
    except BaseException:
        await stop_instances(started)
        raise
    return started


async def stop_instances(started) -> None:
    for _, _, proc, _ in started:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for _, _, proc, _ in started:
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()


async def claims_metric(port: int) -> dict[str, float]:
    """etiquette_pool_claims_total by outcome, from the instance's /metrics."""
    out: dict[str, float] = {}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    for line in text.splitlines():
        if line.startswith("etiquette_pool_claims_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = float(line.rsplit(" ", 1)[1])
    return out


def error_lines(log_path: str) -> int:
    n = 0
    for line in Path(log_path).read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            level = "error" if "Traceback" in line else None
        n += level in ("error", "critical")
    return n


async def run_config(kind: str, k: int, rate: float, args, instance: SandboxInstance,
                     env: dict, ari: AriClient, observer: Observer) -> dict:
    """One configuration at one offered rate: its instances started, the callers dialed,
    measured, hung up, the instances stopped."""
    redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
    try:
        await redis.flushdb()  # each run starts alike: no line, no leases, no log
        started = await start_instances(kind, k, instance, env)
    except BaseException:
        await redis.aclose()
        raise
    loop = asyncio.get_running_loop()
    n = args.calls
    callers = [Caller(uuid.uuid4().hex[:10]) for _ in range(n)]
    observer.callers = {f"call-{c.tag}": c for c in callers}
    # at most `max_alive` callers up at once at the offered rate: each stays about its time to
    # greeting (small) plus `hold`
    hold = max(0.2, min(args.hold, 0.8 * args.max_alive / rate))
    hangups: set[asyncio.Task] = set()

    def hang_up(caller: Caller) -> None:
        if caller.hung_up:
            return
        caller.hung_up = True
        task = loop.create_task(_quiet(ari.hangup(f"bc-{caller.tag}")))
        hangups.add(task)
        task.add_done_callback(hangups.discard)

    observer.on_greeted = lambda c: loop.call_later(hold, hang_up, c)
    observer.on_away = lambda c: loop.call_later(0.2, hang_up, c)  # seen: counted, gone
    endpoint = ("Local/100@etiquette-inbound/n" if kind == "reference"
                else "Local/100@etiquette-pool/n")
    dials: list[asyncio.Task] = []

    async def dial(i: int, caller: Caller) -> None:
        caller.dialed = time.time()
        try:
            await ari.originate(endpoint, app=CALLER_APP, channel_id=f"bc-{caller.tag}",
                                other_channel_id=f"call-{caller.tag}",
                                caller_id=f'"Bench" <+1212555{i:04d}>', timeout=30)
        except AriError as exc:
            caller.failed = f"originate: {exc.status}"

    try:
        await asyncio.sleep(1.0)  # the pool's first lease rounds, the sockets up
        pids = [proc.pid for _, _, proc, _ in started]
        idle0 = [proc_cpu(p) for p in pids]  # the instances with no call: lease renewals,
        await asyncio.sleep(args.idle)        # heartbeats, the dialer's rounds (xK in a pool)
        idle = sum(proc_cpu(p) - c for p, c in zip(pids, idle0)) / args.idle
        state = instance.load_state()
        window = CpuWindow(asterisk_pid(state.asterisk_pid), state.redis_pid,
                           [proc.pid for _, _, proc, _ in started])
        window.start()
        t0 = time.monotonic()
        gated = 0
        for i, caller in enumerate(callers):  # paced: scheduled, not after the previous answer
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            while sum(1 for c in callers[:i] if c.gone is None and c.failed is None
                      ) >= args.max_alive:
                gated += 1  # too many up: this caller waits (the offered rate slips)
                await asyncio.sleep(0.05)
            dials.append(loop.create_task(dial(i, caller)))
        dialing_s = time.monotonic() - t0
        await asyncio.gather(*dials)
        deadline = time.monotonic() + args.timeout + hold + 15
        while time.monotonic() < deadline:
            now = time.time()
            for c in callers:
                if not c.resolved and c.dialed is not None and now - c.dialed > args.timeout:
                    c.failed = f"neither greeted nor sent away within {args.timeout:g} s"
                    hang_up(c)
            if all(c.resolved and (c.gone is not None or c.failed) for c in callers):
                break
            await asyncio.sleep(0.1)
        cpu = window.stop()
        for c in callers:  # anything still up
            hang_up(c)
        await asyncio.gather(*list(hangups), return_exceptions=True)
        claims = {}
        if kind == "pool":
            for app, port, _, _ in started:
                claims[app] = await claims_metric(port)
        await asyncio.sleep(0.3)  # the etiquette log's last batch
        keys = Keyspace()
        claim_ms: list[float] = []
        claimed_by: dict[str, int] = {}
        if kind == "pool":
            for c in callers:
                for raw in await redis.lrange(keys.timeline(f"call-{c.tag}"), 0, -1):
                    step = json.loads(raw)
                    if step.get("step") == "pool:claimed":
                        data = step.get("data") or step
                        claim_ms.append(float(data["ms"]))
                        claimed_by[data["app"]] = claimed_by.get(data["app"], 0) + 1
    finally:
        for c in callers:
            hang_up(c)
        await asyncio.gather(*list(hangups), return_exceptions=True)
        await stop_instances(started)
        observer.on_greeted = observer.on_away = lambda c: None
        left = [ch["id"] for ch in await ari.channels()]
        await asyncio.gather(*(_quiet(ari.hangup(ch)) for ch in left))
        await redis.aclose()
    errors = sum(error_lines(log) for _, _, _, log in started)
    greeted = [c for c in callers if c.greeted is not None]
    ttg = [(c.greeted - c.dialed) * 1000 for c in greeted]
    failed = [c.failed for c in callers if c.failed]
    away_ms = [(c.away - c.dialed) * 1000 for c in callers if c.away is not None]
    app_ms_per_call = 1000 * cpu["app_cpu_s"] / n
    net_ms_per_call = 1000 * (cpu["app_cpu_s"] - idle * cpu["window_s"]) / n
    return {
        "config": "reference" if kind == "reference" else f"pool x{k}", "kind": kind,
        "instances": len(started), "rate": rate, "calls": n,
        "offered_rate_achieved": round(n / dialing_s, 1) if dialing_s > 0 else None,
        "dialer_waits_for_max_alive": gated, "hold_s": round(hold, 2),
        "greeted": len(greeted), "way_out": sum(c.away is not None for c in callers),
        # when the way out began, from the dial (the claim window is 1500 ms)
        "way_out_after_p50_ms": round(pct(away_ms, 50), 1) if away_ms else None,
        "way_out_after_max_ms": round(max(away_ms), 1) if away_ms else None,
        "failed": len(failed), "failed_why": sorted(set(failed))[:3],
        "first_prompts": sorted({c.prompt or "" for c in greeted}),
        "ttg_p50_ms": round(pct(ttg, 50), 1) if ttg else None,
        "ttg_p95_ms": round(pct(ttg, 95), 1) if ttg else None,
        "ttg_p99_ms": round(pct(ttg, 99), 1) if ttg else None,
        "ttg_max_ms": round(max(ttg), 1) if ttg else None,
        "claims": claims, "claimed_by_timeline": claimed_by,
        "claim_rt_p50_ms": round(pct(claim_ms, 50), 1) if claim_ms else None,
        "claim_rt_p99_ms": round(pct(claim_ms, 99), 1) if claim_ms else None,
        "app_cpu_ms_per_call": round(app_ms_per_call, 2),
        # the instances' CPU with no call (all of them, % of a core), and the per-call figure
        # less that over the window: what the calls themselves cost
        "app_idle_cpu_pct_of_core": round(100 * idle, 2),
        "app_cpu_ms_per_call_net_of_idle": round(net_ms_per_call, 2),
        "asterisk_cpu_ms_per_call": round(1000 * cpu["asterisk_cpu_s"] / n, 2),
        **cpu, "channels_left_at_cleanup": len(left), "app_error_lines": errors,
        "app_logs": [log for _, _, _, log in started],
    }


def with_ratios(results: list[dict]) -> None:
    """pool / reference of the same rate and round: time to greeting p50, p99; app CPU per call."""
    for r in results:
        ref = next((x for x in results if x["kind"] == "reference" and x["rate"] == r["rate"]
                    and x["round"] == r["round"]), None)
        r["ratio_ttg_p50"] = r["ratio_ttg_p99"] = r["ratio_app_cpu_per_call"] = None
        r["ratio_app_cpu_per_call_net_of_idle"] = None
        if ref is None or r["kind"] == "reference" or not r["instances"]:
            continue
        if r["ttg_p50_ms"] and ref["ttg_p50_ms"]:
            r["ratio_ttg_p50"] = round(r["ttg_p50_ms"] / ref["ttg_p50_ms"], 2)
            r["ratio_ttg_p99"] = round(r["ttg_p99_ms"] / ref["ttg_p99_ms"], 2)
        if ref["app_cpu_ms_per_call"]:
            r["ratio_app_cpu_per_call"] = round(r["app_cpu_ms_per_call"]
                                                / ref["app_cpu_ms_per_call"], 2)
        if ref["app_cpu_ms_per_call_net_of_idle"] > 0:
            r["ratio_app_cpu_per_call_net_of_idle"] = round(
                r["app_cpu_ms_per_call_net_of_idle"] / ref["app_cpu_ms_per_call_net_of_idle"], 2)


def _or(value) -> str:
    return "–" if value is None else str(value)


def table(results: list[dict]) -> str:
    lines = ["| rate/s | round | config | greeted | way out | failed | ttg p50 ms | p95 | p99 | "
             "max | ×ref p50 | ×ref p99 | claims won per instance (lost) | claim rt p50/p99 ms | "
             "app CPU % per instance | app ms/call | ×ref | net of idle | ×ref | Asterisk % | "
             "Asterisk ms/call | Redis % | machine busy % | others % |",
             "|" + "---|" * 24]
    for r in results:
        won = " / ".join(f"{int(c.get('won', 0))} ({int(c.get('lost', 0))})"
                         for c in r["claims"].values()) or "–"
        way_out_after = (f" (after {r['way_out_after_p50_ms']:.0f} ms)" if r["way_out"]
                         else "")
        cpu = " / ".join(map(str, r["app_cpu_pct_of_core"])) or "–"
        cells = [f"{r['rate']:g}", r["round"], r["config"], f"{r['greeted']}/{r['calls']}",
                 f"{r['way_out']}{way_out_after}", r["failed"], r["ttg_p50_ms"], r["ttg_p95_ms"],
                 r["ttg_p99_ms"], r["ttg_max_ms"], r["ratio_ttg_p50"], r["ratio_ttg_p99"], won,
                 f"{_or(r['claim_rt_p50_ms'])}/{_or(r['claim_rt_p99_ms'])}", cpu,
                 r["app_cpu_ms_per_call"], r["ratio_app_cpu_per_call"],
                 r["app_cpu_ms_per_call_net_of_idle"], r["ratio_app_cpu_per_call_net_of_idle"],
                 r["asterisk_cpu_pct_of_core"], r["asterisk_cpu_ms_per_call"],
                 r["redis_cpu_pct_of_core"], r["machine_busy_pct_of_core"],
                 r["other_processes_cpu_pct_of_core"]]
        lines.append("| " + " | ".join(map(_or, cells)) + " |")
    lines += ["", "ttg: time to greeting, the caller's originate to the first PlaybackStarted on "
              "its channel; way out: sent to etiquette-away (after: p50 from the originate). "
              "Claims from each instance's /metrics, the claim's round trip from the calls' "
              "pool:claimed steps. ×ref: pool / reference of the same rate and round. "
              "CPU over the window from the first dial until every caller's channel is gone; "
              "% of one core "
              f"({os.cpu_count()} cores). others %: long-lived processes not of this bench "
              "(another test suite on the machine shows there)."]
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=60, help="callers per configuration")
    parser.add_argument("--rate", type=float, nargs="+", default=[20.0],
                        help="offered rates, callers dialing in per second")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 4],
                        help="pool sizes (each beside the single-Stasis reference); 0: no "
                             "instance at all, every caller must get the way out (a check of "
                             "the bench)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of every configuration per rate (the order flips each round)")
    parser.add_argument("--hold", type=float, default=3.0,
                        help="seconds a caller stays after its greeting starts (shortened to "
                             "keep --max-alive)")
    parser.add_argument("--max-alive", type=int, default=50,
                        help="callers up at once at most (two channels each)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds from dial to a greeting or the way out, else failed")
    parser.add_argument("--idle", type=float, default=3.0,
                        help="seconds the instances' CPU is read with no call, before dialing")
    parser.add_argument("--quiet-wait", type=float, default=20.0,
                        help="seconds at most to wait for a quiet machine before each run")
    args = parser.parse_args()
    command = command_line()
    instance, env = bench_sandbox()
    results: list[dict] = []
    try:
        ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])
        observer = Observer(ari)
        try:
            await observer.start()
            for rate in args.rate:
                for r in range(args.rounds):
                    order = [("reference", 1)] + [("pool", k) for k in args.instances]
                    if r % 2:
                        order.reverse()
                    for kind, k in order:
                        busy = await wait_quiet(args.quiet_wait)
                        result = await run_config(kind, k, rate, args, instance, env, ari,
                                                  observer)
                        result["round"], result["machine_busy_before_pct"] = r, busy
                        print(json.dumps(result), flush=True)
                        results.append(result)
                        await asyncio.sleep(2)  # the machine settles between runs
        finally:
            await observer.close()
            await ari.close()
    finally:
        instance.destroy()
    with_ratios(results)
    text = table(results)
    print("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"pool_claims-{stamp}.json").write_text(json.dumps(
        {"command": command, "cores": os.cpu_count(), "runs": results}, indent=2))
    (out / f"pool_claims-{stamp}.md").write_text(f"`{command}`\n\n{text}\n")
    print(f"written to {out}/pool_claims-{stamp}.json and .md")


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
