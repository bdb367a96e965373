"""Callback dialers working through 10,000 due requests, against a sandbox's real Redis.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/callback_dialer.py --spread 60 --dialers 2

The requests are stored with CallbackRequests.accept and an explicit earliest_at, their due
times spread evenly over `--spread` seconds starting `--lead` seconds from now (time to store
them first). `--dialers` CallbackDialer instances then run their real loop (`run()`, tick
`--tick`; the app's own dialer uses the default, 1.0 s), each in its own process as separate
app instances would (`--one-process`: all in one), each with its own OperatorService over the
same `--operators` Local endpoints (always "available": the reservation in Redis is what
counts). Where an attempt would reach ARI (`stasis.start`) a stand-in records (request id,
time) and at once, as its own task, calls `dialer.finished(machine, Finish("connected"))`,
which releases the operator and closes the request. Policy: open all week (UTC), quiet hours
away from now in New York (the numbers' zone). Asterisk is started with the sandbox but not
used.

Reported: lateness = start time - due time (p50, p99, max), requests never started, requests
started more than once (must be 0), the most requests due but not started at once, the time
from the first due time to the last start and to an empty pending index, each dialer
process's CPU, and what Redis holds after (every request done after one attempt, no operator
reservation or lock left). Not a test: prints figures and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.callback.dialer import CallbackDialer  # noqa: E402
from ari_app.callback.machine import Finish  # noqa: E402
from ari_app.callback.service import CallbackRequest, CallbackRequests  # noqa: E402
from ari_app.customers.service import Customers  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.operators.service import OperatorService  # noqa: E402
from ari_app.policy import load_policy  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    SandboxInstance, SandboxPorts, interrupt_on_sigterm)
from ari_app.storage import Keyspace  # noqa: E402
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

KEYS = Keyspace()  # the app's own key names

STOP_KEY = "bench:dialer:stop"
AREAS = ("212", "646", "718", "917", "347", "332", "929")  # New York: one zone for every number
OPEN_ALL_WEEK = "".join(f'{day} = "00:00-23:59"\n' for day in
                        ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def quiet_hours_away_from_now(zone: str = "America/New_York") -> str:
    start = datetime.now(ZoneInfo(zone)) + timedelta(hours=6)
    end = start + timedelta(hours=3)
    return f'[quiet_hours]\nstart = "{start:%H:%M}"\nend = "{end:%H:%M}"\n'


def endpoints(n: int) -> list[str]:
    return [f"Local/op{i}@nowhere" for i in range(n)]


def write_policy(path: Path, operators: int) -> None:
    listed = ", ".join(f'"{e}"' for e in endpoints(operators))
    path.write_text(f'company = "Example Corp"\n[operators]\nendpoints = [{listed}]\n'
                    '[recording]\nenabled = false\n'
                    '[business_hours]\ntime_zone = "UTC"\n' + OPEN_ALL_WEEK
                    + quiet_hours_away_from_now()
                    + '[callback]\nallowed_countries = ["US"]\n')  # UTC names no country


def number(i: int) -> str:
    return f"+1{AREAS[i // 10000 % len(AREAS)]}555{i % 10000:04d}"


# --- a dialer process ---------------------------------------------------------------------


class StandInStasis:
    """Where the attempt would reach ARI: record it, and finish it as connected at once."""

    def __init__(self, dialer: CallbackDialer, records: list, errors: Counter) -> None:
        self.dialer, self.records, self.errors = dialer, records, errors
        self.tasks: set[asyncio.Task] = set()

    async def start(self, machine, started) -> None:
        self.records.append((machine.request_id, time.time(), machine.operator, self.dialer.owner))
        task = asyncio.get_running_loop().create_task(self._finish(machine))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _finish(self, machine) -> None:
        try:
            await self.dialer.finished(machine, Finish("connected"))
        except Exception as exc:  # counted, not raised: the figures show it
            self.errors[f"finished: {type(exc).__name__}: {exc}"] += 1


async def worker(config: dict) -> None:
    configure_logging("WARNING", "json")
    redis = aioredis.from_url(config["redis_url"])
    policy = load_policy(config["policy"], test_time_ranges=True)
    records: list = []
    errors: Counter = Counter()
    dialers, stand_ins = [], []
    for k in range(config["count"]):
        stand_in = StandInStasis(None, records, errors)
        dialer = CallbackDialer(redis, CallbackRequests(redis, policy, keys=KEYS),
                                OperatorService(None, redis, endpoints(config["operators"]),
                                                keys=KEYS),
                                Customers(redis, keys=KEYS), policy, tick=config["tick"],
                                owner=f"{config['name']}-{k}", calls=stand_in)
        stand_in.dialer = dialer  # its attempts end at once: it tells the dialer itself
        dialers.append(dialer)
        stand_ins.append(stand_in)
    cpu0, wall0 = os.times(), time.time()
    loops = [asyncio.create_task(d.run()) for d in dialers]
    while not await redis.exists(STOP_KEY):
        await asyncio.sleep(0.2)
    for loop in loops:
        loop.cancel()
    await asyncio.gather(*loops, return_exceptions=True)
    for stand_in in stand_ins:
        await asyncio.gather(*stand_in.tasks, return_exceptions=True)
    cpu1, wall1 = os.times(), time.time()
    await redis.aclose()
    Path(config["out"]).write_text(json.dumps({
        "records": records, "errors": dict(errors), "wall_s": wall1 - wall0,
        "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)}))


# --- the bench ----------------------------------------------------------------------------


async def run(args, env: dict, instance: SandboxInstance) -> dict:
    policy_path = instance.dir / "bench-callback-dialer.toml"
    write_policy(policy_path, args.operators)
    policy = load_policy(policy_path, test_time_ranges=True)
    redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
    try:
        assert await redis.zcard(KEYS.record_index("callback")) == 0, \
            "a fresh sandbox Redis expected"
        requests = CallbackRequests(redis, policy, keys=KEYS)
        n = args.requests
        base = time.time() + args.lead
        due: dict[str, float] = {}
        t_create = time.perf_counter()

        async def store(i: int) -> None:
            at = base + args.spread * i / n
            accepted = await requests.accept(CallbackRequest(
                number=number(i), source="web", earliest_at=at, latest_at=at + 1800))
            assert not accepted.merged, "each request has its own number"
            due[accepted.request.id] = at

        for i in range(0, n, 200):
            await asyncio.gather(*(store(j) for j in range(i, min(n, i + 200))))
        create_s = time.perf_counter() - t_create
        late_setup = time.time() - base
        if late_setup > 0:
            print(f"warning: storing took {create_s:.1f} s, {late_setup:.1f} s past the first "
                  "due time: raise --lead", file=sys.stderr)
        assert await redis.zcard(KEYS.record_index("callback")) == n

        # the dialer processes
        procs = [("d0", args.dialers)] if args.one_process else \
            [(f"d{k}", 1) for k in range(args.dialers)]
        workers = []
        for name, count in procs:
            out = instance.dir / f"bench-dialer-{name}.json"
            config = {"name": name, "count": count, "redis_url": env["ETIQUETTE_REDIS_URL"],
                      "policy": str(policy_path), "operators": args.operators,
                      "tick": args.tick, "out": str(out)}
            log_path = Path(f"/tmp/bench-callback-dialer-{os.getpid()}-{name}.log")
            log = open(log_path, "wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--worker", json.dumps(config), cwd=ROOT,
                stdout=log, stderr=log)
            workers.append((name, proc, out, log, log_path))

        # watch the backlog: requests due but not yet started (a started one is due in 600 s)
        max_backlog, drained_at = 0, None
        deadline = base + args.spread + args.grace
        while time.time() < deadline:
            now = time.time()
            backlog = await redis.zcount(KEYS.record_index("callback"), "-inf", now)
            max_backlog = max(max_backlog, backlog)
            if now > base + args.spread and await redis.zcard(KEYS.record_index("callback")) == 0:
                drained_at = now
                break
            await asyncio.sleep(0.1)
        await redis.set(STOP_KEY, 1)
        results = {}
        for name, proc, out, log, log_path in workers:
            await proc.wait()
            log.close()
            results[name] = json.loads(out.read_text()) if out.exists() else {
                "records": [], "errors": {f"exit {proc.returncode}, no results": 1},
                "wall_s": 0, "cpu_s": 0}
            failed = log_path.read_text(errors="replace").count("callback dialer round failed")
            if failed:
                results[name]["errors"]["dialer rounds failed (see log)"] = failed

        # the figures
        starts: dict[str, list[float]] = {}
        by_dialer: Counter = Counter()
        for r in results.values():
            for request_id, t, _operator, owner in r["records"]:
                starts.setdefault(request_id, []).append(t)
                by_dialer[owner] += 1
        twice = {i: len(ts) for i, ts in starts.items() if len(ts) > 1}
        lateness = [(min(ts) - due[i]) * 1000 for i, ts in starts.items() if i in due]
        first_start = min((min(ts) for ts in starts.values()), default=None)
        last_start = max((max(ts) for ts in starts.values()), default=None)

        statuses: Counter = Counter()
        ids = list(due)
        for i in range(0, len(ids), 1000):
            for raw in await redis.mget([KEYS.record("callback", x) for x in ids[i:i + 1000]]):
                rec = json.loads(raw) if raw else None
                statuses["missing" if rec is None else
                         f"{rec['status']}/{rec['outcome']}/attempts={rec['attempts']}"] += 1
        leftovers = {"operator_reservations": 0, "locks": 0, "open_markers": 0}
        for kind, pattern in (("operator_reservations", KEYS.operator("*")),
                              ("locks", KEYS.callback_lock("*")),
                              ("open_markers", KEYS.callback_open("*"))):
            async for _ in redis.scan_iter(match=pattern, count=1000):
                leftovers[kind] += 1
        return {
            "requests": n, "spread_s": args.spread, "dialers": args.dialers,
            "processes": len(procs), "operators": args.operators, "tick_s": args.tick,
            "store_s": round(create_s, 2), "store_per_s": round(n / create_s, 1),
            "started": len(starts), "never_started": n - len(starts),
            "started_twice": len(twice), "start_counts_over_1": dict(Counter(twice.values())),
            "starts_by_dialer": dict(by_dialer),
            "lateness_p50_ms": round(pct(lateness, 50), 1),
            "lateness_p99_ms": round(pct(lateness, 99), 1),
            "lateness_max_ms": round(max(lateness), 1) if lateness else None,
            "late_over_1s": sum(x > 1000 for x in lateness),
            "late_over_15s": sum(x > 15000 for x in lateness),
            "max_due_not_started": max_backlog,
            "first_due_to_last_start_s": round(last_start - base, 2) if last_start else None,
            "first_start_to_last_start_s": round(last_start - first_start, 2) if starts else None,
            "first_due_to_drained_s": round(drained_at - base, 2) if drained_at else None,
            "drained": drained_at is not None,
            "dialer_processes": {name: {"cpu_s": round(r["cpu_s"], 2), "wall_s": round(r["wall_s"], 1),
                                        "cpu_pct_of_core": round(100 * r["cpu_s"] / r["wall_s"], 1)
                                        if r["wall_s"] else None,
                                        # over the first due time .. the index empty
                                        "cpu_pct_of_core_while_due": round(
                                            100 * r["cpu_s"] / (drained_at - base), 1)
                                        if drained_at else None,
                                        "starts": len(r["records"]), "errors": r["errors"]}
                                 for name, r in results.items()},
            "redis_after": {"records": dict(statuses), **leftovers},
            "cores": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
        }
    finally:
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--spread", type=float, default=60.0, help="due times over (s)")
    parser.add_argument("--lead", type=float, default=20.0,
                        help="first due time this long after the start (s), to store them first")
    parser.add_argument("--dialers", type=int, default=2)
    parser.add_argument("--one-process", action="store_true",
                        help="all dialers in one process instead of one process each")
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--tick", type=float, default=0.2, help="dialer round interval (s)")
    parser.add_argument("--grace", type=float, default=120.0,
                        help="after the last due time, how long to wait for the rest (s)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        await worker(json.loads(args.worker))
        return
    if args.requests > 10000 * len(AREAS):
        parser.error(f"--requests: at most {10000 * len(AREAS)} distinct numbers")
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    try:
        state = instance.up(SandboxPorts.free(), phones="none")
        result = await run(args, instance.app_env(state), instance)
    finally:
        instance.destroy()
    print(json.dumps(result, indent=2))
    report.write("callback_dialer", result)


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
