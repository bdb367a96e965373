"""The live event stream with N live calls and K open supervisor dashboards, against a real
sandbox Asterisk and Redis.

    ETIQUETTE_CACHE_DIR=~/.cache/ari-etiquette ~/.cache/ari-etiquette/venv/bin/python bench/dashboard_stream.py --calls 200 --clients 20

N Local-channel callers dial in (paced, `--rate` a second), each is put through to its own
operator (a Local destination the bench answers, so N operators exist), then put on hold over
the REST API (spread over one check-in interval): every caller hears a check-in every
`--interval` seconds, each one a handful of call events (the check-in, its prompt, the state
changes). The app runs as its own process (`ari-etiquette run`).

Two windows of `--measure` seconds each, side by side in one run (the order flips every round,
`--rounds`): with no dashboard open, and with K open. A dashboard is what the page does: an
SSE client on /api/events (bearer token) and, on events, a fetch of GET /api/dashboard at most
every `--fetch-gap` ms (0: the stream only). Measured:

- delivery latency: an event's receipt by a client minus its `at` (when the app published it;
  one machine, one clock), p50/p99/max over every client's events in the window;
- the snapshot's answer time (p50/p99) and how many were fetched;
- the same latency on one probe stream open in every window (the 0-dashboard one too): a lag
  the probe sees without the dashboards is not theirs; the slowest event names by p99;
- the app's CPU (from /proc) per second in each window, and the ratio K/0: what the dashboards
  add; the bench's own CPU too (it parses K streams on the same machine); Asterisk's CPU, the
  machine's idle time and ARI's answer time (ten pings a second): a saturated Asterisk delays
  the steps themselves.

Not a test: prints figures, a Markdown table, and writes JSON (and the table) to bench/results/.
The measured windows must end before the holds' way out (`fallback_after` 180 s): with the
defaults one round takes about 80 s after the last hold.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from hold_checkins import (_quiet, asterisk_pid, free_port, pct, ping_probe,  # noqa: E402
                           proc_cpu, proc_rss_mb, system_cpu, tear_down, wait_healthy)

from ari_app.ari import AriClient, EventStream  # noqa: E402
from ari_app.log import configure_logging  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    PHONE_APP, SandboxInstance, SandboxPorts, interrupt_on_sigterm)

TOKEN = uuid.uuid4().hex
FALLBACK_AFTER = 180  # s: the holds' way out; every window ends before it


class Dashboard:
    """One open dashboard: the stream, and the snapshot fetched again after events (debounced
    as the page does)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, fetch_gap: float) -> None:
        self.http, self.base, self.fetch_gap = http, base, fetch_gap
        self.recording = False
        self.latencies: list[float] = []     # ms, event `at` -> received
        self.by_step: dict[str, list[float]] = {}  # the same, per event name
        self.snapshot_ms: list[float] = []
        self.events = 0
        self.errors: list[str] = []
        self._dirty = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        self._tasks.append(asyncio.create_task(self._stream()))
        if self.fetch_gap > 0:
            self._tasks.append(asyncio.create_task(self._fetcher()))
        await asyncio.wait_for(self._connected.wait(), 10)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _stream(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "text/event-stream"}
        try:
            async with self.http.get(self.base + "/api/events", headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=None)) as r:
                if r.status != 200:
                    self.errors.append(f"stream {r.status}")
                    return
                self._connected.set()
                async for line in r.content:
                    if not line.startswith(b"data: "):
                        continue
                    received = time.time()
                    if self.recording:
                        event = json.loads(line[6:])
                        ms = (received - event["at"]) * 1000
                        self.latencies.append(ms)
                        self.by_step.setdefault(event["name"], []).append(ms)
                        self.events += 1
                    self._dirty.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the stream ended under us: counted, shown
            self.errors.append(f"stream: {type(exc).__name__}: {exc}")

    async def _fetcher(self) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        last = 0.0
        while True:
            await self._dirty.wait()
            await asyncio.sleep(max(0.0, last + self.fetch_gap - time.monotonic()))
            self._dirty.clear()
            last = t0 = time.monotonic()
            try:
                async with self.http.get(self.base + "/api/dashboard", headers=headers) as r:
                    await r.read()
                    ok = r.status == 200
            except aiohttp.ClientError as exc:
                self.errors.append(f"snapshot: {exc}")
                continue
            if not ok:
                self.errors.append(f"snapshot {r.status}")
            elif self.recording:
                self.snapshot_ms.append((time.monotonic() - t0) * 1000)


def _reset(d: Dashboard, recording: bool) -> None:
    d.recording = recording
    if recording:
        d.latencies, d.by_step, d.snapshot_ms, d.events = [], {}, [], 0


async def window(app_pid: int, ast_pid: int, ari: AriClient, measure: float,
                 dashboards: list[Dashboard], probe: Dashboard) -> dict:
    """One measured window: the app's and Asterisk's CPU, ARI's answer time, what the open
    dashboards saw, and what the one probe stream (open in every window) saw: the probe says
    whether a lag comes from the dashboards or is there without them."""
    for d in (*dashboards, probe):
        _reset(d, True)
    pings: list[float] = []
    pinger = asyncio.create_task(ping_probe(ari, pings))
    stat0 = system_cpu()
    t0, cpu0, own0 = time.time(), proc_cpu(app_pid), sum(os.times()[:2])
    ast0 = proc_cpu(ast_pid)
    await asyncio.sleep(measure)
    elapsed = time.time() - t0
    app_cpu = (proc_cpu(app_pid) - cpu0) / elapsed
    own_cpu = (sum(os.times()[:2]) - own0) / elapsed
    ast_cpu = (proc_cpu(ast_pid) - ast0) / elapsed
    stat1 = system_cpu()
    total = max(1, sum(stat1.values()) - sum(stat0.values()))
    idle = 100 * (stat1["idle"] - stat0["idle"]) / total * (os.cpu_count() or 1)
    pinger.cancel()
    await asyncio.gather(pinger, return_exceptions=True)
    for d in (*dashboards, probe):
        _reset(d, False)
    latencies = [x for d in dashboards for x in d.latencies]
    snapshots = [x for d in dashboards for x in d.snapshot_ms]
    steps: dict[str, list[float]] = {}
    for d in dashboards or [probe]:
        for name, values in d.by_step.items():
            steps.setdefault(name, []).extend(values)
    slowest = sorted(((round(pct(v, 99), 1), name, len(v)) for name, v in steps.items()),
                     reverse=True)[:4]
    return {"dashboards": len(dashboards), "measured_s": round(elapsed, 1),
            "app_cpu_pct_of_core": round(app_cpu * 100, 1),
            "asterisk_cpu_pct_of_core": round(ast_cpu * 100, 1),
            "machine_idle_pct_of_core": round(idle, 1),
            "ari_ping_p50_ms": round(pct(pings, 50), 1) if pings else None,
            "ari_ping_p99_ms": round(pct(pings, 99), 1) if pings else None,
            "probe_p50_ms": round(pct(probe.latencies, 50), 1) if probe.latencies else None,
            "probe_p99_ms": round(pct(probe.latencies, 99), 1) if probe.latencies else None,
            "slowest_steps_p99_ms": [f"{name} {p99} ms ({count})" for p99, name, count in slowest],
            "bench_cpu_pct_of_core": round(own_cpu * 100, 1),
            "events_delivered": len(latencies),
            "events_per_s_per_dashboard": (round(len(latencies) / elapsed / len(dashboards), 1)
                                           if dashboards else None),
            "delivery_p50_ms": round(pct(latencies, 50), 1) if latencies else None,
            "delivery_p99_ms": round(pct(latencies, 99), 1) if latencies else None,
            "delivery_max_ms": round(max(latencies), 1) if latencies else None,
            "snapshots": len(snapshots),
            "snapshot_p50_ms": round(pct(snapshots, 50), 1) if snapshots else None,
            "snapshot_p99_ms": round(pct(snapshots, 99), 1) if snapshots else None,
            "stream_errors": sorted({e for d in dashboards for e in d.errors})[:5]}


async def run(args, instance: SandboxInstance, env: dict) -> dict:
    n, interval = args.calls, args.interval
    policy = instance.dir / f"bench-dashboard-{n}.toml"
    operators = ", ".join(f'"Local/bop{i}@sandbox-phones"' for i in range(n))
    policy.write_text(f'company = "Example Corp"\n[operators]\nendpoints = [{operators}]\n'
                      f"[recording]\nenabled = false\n"
                      f"[hold]\ncheck_in_interval = {int(interval)}\n"
                      f"fallback_after = {FALLBACK_AFTER}\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(port),
               "ETIQUETTE_API_TOKEN": TOKEN, "ETIQUETTE_LOG_LEVEL": "WARNING",
               "ETIQUETTE_LOG_FORMAT": "json"}
    log_path = f"/tmp/bench-dashboard-app-{n}.log"
    log = open(log_path, "wb")
    app = await asyncio.create_subprocess_exec(sys.executable, "-m", "ari_app.cli", "run",
                                               env=app_env, cwd=ROOT, stdout=log, stderr=log)
    try:
        await wait_healthy(base, app, log_path, timeout=30)
    except BaseException:
        if app.returncode is None:
            app.terminate()
            await app.wait()
        raise
    ari = AriClient(env["ETIQUETTE_ARI_URL"], "etiquette", env["ETIQUETTE_ARI_PASSWORD"])

    def on_phone(e: dict) -> None:
        if e.get("type") == "StasisStart":
            asyncio.get_running_loop().create_task(_quiet(ari.answer(e["channel"]["id"])))

    phones = EventStream(ari, PHONE_APP, on_phone)
    callers = EventStream(ari, "bench-caller", lambda e: None)
    streams = [asyncio.create_task(s.run()) for s in (phones, callers)]
    await asyncio.gather(*(s.connected.wait() for s in (phones, callers)))
    windows: list[dict] = []
    tags = [uuid.uuid4().hex[:10] for _ in range(n)]
    connector = aiohttp.TCPConnector(limit=0)
    try:
        async with aiohttp.ClientSession(connector=connector) as http:
            for i, tag in enumerate(tags):  # paced like real arrivals, not one stampede
                await ari.originate("Local/100@etiquette-inbound/n", app="bench-caller",
                                    channel_id=f"bc-{tag}", other_channel_id=f"call-{tag}",
                                    caller_id=f'"Bench" <+1212555{i:04d}>', timeout=60)
                await asyncio.sleep(1 / args.rate)
            deadline = time.monotonic() + 60
            talking = 0
            while time.monotonic() < deadline:  # every caller talking with their operator
                talking = sum(1 for b in await ari.bridges()
                              if b["id"].endswith("~talk") and len(b["channels"]) == 2)
                if talking >= n:
                    break
                await asyncio.sleep(0.5)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            held = 0
            for tag in tags:  # spread over one interval: check-ins at a steady rate
                async with http.post(f"{base}/api/calls/call-{tag}/hold",
                                     json={"reason": "lookup"}, headers=headers) as r:
                    held += r.status == 202
                await asyncio.sleep(interval / n)
            held_at = time.monotonic()
            probe = Dashboard(http, base, 0)
            await probe.open()
            ast_pid = asterisk_pid(instance.load_state().asterisk_pid)
            for r in range(args.rounds):
                order = [0, args.clients] if r % 2 == 0 else [args.clients, 0]
                for k in order:
                    dashboards = [Dashboard(http, base, args.fetch_gap / 1000) for _ in range(k)]
                    await asyncio.gather(*(d.open() for d in dashboards))
                    await asyncio.sleep(args.settle)
                    profiler = None
                    if args.profile and k:  # py-spy samples the app over the window
                        profiler = await asyncio.create_subprocess_exec(
                            "py-spy", "record", "-p", str(app.pid), "-d",
                            str(int(args.measure) - 1), "-r", "250", "-f", "raw",
                            "-o", f"{args.profile}-{k}-{r}.txt", "--nonblocking",
                            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
                    result = await window(app.pid, ast_pid, ari, args.measure, dashboards,
                                          probe)
                    if profiler is not None:
                        await profiler.wait()
                    await asyncio.gather(*(d.close() for d in dashboards))
                    result.update({"round": r, "calls": n, "held": held, "talking": talking,
                                   "since_holds_s": round(time.monotonic() - held_at, 1),
                                   "app_rss_mb": round(proc_rss_mb(app.pid), 1)})
                    print(json.dumps(result), flush=True)
                    windows.append(result)
            await probe.close()
            if time.monotonic() - held_at > FALLBACK_AFTER:
                print(f"warning: the windows ran past the holds' way out ({FALLBACK_AFTER} s)",
                      flush=True)
    finally:
        await tear_down(ari, tags, app, streams)
    return {"calls": n, "clients": args.clients, "interval_s": interval,
            "fetch_gap_ms": args.fetch_gap, "cores": os.cpu_count(), "windows": windows,
            "cpu_ratio": ratios(windows, args.clients)}


def ratios(windows: list[dict], clients: int) -> list[float]:
    """App CPU with the dashboards open / without, round by round."""
    out = []
    for r in sorted({w["round"] for w in windows}):
        cpu = {w["dashboards"]: w["app_cpu_pct_of_core"] for w in windows if w["round"] == r}
        if cpu.get(0) and clients in cpu:
            out.append(round(cpu[clients] / cpu[0], 2))
    return out


def _or(value) -> str:
    return "–" if value is None else str(value)


def table(result: dict) -> str:
    lines = ["| round | dashboards | app CPU % of a core | Asterisk CPU % | idle % | "
             "ARI ping p50/p99 ms | probe p50/p99 ms | events/s per dashboard | "
             "delivery p50 ms | p99 ms | max ms | snapshots | snapshot p50 ms | p99 ms | "
             "bench CPU % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in result["windows"]:
        lines.append(
            f"| {w['round']} | {w['dashboards']} | {w['app_cpu_pct_of_core']} | "
            f"{w['asterisk_cpu_pct_of_core']} | {w['machine_idle_pct_of_core']} | "
            f"{_or(w['ari_ping_p50_ms'])}/{_or(w['ari_ping_p99_ms'])} | "
            f"{_or(w['probe_p50_ms'])}/{_or(w['probe_p99_ms'])} | "
            f"{_or(w['events_per_s_per_dashboard'])} | {_or(w['delivery_p50_ms'])} | "
            f"{_or(w['delivery_p99_ms'])} | {_or(w['delivery_max_ms'])} | {w['snapshots']} | "
            f"{_or(w['snapshot_p50_ms'])} | {_or(w['snapshot_p99_ms'])} | "
            f"{w['bench_cpu_pct_of_core']} |")
    lines.append("")
    for w in result["windows"]:
        lines.append(f"- round {w['round']}, {w['dashboards']} dashboards: slowest events (p99) "
                     + "; ".join(w["slowest_steps_p99_ms"]))
    lines.append("")
    lines.append(f"{result['calls']} calls on hold (a check-in every {result['interval_s']:g} s), "
                 f"{result['clients']} dashboards (snapshot at most every "
                 f"{result['fetch_gap_ms']} ms); app CPU with / without the dashboards, round "
                 f"by round: {' / '.join(map(str, result['cpu_ratio'])) or '–'}")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=200, help="live calls, each on hold")
    parser.add_argument("--clients", type=int, default=20, help="open dashboards")
    parser.add_argument("--interval", type=float, default=5.0, help="check-in interval (s)")
    parser.add_argument("--measure", type=float, default=30.0, help="seconds per window")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds after the dashboards open before measuring")
    parser.add_argument("--rounds", type=int, default=1,
                        help="pairs of windows (0 and K dashboards; the order flips each round)")
    parser.add_argument("--fetch-gap", type=float, default=250.0,
                        help="ms between a dashboard's snapshot fetches (0: the stream only)")
    parser.add_argument("--rate", type=float, default=25.0, help="callers dialing in per second")
    parser.add_argument("--profile", metavar="PREFIX",
                        help="sample the app with py-spy over each window with dashboards open "
                             "into PREFIX-K-ROUND.txt (collapsed stacks; no ratios from it)")
    args = parser.parse_args()
    if args.rounds * 2 * (args.measure + args.settle + 2) + args.interval >= FALLBACK_AFTER:
        parser.error(f"the windows would run past the holds' way out ({FALLBACK_AFTER} s): "
                     "fewer rounds or a shorter --measure")
    command = " ".join([sys.executable, *sys.argv])
    print("command:", command, flush=True)
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    state = instance.up(SandboxPorts.free(), phones="stasis",
                        prompts_dir_hook=lambda d: install_prompts(d, {"company": "Example Corp"},
                                                                   ("en", "ru")))
    try:
        result = await run(args, instance, instance.app_env(state))
    finally:
        instance.destroy()
    result["command"] = command
    text = table(result)
    print("\n" + text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (out / f"dashboard_stream-{stamp}.json").write_text(json.dumps(result, indent=2))
    (out / f"dashboard_stream-{stamp}.md").write_text(text + "\n")
    print(f"written to {out}/dashboard_stream-{stamp}.json and .md")


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
