"""ARI adapter for inbound calls: Stasis events -> InboundMachine, its actions -> ARI calls.

Every handler has one shape: load the snapshot, feed the event with `now`, save, carry out the
actions (whose results may be new events), re-arm the call's single timer.

Ids carry the call they belong to: the caller's channel id is the call id; our operator
channels, bridges and playbacks are `<call id>~<what>`, so any event routes to its call
without a lookup table, also after a restart.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from ari_app.ari import AriClient, AriError, AriNotFound, Lanes, tolerated
from ari_app.ari import operations as ops
from ari_app.hold import machine as h
from ari_app.hold.stasis import CallLegs, HoldStasis
from ari_app.inbound import machine as m
from ari_app.inbound.store import CallStore
from ari_app.operators.service import OperatorService

__all__ = ["InboundStasis", "call_id_of"]

SEP = "~"
HANDLED = frozenset({"StasisStart", "StasisEnd", "ChannelDestroyed", "PlaybackStarted",
                     "PlaybackFinished", "ChannelEnteredBridge", "ChannelLeftBridge",
                     "ChannelDtmfReceived", "ChannelHold", "ChannelUnhold", "RecordingFinished",
                     "RecordingFailed"})


def call_id_of(resource_id: str) -> str:
    return resource_id.split(SEP, 1)[0]


class InvalidEvent(ValueError):
    """An ARI event without the fields this adapter relies on."""


@dataclass(frozen=True)
class Tick:
    """The call's timer fired."""


@dataclass(frozen=True)
class Resync:
    """After a (re)connect: which channels still exist."""
    live_channels: frozenset[str]


@dataclass
class Request:
    """An event from the REST API, answered once the call's lane has applied it."""
    event: object
    answer: asyncio.Future


@dataclass(frozen=True)
class ToHold:
    """An event for the call's current hold (ari_app/hold)."""
    event: object


@dataclass(frozen=True)
class RecordVoicemail:
    snoop: str


@dataclass(frozen=True)
class DropChannel:
    channel: str


class InboundStasis:
    def __init__(self, ari: AriClient, store: CallStore, operators: OperatorService,
                 hold: HoldStasis, *, app: str, recording_notice: bool, moh_class: str,
                 ring_timeout: int, codes: m.FeatureCodes = m.FeatureCodes(),
                 seek_retry: float = 3.0, clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.operators, self.hold = ari, store, operators, hold
        self.codes = codes
        self._hold_deadlines: dict[str, float] = {}
        self.app, self.recording_notice = app, recording_notice
        self.moh_class, self.ring_timeout, self.seek_retry = moh_class, ring_timeout, seek_retry
        self.clock = clock
        self.lanes = Lanes(self._handle)
        self._timers: dict[str, asyncio.TimerHandle] = {}

    # --- routing (runs in the WebSocket reader: enqueue only) --------------------------------
    def on_event(self, event: dict) -> None:
        if event.get("type") not in HANDLED:
            return
        resource = _resource_id(event)
        if resource is None:
            return
        self.lanes.submit(call_id_of(resource), event)

    async def reconcile(self) -> None:
        """Take back the calls we own after a start or a reconnect; clean up what died."""
        self.store.forget_owned()
        self.hold.store.forget_owned()
        await self.ari.call(ops.EVENT_FILTER, applicationName=self.app,
                            filter={"allowed": [{"type": t} for t in sorted(HANDLED)]})
        channels = await self.ari.call(ops.CHANNELS)
        live = frozenset(c["id"] for c in channels)
        known = set(await self.store.live_calls())
        for call_id in known:
            self.lanes.submit(call_id, Resync(live))
        for c in channels:  # callers that reached Stasis while we were away
            data = (c.get("dialplan") or {}).get("app_data", "")
            if c["id"] not in known and SEP not in c["id"] and data.startswith(f"{self.app},inbound"):
                self.lanes.submit(c["id"], {"type": "StasisStart", "args": ["inbound"], "channel": c})
        for b in await self.ari.bridges():
            if SEP in b["id"] and call_id_of(b["id"]) not in known | live:
                await _quietly(self.ari.destroy_bridge(b["id"]))

    # --- one call's events, in order ----------------------------------------------------------
    async def _handle(self, call_id: str, item: object) -> None:
        with structlog.contextvars.bound_contextvars(rule="inbound"):
            await self._handle_item(call_id, item)

    async def _handle_item(self, call_id: str, item: object) -> None:
        now = self.clock()
        machine = await self.store.load(call_id)
        if isinstance(item, Request):
            await self._answer_request(machine, item)
            return
        if isinstance(item, dict):
            if machine is not None or item.get("type") == "StasisStart":
                await self._note(call_id, item, now)
            events = self._translate(call_id, item, machine, now)
            if not events:
                return
            if machine is None:
                if not isinstance(events[0], m.CallerArrived):
                    return  # an event for a call that already ended
                machine = m.InboundMachine(call_id, recording_notice=self.recording_notice,
                                           seek_retry=self.seek_retry,
                                           operator_count=len(self.operators.endpoints),
                                           codes=self.codes)
        elif machine is None:
            return
        elif isinstance(item, Tick):
            events = [m.TimerFired(now)]
            if machine.state is m.InboundState.HELD:
                events.append(ToHold(h.TimerFired(now)))
        elif isinstance(item, Resync):
            events = await self._resync_events(call_id, machine, item.live_channels, now)
            if not events:
                self._arm_timer(call_id, machine)
                return
        else:
            raise InvalidEvent(f"unknown lane item {item!r}")
        await self._feed(machine, events)

    async def _answer_request(self, machine: m.InboundMachine | None, request: Request) -> None:
        if machine is None:
            request.answer.set_exception(LookupError("no such call"))
            return
        try:
            await self._feed(machine, [request.event])
        except Exception as exc:  # the API caller must get an answer, whatever happened
            request.answer.set_exception(exc)
            if not isinstance(exc, m.InvalidTransition):
                raise
            return
        request.answer.set_result(machine.state.value)

    async def request(self, call_id: str, event: object) -> str:
        """Apply an API request in the call's lane, in order with its events; the new state."""
        answer = asyncio.get_running_loop().create_future()
        self.lanes.submit(call_id, Request(event, answer))
        return await answer

    async def _feed(self, machine: m.InboundMachine, events: list[object]) -> None:
        while events:
            event = events.pop(0)
            if isinstance(event, (ToHold, RecordVoicemail, DropChannel)):
                follow_up = await self._to_hold(machine, event)
                events.extend(follow_up)
                continue
            before = machine.to_dict()
            actions = machine.handle(event)
            after = machine.to_dict()
            if machine.state not in m.END_STATES and after != before:
                await self.store.save(machine, after)
            for action in actions:
                follow_up = await self._do(machine, action)
                if follow_up is not None:
                    events.append(follow_up)
        self._arm_timer(machine.call_id, machine)

    def _legs(self, machine: m.InboundMachine) -> CallLegs:
        return CallLegs(machine.call_id, machine.operator_channel,
                        f"{machine.call_id}{SEP}{m.TALK_BRIDGE}", machine.number, machine.name,
                        machine.language, machine.operator)

    async def _to_hold(self, machine: m.InboundMachine, item: object) -> list[object]:
        legs = self._legs(machine)
        if isinstance(item, RecordVoicemail):
            await _quietly(self.hold.record_voicemail(legs, item.snoop))
            return []
        if isinstance(item, DropChannel):
            await _quietly(self.ari.hangup(item.channel))
            return []
        result = await self.hold.feed(legs, item.event)
        return self._hold_result(machine, result)

    def _hold_result(self, machine: m.InboundMachine, result) -> list[object]:
        if result.deadline is None:
            self._hold_deadlines.pop(machine.call_id, None)
        else:
            self._hold_deadlines[machine.call_id] = result.deadline
        if result.outcome and result.outcome != "gone":
            self._hold_deadlines.pop(machine.call_id, None)
            return [m.HoldEnded(self.clock(), result.outcome)]
        return []

    def _translate(self, call_id: str, event: dict, machine: m.InboundMachine | None,
                   now: float) -> list[object]:
        """Raw ARI event -> the call's events (for the inbound machine, or ToHold)."""
        kind = event.get("type")
        held = machine is not None and machine.state is m.InboundState.HELD
        try:
            channel_id = (event.get("channel") or {}).get("id")
            if kind == "StasisStart":
                args = event.get("args") or []
                channel = event["channel"]
                if args[:1] == ["inbound"] and channel["id"] == call_id:
                    caller = channel.get("caller") or {}
                    return [m.CallerArrived(now, caller.get("number", ""), caller.get("name", ""),
                                            channel.get("language") or "en")]
                if machine is None:
                    return []
                if args[:1] == ["operator"]:
                    return [m.OperatorAnswered(now, channel["id"])]
                if args[:1] == ["voicemail"]:
                    return [RecordVoicemail(channel["id"])]
                return []
            if machine is None:
                return []
            # A channel that leaves our app is gone for this call: ARI sends StasisEnd, and
            # ChannelDestroyed only for legs that never entered Stasis (an unanswered dial).
            if kind in ("StasisEnd", "ChannelDestroyed"):
                if channel_id == call_id:
                    return [*([ToHold(h.CallerHungUp(now))] if held else []), m.CallerHungUp(now)]
                if channel_id == machine.operator_channel:
                    return [m.OperatorHungUp(now), *([ToHold(h.OperatorHungUp(now))] if held else [])]
                if channel_id == self._operator_channel_id(machine):
                    return [m.OperatorFailed(now, event.get("cause_txt") or "no answer")]
                return []
            if kind == "PlaybackFinished":
                parts = event["playback"]["id"].split(SEP)
                prompt, tag = parts[-1], parts[1] if len(parts) == 3 else ""
                if held:
                    return [ToHold(h.PromptFinished(now, prompt, tag))]
                return [m.PromptFinished(now, prompt)]
            if kind == "ChannelDtmfReceived":
                digit = event["digit"]
                if channel_id == machine.operator_channel:
                    return [m.OperatorDigit(now, digit)]
                if channel_id == call_id and held:
                    return [ToHold(h.DigitPressed(now, digit))]
                return []
            if kind in ("ChannelHold", "ChannelUnhold") and channel_id == machine.operator_channel:
                # the operator's own phone hold button
                if kind == "ChannelHold" and machine.state is m.InboundState.CONNECTED:
                    return [m.PutOnHold(now, None, None, "phone")]
                if kind == "ChannelUnhold" and held:
                    return [m.TakeOffHold(now, "phone")]
                return []
            if kind in ("RecordingFinished", "RecordingFailed") and held:
                rec = event["recording"]
                snoop = rec.get("target_uri", "").split(":", 1)[-1]
                saved = kind == "RecordingFinished" and rec.get("duration", 0) > 0
                return [ToHold(h.RecordingFinished(now, float(rec.get("duration") or 0), saved)),
                        DropChannel(snoop)]
        except (KeyError, TypeError, IndexError) as exc:
            raise InvalidEvent(f"{kind} without {exc}") from exc
        return []

    async def _resync_events(self, call_id: str, machine: m.InboundMachine,
                             live: frozenset[str], now: float) -> list[object]:
        held = machine.state is m.InboundState.HELD
        if call_id not in live:
            return [*([ToHold(h.CallerHungUp(now))] if held else []), m.CallerHungUp(now)]
        if machine.operator_channel and machine.operator_channel not in live:
            return [m.OperatorHungUp(now), *([ToHold(h.OperatorHungUp(now))] if held else [])]
        if (machine.state is m.InboundState.RINGING_OPERATOR
                and self._operator_channel_id(machine) not in live):
            return [m.OperatorFailed(now, "lost while the app was away")]
        if held:  # pick the hold up where it was: its timers, a prompt that ended meanwhile
            result = await self.hold.resync(self._legs(machine), live)
            return self._hold_result(machine, result)
        return []

    # --- actions -> ARI ------------------------------------------------------------------------
    async def _do(self, machine: m.InboundMachine, action: object) -> object | None:
        call_id = machine.call_id
        with tolerated(type(action).__name__):
            match action:
                case m.Answer():
                    await self.ari.answer(call_id)
                case m.Play(prompt=prompt):
                    await self.ari.play(call_id, f"sound:etiquette/{prompt}",
                                        playback_id=f"{call_id}{SEP}pb{uuid.uuid4().hex[:8]}{SEP}{prompt}",
                                        lang=machine.language)
                case m.Ring():
                    await self.ari.call(ops.RING, channelId=call_id)
                case m.StopRinging():
                    await self.ari.call(ops.STOP_RING, channelId=call_id)
                case m.CreateBridge(bridge=bridge, kind=kind):
                    await self.ari.create_bridge(f"{call_id}{SEP}{bridge}", kind, name=f"{kind} {call_id}")
                case m.AddToBridge(bridge=bridge, party=party):
                    if party == m.CALLER:
                        await self.ari.add_to_bridge(f"{call_id}{SEP}{bridge}", call_id)
                    else:  # the operator's feature codes must not beep in the caller's ear
                        await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=f"{call_id}{SEP}{bridge}",
                                            channel=machine.operator_channel, absorbDTMF=True)
                case m.StartHold(reason=reason, expected_minutes=minutes, source=source,
                                 holds_before=before):
                    result = await self.hold.start(self._legs(machine), reason, minutes, source,
                                                   before)
                    follow = self._hold_result(machine, result)
                    return follow[0] if follow else None
                case m.ResumeHold(source=source):
                    result = await self.hold.feed(self._legs(machine), h.ResumeRequested(self.clock(), source))
                    follow = self._hold_result(machine, result)
                    return follow[0] if follow else None
                case m.PlayToOperator(prompt=prompt):
                    await self.ari.play(machine.operator_channel,
                                        f"sound:etiquette/{prompt}",
                                        playback_id=f"{call_id}{SEP}op{uuid.uuid4().hex[:8]}{SEP}{prompt}",
                                        lang=machine.language)
                case m.DestroyBridge(bridge=bridge):
                    await _quietly(self.ari.destroy_bridge(f"{call_id}{SEP}{bridge}"))
                case m.StartBridgeMoh(bridge=bridge):
                    await self.ari.start_bridge_moh(f"{call_id}{SEP}{bridge}", self.moh_class)
                case m.FindOperator(exclude=exclude):
                    endpoint = await self.operators.reserve_free(call_id, exclude)
                    if endpoint is None:
                        return m.NoOperatorFree(self.clock())
                    await self.store.note(call_id, "operator reserved", endpoint=endpoint)
                    return m.OperatorFound(self.clock(), endpoint)
                case m.DialOperator(endpoint=endpoint):
                    return await self._dial_operator(machine, endpoint)
                case m.ReleaseOperator(endpoint=endpoint):
                    await self.operators.release(endpoint, call_id)
                case m.HangUp(party=party, channel=channel):
                    channel = channel or (call_id if party == m.CALLER else (
                        machine.operator_channel or self._operator_channel_id(machine)))
                    await _quietly(self.ari.hangup(channel))
                case m.Finish():
                    self._cancel_timer(call_id)
                    self._hold_deadlines.pop(call_id, None)
                    await self.hold.store.delete(call_id)
                    await self.store.delete(call_id)
                    await self.store.note(call_id, "call ended", at=self.clock())
                case _:
                    raise InvalidEvent(f"no ARI mapping for {action!r}")
        return None

    async def _dial_operator(self, machine: m.InboundMachine, endpoint: str) -> object | None:
        caller_id = f'"{machine.name or machine.number}" <{machine.number}>' if machine.number else None
        try:
            await self.ari.originate(endpoint, app=self.app, app_args=f"operator,{machine.call_id}",
                                     channel_id=self._operator_channel_id(machine),
                                     caller_id=caller_id, timeout=self.ring_timeout)
        except AriError as exc:
            return m.OperatorFailed(self.clock(), exc.message)
        await self.store.note(machine.call_id, "operator dialed", endpoint=endpoint,
                              attempt=machine.attempt)
        return None

    @staticmethod
    def _operator_channel_id(machine: m.InboundMachine) -> str:
        return f"{machine.call_id}{SEP}op{machine.attempt}"

    # --- timeline --------------------------------------------------------------------------------
    async def _note(self, call_id: str, event: dict, now: float) -> None:
        kind = event.get("type")
        if kind in ("PlaybackStarted", "PlaybackFinished"):
            pb = event.get("playback") or {}
            prompt = pb.get("id", "").rsplit(SEP, 1)[-1]
            if prompt == "nudge":
                return  # the check-in entry already says the operator was nudged
            await self.store.note(call_id, kind, at=now, prompt=prompt,
                                  media=pb.get("media_uri"), state=pb.get("state"))
        elif kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
            channel = event.get("channel", {}).get("id", "")
            party = "caller" if channel == call_id else "operator" if SEP in channel else "other"
            await self.store.note(call_id, kind, at=now, party=party, channel=channel,
                                  bridge=event.get("bridge", {}).get("id"))
        elif kind == "StasisStart" and (event.get("args") or [None])[0] == "inbound":
            caller = event.get("channel", {}).get("caller") or {}
            await self.store.note(call_id, "call started", at=now, number=caller.get("number"))

    # --- the single timer ------------------------------------------------------------------------
    def _arm_timer(self, call_id: str, machine: m.InboundMachine) -> None:
        self._cancel_timer(call_id)
        if machine.state in m.END_STATES:
            return
        deadlines = [d for d in (machine.get_timer(), self._hold_deadlines.get(call_id))
                     if d is not None]
        if not deadlines:
            return
        deadline = min(deadlines)
        loop = asyncio.get_running_loop()
        # deadlines are wall-clock (they survive a restart); the loop runs on its own clock
        at = loop.time() + max(0.0, deadline - self.clock())
        self._timers[call_id] = loop.call_at(at, self._fire, call_id)

    def _fire(self, call_id: str) -> None:
        self._timers.pop(call_id, None)
        self.lanes.submit(call_id, Tick())

    def _cancel_timer(self, call_id: str) -> None:
        handle = self._timers.pop(call_id, None)
        if handle is not None:
            handle.cancel()

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    async def close(self) -> None:
        for call_id in list(self._timers):
            self._cancel_timer(call_id)
        await self.lanes.close()


def _resource_id(event: dict) -> str | None:
    """The id that names the call an event belongs to."""
    for key in ("playback", "channel", "bridge"):
        obj = event.get(key)
        if isinstance(obj, dict) and obj.get("id"):
            return obj["id"]
    recording = event.get("recording")
    if isinstance(recording, dict):  # recordings are named after their call
        return recording.get("name")
    return None


async def _quietly(coro) -> None:
    try:
        await coro
    except AriNotFound:
        pass
