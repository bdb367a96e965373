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

from ari_app.ari import AriClient, AriError, Lanes, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.callback.intake import to_e164
from ari_app.customers.service import Customers
from ari_app.escalation import machine as c
from ari_app.escalation.service import SupervisorDesk
from ari_app.escalation.stasis import SNOOP_ARG as COMPLAINT_SNOOP, ComplaintStasis
from ari_app.hold import machine as h
from ari_app.hold.stasis import HoldStasis
from ari_app.inbound import machine as m
from ari_app.inbound.store import CallStore
from ari_app.operators.service import OperatorService, desk_phone_variables
from ari_app.rules import CallLegs, RuleResult
from ari_app.transfer import machine as t
from ari_app.transfer.directory import Directory
from ari_app.transfer.stasis import TransferStasis

__all__ = ["InboundStasis", "call_id_of"]

SEP = "~"
HANDLED = frozenset({"StasisStart", "StasisEnd", "ChannelDestroyed", "PlaybackStarted",
                     "PlaybackFinished", "ChannelEnteredBridge", "ChannelLeftBridge",
                     "ChannelDtmfReceived", "ChannelHold", "ChannelUnhold", "RecordingFinished",
                     "RecordingFailed", "ChannelTransfer"})


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
class ToRule:
    """An event for the rule that has the caller now: hold, transfer or complaint."""
    event: object


@dataclass(frozen=True)
class RecordVoicemail:
    snoop: str


@dataclass(frozen=True)
class RecordComplaint:
    snoop: str


@dataclass(frozen=True)
class DropChannel:
    channel: str


@dataclass(frozen=True)
class TransferProgress:
    """Tell the phone that asked for a transfer (SIP REFER) how it is going."""
    channel: str
    state: str  # channel_progress | channel_answered | channel_unavailable | channel_declined


RULE_STATES = (m.InboundState.HELD, m.InboundState.TRANSFERRING, m.InboundState.COMPLAINING)


class InboundStasis:
    def __init__(self, ari: AriClient, store: CallStore, operators: OperatorService,
                 hold: HoldStasis, transfer: TransferStasis, complaint: ComplaintStasis,
                 directory: Directory, supervisors: SupervisorDesk, *,
                 customers: Customers | None = None, number_region: str | None = None,
                 app: str,
                 recording_notice: bool, moh_class: str, ring_timeout: int,
                 codes: m.FeatureCodes = m.FeatureCodes(), seek_retry: float = 3.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.operators, self.hold = ari, store, operators, hold
        self.transfer, self.complaint = transfer, complaint
        self.directory, self.supervisors, self.customers = directory, supervisors, customers
        self.number_region = number_region  # national caller IDs are read in this country
        self.codes = codes
        self._rule_deadlines: dict[str, float] = {}
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
        if resource is None or resource.startswith("cb-"):  # callback calls: callback/stasis.py
            return
        self.lanes.submit(call_id_of(resource), event)

    async def reconcile(self) -> None:
        """Take back the calls we own after a start or a reconnect; clean up what died."""
        self.store.forget_owned()
        for rule in (self.hold, self.transfer, self.complaint):
            rule.store.forget_owned()
        await self.ari.call(ops.EVENT_FILTER, applicationName=self.app,
                            filter={"allowed": [{"type": t} for t in sorted(HANDLED)]})
        channels = await self.ari.call(ops.CHANNELS)
        live = frozenset(c["id"] for c in channels)
        known = set(await self.store.live_calls())
        for call_id in known:
            self.lanes.submit(call_id, Resync(live))
        for channel in channels:  # callers that reached Stasis while we were away
            cid, data = channel["id"], (channel.get("dialplan") or {}).get("app_data", "")
            if cid not in known and SEP not in cid and data.startswith(f"{self.app},inbound"):
                self.lanes.submit(cid, {"type": "StasisStart", "args": ["inbound"],
                                        "channel": channel})
        for b in await self.ari.bridges():
            if b["id"].startswith("cb-"):
                continue  # a callback call's: not ours to judge
            if SEP in b["id"] and call_id_of(b["id"]) not in known | live:
                await unless_gone(self.ari.destroy_bridge(b["id"]))

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
                events.append(ToRule(h.TimerFired(now)))
            elif machine.state is m.InboundState.TRANSFERRING:
                events.append(ToRule(t.TimerFired(now)))
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
            if isinstance(event, (ToRule, RecordVoicemail, RecordComplaint, DropChannel,
                                  TransferProgress)):
                # what the rule's end means for the call comes before anything queued after
                events[0:0] = await self._to_rule(machine, event)
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

    def _rule(self, machine: m.InboundMachine):
        """The rule adapter that has the caller now, if any."""
        return {m.InboundState.HELD: self.hold, m.InboundState.TRANSFERRING: self.transfer,
                m.InboundState.COMPLAINING: self.complaint}.get(machine.state)

    async def _to_rule(self, machine: m.InboundMachine, item: object) -> list[object]:
        legs = self._legs(machine)
        if isinstance(item, RecordVoicemail):
            await unless_gone(self.hold.record_voicemail(legs, item.snoop))
            return []
        if isinstance(item, RecordComplaint):
            await unless_gone(self.complaint.record(legs, item.snoop))
            return []
        if isinstance(item, DropChannel):
            await unless_gone(self.ari.hangup(item.channel))
            return []
        if isinstance(item, TransferProgress):
            with tolerated("TransferProgress"):
                await self.ari.call(ops.TRANSFER_PROGRESS, channelId=item.channel,
                                    states=item.state)
            return []
        rule = self._rule(machine)
        if rule is None:
            raise m.InvalidTransition(f"nothing in progress to take that: the call is "
                                      f"{machine.state.value}")
        try:
            result = await rule.feed(legs, item.event)
        except t.InvalidTransferEvent as exc:
            raise m.InvalidTransition(str(exc)) from exc
        return self._rule_result(machine, result)

    def _rule_result(self, machine: m.InboundMachine, result: RuleResult) -> list[object]:
        """The rule's next deadline joins the call's timer; its end is an event for the call."""
        if result.deadline is None or result.outcome:
            self._rule_deadlines.pop(machine.call_id, None)
        else:
            self._rule_deadlines[machine.call_id] = result.deadline
        if not result.outcome or result.outcome == "gone":
            return []
        now = self.clock()
        match machine.state:
            case m.InboundState.HELD:
                return [m.HoldEnded(now, result.outcome)]
            case m.InboundState.TRANSFERRING:
                return [m.TransferEnded(now, result.outcome, result.channel, result.endpoint,
                                        result.fallback_intro, result.for_whom)]
            case m.InboundState.COMPLAINING:
                return [m.ComplaintEnded(now, result.outcome)]
        return []

    def _translate(self, call_id: str, event: dict, machine: m.InboundMachine | None,
                   now: float) -> list[object]:
        """Raw ARI event -> the call's events (for the inbound machine, or ToRule)."""
        kind = event.get("type")
        held = machine is not None and machine.state is m.InboundState.HELD
        try:
            if machine is not None and machine.state in (m.InboundState.TRANSFERRING,
                                                         m.InboundState.COMPLAINING):
                return self._translate_for_rule(call_id, event, machine, now)
            channel_id = (event.get("channel") or {}).get("id")
            if kind == "StasisStart":
                args = event.get("args") or []
                channel = event["channel"]
                if args[:1] == ["inbound"] and channel["id"] == call_id:
                    caller = channel.get("caller") or {}
                    number = to_e164(caller.get("number", ""), self.number_region)
                    return [m.CallerArrived(now, number, caller.get("name", ""),
                                            channel.get("language") or "en")]
                if machine is None:
                    return []
                if args[:1] == ["operator"]:
                    return [m.OperatorAnswered(now, channel["id"])]
                if args[:1] == ["voicemail"]:
                    return [RecordVoicemail(channel["id"])]
                if args[:1] == ["transfer-target"]:  # answered after the transfer was over
                    return [DropChannel(channel["id"])]
                return []
            if machine is None:
                return []
            # A channel that leaves our app is gone for this call: ARI sends StasisEnd, and
            # ChannelDestroyed only for legs that never entered Stasis (an unanswered dial).
            if kind in ("StasisEnd", "ChannelDestroyed"):
                if channel_id == call_id:
                    return [*([ToRule(h.CallerHungUp(now))] if held else []), m.CallerHungUp(now)]
                if channel_id == machine.operator_channel:
                    return [m.OperatorHungUp(now), *([ToRule(h.OperatorHungUp(now))] if held else [])]
                if channel_id == self._operator_channel_id(machine):
                    return [m.OperatorFailed(now, event.get("cause_txt") or "no answer")]
                return []
            if kind == "PlaybackFinished":
                parts = event["playback"]["id"].split(SEP)
                prompt, tag = parts[-1], parts[1] if len(parts) == 3 else ""
                if held:
                    return [ToRule(h.PromptFinished(now, prompt, tag))]
                return [m.PromptFinished(now, prompt)]
            if kind == "ChannelDtmfReceived":
                digit = event["digit"]
                if channel_id == machine.operator_channel:
                    return [m.OperatorDigit(now, digit)]
                if channel_id == call_id and held:
                    return [ToRule(h.DigitPressed(now, digit))]
                if channel_id == call_id:
                    return [m.CallerDigit(now, digit)]
                return []
            if kind == "ChannelTransfer":  # the operator's phone transfer button (SIP REFER)
                return self._transfer_button(event, machine, now)
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
                return [ToRule(h.RecordingFinished(now, float(rec.get("duration") or 0), saved)),
                        DropChannel(snoop)]
        except (KeyError, TypeError, IndexError) as exc:
            raise InvalidEvent(f"{kind} without {exc}") from exc
        return []

    def _translate_for_rule(self, call_id: str, event: dict, machine: m.InboundMachine,
                            now: float) -> list[object]:
        """During a transfer or a complaint the rule reads the event; hang-ups go to both."""
        kind = event.get("type")
        channel_id = (event.get("channel") or {}).get("id")
        rule = self.transfer if machine.state is m.InboundState.TRANSFERRING else self.complaint
        ends = kind in ("StasisEnd", "ChannelDestroyed")
        if ends and channel_id == call_id:
            return [*self._rule_hangup(machine, "caller", now), m.CallerHungUp(now)]
        if ends and channel_id == machine.operator_channel:
            return [m.OperatorHungUp(now), *self._rule_hangup(machine, "operator", now)]
        if kind == "StasisStart" and (event.get("args") or [None])[0] == COMPLAINT_SNOOP:
            return [RecordComplaint(channel_id)]
        events: list[object] = [ToRule(e) for e in rule.translate(self._legs(machine), event, now)]
        if kind in ("RecordingFinished", "RecordingFailed") and events:
            events.append(DropChannel(event["recording"].get("target_uri", "").split(":", 1)[-1]))
        return events

    @staticmethod
    def _rule_hangup(machine: m.InboundMachine, who: str, now: float) -> list[object]:
        """The hang-up event of the rule that has the caller (none when no rule has them)."""
        events = {m.InboundState.HELD: (h.CallerHungUp, h.OperatorHungUp),
                  m.InboundState.TRANSFERRING: (t.CallerHungUp, t.OperatorHungUp),
                  m.InboundState.COMPLAINING: (c.CallerHungUp, c.OperatorHungUp)}
        pair = events.get(machine.state)
        return [ToRule(pair[0 if who == "caller" else 1](now))] if pair else []

    def _transfer_button(self, event: dict, machine: m.InboundMachine, now: float) -> list[object]:
        """A blind transfer from the operator's phone: the dialled number names the target."""
        source = ((event.get("referred_by") or {}).get("source_channel") or {}).get("id")
        if source != machine.operator_channel:
            return []
        if machine.state not in (m.InboundState.CONNECTED, m.InboundState.HELD):
            return [TransferProgress(source, "channel_declined")]  # already being handled
        wanted = ((event.get("refer_to") or {}).get("requested_destination") or {}).get(
            "destination") or ""
        entry = self.directory.find(wanted)
        why = self.directory.unavailable(entry, machine.language) if entry else "unknown"
        if entry is None or why:
            return [TransferProgress(source, "channel_unavailable"),
                    m.TransferTargetUnknown(now, wanted, why)]
        # phones hold the caller before they transfer: the hold hands the caller over
        handed = ([ToRule(h.HandedOver(now))] if machine.state is m.InboundState.HELD else [])
        # the phone keeps its leg: the transfer rule frees the operator when it is time
        return [TransferProgress(source, "channel_progress"), *handed,
                m.TransferCall(now, self.directory.target(entry), self.codes.transfer_mode,
                               None, None, "phone")]

    async def _resync_events(self, call_id: str, machine: m.InboundMachine,
                             live: frozenset[str], now: float) -> list[object]:
        if call_id not in live:
            return [*self._rule_hangup(machine, "caller", now), m.CallerHungUp(now)]
        if machine.operator_channel and machine.operator_channel not in live:
            return [m.OperatorHungUp(now), *self._rule_hangup(machine, "operator", now)]
        if (machine.state is m.InboundState.RINGING_OPERATOR
                and self._operator_channel_id(machine) not in live):
            return [m.OperatorFailed(now, "lost while the app was away")]
        rule = self._rule(machine)
        if rule is not None:  # pick the rule up where it was: timers, a prompt that ended
            result = await rule.resync(self._legs(machine), live)
            return self._rule_result(machine, result)
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
                    follow = self._rule_result(machine, result)
                    return follow[0] if follow else None
                case m.ResumeHold(source=source):
                    result = await self.hold.feed(self._legs(machine), h.ResumeRequested(self.clock(), source))
                    follow = self._rule_result(machine, result)
                    return follow[0] if follow else None
                case m.PlayToOperator(prompt=prompt):
                    await self.ari.play(machine.operator_channel,
                                        f"sound:etiquette/{prompt}",
                                        playback_id=f"{call_id}{SEP}op{uuid.uuid4().hex[:8]}{SEP}{prompt}",
                                        lang=machine.language)
                case m.StartTransfer(request=req, number=number, caller_number=caller_number):
                    result = await self.transfer.start(self._legs(machine), t.TransferRequested(
                        self.clock(), req.target, req.mode, req.reason, req.reason_prompt,
                        req.source, number - 1, caller_number,
                        operator_present=machine.operator_channel is not None), number)
                    follow = self._rule_result(machine, result)
                    return follow[0] if follow else None
                case m.StartFallback(intro=intro, for_whom=for_whom, preselect=preselect, why=why,
                                     operator_present=present):
                    result = await self.hold.offer(self._legs(machine), h.FallbackRequested(
                        self.clock(), intro, for_whom, preselect, present, why))
                    follow = self._rule_result(machine, result)
                    return follow[0] if follow else None
                case m.LookUpTarget(code=code, mode=mode):
                    entry = self.directory.find(code)
                    why = self.directory.unavailable(entry, machine.language) if entry else "unknown"
                    if entry is None or why:
                        await self.store.note(call_id, "transfer target refused", code=code, why=why)
                        return m.TransferTargetUnknown(self.clock(), code, why or "unknown")
                    return m.TransferCall(self.clock(), self.directory.target(entry), mode,
                                          None, None, "feature-code")
                case m.FindSupervisor(source=source):
                    duty = await self.supervisors.on_duty(call_id)
                    await self.store.note(call_id, "supervisor requested", source=source,
                                          supervisor=duty.endpoint, why=duty.why or None)
                    if duty.endpoint is None:
                        return m.NoSupervisor(self.clock(), duty.why)
                    return m.SupervisorOnDuty(self.clock(), self.directory.supervisor(duty.endpoint),
                                              self.directory.reason_prompt("escalation"))
                case m.StartComplaint(why=why):
                    result = await self.complaint.start(self._legs(machine), why)
                    follow = self._rule_result(machine, result)
                    return follow[0] if follow else None
                case m.DestroyBridge(bridge=bridge):
                    await unless_gone(self.ari.destroy_bridge(f"{call_id}{SEP}{bridge}"))
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
                    await unless_gone(self.ari.hangup(channel))
                case m.Finish():
                    self._cancel_timer(call_id)
                    self._rule_deadlines.pop(call_id, None)
                    for rule in (self.hold, self.transfer, self.complaint):
                        await rule.store.delete(call_id)
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
                                     caller_id=caller_id, timeout=self.ring_timeout,
                                     variables=desk_phone_variables(endpoint))
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
            if self.customers is not None and caller.get("number"):
                # a repeat caller: the operator's page shows their card (GET /api/customers/...)
                await self.customers.note(to_e164(caller["number"], self.number_region),
                                          "called in", call_id=call_id,
                                          name=caller.get("name") or None)

    # --- the single timer ------------------------------------------------------------------------
    def _arm_timer(self, call_id: str, machine: m.InboundMachine) -> None:
        self._cancel_timer(call_id)
        if machine.state in m.END_STATES:
            return
        deadlines = [d for d in (machine.get_timer(), self._rule_deadlines.get(call_id))
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
    referred_by = event.get("referred_by")  # ChannelTransfer: the phone that sent the REFER
    if isinstance(referred_by, dict):
        return (referred_by.get("source_channel") or {}).get("id")
    return None

