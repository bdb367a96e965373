"""How the API answers while Redis is away, and how fast the app is whole again.

    sudo ~/.cache/ari-etiquette/venv/bin/python bench/storage_outage.py --requests 20

Against a real sandbox Asterisk and Redis, the app as its own process (`python -m ari_app.cli
run`, dialer off). For each fault, Redis killed (SIGKILL) and Redis stopped (SIGSTOP: it
takes connections and never answers), `--requests` calls to each Redis-backed route are timed
(each must be a JSON 503 `storage-unavailable`), then Redis comes back and the time until
/healthz is 200 again is taken. Last, with Redis killed, the app gets SIGTERM and the time to
its exit is taken (before issue 9: requests hung for ever under SIGSTOP, and SIGTERM took 62 s).
Not a test: prints figures and writes JSON to bench/results/.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ari_app.log import configure_logging  # noqa: E402
from ari_app.prompts.install import install_prompts  # noqa: E402
from ari_app.sandbox.instance import (  # noqa: E402
    SandboxInstance, SandboxPorts, interrupt_on_sigterm)
from bench.callback_api import free_port, pct  # noqa: E402
import report  # noqa: E402 (bench/report.py: the results as JSON and Markdown)

TOKEN = uuid.uuid4().hex
ROUTES = [("POST", "/api/callbacks", {"number": "+12125550143"}), ("GET", "/api/calls", None),
          ("GET", "/api/callbacks/" + "0" * 32, None), ("GET", "/api/voicemails", None),
          ("GET", "/api/customers/+12125550142", None), ("GET", "/healthz", None)]


async def wait_healthy(base: str, timeout: float = 30.0) -> float:
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - t0 < timeout:
            try:
                async with session.get(base + "/healthz") as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.02)
    raise RuntimeError("the app did not become healthy")


async def during_outage(base: str, requests: int) -> dict:
    """Every route, `requests` times: the latency of its answer, and what it answered."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    out = {}
    async with aiohttp.ClientSession(headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        for method, path, body in ROUTES:
            times, answers = [], set()
            for _ in range(requests):
                t0 = time.perf_counter()
                async with session.request(method, base + path, json=body) as r:
                    data = await r.json(content_type=None)
                times.append(time.perf_counter() - t0)
                answers.add(f"{r.status} {data.get('error_id', data.get('status'))}")
            out[f"{method} {path.split('/0')[0]}"] = {
                "p50_ms": round(pct(times, 50) * 1000, 1),
                "max_ms": round(max(times) * 1000, 1), "answers": sorted(answers)}
    return out


async def run(args, instance: SandboxInstance, env: dict) -> dict:
    policy = instance.dir / "bench-storage-outage.toml"
    policy.write_text('company = "Example Corp"\n[operators]\nendpoints = ["Local/op@nowhere"]\n'
                      '[callback]\nallowed_countries = ["US"]\nrequests_per_server_per_hour = 100000\n')
    port = free_port()
    app_env = {**os.environ, **env, "ETIQUETTE_POLICY_FILE": str(policy),
               "ETIQUETTE_HTTP_PORT": str(port), "ETIQUETTE_API_TOKEN": TOKEN,
               "ETIQUETTE_CALLBACK_DIALER": "false", "ETIQUETTE_LOG_LEVEL": "ERROR",
               "ETIQUETTE_LOG_FORMAT": "json"}
    log_path = Path(f"/tmp/bench-storage-outage-{os.getpid()}.log")
    with open(log_path, "wb") as log:
        app = await asyncio.create_subprocess_exec(sys.executable, "-m", "ari_app.cli", "run",
                                                   env=app_env, cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"requests_per_route": args.requests,
                    "redis_timeout_s": float(os.environ.get("ETIQUETTE_REDIS_TIMEOUT", 0.8))}
    try:
        await wait_healthy(base)
        instance.stop_redis()
        result["redis_killed"] = await during_outage(base, args.requests)
        instance.start_redis()
        result["redis_killed"]["healthy_again_s"] = round(await wait_healthy(base), 3)
        instance.pause_redis()
        result["redis_stopped"] = await during_outage(base, args.requests)
        instance.pause_redis(False)
        result["redis_stopped"]["healthy_again_s"] = round(await wait_healthy(base), 3)
        instance.stop_redis()
        t0 = time.perf_counter()
        app.send_signal(signal.SIGTERM)
        result["sigterm_exit_with_redis_down_s"] = round(
            (await asyncio.wait_for(app.wait(), 90), time.perf_counter() - t0)[1], 3)
        result["exit_code"] = app.returncode
    finally:
        if app.returncode is None:
            app.kill()
            await app.wait()
    result["cores"], result["load_avg_1m"] = os.cpu_count(), os.getloadavg()[0]
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="per route and fault")
    args = parser.parse_args()
    configure_logging("WARNING", "json")
    instance = SandboxInstance(f"bench-{os.getpid()}")
    try:
        state = instance.up(SandboxPorts.free(), phones="none",
                            prompts_dir_hook=lambda d: install_prompts(
                                d, {"company": "Example Corp"}, ("en", "ru")))
        result = await run(args, instance, instance.app_env(state))
    finally:
        instance.destroy()
    print(json.dumps(result, indent=2))
    report.write("storage_outage", result)


if __name__ == "__main__":
    interrupt_on_sigterm()  # a killed bench still destroys its sandbox
    asyncio.run(main())
