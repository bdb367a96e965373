"""Test-side ARI parties: callers, desk phones and an observer, each its own Stasis app on its
own WebSocket (one application per socket: see ASTERISK-SANDBOX.md's wedge)."""

from __future__ import annotations

import asyncio
import os
import json
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from ari_app.ari import AriClient, AriNotFound, EventStream
from ari_app.ari import operations as ops

CALLER_APP = "etiquette-caller"
OBSERVER_APP = "etiquette-observer"
# RMS per 100 ms window of what a channel hears (rms_windows), as calibrated on the sandbox:
# prompts ~5,000, music 500-1,500, silence below SILENCE. Every audio check uses these.
SILENCE = 150
MUSIC = (SILENCE, 2500)  # the median level of music on hold lies between these
DEAD_AIR_WINDOWS = 5     # at most this many windows (0.5 s) of silence in a row


def render_test_prompts(sounds: Path):
    """The prompt catalog as the tests' sandbox says it (company, languages, directory names):
    rendered by scripts/test before pytest starts (Festival takes minutes from an empty cache,
    more than a test's time limit), then again, a no-op, by the session's sandbox."""
    from ari_app.prompts.install import install_prompts

    return install_prompts(sounds, {"company": "Example Corp"}, ("en", "ru"),
                           {"directory-billing": "Billing"})


class Party:
    """A test Stasis app: records every event it sees and lets a test wait for one."""

    def __init__(self, ari: AriClient, app: str, subscribe_all: bool = False) -> None:
        self.ari, self.app = ari, app
        self.events: list[dict] = []
        self._changed = asyncio.Event()
        self.stream = EventStream(ari, app, self._on_event, subscribe_all=subscribe_all)
        self._task: asyncio.Task | None = None
        self.on_stasis_start: Callable[[dict], None] | None = None

    def _on_event(self, event: dict) -> None:
        event["_t"] = time.time()
        self.events.append(event)
        self._changed.set()
        if event.get("type") == "StasisStart" and self.on_stasis_start is not None:
            self.on_stasis_start(event)

    async def start(self) -> "Party":
        self._task = asyncio.create_task(self.stream.run())
        await asyncio.wait_for(self.stream.connected.wait(), 10)
        return self

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10.0,
                       what: str = "event") -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            left = deadline - time.monotonic()
            if left <= 0:
                kinds = [e.get("type") for e in self.events[-15:]]
                raise AssertionError(f"{self.app}: no {what} within {timeout} s; last: {kinds}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except asyncio.TimeoutError:
                pass

    def of_type(self, kind: str, **match: str) -> list[dict]:
        return [e for e in self.events if e.get("type") == kind and _matches(e, match)]


def _matches(event: dict, match: dict) -> bool:
    for path, expected in match.items():
        obj = event
        for part in path.split("__"):
            obj = obj.get(part, {}) if isinstance(obj, dict) else {}
        if obj != expected:
            return False
    return True


class Callers(Party):
    """Callers dialing in over Local channels: the ;1 half is ours, the ;2 half runs the
    dialplan into the app under test, so its id is the call id."""

    async def dial_local(self, exten: str = "100", context: str = "etiquette-inbound",
                         number: str = "+12125550123", name: str = "Test Caller") -> tuple[str, str]:
        tag = uuid.uuid4().hex[:10]
        ours, call_id = f"tc-{tag}", f"call-{tag}"
        await self.ari.originate(f"Local/{exten}@{context}/n", app=self.app,
                                 app_args="caller", channel_id=ours, other_channel_id=call_id,
                                 caller_id=f'"{name}" <{number}>', timeout=30)
        return ours, call_id

    async def dial_sip(self, exten: str = "100", number: str = "+12125550199") -> str:
        """A real SIP call: Asterisk's simulated trunk on 127.0.0.2 calls the PBX side."""
        ours = f"sip-{uuid.uuid4().hex[:10]}"
        await self.ari.originate(f"PJSIP/{exten}@sim-trunk", app=self.app, app_args="caller",
                                 channel_id=ours, caller_id=f'"SIP Caller" <{number}>', timeout=30)
        return ours

    async def dial_desk_code(self, phone: str, code: str, timeout: float = 15.0) -> str:
        """The person at `phone`'s desk dials `code` (*41, *432, ...) as that phone, over SIP
        from 127.0.0.3; returns once the PBX has hung up (after telling what happened)."""
        ours = f"desk-{uuid.uuid4().hex[:10]}"
        await self.ari.originate(f"PJSIP/{code}@sim-desk-{phone}", app=self.app,
                                 app_args="desk", channel_id=ours, timeout=10)
        await self.wait_for(lambda e: e.get("type") == "ChannelDestroyed"
                            and e["channel"]["id"] == ours, timeout=timeout,
                            what=f"{phone}'s desk code {code} answered and hung up")
        return ours

    async def hang_up(self, channel_id: str) -> None:
        try:
            await self.ari.hangup(channel_id)
        except AriNotFound:
            pass


class Phones(Party):
    """The operators' simulated desk phones. Calls to a registered phone reach this app while
    ringing; `mode` says what the person at the desk does."""

    def __init__(self, ari: AriClient, app: str) -> None:
        super().__init__(ari, app)
        self.mode: dict[str, str] = {}  # endpoint resource -> answer | busy | ignore
        self.answer_delay = 0.3
        self.on_stasis_start = self._ringing
        self.answered: dict[str, str] = {}  # phone name -> channel id
        self._tasks: set[asyncio.Task] = set()

    def _ringing(self, event: dict) -> None:
        args = event.get("args") or []
        phone = args[1] if len(args) > 1 else ""
        task = asyncio.get_running_loop().create_task(self._act(phone, event["channel"]["id"]))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _act(self, phone: str, channel_id: str) -> None:
        mode = self.mode.get(phone, "answer")
        try:
            if mode == "busy":
                await self.ari.call(ops.HANGUP, channelId=channel_id, reason="busy")
            elif mode == "answer":
                await self.ari.call(ops.RING, channelId=channel_id)
                await asyncio.sleep(self.answer_delay)
                await self.ari.answer(channel_id)
                self.answered[phone] = channel_id
                # a real phone sends audio all the time: keep frames flowing toward Asterisk.
                # (A long playback would do it too, but ARI queues every later command on the
                # channel, DTMF included, behind a running playback.)
                await self.ari.call(ops.START_SILENCE, channelId=channel_id)
            else:
                await self.ari.call(ops.RING, channelId=channel_id)
        except AriNotFound:
            pass


async def until(condition, timeout: float, what: str, step: float = 0.1):
    """Poll `condition` (returns, or returns an awaitable of, a truthy value when met) for at
    most `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = condition()
            if asyncio.iscoroutine(last):
                last = await last
        except Exception as exc:  # the thing polled may itself be down for a moment
            last = exc
        else:
            if last:
                return last
        await asyncio.sleep(step)
    raise AssertionError(f"{what} not within {timeout} s (last: {last!r})")


async def record_heard(party: Party, channel_id: str, seconds: int, spool: Path) -> list[int]:
    levels, _ = await record_heard_since(party, channel_id, seconds, spool)
    return levels


async def record_heard_since(party: Party, channel_id: str, seconds: int,
                             spool: Path, spy: str = "in",
                             recording: asyncio.Event | None = None,
                             stop: asyncio.Event | None = None) -> tuple[list[int], float]:
    """record_heard, plus the wall-clock time the recording started (to line it up with
    Playback events); `recording` is set once this recording has started (run it as a task,
    wait for that, then make the sound); `stop`, once set, ends it before its `seconds` (what
    was to be heard has played: a long upper bound needs no guess of when it starts)."""
    """What a channel hears, as RMS levels per 100 ms window, from a recording of a snoop on
    it (events alone have reported "played" for audio nobody heard). `spy="out"`: what is
    written to the channel (the app's own caller channel, whose far side is the caller)."""
    tag = uuid.uuid4().hex[:8]
    snoop_id, name = f"snoop-{tag}", f"heard-{tag}"
    ari = party.ari
    await ari.call(ops.SNOOP, channelId=channel_id, spy=spy, app=party.app, snoopId=snoop_id)
    await party.wait_for(lambda e: e.get("type") == "StasisStart"
                         and e["channel"]["id"] == snoop_id, what="snoop in stasis")
    await ari.call(ops.RECORD, channelId=snoop_id, name=name, format="wav", ifExists="overwrite",
                   maxDurationSeconds=seconds)
    started = await party.wait_for(lambda e: e.get("type") == "RecordingStarted"
                                   and e["recording"]["name"] == name, what="recording started")
    if recording is not None:
        recording.set()
    finished = asyncio.create_task(party.wait_for(
        lambda e: e.get("type") in ("RecordingFinished", "RecordingFailed")
        and e["recording"]["name"] == name, timeout=seconds + 10, what="recording finished"))
    if stop is not None:
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({finished, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not finished.done():
            try:
                await ari.call(ops.STOP_RECORDING, recordingName=name)
            except AriNotFound:
                pass  # it ended meanwhile
    await finished
    try:
        await ari.hangup(snoop_id)
    except AriNotFound:
        pass
    path = spool / f"{name}.wav"
    try:
        return rms_windows(path), started["_t"]
    finally:
        path.unlink(missing_ok=True)


def rms_windows(path: Path, window_ms: int = 100) -> list[int]:
    """16-bit mono WAV -> RMS per window (prompts ~5,000 here, music 500-1,500, silence below
    SILENCE)."""
    import array
    import math
    import wave

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, "expected 16-bit mono"
        samples = array.array("h", w.readframes(w.getnframes()))
        step = w.getframerate() * window_ms // 1000
    return [int(math.sqrt(sum(x * x for x in samples[i:i + step]) / step))
            for i in range(0, len(samples) - step + 1, step)]


def longest_silence(levels: list[int]) -> int:
    """The longest run of windows below SILENCE: dead air, in 100 ms windows."""
    best = run = 0
    for level in levels:
        run = run + 1 if level < SILENCE else 0
        best = max(best, run)
    return best


def assert_music(levels: list[int], what: str) -> None:
    """Music on hold, not silence and not a prompt: its median level within MUSIC and no dead
    air longer than DEAD_AIR_WINDOWS, over the whole of `levels` as one sequence."""
    ordered = sorted(levels)
    assert MUSIC[0] < ordered[len(ordered) // 2] < MUSIC[1], f"{what}: no music, heard {levels}"
    silent = longest_silence(levels)
    assert silent <= DEAD_AIR_WINDOWS, f"{what}: {silent * 100} ms of dead air, heard {levels}"


class AppProcess:
    """`python -m ari_app.cli run --env-file ...` as an admin starts it: a process of its own,
    with its own Stasis app name and HTTP port, its JSON log in `<name>.log`."""

    def __init__(self, settings, directory: Path, name: str, api_token: str,
                 command: tuple[str, ...] = ("run",), **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.name, self.base_url = name, f"http://127.0.0.1:{self.port}"
        self.log = directory / f"{name}.log"
        self.env_file = directory / f"{name}.env"
        values = {
            "ETIQUETTE_ARI_URL": settings.ari_url, "ETIQUETTE_ARI_USER": settings.ari_user,
            "ETIQUETTE_ARI_PASSWORD": settings.ari_password.get_secret_value(),
            "ETIQUETTE_ARI_APP": name, "ETIQUETTE_REDIS_URL": settings.redis_url,
            "ETIQUETTE_POLICY_FILE": str(settings.policy_file),
            "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_HTTP_PORT": str(self.port),
            "ETIQUETTE_INTAKE_PORT": str(self.port),  # `intake` serves here instead
            "ETIQUETTE_API_TOKEN": api_token, "ETIQUETTE_LOG_FORMAT": "json", **env}
        self.env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        self.command = command
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> "AppProcess":
        with self.log.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ari_app.cli", *self.command, "--env-file",
                str(self.env_file),
                stdout=asyncio.subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while time.monotonic() < deadline and self.proc.returncode is None:
                try:
                    async with session.get(self.base_url + "/healthz") as resp:
                        if resp.status == 200:
                            return self
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)  # polling the process's /healthz until the deadline
        await self.stop()
        raise AssertionError(f"{self.name} did not come up: {self.log.read_text()[-3000:]}")

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, as a service manager stops it; killed if it does not exit in `timeout`."""
        if self.proc is None:
            return None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), timeout)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode

    def error_lines(self) -> list[str]:
        """Its log lines at level error or critical (any such line fails the test)."""
        return log_errors(self.log)


def log_errors(path: Path) -> list[str]:
    """The lines at level error or critical of an app process's JSON log."""
    errors = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            level = json.loads(line).get("level")
        except (ValueError, AttributeError):
            level = "error" if "Traceback" in line or "ERROR" in line else None
        if level in ("error", "critical"):
            errors.append(line)
    return errors


def pool_cli(settings, directory: Path, api_token: str):
    """`ari-etiquette pool ACTION ... --dir directory` as a user runs it: (exit code, output)."""
    env = {**os.environ, "ETIQUETTE_POLICY_FILE": str(settings.policy_file),
           "ETIQUETTE_TEST_TIME_RANGES": "true", "ETIQUETTE_API_TOKEN": api_token}

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ari_app.cli", "pool", *args, "--dir", str(directory), env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(proc.communicate(), 90)
        return proc.returncode, out.decode()

    return cli
