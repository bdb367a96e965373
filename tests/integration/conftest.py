"""Integration fixtures: a real sandbox Asterisk 22 and Redis for the session, the app under
test running in this event loop, and test parties (callers, desk phones, an observer).

Under CI (any non-empty value) a sandbox that cannot start fails the run; elsewhere it skips
with the reason.
After every test that runs the app (app_runner), checked before anything is cleaned up: no
channel (the test's own callers' included), bridge, call lane, timer, running playback or
recording, live call, operator reservation, rule snapshot or callback lock left, and no task the
app left running. During every integration test, an error-level log line (or a task exception
nobody retrieved) fails it, unless `@pytest.mark.allow_errors(...)` names it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import sys
import time
import traceback
import warnings
from pathlib import Path

import pytest
import structlog
from aiohttp import web
from redis.asyncio import Redis

from ari_app.app import build_app
from ari_app.ari import AriClient, AriNotFound
from ari_app.ari import operations as ops
from ari_app.ari.operations import Op
from ari_app.callback.keys import callback_calls_key
from ari_app.inbound.keys import inbound_key
from ari_app.policy import load_policy
from ari_app.sandbox.instance import (PHONE_APP, SandboxInstance, SandboxPorts, SandboxState,
                                      sweep_stale)
from ari_app.settings import Settings
from ari_app.staff.accounts import Account, hash_password, render as render_staff
from ari_app.voicemail.away import AWAY_FOLDER, voicemail_id

from harness import CALLER_APP, OBSERVER_APP, Callers, Party, Phones, render_test_prompts
from ari_app.storage import Keyspace

KEYS = Keyspace()  # the app's own key names

# staff who may sign in (the console, the dashboard): the password of user U is "pw-" + U
STAFF = {"operator1": ("operator", "PJSIP/operator1"), "operator2": ("operator", "PJSIP/operator2"),
         "supervisor1": ("supervisor", None)}
SCREENSHOTS = Path(os.environ.get("ETIQUETTE_SCREENSHOTS", "/tmp/ari-etiquette-screenshots"))
CHROMIUM = "/usr/bin/chromium"
# as root on a machine without network: no sandbox, no background connections
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]

TEST_POLICY = """
company = "Example Corp"
languages = ["en", "ru"]

[operators]
endpoints = ["PJSIP/operator1", "PJSIP/operator2"]
ring_timeout = 4
# past any test's ringing (two phones ringing out: 8 s): only the tests of it hear the word
connecting_prompt_after = 30

[recording]
enabled = true

[hold]
check_in_interval = 2
fallback_after = 7
fallback_choice_timeout = 3
menu_repeat_after = 2

[transfer]
ring_timeout = 4
choice_timeout = 2
accept_timeout = 3
menu_repeat_after = 2

[callback]
# the business hours' UTC names no country: callbacks go to the test callers' US numbers
allowed_countries = ["US"]

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
        state = instance.up(SandboxPorts.free(), phones="stasis",
                            prompts_dir_hook=render_test_prompts)
    except Exception as exc:
        if os.environ.get("CI"):  # any non-empty value (CI=1, CI=yes): a skip would hide it
            pytest.fail(f"sandbox Asterisk/Redis could not start under CI={os.environ['CI']}: "
                        f"{exc}")
        pytest.skip(f"no sandbox Asterisk/Redis here: {exc}")
    _wait_phones_registered(instance)
    yield instance, state
    instance.destroy()


def _wait_phones_registered(instance: SandboxInstance, timeout: float = 20.0) -> None:
    """Until the desk phones are registered and their endpoints online, as the app asks
    before it offers an operator a call. After an Asterisk restart a phone's contact comes
    back from Asterisk's database and stays offline until its next qualify (up to the
    aor's 30 s: the next test's first call went to another operator), so a registered
    phone that is not online yet is qualified at once."""
    deadline = time.monotonic() + timeout
    phones = ("operator1", "operator2", "supervisor1")
    state = instance.load_state()
    out = ""
    while time.monotonic() < deadline:
        out = instance.cli("pjsip show contacts")
        if all(f"{p}/sip:{p}@" in out for p in phones):
            offline = [p for p in phones if _endpoint_state(state, p) != "online"]
            if not offline:
                return
            for phone in offline:
                instance.cli(f"pjsip qualify {phone}")
            out = f"registered, not yet online in ARI: {offline}"
        time.sleep(0.3)
    raise RuntimeError(f"simulated desk phones did not register:\n{out}")


def _endpoint_state(state: SandboxState, phone: str) -> str:
    """The phone's endpoint state in ARI, read without an event loop (this runs in sync
    fixtures and executor threads)."""
    import base64
    import json
    import urllib.request

    auth = base64.b64encode(f"{state.ari_user}:{state.ari_password}".encode()).decode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{state.ports.http}/ari/endpoints/PJSIP/{phone}",
        headers={"Authorization": f"Basic {auth}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return json.load(resp).get("state", "")
    except OSError as exc:
        return str(exc)


API_TOKEN = "test-token-" + os.urandom(8).hex()


REVIVED: list[str] = []  # what revive started again, and before which test


def pytest_terminal_summary(terminalreporter) -> None:
    """Said at the end of the run, passed or not: a crashed Asterisk otherwise shows only as
    'Asterisk not answering' in whichever test it was running."""
    if REVIVED:
        terminalreporter.section("sandbox started again before a test")
        for line in REVIVED:
            terminalreporter.line(line)


@pytest.fixture
def settings(sandbox, tmp_path: Path, request) -> Settings:
    """Settings for the app under test; `@pytest.mark.policy("...")` appends TOML to the
    test policy (a later key in the same table wins)."""
    instance, state = sandbox
    if revived := ", ".join(instance.revive()):  # an earlier test stopped it and failed
        REVIVED.append(f"{request.node.nodeid}: {revived}")  # before it started it again
        # the summary above is this process's: test workers (xdist) pass warnings on instead
        warnings.warn(f"sandbox started again before this test: {revived}", pytest.PytestWarning)
        print(f"sandbox: started again before this test: {revived}")
        _wait_phones_registered(instance)
    policy = tmp_path / "policy.toml"
    text = TEST_POLICY
    marker = request.node.get_closest_marker("policy")
    if marker is not None:
        text = _merge_toml(text, marker.args[0])
    policy.write_text(text)
    staff = tmp_path / "staff.toml"
    staff.write_text(render_staff({user: Account(user, role, endpoint,
                                                 hash_password("pw-" + user, n=2 ** 10))
                                   for user, (role, endpoint) in STAFF.items()}))
    env = instance.app_env(state)
    return Settings(ari_url=env["ETIQUETTE_ARI_URL"], ari_user=env["ETIQUETTE_ARI_USER"],
                    ari_password=env["ETIQUETTE_ARI_PASSWORD"],
                    redis_url=env["ETIQUETTE_REDIS_URL"], policy_file=policy,
                    test_time_ranges=True, http_port=0, api_token=API_TOKEN,
                    callback_dialer=request.node.get_closest_marker("dialer") is not None,
                    staff_file=staff, _env_file=None)


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

    async def operators(self) -> dict[str, dict]:
        """The operators as `GET /api/operators` lists them, by endpoint."""
        status, body = await self.api("GET", "/api/operators")
        assert status == 200, body
        return {o["endpoint"]: o for o in body["operators"]}

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def app_runner(settings, redis, ari, parties):
    """The app under test (started by the test, or by `app`). After the test, first checked,
    then cleaned: once the call lanes and Asterisk have settled (bounded), anything left is a
    leak that fails the test (see _leaks); only then is everything hung up and the app stopped,
    and a task the app left running after its own cleanup is a leak too."""
    runner = AppRunner(settings)
    before = asyncio.all_tasks()
    yield runner
    app = runner.app if runner.runner is not None else None  # None: the test stopped it
    try:
        await _settle(ari, app)
        leaks = await _leaks(ari, redis, app, parties[2])
        await _clean_up(ari)
    finally:  # even with Asterisk gone: an app left running would fail a later test
        await runner.stop()
    if tasks := await _tasks_left(before):
        leaks["asyncio tasks"] = tasks
    await redis.flushdb()  # what a stopped app left on purpose (a restart would take it back)
    await _drop_away_messages(ari)
    assert not leaks, f"left behind after the test: {leaks}"


@pytest.fixture
async def app(app_runner):
    """The app under test, running in this event loop."""
    return await app_runner.start()


SETTLE_TIMEOUT = 8.0  # seconds the app may take to tidy up after a test's last hang-up


async def _settle(ari: AriClient, app: web.Application | None,
                  timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait, at most `timeout` s, until the app's call lanes are drained and Asterisk has no
    channel or bridge left (the app tidies up on the events of the test's last hang-ups).
    Returns early when all is clean; whatever is left at the deadline is for _leaks to name."""
    deadline = time.monotonic() + timeout
    lanes = [] if app is None else [app[inbound_key].lanes, app[callback_calls_key].lanes]
    while True:
        left = deadline - time.monotonic()
        try:
            for queue in lanes:
                await asyncio.wait_for(queue.join(), max(left, 0.01))
        except asyncio.TimeoutError:
            return
        if not await ari.channels() and not await ari.bridges():
            try:  # the last ChannelDestroyed may have queued more work
                for queue in lanes:
                    await asyncio.wait_for(queue.join(), max(deadline - time.monotonic(), 0.01))
            except asyncio.TimeoutError:
                pass
            return
        if time.monotonic() >= deadline:
            return
        await asyncio.sleep(0.1)  # polling Asterisk until the deadline, not a fixed wait


LIVE_RECORDING = Op("GET", "/recordings/live/{recordingName}")


async def _leaks(ari: AriClient, redis: Redis, app: web.Application | None,
                 observer: Party) -> dict:
    """Everything a finished test must not leave: channels (the test parties' own too: a
    caller left up is a leak), bridges, call lanes, timers, playbacks and live recordings still
    running (from the observer's events, confirmed by ARI), and in Redis live calls, operator
    reservations, rule snapshots and callback locks."""
    leaks: dict = {}
    if channels := [c["id"] for c in await ari.channels()]:
        leaks["channels"] = channels
    if bridges := [b["id"] for b in await ari.bridges()]:
        leaks["bridges"] = bridges
    if app is not None:
        inbound, callback_calls = app[inbound_key], app[callback_calls_key]
        if len(inbound.lanes):
            leaks["call lanes"] = len(inbound.lanes)
        if inbound.pending_timers:
            leaks["timers"] = inbound.pending_timers
        if len(callback_calls.lanes) or callback_calls.pending_timers:
            leaks["callback calls"] = (len(callback_calls.lanes), callback_calls.pending_timers)
    if playbacks := await _still_running(ari, observer, "Playback", "id", ops.PLAYBACK,
                                         "playbackId"):
        leaks["playbacks"] = playbacks
    if recordings := await _still_running(ari, observer, "Recording", "name", LIVE_RECORDING,
                                          "recordingName"):
        leaks["live recordings"] = recordings
    if live := await redis.smembers(KEYS.live_calls()):
        leaks["live calls in redis"] = live
    if reserved := [k async for k in redis.scan_iter(KEYS.operator("*"))]:
        leaks["operator reservations"] = reserved
    rules = [k for kind in ("hold", "transfer", "complaint-flow", "callback-call", "queue",
                             "survey", "warning")
             async for k in redis.scan_iter(KEYS.snapshot(kind, "*"))]
    if rules:
        leaks["rule snapshots"] = rules
    # an attempt's end lets go of its lease (callback/stasis.py)
    if leases := [k for what in (KEYS.lease, KEYS.fencing_counter)
                  async for k in redis.scan_iter(what("cb-*"))]:
        leaks["callback attempt leases"] = leases
    # a caller who left is out of line (a kept callback stays in line on purpose: its test
    # checks it); an offer is taken up or undone
    in_line = [e async for k in redis.scan_iter(KEYS.queue_entries("*"))
               for e in await redis.hvals(k) if b'"live"' in e]
    if in_line:
        leaks["callers in a queue's line"] = in_line
    if offers := await redis.hkeys(KEYS.queue_offers()):
        leaks["queue offers"] = offers
    if locks := [k async for k in redis.scan_iter(KEYS.callback_lock("*"))]:
        leaks["callback locks"] = locks
    if attempts := await redis.zrange(KEYS.callback_attempts(), 0, -1):
        leaks["callback attempts under way"] = attempts
    if unfiled := await _away_unfiled(ari, redis):
        leaks["away messages not filed"] = unfiled
    return leaks


async def _away_names(ari: AriClient) -> list[str]:
    return [r["name"] for r in await ari.call(ops.STORED_RECORDINGS)
            if r["name"].startswith(AWAY_FOLDER + "/")]


async def _drop_away_messages(ari: AriClient) -> None:
    """After the check, with the test's Redis: the next test's app would file them again."""
    for name in await _away_names(ari):
        try:
            await ari.call(ops.DELETE_STORED_RECORDING, recordingName=name)
        except AriNotFound:
            pass


async def _away_unfiled(ari: AriClient, redis: Redis) -> list[str]:
    """Messages callers left when no instance took their call (dialplan etiquette-away) that
    no voice message holds: a message lost. One filed stays: its recording IS the message."""
    return [n for n in await _away_names(ari)
            if not await redis.exists(KEYS.record("voicemail", voicemail_id(n)))]


async def _still_running(ari: AriClient, observer: Party, kind: str, key: str, op: Op,
                         param: str) -> list[str]:
    """Playbacks (or recordings) the observer saw start and never end that ARI still has.
    ARI cannot list them; every one starts with an event the observer sees."""
    lower = kind.lower()
    started = {e[lower][key] for e in observer.of_type(f"{kind}Started")}
    ended = {e[lower][key] for t in ("Finished", "Failed") for e in observer.of_type(kind + t)}
    running = []
    for name in sorted(started - ended):
        try:
            await ari.call(op, **{param: name})
        except AriNotFound:
            continue
        running.append(name)
    return running


async def _clean_up(ari: AriClient) -> None:
    """After the check: end whatever is left so the next test starts clean."""
    for channel in await ari.channels():
        try:
            await ari.hangup(channel["id"])
        except AriNotFound:
            pass
    deadline = time.monotonic() + 10
    while await ari.channels() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for bridge in await ari.bridges():
        try:
            await ari.destroy_bridge(bridge["id"])
        except AriNotFound:
            pass


LINGERING = 11.0  # aiohttp reads what is left of an unfinished body up to 10 s after answering


async def _tasks_left(before: set[asyncio.Task], timeout: float = 2.0) -> list[str]:
    """Tasks started during the test (by the app or the test) still running after the app's
    cleanup; a task that is just finishing gets `timeout` s, and aiohttp's handler of a
    connection whose body never came (a 408) its lingering close: it ends by itself."""
    current = asyncio.current_task()
    started = time.monotonic()
    while True:
        left = [t for t in asyncio.all_tasks() if t not in before and t is not current
                and not t.done()]
        lingering = any(getattr(t.get_coro(), "__qualname__", "") == "RequestHandler.start"
                        for t in left)
        deadline = started + (LINGERING if lingering else timeout)
        if not left or time.monotonic() >= deadline:
            return [t.get_name() + " " + repr(t.get_coro()) for t in left]
        await asyncio.wait(left, timeout=deadline - time.monotonic())


# --- an error in the app fails the test that caused it ---------------------------------------
ERROR_METHODS = frozenset({"error", "exception", "critical", "fatal"})


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Each phase's report on the test item (`item.rep_call`), for fixtures that act on a
    failure (page_shots)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
async def browser():
    """Debian's Chromium, headless, driven by Playwright."""
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (scripts/test installs it)"
        if os.environ.get("CI"):  # any value: CI=1 is CI too
            pytest.fail(message)
        pytest.skip(message)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
                                           headless=True)
        yield browser
        await browser.close()


class PageShots:
    """Pages opened through it are photographed when the test fails (ETIQUETTE_SCREENSHOTS,
    default /tmp/ari-etiquette-screenshots/<test>-<n>.png), so a failure shows what the
    operator or supervisor saw."""

    def __init__(self) -> None:
        self.pages: list = []

    async def new_page(self, browser, **options):
        context = await browser.new_context(**options)
        page = await context.new_page()
        self.pages.append(page)
        return page

    async def take(self, name: str) -> list[Path]:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        taken = []
        for n, page in enumerate(self.pages):
            path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{n}.png"
            try:
                await page.screenshot(path=str(path), full_page=True)
                taken.append(path)
            except Exception:  # the page or browser is gone: nothing to show
                pass
        return taken


@pytest.fixture
async def page_shots(request):
    shots = PageShots()
    yield shots
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for path in await shots.take(request.node.name):
            print(f"screenshot of the page at the failure: {path}")
    for page in shots.pages:
        try:
            await page.context.close()
        except Exception:
            pass


@pytest.fixture(autouse=True)
def errors_fail_the_test(request):
    """Every error-level line during an integration test fails it, at teardown, with the lines:
    structlog events at error or critical (the app's "call handler failed" and the like,
    `capture_logs` in a test does not hide them), stdlib records at ERROR or above (aiohttp's
    "Error handling request", asyncio's "Task exception was never retrieved", which the loop's
    default exception handler logs). `@pytest.mark.allow_errors("regex", ...)` lets matching
    lines pass, only in a test that proves that error is handled."""
    errors: list[str] = []
    base = structlog.get_config()["wrapper_class"]

    class Recording(base):  # the bound logger class itself: capture_logs swaps processors only
        def _proxy_to_logger(self, method_name, event=None, **event_kw):
            if method_name in ERROR_METHODS:
                errors.append(_structlog_line(method_name, event, {**self._context, **event_kw}))
            return super()._proxy_to_logger(method_name, event, **event_kw)

    handler = _ErrorRecords(errors)
    structlog.configure(wrapper_class=Recording)
    logging.getLogger().addHandler(handler)
    try:
        yield errors
        gc.collect()  # a failed task nobody awaited is reported when it is collected
    finally:
        logging.getLogger().removeHandler(handler)
        structlog.configure(wrapper_class=base)
    allowed = [re.compile(p) for m in request.node.iter_markers("allow_errors") for p in m.args]
    failing = [line for line in errors if not any(p.search(line) for p in allowed)]
    if failing:
        pytest.fail(f"{len(failing)} error-level log line(s) during the test:\n"
                    + "\n".join(failing), pytrace=False)


def _structlog_line(level: str, event, context: dict) -> str:
    context = {**structlog.contextvars.get_contextvars(), **context}
    exc_info = context.pop("exc_info", None)
    line = f"[{level}] {event} " + " ".join(f"{k}={v!r}" for k, v in context.items())
    if exc_info:
        info = sys.exc_info() if exc_info is True else exc_info
        if isinstance(info, BaseException):
            info = (type(info), info, info.__traceback__)
        if info and info[0] is not None:
            line += "\n" + "".join(traceback.format_exception(*info)).rstrip()
    return line


class _ErrorRecords(logging.Handler):
    def __init__(self, errors: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.errors = errors

    def emit(self, record: logging.LogRecord) -> None:
        line = f"[{record.levelname.lower()}] {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        self.errors.append(line)
