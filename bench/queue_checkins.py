"""N callers waiting in a queue: the app's queue check-ins against Asterisk's own app_queue,
side by side in one run, on one sandbox Asterisk and Redis.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/queue_checkins.py --calls 100 300 500 --rounds 2 --measure 70

(`--unobserved` adds an app run without the bench's observer, CPU only; `--perf PREFIX` samples
Asterisk with Linux perf, `--profile PREFIX` the app with py-spy: no ratios from those runs.)

For each N, each round runs both sides, one after the other (the order flips every round: the
machine's speed drifts, read the pairwise ratios):

- native: N Local-channel callers (dialed in paced, `--rate` a second) enter Asterisk's own
  `Queue()` (app_queue: channel music on hold, a periodic announcement every 25 s start to
  start, `relative-periodic-announce = no`). Its one member, PJSIP/operator1, never registers,
  so nobody is ever free and every caller stays waiting. The announcements are the app's own
  check-in recordings (`etiquette/queue-checkin-still-*`), so both sides play the same audio.
  ARI sees nothing of a channel outside Stasis, so the announcements are timed over AMI: app_queue
  stops a caller's music for each periodic announcement (`MusicOnHoldStop`), and the first is due
  25 s after the caller joined (`QueueCallerJoin`). app_queue looks once a second and counts
  whole seconds (`time()`), so its lateness is up to about a second by design.
- app: the same N callers dial the app's inbound extension (100@etiquette-inbound); the policy
  has one queue (`[[queues]] name = "bench"`, check-ins every 25 s) and one operator,
  PJSIP/operator1, logged in but never registered: every caller hears the greeting, then
  `queue-entered`, then music and a `queue-checkin-*` prompt every 25 s start to start. An
  observer WebSocket stamps each caller's playbacks; a check-in's lateness is its
  PlaybackStarted minus when it was due (ari_app/calls/pacing.py `next_check_in` after the
  previous check-in; the first: queue-entered's PlaybackFinished + 25 s). The app runs as its
  own process (`ari-etiquette run`).

Both: Asterisk's CPU (and the app's) from /proc over the same `--measure` window, which starts
once every caller is waiting and must end before the first caller reaches the queue's
`threshold` (180 s: the way-out menu). A missed check-in is one more than 1 s past due, or one
that never came. The app_queue config (queues.conf, manager.conf for AMI, a `bench-queue`
context, app_queue.so) is written into this bench's own sandbox instance after it is up and
loaded over the CLI: nothing in config/ or dialplan/ knows of it. Not a test: prints figures
and writes JSON to bench/results/ (not committed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hold_checkins import (BenchCallers, _quiet, asterisk_pid, bench_sandbox,  # noqa: E402
                           command_line, free_port, pct, ping_probe, proc_cpu, proc_rss_mb,
                           system_cpu, wait_healthy)

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.ari import operations as ops  # noqa: E402
from ari_app.calls.ids import read_playback  # noqa: E402
from ari_app.calls.pacing import next_check_in  # noqa: E402
from ari_app.sandbox.instance import SandboxInstance, interrupt_on_sigterm  # noqa: E402
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

TOKEN = uuid.uuid4().hex
INTERVAL = 25.0     # the check-in / periodic-announce interval, both sides
THRESHOLD = 180.0   # the app queue's way-out menu: the measured window must end before it
LATE = 1.0          # more than this past due: missed
CALLER_APP = "bench-caller"
OBSERVER_APP = "bench-observer"
QUEUE_ENTERED_MAX = 12.0  # s: longer than any caller's queue-entered prompt (unobserved run)
NATIVE_ANNOUNCE = ("etiquette/queue-checkin-still-1", "etiquette/queue-checkin-still-2",
                   "etiquette/queue-checkin-still-3")

POLICY = f"""company = "Example Corp"
[operators]
endpoints = ["PJSIP/operator1"]
[recording]
enabled = false
[[queues]]
name = "bench"
hours = "00:00-23:59"  # open all day (the default hours close it at night: the way out at once)
check_in_interval = {int(INTERVAL)}
threshold = {int(THRESHOLD)}
max_wait = 3600
max_waiting = 1000
"""

# --- the native side's config: bench-only, written into this bench's sandbox instance ---------

QUEUES_CONF = f"""; bench/queue_checkins.py only: Asterisk's own queue, for comparison with the app's.
[general]
persistentmembers = no

[bench]
musicclass = default
strategy = ringall
joinempty = yes
leavewhenempty = no
; the member's phone never registers (UNAVAILABLE) and is never rung
ringinuse = no
timeout = 15
retry = 5
announce-frequency = 0
announce-position = no
announce-holdtime = no
min-announce-frequency = 0
periodic-announce = {",".join(NATIVE_ANNOUNCE)}
periodic-announce-frequency = {int(INTERVAL)}
random-periodic-announce = no
; no: counted from the previous announcement's start (start to start, as the app's check-ins)
relative-periodic-announce = no
member => PJSIP/operator1
"""

EXTENSIONS_BENCH = """; bench/queue_checkins.py only: a caller entering Asterisk's own queue.
[bench-queue]
exten => q,1,Answer()
 same => n,Set(CHANNEL(language)=en)
 same => n,Queue(bench,,,,3600)
 same => n,Hangup()
"""


def manager_conf(port: int, secret: str) -> str:
    # the observer gets only the events it reads: nothing else is formatted and sent to it
    return (f"; bench/queue_checkins.py only: AMI for timing app_queue's announcements.\n"
            f"[general]\nenabled = yes\nport = {port}\nbindaddr = 127.0.0.1\n\n"
            f"[bench]\nsecret = {secret}\nread = call,agent\nwrite = system\n"
            f"eventfilter = Event: (MusicOnHoldStop|QueueCallerJoin|QueueCallerLeave)\n")


def add_native_queue(instance: SandboxInstance, ami_port: int, ami_secret: str) -> None:
    """app_queue, its bench context and AMI, added to the running bench sandbox over the CLI."""
    etc = instance.dir / "etc"
    (etc / "queues.conf").write_text(QUEUES_CONF)
    (etc / "extensions_bench.conf").write_text(EXTENSIONS_BENCH)
    (etc / "manager.conf").write_text(manager_conf(ami_port, ami_secret))
    main = etc / "extensions.conf"
    if "extensions_bench.conf" not in main.read_text():
        main.write_text(main.read_text() + "#include extensions_bench.conf\n")
    for f in ("queues.conf", "extensions_bench.conf", "manager.conf"):
        os.chmod(etc / f, 0o600)
    for command in ("module load app_queue.so", "dialplan reload", "manager reload"):
        instance.cli(command)
    shown = instance.cli("queue show bench")
    if "bench has" not in shown:
        raise SystemExit(f"app_queue did not load the bench queue: {shown.strip()!r}")
    if "Queue(bench" not in instance.cli("dialplan show q@bench-queue"):
        raise SystemExit("the bench-queue context did not load")


class Ami:
    """A minimal AMI reader: logs in and stamps every event it is sent."""

    def __init__(self, port: int, secret: str) -> None:
        self.port, self.secret = port, secret
        self.events: list[tuple[str, str, float]] = []  # (event, uniqueid, time)
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        for _ in range(50):
            try:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
                break
            except OSError:
                await asyncio.sleep(0.1)
        else:
            raise SystemExit(f"AMI not answering on port {self.port}")
        await self.reader.readline()  # banner
        self.writer.write(f"Action: Login\r\nUsername: bench\r\nSecret: {self.secret}\r\n"
                          f"Events: on\r\n\r\n".encode())
        reply = await self._block()
        if reply.get("Response") != "Success":
            raise SystemExit(f"AMI login refused: {reply}")
        self._task = asyncio.create_task(self._read())

    async def _block(self) -> dict[str, str]:
        block: dict[str, str] = {}
        while True:
            line = (await self.reader.readline()).decode(errors="replace")
            if not line:
                raise ConnectionError("AMI closed")
            line = line.rstrip("\r\n")
            if not line:
                if block:
                    return block
                continue
            key, _, value = line.partition(": ")
            block.setdefault(key, value)

    async def _read(self) -> None:
        while True:
            block = await self._block()
            now = time.time()
            if "Event" in block:
                self.events.append((block["Event"], block.get("Uniqueid", ""), now))

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.writer.close()


# --- one side, one N ---------------------------------------------------------------------------

class Callers(BenchCallers):
    """The bench's ARI side: the callers' own halves (parked in Stasis), and an observer."""

    def __init__(self, ari: AriClient) -> None:
        self.ari = ari
        self.prompts: dict[str, list[tuple[str, str, float]]] = {}  # call -> (kind, prompt, t)

        def on_observed(e: dict) -> None:
            if e.get("type") in ("PlaybackStarted", "PlaybackFinished"):
                pb = read_playback(e["playback"]["id"])
                if pb is not None and pb.party == "caller":
                    self.prompts.setdefault(pb.call_id, []).append(
                        (e["type"], pb.prompt, time.time()))

        self.streams = [EventStream(ari, OBSERVER_APP, on_observed),
                        EventStream(ari, CALLER_APP, lambda e: None)]

    async def dial(self, endpoint: str, tags: list[str], rate: float, observe: bool) -> None:
        for i, tag in enumerate(tags):  # paced like real arrivals, not one stampede
            await self.ari.originate(endpoint, app=CALLER_APP, channel_id=f"bc-{tag}",
                                     other_channel_id=f"call-{tag}",
                                     caller_id=f'"Bench" <+1212{tag[:3]}{i:04d}>', timeout=60)
            if observe:  # only the callers' own channels: subscribeAll would cost Asterisk more
                await self.ari.call(ops.SUBSCRIBE, applicationName=OBSERVER_APP,
                                    eventSource=f"channel:call-{tag}")
            await asyncio.sleep(1 / rate)


def all_processes() -> dict[int, tuple[str, float]]:
    """Every process's name and CPU seconds so far (to see who else ran in a window)."""
    out = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                out[int(d.name)] = ((d / "comm").read_text().strip(), proc_cpu(int(d.name)))
            except (OSError, IndexError, ValueError):
                pass
    return out


class Window:
    """CPU of Asterisk (and the app) and ARI ping times over the measured window."""

    def __init__(self, ari: AriClient, ast_pid: int, app_pid: int | None,
                  perf: str | None = None) -> None:
        self.ari, self.ast_pid, self.app_pid, self.perf = ari, ast_pid, app_pid, perf

    async def measure(self, seconds: float) -> None:
        sampler = None
        if self.perf:  # Linux perf samples Asterisk over the window (it costs CPU itself)
            sampler = await asyncio.create_subprocess_exec(
                "perf", "record", "-q", "-F", "199", "-g", "-p", str(self.ast_pid),
                "-o", f"{self.perf}.data", "--", "sleep", str(max(1, int(seconds) - 1)),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        # another program busy on this machine shows here (the bench's own load is in it too)
        self.loadavg = Path("/proc/loadavg").read_text().split()[0]
        self.start = time.time()
        ast0 = proc_cpu(self.ast_pid)
        app0 = proc_cpu(self.app_pid) if self.app_pid else 0.0
        stat0 = system_cpu()
        own0 = sum(os.times()[:2])
        procs0 = all_processes()
        pings: list[float] = []
        probe = asyncio.create_task(ping_probe(self.ari, pings))
        await asyncio.sleep(seconds)
        if sampler is not None:
            await sampler.wait()
        probe.cancel()
        await asyncio.gather(probe, return_exceptions=True)
        self.end = time.time()
        elapsed = self.end - self.start
        total = max(1, sum(system_cpu().values()) - sum(stat0.values()))
        busy = 100 * (1 - (system_cpu()["idle"] - stat0["idle"]) / total) * (os.cpu_count() or 1)
        own = 100 * (sum(os.times()[:2]) - own0) / elapsed
        self.figures = {
            "measured_s": round(elapsed, 1), "loadavg_before": float(self.loadavg),
            "asterisk_cpu_pct_of_core": round(100 * (proc_cpu(self.ast_pid) - ast0) / elapsed, 1),
            "app_cpu_pct_of_core": (round(100 * (proc_cpu(self.app_pid) - app0) / elapsed, 1)
                                    if self.app_pid else 0.0),
            "ari_ping_p50_ms": round(pct(pings, 50), 1), "ari_ping_p99_ms": round(pct(pings, 99), 1),
            "machine_cpu_pct": {k: round(100 * (v - stat0[k]) / total, 1)
                                for k, v in system_cpu().items()},
            "bench_cpu_pct_of_core": round(own, 1),
        }
        # other programs that ran meanwhile (long-lived ones: a short one is missed), the
        # busiest first: another test suite here skews the figures
        ours = {self.ast_pid, self.app_pid, os.getpid()}
        others = sorted(((cpu - procs0[pid][1], f"{name}[{pid}]")
                         for pid, (name, cpu) in all_processes().items()
                         if pid in procs0 and pid not in ours), reverse=True)
        self.figures["other_processes_cpu_pct_of_core"] = round(
            100 * sum(c for c, _ in others) / elapsed, 1)
        self.figures["other_processes_top"] = [(who, round(100 * c / elapsed, 1))
                                               for c, who in others[:3] if c > 0.01 * elapsed]
        # the machine's busy time (kernel included) beyond Asterisk, the app and this bench:
        # interrupts, softirqs, and any other program that ran meanwhile
        self.figures["other_cpu_pct_of_core"] = round(
            busy - own - self.figures["asterisk_cpu_pct_of_core"]
            - self.figures["app_cpu_pct_of_core"], 1)


def lateness_figures(lateness: list[float], missed: int) -> dict:
    return {"check_ins": len(lateness),
            "lateness_p50_ms": round(pct(lateness, 50), 1),
            "lateness_p99_ms": round(pct(lateness, 99), 1),
            "lateness_max_ms": round(max(lateness), 1) if lateness else None,
            "missed_check_ins": missed}


async def run_native(n: int, args, instance: SandboxInstance, ari: AriClient, ami: Ami) -> dict:
    callers = Callers(ari)
    await callers.start()
    tags = [uuid.uuid4().hex[:10] for _ in range(n)]
    mark = len(ami.events)
    await callers.dial("Local/q@bench-queue/n", tags, args.rate, observe=False)
    joined: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        joined = {u: t for e, u, t in ami.events[mark:] if e == "QueueCallerJoin"}
        if len(joined) >= n:
            break
        await asyncio.sleep(0.5)
    first = min(joined.values(), default=time.time())
    window = Window(ari, asterisk_pid(instance.load_state().asterisk_pid), None,
                    perf=args.perf and f"{args.perf}-native-{n}")
    await asyncio.sleep(args.settle)
    await window.measure(min(args.measure, first + THRESHOLD - 5 - time.time()))
    events = ami.events[mark:]
    left_early = {u for e, u, t in events if e == "QueueCallerLeave" and t < window.end}
    lateness, missed = [], 0
    for tag in tags:
        call = f"call-{tag}"
        if call not in joined or call in left_early:
            continue
        began = joined[call]  # app_queue counts the first announcement from the join
        for e, u, t in events:
            if u != call or e != "MusicOnHoldStop" or t >= window.end:
                continue
            if t >= window.start:
                late = t - (began + INTERVAL)
                lateness.append(late * 1000)
                missed += late > LATE
            began = t
        if window.end - (began + INTERVAL) > LATE:
            missed += 1  # music has run on past a due announcement that never came
    left = await callers.hang_up_all(tags)
    await callers.close()
    return {"side": "native", "calls": n, "waiting": len(joined), "left_early": len(left_early),
            "channels_left_at_cleanup": left, **window.figures, **lateness_figures(lateness, missed)}


async def run_app(n: int, args, instance: SandboxInstance, env: dict, ari: AriClient,
                  observe: bool = True) -> dict:
    """The app's side. `observe` False: no observer subscription (so Asterisk sends each
    playback event to the app only), CPU only, the callers counted in line over GET /api/queues."""
    redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
    await redis.flushdb()  # each run starts alike: no line, no returning callers, no log
    await redis.aclose()
    policy = instance.dir / "bench-queue.toml"
    policy.write_text(POLICY)
    port = free_port()
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
               "ETIQUETTE_API_TOKEN": TOKEN, "ETIQUETTE_LOG_LEVEL": "WARNING",
               "ETIQUETTE_LOG_FORMAT": "json"}
    log_path = f"/tmp/bench-queue-app-{n}.log"
    log = open(log_path, "wb")
    app = await asyncio.create_subprocess_exec(sys.executable, "-m", "ari_app.cli", "run",
                                               env=app_env, cwd=ROOT, stdout=log, stderr=log)
    callers = Callers(ari)
    await callers.start()
    try:
        await wait_healthy(f"http://127.0.0.1:{port}", app, log_path)
        rss0 = proc_rss_mb(app.pid)
        idle0 = proc_cpu(app.pid)  # the app with no call: heartbeats, the dialer's rounds
        await asyncio.sleep(args.idle)
        idle = (proc_cpu(app.pid) - idle0) / args.idle
        tags = [uuid.uuid4().hex[:10] for _ in range(n)]
        t_dial = time.time()
        await callers.dial("Local/100@etiquette-inbound/n", tags, args.rate, observe=observe)

        def entered(tag: str) -> float | None:
            return next((t for kind, p, t in callers.prompts.get(f"call-{tag}", [])
                         if kind == "PlaybackFinished" and p == "queue-entered"), None)

        deadline = time.monotonic() + 60
        in_line = 0
        while time.monotonic() < deadline:
            if observe and sum(entered(t) is not None for t in tags) >= n:
                break
            if not observe:
                in_line = await waiting_in_app(port)
                if in_line >= n:
                    await asyncio.sleep(QUEUE_ENTERED_MAX)  # their queue-entered prompt ends
                    break
            await asyncio.sleep(0.5)
        queued = {t: entered(t) for t in tags if entered(t) is not None}
        await asyncio.sleep(args.settle)
        window = Window(ari, asterisk_pid(instance.load_state().asterisk_pid), app.pid,
                        perf=args.perf and f"{args.perf}-{'app' if observe else 'app-unobserved'}-{n}")
        # the way-out menu comes `threshold` after a caller entered the line (before its
        # queue-entered prompt started): the window ends before the first caller's
        first = min((t for plays in callers.prompts.values() for kind, p, t in plays
                     if kind == "PlaybackStarted" and p == "queue-entered"), default=t_dial)
        if not observe:
            queued = {t: t_dial for t in tags[:in_line]}  # counted, not timed
        seconds = min(args.measure, first + THRESHOLD - 5 - time.time())
        profiler = None
        if args.profile:  # py-spy (pip install py-spy) samples the app over the window
            profiler = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(app.pid),
                "-d", str(max(1, int(seconds) - 1)), "-r", "250", "-f", "raw",
                "-o", f"{args.profile}-{n}.txt", "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        redis = aioredis.from_url(env["ETIQUETTE_REDIS_URL"])
        await redis.config_resetstat()  # Redis' command counts over the window only
        await window.measure(seconds)
        commands = {k.removeprefix("cmdstat_"): v["calls"]
                    for k, v in (await redis.info("commandstats")).items()}
        await redis.aclose()
        if profiler is not None:
            await profiler.wait()
        rss1 = proc_rss_mb(app.pid)
        lateness, missed = [], 0
        for tag, t_entered in queued.items():
            began, ended = None, t_entered  # the last check-in's start, the last prompt's end
            for kind, prompt, t in callers.prompts.get(f"call-{tag}", []):
                if t < t_entered or t >= window.end:
                    continue
                if kind == "PlaybackFinished":
                    ended = t
                elif prompt.startswith("queue-checkin-"):
                    due = (next_check_in(INTERVAL, began, ended) if began is not None
                           else ended + INTERVAL)
                    if t >= window.start:
                        lateness.append((t - due) * 1000)
                        missed += t - due > LATE
                    began = t
            due = next_check_in(INTERVAL, began, ended) if began is not None else ended + INTERVAL
            if window.end - due > LATE:
                missed += 1  # music has run on past a due check-in that never came
        left = await callers.hang_up_all(tags)
        await asyncio.sleep(2)  # the app sees the hang-ups (abandons) before it is stopped
    finally:
        await callers.close()
        if app.returncode is None:
            app.terminate()
            await app.wait()
        log.close()
    app_cpu = window.figures["app_cpu_pct_of_core"] / 100 * window.figures["measured_s"]
    if not observe:  # nothing was timed
        lateness_fig = {"check_ins": None, "lateness_p50_ms": None, "lateness_p99_ms": None,
                        "lateness_max_ms": None, "missed_check_ins": None}
        lateness.clear()
    else:
        lateness_fig = lateness_figures(lateness, missed)
    return {"side": "app" if observe else "app-unobserved", "calls": n, "waiting": len(queued),
            "channels_left_at_cleanup": left, **window.figures, **lateness_fig,
            "app_cpu_ms_per_check_in": (round(app_cpu * 1000 / len(lateness), 2) if lateness
                                        else None),
            "app_idle_cpu_pct_of_core": round(idle * 100, 2),
            # the app's Redis commands over the window (every call, not only check-ins)
            "redis_commands_per_check_in": (round(sum(commands.values()) / len(lateness), 1)
                                            if lateness else None),
            "redis_commands": dict(sorted(commands.items(), key=lambda kv: -kv[1])[:8]),
            # the same, less what the app spends with no call at all over as long
            "app_cpu_ms_per_check_in_net_of_idle": (
                round((app_cpu - idle * window.figures["measured_s"]) * 1000 / len(lateness), 2)
                if lateness else None),
            # what the callers heard (PlaybackStarted per prompt): shows at once when callers
            # were not queued (no queue-entered, no check-ins)
            "prompts_started": dict(Counter(p for plays in callers.prompts.values()
                                            for kind, p, _ in plays
                                            if kind == "PlaybackStarted")),
            # one caller's prompts, seconds from its first: what a caller heard, to read by eye
            "example_caller": [(kind, p, round(t - plays[0][2], 3)) for plays in
                               list(callers.prompts.values())[:1] for kind, p, t in plays],
            "app_rss_mb": round(rss1, 1), "app_rss_per_call_kb": round((rss1 - rss0) * 1024 / n, 1),
            "app_log": log_path}


async def wait_quiet(limit: float = 300.0) -> float:
    """Wait (at most `limit` s) until the machine is nearly idle for 3 s: another program's
    tests would skew both sides. Returns how busy it was when we went on (% of the machine)."""
    deadline = time.monotonic() + limit
    while True:
        stat0 = system_cpu()
        await asyncio.sleep(3)
        stat1 = system_cpu()
        total = max(1, sum(stat1.values()) - sum(stat0.values()))
        busy = 100 * (1 - (stat1["idle"] - stat0["idle"]) / total)
        if busy < 10 or time.monotonic() > deadline:
            return round(busy, 1)


async def waiting_in_app(port: int) -> int:
    """How many callers the app has in its line (GET /api/queues)."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/api/queues",
                            headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            body = await r.json() if r.status == 200 else {"queues": []}
    return sum(len(q["waiting"]) for q in body["queues"])


def pair(native: dict, app: dict) -> dict:
    both = app["asterisk_cpu_pct_of_core"] + app["app_cpu_pct_of_core"]
    return {"calls": native["calls"],
            "native_asterisk_cpu_pct": native["asterisk_cpu_pct_of_core"],
            "app_asterisk_cpu_pct": app["asterisk_cpu_pct_of_core"],
            "app_cpu_pct": app["app_cpu_pct_of_core"],
            "ratio": round(both / max(0.1, native["asterisk_cpu_pct_of_core"]), 2)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[100, 300, 500])
    parser.add_argument("--measure", type=float, default=70.0,
                        help="seconds measured with every caller waiting (ends before the "
                             f"queue's {THRESHOLD:.0f} s threshold)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="native and app pairs per N (the order flips each round)")
    parser.add_argument("--rate", type=float, default=25.0, help="callers dialing in per second")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the last caller is waiting before measuring")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds the app's CPU is read with no call, before the callers")
    parser.add_argument("--unobserved", action="store_true",
                        help="also run the app side without the bench's observer subscription "
                             "(CPU only): what the observer itself costs Asterisk")
    parser.add_argument("--perf", metavar="PREFIX",
                        help="sample Asterisk with Linux perf over each window into "
                             "PREFIX-SIDE-N.data (read: perf report -i F --symfs ROOTFS); "
                             "perf costs CPU too: no ratios from such a run")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="sample the app with py-spy over its window into PREFIX-N.txt "
                             "(collapsed stacks)")
    parser.add_argument("--only", choices=("native", "app", "app-unobserved"),
                        help="run one side only (no ratios)")
    args = parser.parse_args()
    command = command_line()
    instance, env = bench_sandbox()
    ami_port, ami_secret = free_port(), secrets.token_hex(12)
    results, pairs = [], []
    ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])
    ami = Ami(ami_port, ami_secret)
    try:
        add_native_queue(instance, ami_port, ami_secret)
        await ami.start()
        for n in args.calls:
            for r in range(args.rounds):
                order = ["native", "app", *(["app-unobserved"] if args.unobserved else [])]
                if r % 2:
                    order.reverse()
                got = {}
                for side in order:
                    if args.only and side != args.only:
                        continue
                    busy = await wait_quiet()
                    result = (await run_native(n, args, instance, ari, ami) if side == "native"
                              else await run_app(n, args, instance, env, ari,
                                                 observe=side == "app"))
                    result["round"], result["machine_busy_before_pct"] = r, busy
                    print(json.dumps(result), flush=True)
                    results.append(result)
                    got[side] = result
                    await asyncio.sleep(5)  # the machine settles between runs
                if "native" in got and "app" in got:
                    pairs.append({"round": r, **pair(got["native"], got["app"])})
                    if "app-unobserved" in got:
                        pairs[-1]["ratio_unobserved"] = pair(got["native"],
                                                             got["app-unobserved"])["ratio"]
                    print(json.dumps(pairs[-1]), flush=True)
    finally:
        await _quiet(ami.close())
        await ari.close()
        instance.destroy()
    print_table(results, pairs)
    report.write("queue_checkins", {"command": command, "runs": results, "pairs": pairs},
                 rows=results + pairs)


def _or(value) -> str:
    return "" if value is None else str(value)


def print_table(results: list[dict], pairs: list[dict]) -> None:
    """ast%, app%: Asterisk's and the app's CPU, % of one core; other%: the machine's busy time
    beyond Asterisk, the app and the bench (kernel work included); procs%: the part of it in
    other long-lived processes (another test suite shows here); idle%: of the whole machine."""
    print("\n side           N  round  waiting  ast%   app%  other%  procs%  idle%  check-ins  p50 ms  p99 ms"
          "  missed  app ms/check-in  app RSS MB")
    for r in results:
        print(f" {r['side']:<14} {r['calls']:>4} {r['round']:>5} {r['waiting']:>8} "
              f"{r['asterisk_cpu_pct_of_core']:>5} {r['app_cpu_pct_of_core']:>6} "
              f"{r['other_cpu_pct_of_core']:>7} {r['other_processes_cpu_pct_of_core']:>7} "
              f"{r['machine_cpu_pct']['idle']:>6} "
              f"{_or(r['check_ins']):>10} {_or(r['lateness_p50_ms']):>7} "
              f"{_or(r['lateness_p99_ms']):>7} {_or(r['missed_check_ins']):>7} "
              f"{_or(r.get('app_cpu_ms_per_check_in')):>16} "
              f"{r.get('app_rss_mb', ''):>11}")
    by_n: dict[int, list[float]] = {}
    for p in pairs:
        by_n.setdefault(p["calls"], []).append(p["ratio"])
    for n, ratios in by_n.items():
        print(f" N={n}: (app's Asterisk + app) / native Asterisk, pair by pair: "
              f"{' / '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})")
        blind = [p["ratio_unobserved"] for p in pairs if p["calls"] == n and "ratio_unobserved" in p]
        if blind:
            print(f"        the same without the bench's observer subscription: "
                  f"{' / '.join(f'{x:.2f}' for x in blind)} (median {statistics.median(blind):.2f})")


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
