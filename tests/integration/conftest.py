"""Integration fixtures: a real sandbox Asterisk 22 and Redis for the session, the app under
test running in this event loop, and test parties (callers, desk phones, an observer).

Under CI=true a sandbox that cannot start fails the run; elsewhere it skips with the reason.
After every test: no channel, bridge, call lane, timer, live call or operator reservation left.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from aiohttp import web
from redis.asyncio import Redis

from ari_app.app import build_app
from ari_app.ari import AriClient
from ari_app.keys import callback_calls_key, inbound_key
from ari_app.policy import load_policy
from ari_app.sandbox.instance import PHONE_APP, SandboxInstance, SandboxPorts, sweep_stale
from ari_app.settings import Settings

from harness import CALLER_APP, OBSERVER_APP, Callers, Party, Phones

TEST_POLICY = """
company = "Example Corp"
languages = ["en", "ru"]

[operators]
endpoints = ["PJSIP/operator1", "PJSIP/operator2"]
ring_timeout = 4

[recording]
enabled = true

[hold]
check_in_interval = 2
fallback_after = 7
fallback_choice_timeout = 3

[transfer]
ring_timeout = 4
choice_timeout = 2
accept_timeout = 3

[supervisor]
endpoints = ["PJSIP/supervisor1"]
direct_number = "4190"
hours = "00:00-23:59"
callback_window = 60

[[directory]]
id = "billing"
kind = "department"
name = "Billing"
endpoint = "PJSIP/operator2"
direct_number = "4100"
code = "21"
"""


def _merge_toml(base: str, extra: str) -> str:
    """Override keys of TEST_POLICY with a marker's TOML (tables merged key by key)."""
    import tomllib

    data = tomllib.loads(base)
    for table, values in tomllib.loads(extra).items():
        if isinstance(values, dict):
            data.setdefault(table, {}).update(values)
        else:
            data[table] = values
    lines = []
    for key, value in data.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml(value)}")
    for table, values in data.items():
        if isinstance(value := values, dict):
            lines.append(f"[{table}]")
            lines += [f"{k} = {_toml(v)}" for k, v in value.items()]
    return "\n".join(lines) + "\n"


def _toml(value) -> str:
    import json
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture(scope="session")
def sandbox():
    try:
        sweep_stale()
        instance = SandboxInstance(f"test-{os.getpid()}")
        from ari_app.prompts.install import install_prompts
        state = instance.up(SandboxPorts.free(), phones="stasis",
                            prompts_dir_hook=lambda sounds: install_prompts(
                                sounds, {"company": "Example Corp"}, ("en", "ru"),
                                {"directory-billing": "Billing"}))
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"sandbox Asterisk/Redis could not start under CI=true: {exc}")
        pytest.skip(f"no sandbox Asterisk/Redis here: {exc}")
    _wait_phones_registered(instance)
    yield instance, state
    instance.destroy()


def _wait_phones_registered(instance: SandboxInstance, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = instance.cli("pjsip show contacts")
        if all(f"{p}/sip:{p}@" in out for p in ("operator1", "operator2", "supervisor1")):
            return
        time.sleep(0.3)
    raise RuntimeError(f"simulated desk phones did not register:\n{out}")


API_TOKEN = "test-token-" + os.urandom(8).hex()


@pytest.fixture
def settings(sandbox, tmp_path: Path, request) -> Settings:
    """Settings for the app under test; `@pytest.mark.policy("...")` appends TOML to the
    test policy (a later key in the same table wins)."""
    instance, state = sandbox
    policy = tmp_path / "policy.toml"
    text = TEST_POLICY
    marker = request.node.get_closest_marker("policy")
    if marker is not None:
        text = _merge_toml(text, marker.args[0])
    policy.write_text(text)
    env = instance.app_env(state)
    return Settings(ari_url=env["ETIQUETTE_ARI_URL"], ari_user=env["ETIQUETTE_ARI_USER"],
                    ari_password=env["ETIQUETTE_ARI_PASSWORD"],
                    redis_url=env["ETIQUETTE_REDIS_URL"], policy_file=policy,
                    test_time_ranges=True, http_port=0, api_token=API_TOKEN,
                    callback_dialer=request.node.get_closest_marker("dialer") is not None,
                    _env_file=None)


@pytest.fixture
def spool(sandbox) -> Path:
    """Where the sandbox Asterisk writes ARI recordings, seen from the host."""
    return sandbox[0].dir / "spool" / "recording"


@pytest.fixture
async def redis(settings):
    client = Redis.from_url(settings.redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def ari(settings):
    client = AriClient(settings.ari_url, settings.ari_user, settings.ari_password.get_secret_value())
    yield client
    await client.close()


@pytest.fixture
async def parties(ari):
    callers = await Callers(ari, CALLER_APP).start()
    phones = await Phones(ari, PHONE_APP).start()
    observer = await Party(ari, OBSERVER_APP, subscribe_all=True).start()
    yield callers, phones, observer
    for party in (callers, phones, observer):
        await party.stop()


class AppRunner:
    """Starts the app under test exactly as `ari-etiquette run` builds it; stop() is a clean
    process exit (state stays in Redis), so a test can start another one to take over."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runner: web.AppRunner | None = None
        self.app: web.Application | None = None

    async def start(self) -> web.Application:
        policy = load_policy(self.settings.policy_file, test_time_ranges=True)
        self.app = build_app(self.settings, policy)
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        return self.app

    async def api(self, method: str, path: str, json=None, token: str | None = API_TOKEN):
        """Call the app's REST API as an operator's tool would; returns (status, body)."""
        import aiohttp

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
            async with session.request(method, self.base_url + path, json=json,
                                       headers=headers) as resp:
                return resp.status, await resp.json()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def app_runner(settings, redis, ari, parties):
    runner = AppRunner(settings)
    yield runner
    if runner.runner is None:  # the test left no app running: start one to clean up after it
        await runner.start()
    await _hang_up_everything(ari)
    inbound = runner.app[inbound_key]
    await _settle(inbound)
    leaks = await _leaks(ari, redis, inbound, runner.app[callback_calls_key])
    await runner.stop()
    assert not leaks, f"left behind after the test: {leaks}"


@pytest.fixture
async def app(app_runner):
    """The app under test, running in this event loop."""
    return await app_runner.start()


async def _hang_up_everything(ari: AriClient) -> None:
    for channel in await ari.channels():
        try:
            await ari.hangup(channel["id"])
        except Exception:
            pass


async def _settle(inbound, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await inbound.lanes.join()
        await asyncio.sleep(0.3)
        if not len(inbound.lanes):
            return


async def _leaks(ari: AriClient, redis: Redis, inbound, callback_calls=None) -> dict:
    leaks = {}
    deadline = time.monotonic() + 5
    while True:
        channels = [c["id"] for c in await ari.channels()]
        bridges = [b["id"] for b in await ari.bridges()]
        if not channels and not bridges or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    if channels:
        leaks["channels"] = channels
    if bridges:
        leaks["bridges"] = bridges
    if len(inbound.lanes):
        leaks["call lanes"] = len(inbound.lanes)
    if inbound.pending_timers:
        leaks["timers"] = inbound.pending_timers
    if callback_calls is not None and (len(callback_calls.lanes) or callback_calls.pending_timers):
        leaks["callback calls"] = (len(callback_calls.lanes), callback_calls.pending_timers)
    live = await redis.smembers("etq:calls")
    if live:
        leaks["live calls in redis"] = live
    reserved = [k async for k in redis.scan_iter("etq:operator:*")]
    if reserved:
        leaks["operator reservations"] = reserved
    rules = [k for kind in ("hold", "transfer", "complaint-flow", "callback-call")
             async for k in redis.scan_iter(f"etq:{kind}:*")]
    if rules:
        leaks["rule snapshots"] = rules
    return leaks
