"""N concurrent callers on hold with check-ins, against a real sandbox Asterisk and Redis.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/hold_checkins.py --calls 50 200 500
    git worktree add /tmp/before <rev> && \
        bench/hold_checkins.py --calls 150 --interval 5 --measure 40 --against /tmp/before --rounds 3

For each N: N Local-channel callers dial in (paced), each is connected to its own operator (a
Local destination answered by the bench, so N operators exist), then put on hold over the REST
API. For `--measure` seconds an observer WebSocket stamps every caller's prompts; a check-in's
lateness is its PlaybackStarted minus when it was due: the interval after the previous
check-in's PlaybackStarted (start to start), but not before the previous prompt's
PlaybackFinished + 2 s of music (after the announcement: its PlaybackFinished + the interval;
ari_app/calls/pacing.py). A missed check-in is one more than 1 s past due.
The app runs as its own process (`ari-etiquette run`); its CPU and memory and Asterisk's CPU
are read from /proc, and Redis's own count of the commands run meanwhile (INFO commandstats).
Not a test: prints figures and writes JSON to bench/results/.

    bench/hold_checkins.py --calls 300 --interval 25 --measure 75 --spread --naive --rounds 2

`--naive`: each N also runs bench/naive_hold.py in the app's place, on the same callers and
operators: a check-in's ARI work (the prompt, the operator's nudge, the music back) and a
plain SET per step, nothing else; the ratio of the app's CPU per check-in to its is printed.
`BENCH_CPROFILE=FILE` runs the app under cProfile (two runs of different `--measure`,
subtracted, give what the extra check-ins cost, call by call).
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
from collections import Counter
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.ari import operations as ops  # noqa: E402
from ari_app.calls.pacing import next_check_in  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    PHONE_APP, SandboxInstance, SandboxPorts, interrupt_on_sigterm)
from ari_app.sandbox.ports import free_port  # noqa: E402,F401 (other benches import it from here)
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

TOKEN = uuid.uuid4().hex


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else 0.0


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def asterisk_pid(unshare_pid: int) -> int:
    """The asterisk process under the sandbox's `unshare` (found through /proc children)."""
    todo = [unshare_pid]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}/comm").read_text().strip() == "asterisk":
            return pid
        for task in Path(f"/proc/{pid}/task").iterdir():
            todo += [int(c) for c in (task / "children").read_text().split()]
    raise RuntimeError("asterisk process not found")


def system_cpu() -> dict[str, int]:
    """Machine-wide jiffies from /proc/stat, to show user, system and steal time."""
    f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return {"user": f[0] + f[1], "system": f[2] + f[5] + f[6], "idle": f[3] + f[4], "steal": f[7]}


async def redis_commands(url: str) -> dict[str, int]:
    """Redis's own count of each command it has run (INFO commandstats): what the app asks of
    Redis, read before and after the measured window."""
    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


async def ping_probe(ari: AriClient, out: list[float]) -> None:
    """Ten bare ARI pings a second, timed: how long Asterisk itself takes to answer."""
    while True:
        t0 = time.perf_counter()
        await ari.call(ops.PING)
        out.append((time.perf_counter() - t0) * 1000)
        await asyncio.sleep(0.1)


async def tear_down(ari, tags, app: asyncio.subprocess.Process, tasks) -> None:
    """The bench's callers hung up (their calls given 3 s to end), the app stopped, the
    bench's own readers cancelled, ARI closed."""
    for tag in tags:
        await _quiet(ari.hangup(f"bc-{tag}"))
    await asyncio.sleep(3)
    app.terminate()
    await app.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await ari.close()


async def wait_healthy(base_url: str, app: asyncio.subprocess.Process, log_path,
                       timeout: float = 15.0) -> None:
    """Until the app under test answers /healthz 200; SystemExit naming its log when it exits
    or does not come up (every bench starts the app this way)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            try:
                async with http.get(f"{base_url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if app.returncode is not None:
                raise SystemExit(f"the app exited at start ({app.returncode}): see {log_path}")
            await asyncio.sleep(0.1)
    raise SystemExit(f"the app did not answer /healthz within {timeout:g} s: see {log_path}")


NAIVE = "naive"  # the tree name of the reference handler (bench/naive_hold.py)


async def run_one(n: int, args, instance: SandboxInstance, env: dict,
                  tree: Path | str = ROOT) -> dict:
    """One run of N held callers: this tree's app, another checkout's, or (tree NAIVE) the
    reference handler in its place."""
    naive = tree == NAIVE
    side = "naive" if naive else "ours" if tree == ROOT else "against"  # a profile's name
    interval = args.interval
    policy = instance.dir / f"bench-hold-{n}.toml"
    operators = ", ".join(f'"Local/bop{i}@sandbox-phones"' for i in range(n))
    policy.write_text(f'company = "Example Corp"\n[operators]\nendpoints = [{operators}]\n'
                      f"[recording]\nenabled = false\n"
                      f"[hold]\ncheck_in_interval = {int(interval)}\nfallback_after = 180\n")
    port = free_port()
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
               "ETIQUETTE_API_TOKEN": TOKEN, "ETIQUETTE_LOG_LEVEL": "WARNING",
               "ETIQUETTE_LOG_FORMAT": "json"}
    log = open(f"/tmp/bench-hold-app-{n}.log", "wb")
    # `-m` from the tree's own directory: its ari_app comes first on the path
    # BENCH_CPROFILE=FILE: the app under cProfile (every call counted, written when it exits)
    profiled = (["-m", "cProfile", "-o", os.environ["BENCH_CPROFILE"]]
                if os.environ.get("BENCH_CPROFILE") else [])
    if naive:
        app = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "bench" / "naive_hold.py"),
            "--ari", f"{env['ETIQUETTE_ARI_URL']}/ari",
            "--password", env["ETIQUETTE_ARI_PASSWORD"], "--redis", env["ETIQUETTE_REDIS_URL"],
            "--interval", str(interval), *(["--spread"] if args.spread else []),
            stdout=asyncio.subprocess.PIPE, stderr=log)
    else:
        app = await asyncio.create_subprocess_exec(sys.executable, *profiled, "-m", "ari_app.cli",
                                                   "run", env={**app_env, "PYTHONPATH": str(tree)},
                                                   cwd=tree, stdout=log, stderr=log)
    ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])
    prompts: dict[str, list[tuple[str, str, float]]] = {}
    connected: set[str] = set()

    def on_observed(e: dict) -> None:
        now = time.time()
        kind = e.get("type")
        if kind in ("PlaybackStarted", "PlaybackFinished"):
            target = e["playback"]["target_uri"].split(":", 1)[1]
            if "~" not in target:
                prompts.setdefault(target, []).append(
                    (kind, e["playback"]["id"].rsplit("~", 1)[-1], now))

    def on_phone(e: dict) -> None:
        if e.get("type") == "StasisStart":
            asyncio.get_running_loop().create_task(_quiet(ari.answer(e["channel"]["id"])))

    # the observer follows only the callers' own channels: subscribeAll would make Asterisk
    # serialise every event of all 4N channels for the bench, load the app never causes
    observer = EventStream(ari, "bench-observer", on_observed)
    phones = EventStream(ari, PHONE_APP, on_phone)
    callers = EventStream(ari, "bench-caller", lambda e: None)
    tasks = [asyncio.create_task(s.run()) for s in (observer, phones, callers)]
    await asyncio.gather(*(s.connected.wait() for s in (observer, phones, callers)))
    if naive:  # it says so once its events WebSocket is up
        if await asyncio.wait_for(app.stdout.readline(), 15) != b"ready\n":
            raise SystemExit(f"the naive handler did not start: see {log.name}")
    else:
        await wait_healthy(f"http://127.0.0.1:{port}", app, "the app's output")
    async with aiohttp.ClientSession() as http:
        rss0 = proc_rss_mb(app.pid)
        tags = [uuid.uuid4().hex[:10] for _ in range(n)]
        for i, tag in enumerate(tags):  # paced like real arrivals, not one stampede
            await ari.originate("Local/100@etiquette-inbound/n", app="bench-caller",
                                channel_id=f"bc-{tag}", other_channel_id=f"call-{tag}",
                                caller_id=f'"Bench" <+1212555{i:04d}>', timeout=60)
            await ari.call(ops.SUBSCRIBE, applicationName="bench-observer",
                           eventSource=f"channel:call-{tag}")
            await asyncio.sleep(1 / args.rate)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # every caller in a talk bridge with an operator
            connected = {b["id"] for b in await ari.bridges()
                         if b["id"].endswith("~talk") and len(b["channels"]) == 2}
            if len(connected) >= n:
                break
            await asyncio.sleep(0.5)
        # the cost of having N calls up (leases, health, keep-alives) without check-ins: the
        # same callers talking, measured before the holds, subtracted for the marginal figure
        talk_cpu0, talk0 = proc_cpu(app.pid), time.time()
        await asyncio.sleep(args.baseline)
        talk_cpu = (proc_cpu(app.pid) - talk_cpu0) / max(1e-9, time.time() - talk0)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        held = 0
        # --spread: holds start evenly over one interval, as independent calls would, so the
        # check-ins arrive at a steady rate; without it all N start at once (worst case)
        pause = interval / n if args.spread else 0.0
        if naive:  # it spreads its holds itself, over the same interval
            app.send_signal(signal.SIGUSR1)
            held = n
            await asyncio.sleep(pause * n)
        for tag in tags if not naive else ():
            async with http.post(f"http://127.0.0.1:{port}/api/calls/call-{tag}/hold",
                                 json={"reason": "lookup"}, headers=headers) as r:
                held += r.status == 202
            await asyncio.sleep(pause)
        start = time.time()
        cpu0, ast_pid = proc_cpu(app.pid), asterisk_pid(instance.load_state().asterisk_pid)
        ast_cpu0 = proc_cpu(ast_pid)
        stat0 = system_cpu()
        redis0 = await redis_commands(env["ETIQUETTE_REDIS_URL"])
        pings: list[float] = []
        probe = asyncio.create_task(ping_probe(ari, pings))
        profiler = None
        if args.profile:  # py-spy (pip install py-spy) samples the app over the measured window
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(app.pid), "-d", str(int(args.measure) - 1),
                "-r", "250", "-f", "raw", "-o", f"{args.profile}-{side}-{n}.txt", "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await asyncio.sleep(args.measure)
        if profiler is not None:
            await profiler.wait()
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        system = {k: round(100 * (v - stat0[k]) / max(1, sum(system_cpu().values()) - sum(stat0.values())), 1)
                  for k, v in system_cpu().items()}
        elapsed = time.time() - start
        app_cpu = (proc_cpu(app.pid) - cpu0) / elapsed
        ast_cpu = (proc_cpu(ast_pid) - ast_cpu0) / elapsed
        rss1 = proc_rss_mb(app.pid)
        redis1 = await redis_commands(env["ETIQUETTE_REDIS_URL"])
        # the bench's own two reads (INFO, and its client's hello) are not the app's
        asked = Counter({name: calls - redis0.get(name, 0) for name, calls in redis1.items()
                         if not name.startswith(("info", "client", "hello"))})

    lateness, missed = [], 0
    for tag in tags:
        seq = [p for p in prompts.get(f"call-{tag}", []) if p[2] >= start - interval - 10]
        began = ended = None  # the last check-in's start, the last prompt's end
        for kind, prompt, t in seq:
            if kind == "PlaybackFinished":
                ended = t
            elif prompt.startswith("checkin"):
                if ended is not None and t >= start:
                    due = (next_check_in(interval, began, ended) if began is not None
                           else ended + interval)
                    lateness.append((t - due) * 1000)
                    if t - due > 1.0:
                        missed += 1
                began = t
        if ended is not None and seq and seq[-1][0] == "PlaybackFinished":
            due = next_check_in(interval, began, ended) if began is not None else ended + interval
            if time.time() - due > 7.5 + 1.0:
                missed += 1  # music has run past a due check-in that never came
    await tear_down(ari, tags, app, tasks)
    return {"calls": n, "spread": bool(args.spread), "connected": len(connected), "held": held, "interval_s": interval,
            "measured_s": round(elapsed, 1), "check_ins": len(lateness),
            "lateness_p50_ms": round(pct(lateness, 50), 1),
            "lateness_p99_ms": round(pct(lateness, 99), 1),
            "lateness_max_ms": round(max(lateness), 1) if lateness else None,
            "missed_check_ins": missed,
            "app_cpu_pct_of_core": round(app_cpu * 100, 1),
            "app_cpu_ms_per_check_in": round(app_cpu * elapsed * 1000 / max(1, len(lateness)), 2),
            "app_cpu_pct_talking": round(talk_cpu * 100, 1),
            "app_cpu_ms_per_check_in_over_talking": round(
                (app_cpu - talk_cpu) * elapsed * 1000 / max(1, len(lateness)), 2),
            # what the app asked of Redis per check-in (the bench itself sends nothing to it
            # meanwhile): every command, and the busiest ones
            "redis_commands_per_check_in": round(sum(asked.values()) / max(1, len(lateness)), 2),
            "redis_busiest_per_check_in": {name: round(calls / max(1, len(lateness)), 2)
                                           for name, calls in asked.most_common(6)},
            "app_rss_mb": round(rss1, 1), "app_rss_per_call_kb": round((rss1 - rss0) * 1024 / n, 1),
            "asterisk_cpu_pct_of_core": round(ast_cpu * 100, 1),
            # Asterisk's own answer time to a bare GET /asterisk/ping while under this load: a
            # floor under any check-in's lateness that no app can go below
            "ari_ping_p50_ms": round(pct(pings, 50), 1), "ari_ping_p99_ms": round(pct(pings, 99), 1),
            "machine_cpu_pct": system, "cores": os.cpu_count()}


async def _quiet(coro) -> None:
    try:
        await coro
    except Exception:
        pass


# --- shared by the queue and pool benches --------------------------------------------------------

def command_line() -> str:
    """The command that produced a run, printed and written beside its figures."""
    command = report.command()
    print("command:", command, flush=True)
    return command


def bench_sandbox() -> tuple[SandboxInstance, dict[str, str]]:
    """The bench's own sandbox Asterisk and Redis, with no phone registered (nobody is ever a
    free operator) and the prompts rendered; and the app's settings for it."""
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    state = instance.up(SandboxPorts.free(), phones="none",
                        prompts_dir_hook=lambda d: install_prompts(d, {"company": "Example Corp"},
                                                                   ("en", "ru")))
    return instance, instance.app_env(state)


class BenchCallers:
    """The bench's ARI side: its event streams (the callers' own halves parked in Stasis, an
    observer), started and stopped together, and every caller hung up at the end."""

    ari: AriClient
    streams: list[EventStream]

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(s.run()) for s in self.streams]
        await asyncio.wait_for(asyncio.gather(*(s.connected.wait() for s in self.streams)), 15)

    async def hang_up_all(self, tags: list[str]) -> int:
        """Hang up every caller (`bc-<tag>`), then anything still up; how many channels were
        left."""
        await asyncio.gather(*(_quiet(self.ari.hangup(f"bc-{t}")) for t in tags))
        left: list[dict] = []
        for _ in range(60):
            await asyncio.sleep(0.5)
            left = await self.ari.channels()
            if not left:
                return 0
        await asyncio.gather(*(_quiet(self.ari.hangup(c["id"])) for c in left))
        return len(left)

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[50, 200, 500])
    parser.add_argument("--interval", type=float, default=5.0, help="check-in interval (s)")
    parser.add_argument("--measure", type=float, default=40.0, help="seconds measured on hold")
    parser.add_argument("--spread", action="store_true",
                        help="start the holds evenly over one interval instead of all at once")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="sample the app with py-spy over the measured window into "
                             "PREFIX-<ours|against|naive>-N.txt")
    parser.add_argument("--rate", type=float, default=25.0, help="callers dialing in per second")
    parser.add_argument("--against", metavar="TREE", type=Path,
                        help="another checkout of the app (git worktree add /tmp/before REV): "
                             "each N runs this tree's app, then that one's, `--rounds` times")
    parser.add_argument("--naive", action="store_true",
                        help="each N also runs bench/naive_hold.py in the app's place (the "
                             "reference: a check-in's ARI work and a plain SET per step)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--baseline", type=float, default=10.0,
                        help="seconds the connected callers talk, measured, before the holds")
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    state = instance.up(SandboxPorts.free(), phones="stasis",
                        prompts_dir_hook=lambda d: install_prompts(d, {"company": "Example Corp"},
                                                                   ("en", "ru")))
    env = instance.app_env(state)
    results = []
    try:
        for n in args.calls:
            for round_ in range(args.rounds):
                trees = {"this tree": ROOT, **({str(args.against): args.against}
                                                if args.against else {}),
                         **({NAIVE: NAIVE} if args.naive else {})}
                pair = {}
                for name, tree in trees.items():
                    result = {"tree": name, "round": round_ + 1,
                              **await run_one(n, args, instance, env, tree)}
                    print(json.dumps(result), flush=True)
                    results.append(result)
                    pair[name] = result["app_cpu_ms_per_check_in"]
                for other in [name for name in trees if name != "this tree"]:
                    ratio = pair["this tree"] / max(1e-9, pair[other])
                    print(json.dumps({"calls": n, "round": round_ + 1, "against": other,
                                      "cpu_per_check_in_this_over_that": round(ratio, 2)}),
                          flush=True)
    finally:
        instance.destroy()
    report.write("hold_checkins", results)


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
