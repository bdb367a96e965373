"""Test-side ARI parties: callers, desk phones and an observer, each its own Stasis app on its
own WebSocket (one application per socket: see ASTERISK-SANDBOX.md's wedge)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ari_app.ari import AriClient, AriNotFound, EventStream
from ari_app.ari import operations as ops

CALLER_APP = "etiquette-caller"
OBSERVER_APP = "etiquette-observer"


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


async def record_heard(party: Party, channel_id: str, seconds: int, spool: Path) -> list[int]:
    levels, _ = await record_heard_since(party, channel_id, seconds, spool)
    return levels


async def record_heard_since(party: Party, channel_id: str, seconds: int,
                             spool: Path) -> tuple[list[int], float]:
    """record_heard, plus the wall-clock time the recording started (to line it up with
    Playback events)."""
    """What a channel hears, as RMS levels per 100 ms window, from a recording of a snoop on
    it (events alone have reported "played" for audio nobody heard)."""
    tag = uuid.uuid4().hex[:8]
    snoop_id, name = f"snoop-{tag}", f"heard-{tag}"
    ari = party.ari
    await ari.call(ops.SNOOP, channelId=channel_id, spy="in", app=party.app, snoopId=snoop_id)
    await party.wait_for(lambda e: e.get("type") == "StasisStart"
                         and e["channel"]["id"] == snoop_id, what="snoop in stasis")
    await ari.call(ops.RECORD, channelId=snoop_id, name=name, format="wav", ifExists="overwrite",
                   maxDurationSeconds=seconds)
    started = await party.wait_for(lambda e: e.get("type") == "RecordingStarted"
                                   and e["recording"]["name"] == name, what="recording started")
    await party.wait_for(lambda e: e.get("type") in ("RecordingFinished", "RecordingFailed")
                         and e["recording"]["name"] == name, timeout=seconds + 10,
                         what="recording finished")
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
    """16-bit mono WAV -> RMS per window (prompts ~5,000 here, music 500-1,500, silence <150)."""
    import array
    import math
    import wave

    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, "expected 16-bit mono"
        samples = array.array("h", w.readframes(w.getnframes()))
        step = w.getframerate() * window_ms // 1000
    return [int(math.sqrt(sum(x * x for x in samples[i:i + step]) / step))
            for i in range(0, len(samples) - step + 1, step)]
