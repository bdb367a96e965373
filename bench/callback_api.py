"""POST /api/callbacks throughput and latency, ours against a naive handler in the same run.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/callback_api.py --clients 50 --seconds 10 \
        --rounds 2 --loops uvloop asyncio

Ours: the app as its own process (`python -m ari_app.cli run`, a real sandbox Asterisk and
Redis) with the callback dialer off (ETIQUETTE_CALLBACK_DIALER=false: nothing is dialled) and a
bearer token, as a server posting requests would use. The reference: bench/naive_intake.py,
aiohttp + redis-py that parses the JSON, validates the number with phonenumbers and writes the
record and its index in one transaction, against the same Redis. Each round loads ours (once
per event loop in `--loops`, ETIQUETTE_EVENT_LOOP), then the naive one (on asyncio's loop),
`--rounds` times alternately: for `--seconds`, `--clients` concurrent aiohttp
clients (a session, so a keep-alive connection, each) post valid, distinct New York numbers
(+1 212/646/... 555 xxxx, then other exchanges): one request per number, so the per-number
limit never counts above 1 and nothing is merged. The per-server limit counts every request
to ours: the policy sets it to its maximum and the bench deletes the counter
(etq:rate:server:127.0.0.1:<hour>) before it is reached, holding the clients at a gate
meanwhile (a 429 would show in the error counts).

`--against TREE`: also the app of another checkout (its `python -m ari_app.cli run`), loaded
after ours in each round: a change's before and after, side by side with the naive handler.

`--intake-workers 1 2`: also `ari-etiquette intake --workers N` (the form on processes of its
own, sharing one port), loaded the same way after ours; its CPU is its processes' together.

Reported per round and side: requests/s, latency p50/p99/max, responses by status, the
server's and Redis's CPU, the server's CPU per request (ms), and the durability check (every
201's id is in its index, ZMSCORE, with its record; the index grew by the number of 201s);
ours / naive for requests/s, p99 and CPU per request.
Redis is the sandbox's (appendonly yes, appendfsync everysec). The clients share the machine
with the servers: on 2 cores, client CPU is part of what limits the figure. Not a test: prints
figures and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))
from hold_checkins import wait_healthy  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    SandboxInstance, SandboxPorts, interrupt_on_sigterm)
from ari_app.sandbox.ports import free_port  # noqa: E402
from ari_app.storage import Keyspace  # noqa: E402
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

KEYS = Keyspace()  # the app's own key names
SERVER_LIMIT = 100_000  # requests_per_server_per_hour: the policy's maximum

TOKEN = uuid.uuid4().hex
AREAS = ("212", "646", "718", "917", "347", "332", "929")  # New York: one zone for every number
OPEN_ALL_WEEK = "".join(f'{day} = "00:00-23:59"\n' for day in
                        ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu(pid: int) -> float:
    """The CPU seconds of a process and its children (the intake's workers)."""
    total = proc_cpu(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def all_workers_up(base: str, workers: int, timeout: float = 15.0) -> None:
    """Until `workers` different processes have answered /healthz (a new connection each:
    the kernel spreads them over the processes sharing the port)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        while len(seen) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(seen)} of {workers} intake processes answered")
            async with http.get(f"{base}/healthz") as r:
                if r.status == 200:
                    seen.add((await r.json())["pid"])


def quiet_hours_away_from_now(zone: str = "America/New_York") -> str:
    start = datetime.now(ZoneInfo(zone)) + timedelta(hours=6)
    end = start + timedelta(hours=3)
    return f'[quiet_hours]\nstart = "{start:%H:%M}"\nend = "{end:%H:%M}"\n'


def write_policy(path: Path) -> None:
    operators = ", ".join(f'"Local/op{i}@nowhere"' for i in range(10))
    path.write_text(f'company = "Example Corp"\n[operators]\nendpoints = [{operators}]\n'
                    '[recording]\nenabled = false\n'
                    '[business_hours]\ntime_zone = "UTC"\n' + OPEN_ALL_WEEK
                    + quiet_hours_away_from_now()
                    + "[callback]\nallowed_countries = [\"US\"]\nrequests_per_ip_per_hour = 1000\n"
                    f"requests_per_server_per_hour = {SERVER_LIMIT}\n"
                    "requests_per_number_per_day = 3\n")


def numbers():
    """630,000 distinct valid numbers (phonenumbers: fixed line or mobile, America/New_York)."""
    for exchange in ("555", "201", "202", "203", "204", "205", "206", "207", "208"):
        for area in AREAS:
            for i in range(10000):
                yield f"+1{area}{exchange}{i:04d}"


async def load(args, base: str, headers: dict, redis, pool, index: str, record, flush: bool,
               app_pid: int, redis_pid: int, profile: str | None = None) -> dict:
    """`--clients` clients posting for `--seconds` to one intake; its figures and the check
    that every 201 is in `index` with its `record(id)`."""
    batch = SERVER_LIMIT - args.clients - 50  # in flight at a flush: at most `clients` more
    gate = asyncio.Lock()
    issued = {"since_flush": 0, "flushes": 0}
    latencies: list[float] = []
    statuses: Counter = Counter()
    created: list[str] = []
    before = await redis.zcard(index)
    if flush:  # a fresh per-server count for each load: the earlier ones' counts are theirs
        slot = int(time.time() // 3600)
        await redis.delete(*(KEYS.rate("server:127.0.0.1", s) for s in (slot - 1, slot, slot + 1)))

    async def flush_if_due() -> None:
        if not flush or issued["since_flush"] < batch:
            return
        async with gate:
            if issued["since_flush"] >= batch:
                slot = int(time.time() // 3600)
                await redis.delete(*(KEYS.rate("server:127.0.0.1", s)
                                     for s in (slot - 1, slot, slot + 1)))
                issued["since_flush"] = 0
                issued["flushes"] += 1

    async def client(n: int, end: float) -> None:
        async with aiohttp.ClientSession(headers=headers) as session:
            while time.perf_counter() < end:
                await flush_if_due()
                number = next(pool, None)
                if number is None:
                    raise RuntimeError("ran out of distinct numbers: use fewer --seconds")
                issued["since_flush"] += 1
                body = {"number": number, "name": f"Bench Client {n}", "topic": "bench",
                        "time_zone": "America/New_York"}
                t0 = time.perf_counter()
                try:
                    async with session.post(f"{base}/api/callbacks", json=body) as r:
                        answer = await r.read()
                        status: int | str = r.status
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    status, answer = type(exc).__name__, b""
                latencies.append((time.perf_counter() - t0) * 1000)
                statuses[status] += 1
                if status == 201:
                    created.append(json.loads(answer)["id"])

    await redis.config_resetstat()  # Redis's time per command, this load's only
    cpu0, redis_cpu0, clients_cpu0 = tree_cpu(app_pid), proc_cpu(redis_pid), proc_cpu(os.getpid())
    t0 = time.perf_counter()
    end = t0 + args.seconds
    profiler = None
    if profile:  # py-spy (pip install py-spy) samples the server over the load
        profiler = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(app_pid),
            "-d", str(max(1, int(args.seconds) - 1)), "-r", "250", "-f", "raw", "-o", profile,
            "--nonblocking", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
    await asyncio.gather(*(client(n, end) for n in range(args.clients)))
    elapsed = time.perf_counter() - t0
    if profiler is not None:
        await profiler.wait()
    app_cpu = (tree_cpu(app_pid) - cpu0) / elapsed
    redis_cpu = (proc_cpu(redis_pid) - redis_cpu0) / elapsed
    clients_cpu = (proc_cpu(os.getpid()) - clients_cpu0) / elapsed
    commands = await redis.info("commandstats")

    # durability: every 201 is in the index, with its record
    added = await redis.zcard(index) - before
    missing_index = missing_record = 0
    for i in range(0, len(created), 500):
        chunk = created[i:i + 500]
        scores = await redis.zmscore(index, chunk)
        missing_index += sum(s is None for s in scores)
        exists = await redis.exists(*(record(c) for c in chunk))
        missing_record += len(chunk) - exists
    total = sum(statuses.values())
    return {
        "clients": args.clients, "seconds": round(elapsed, 2), "requests": total,
        "requests_per_s": round(total / elapsed, 1),
        "created_per_s": round(statuses.get(201, 0) / elapsed, 1),
        "latency_p50_ms": round(pct(latencies, 50), 2),
        "latency_p99_ms": round(pct(latencies, 99), 2),
        "latency_max_ms": round(max(latencies), 2) if latencies else None,
        "by_status": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "errors": sum(v for k, v in statuses.items() if k != 201),
        "rate_counter_flushes": issued["flushes"],
        "redis": {"index_added": added, "created_201": len(created),
                  "index_added_equals_201s": added == len(created),
                  "ids_missing_from_index": missing_index,
                  "ids_missing_record": missing_record},
        "app_cpu_pct_of_core": round(app_cpu * 100, 1),
        # what a form costs the server, whether or not it was the limit (a server idle while
        # Redis or the clients are the limit answers fewer requests a second for the same cost)
        "app_cpu_ms_per_request": round(app_cpu * elapsed * 1000 / max(1, total), 3),
        "redis_cpu_pct_of_core": round(redis_cpu * 100, 1),
        # what a form costs Redis (its commands, scripts and append-only file), the CPU the
        # servers and the clients share on a small machine
        "redis_cpu_us_per_request": round(redis_cpu * elapsed * 1e6 / max(1, total), 1),
        # the commands' own time in Redis a request, the most first (a script's commands are
        # counted both in it and on their own); the rest of Redis's CPU is reading requests,
        # writing replies and the append-only file
        "redis_command_us_per_request": dict(sorted(
            ((name.removeprefix("cmdstat_"), round(stat["usec"] / max(1, total), 1))
             for name, stat in commands.items()), key=lambda kv: -kv[1])[:8]),
        "clients_cpu_pct_of_core": round(clients_cpu * 100, 1),  # this bench's own process
        "load_avg_1m": os.getloadavg()[0],
    }


def ratio(side: dict, reference: dict) -> dict:
    """One side's figures over another's, in the same round."""
    def over(figure: str) -> float | None:
        return round(side[figure] / reference[figure], 2) if reference[figure] else None
    return {"requests_per_s": over("requests_per_s"), "p99": over("latency_p99_ms"),
            "cpu_per_request": over("app_cpu_ms_per_request"),
            "redis_cpu_per_request": over("redis_cpu_us_per_request")}


def rows(result: dict) -> list[dict]:
    """The Markdown table: a row per round and side, then a row per ratio."""
    table = []
    for r in result["rounds"]:
        for side, f in r.items():
            if side in ("round", "ratios"):
                continue
            table.append({
                "round": r["round"], "side": side, "requests/s": f["requests_per_s"],
                "p50 ms": f["latency_p50_ms"], "p99 ms": f["latency_p99_ms"],
                "not 201": f["errors"], "all kept": f["redis"]["index_added_equals_201s"]
                and not f["redis"]["ids_missing_record"],
                "app % of a core": f["app_cpu_pct_of_core"],
                "app ms/request": f["app_cpu_ms_per_request"],
                "Redis % of a core": f["redis_cpu_pct_of_core"],
                "Redis µs/request": f["redis_cpu_us_per_request"],
                "clients % of a core": f["clients_cpu_pct_of_core"]})
        for name, q in r["ratios"].items():
            table.append({"round": r["round"], "side": name, "requests/s": q["requests_per_s"],
                          "p99 ms": q["p99"], "app ms/request": q["cpu_per_request"],
                          "Redis µs/request": q["redis_cpu_per_request"]})
    return table


async def start(command: list[str], env: dict, port: int, name: str, tree: Path = ROOT):
    log_path = Path(f"/tmp/bench-callback-api-{name.replace('/', '_')}-{os.getpid()}.log")
    log = open(log_path, "wb")
    process = await asyncio.create_subprocess_exec(*command, env=env, cwd=tree, stdout=log,
                                                   stderr=log)
    await wait_healthy(f"http://127.0.0.1:{port}", process, log_path)
    return process, log


async def stop(process, log) -> None:
    if process.returncode is None:
        process.terminate()
    await process.wait()
    log.close()


async def run(args, env: dict, instance: SandboxInstance) -> dict:
    policy = instance.dir / "bench-callback-api.toml"
    write_policy(policy)
    port, naive_port, intake_port = free_port(), free_port(), free_port()
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_HTTP_PORT": str(port), "ETIQUETTE_API_TOKEN": TOKEN,
               "ETIQUETTE_CALLBACK_DIALER": "false", "ETIQUETTE_LOG_LEVEL": "WARNING",
               "ETIQUETTE_LOG_FORMAT": "json"}
    redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
    redis_pid = instance.load_state().redis_pid
    pool = numbers()
    started: list = []
    try:
        naive = await start([sys.executable, str(ROOT / "bench" / "naive_intake.py"), "--port",
                             str(naive_port), "--redis", env["ETIQUETTE_REDIS_URL"]],
                            {**os.environ}, naive_port, "naive")
        started.append(naive)
        aof = await redis.config_get("append*")
        rounds: list[dict] = []
        for n in range(args.rounds):  # alternately, so every side sees the same machine
            sides: dict[str, dict] = {}
            apps = [(f"ours_{loop}", loop, ROOT) for loop in args.loops] + (
                [(f"against_{args.loops[0]}", args.loops[0], args.against)] if args.against else [])
            for side, loop, tree in apps:  # ours, one process at a time (one ARI app name)
                app = await start([sys.executable, "-m", "ari_app.cli", "run"],
                                  {**app_env, "ETIQUETTE_EVENT_LOOP": loop,
                                   "PYTHONPATH": str(tree)}, port, f"app-{loop}-{side}", tree)
                try:
                    sides[side] = await load(
                        args, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"},
                        redis, pool, KEYS.record_index("callback"),
                        lambda i: KEYS.record("callback", i), True, app[0].pid, redis_pid,
                        f"{args.profile}-{side}-{n + 1}.txt" if args.profile else None)
                finally:
                    await stop(*app)
            for workers in args.intake_workers:  # the form on processes of its own
                intake = await start([sys.executable, "-m", "ari_app.cli", "intake", "--workers",
                                      str(workers), "--port", str(intake_port)],
                                     {**app_env, "ETIQUETTE_EVENT_LOOP": args.loops[0]},
                                     intake_port, f"intake-{workers}")
                try:
                    await all_workers_up(f"http://127.0.0.1:{intake_port}", workers)
                    sides[f"intake_x{workers}"] = await load(
                        args, f"http://127.0.0.1:{intake_port}",
                        {"Authorization": f"Bearer {TOKEN}"}, redis, pool,
                        KEYS.record_index("callback"), lambda i: KEYS.record("callback", i),
                        True, intake[0].pid, redis_pid)
                finally:
                    await stop(*intake)
            sides["naive"] = reference = await load(
                args, f"http://127.0.0.1:{naive_port}", {}, redis, pool, "naive:index",
                lambda i: f"naive:record:{i}", False, naive[0].pid, redis_pid)
            ratios = {f"{side}_over_naive": ratio(f, reference)
                      for side, f in sides.items() if side != "naive"}
            if args.against:  # the change itself: this tree's app over the other's
                ratios["ours_over_against"] = ratio(sides[f"ours_{args.loops[0]}"],
                                                    sides[f"against_{args.loops[0]}"])
            rounds.append({"round": n + 1, **sides, "ratios": ratios})
        return {"command": " ".join(["bench/callback_api.py", *sys.argv[1:]]),
                "clients": args.clients, "seconds": args.seconds, "rounds": rounds,
                "appendonly": aof.get("appendonly"), "appendfsync": aof.get("appendfsync"),
                "cores": os.cpu_count()}
    finally:
        for process, log in started:
            await stop(process, log)
        await redis.aclose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long they post")
    parser.add_argument("--rounds", type=int, default=2, help="ours then the naive one, N times")
    parser.add_argument("--loops", nargs="+", default=["uvloop"], choices=["uvloop", "asyncio"],
                        help="ours on each of these event loops (ETIQUETTE_EVENT_LOOP)")
    parser.add_argument("--intake-workers", type=int, nargs="*", default=[],
                        help="also `ari-etiquette intake --workers N` for each N (the form on "
                             "processes of its own, one port), on the first of --loops")
    parser.add_argument("--against", metavar="TREE", type=Path,
                        help="another checkout of the app (git worktree add /tmp/before REV): "
                             "its app is loaded after ours in each round, on the first of "
                             "--loops (`against_<loop>` in the figures)")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="py-spy samples ours over each load: PREFIX-<side>-<round>.txt "
                             "(collapsed stacks)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 1000:
        parser.error("--clients: 1 to 1000 (the per-server counter is flushed below its limit)")
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    try:
        state = instance.up(SandboxPorts.free(), phones="none",
                            prompts_dir_hook=lambda d: install_prompts(
                                d, {"company": "Example Corp"}, ("en", "ru")))
        result = await run(args, instance.app_env(state), instance)
    finally:
        instance.destroy()
    print(json.dumps(result, indent=2))
    report.write("callback_api", result, rows(result))


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
