"""ARI adapter for inbound calls: Stasis events -> the call's machine, its actions -> ARI.

Every item of a call runs in the call's own lane and has one shape: load the snapshot, feed
the events with `now`, save, carry out the actions, re-arm the call's single timer. While a
rule has the caller (the machine's `rule`), the runner (calls/runner.py) runs it: this adapter
hands it the caller by name, passes on the events it wants, and feeds its `RuleEnded` back to
the call. It never names a rule nor reads a rule's ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import structlog

from ari_app.ari import AriClient, AriError, Lanes, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.callback.intake import to_e164
from ari_app.calls import ids
from ari_app.calls.events import CallEvents
from ari_app.calls.errors import CallElsewhere
from ari_app.calls.ownership import CallOwnership, LeaseLost
from ari_app.calls.rule import CallLegs
from ari_app.calls.runner import RuleRunner
from ari_app.calls.timers import CallTimers
from ari_app.calls.vocabulary import (CALLER, OPERATOR, Ask, CallerHungUp, HandTo, Note,
                                      OperatorHungUp, PromptFinished, RuleEnded, TimerFired,
                                      ToRule)
from ari_app.customers.service import Customers
from ari_app.escalation.service import SupervisorDesk
from ari_app.inbound import machine as m
from ari_app.inbound.store import CallStore
from ari_app.operators.service import OperatorService, desk_phone_variables
from ari_app.queue.service import QueueDesk
from ari_app.storage import STORAGE_ERRORS
from ari_app.transfer.directory import Directory

__all__ = ["CallBusy", "CallServices", "InboundSettings", "InboundStasis", "call_id_of"]

logger = structlog.get_logger()
call_id_of = ids.call_of
OWN_TAG = "call"  # the call's own playbacks (greeting, ...): `<call>~call<hex>-<party>~<prompt>`
# the call's words -> the steps' names (`inbound:<step>`); the others are their snake_case
NOTED = "_etiquette_noted"  # set on a raw event once what Asterisk did is published
STEPS = {"PlaybackStarted": "prompt_started", "PlaybackFinished": "prompt_finished",
         "ChannelEnteredBridge": "bridge_entered", "ChannelLeftBridge": "bridge_left"}
_PLAYBACK_EVENTS = frozenset({"PlaybackStarted", "PlaybackFinished"})
# Q.850 causes of a phone that rang and nobody answered (18 no user responding, 19 no answer:
# Asterisk's own ring timeout); busy (17), rejected (21) and unreachable are not "missed"
RANG_OUT = frozenset({18, 19})
HANDLED = frozenset({"StasisStart", "StasisEnd", "ChannelDestroyed", "PlaybackStarted",
                     "PlaybackFinished", "ChannelEnteredBridge", "ChannelLeftBridge",
                     "ChannelDtmfReceived", "ChannelHold", "ChannelUnhold", "ChannelTransfer"})


class InvalidEvent(ValueError):
    """An ARI event without the fields this adapter relies on."""


class CallBusy(TimeoutError):
    """An API request waited too long for the call's lane (it never hangs the caller)."""


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
class ForRule:
    """An item for the rule that has the caller: a shared event, or a raw ARI event."""
    event: object


@dataclass(frozen=True)
class LegEntered:
    """A leg some rule asked for (a snoop) reached Stasis."""
    channel: str
    role: str


@dataclass(frozen=True)
class DropChannel:
    channel: str


@dataclass(frozen=True)
class TransferProgress:
    """Tell the phone that asked for a transfer (SIP REFER) how it is going."""
    channel: str
    state: str  # channel_progress | channel_answered | channel_unavailable | channel_declined


@dataclass(frozen=True)
class CallServices:
    """Whom the call asks: free operators, the directory, the supervisors' desk, the
    customer cards."""
    operators: OperatorService
    directory: Directory
    supervisors: SupervisorDesk
    customers: Customers | None = None
    ownership: CallOwnership | None = None  # who else may drive a call (several instances)
    queues: QueueDesk | None = None  # where callers wait when nobody is free


@dataclass(frozen=True)
class InboundSettings:
    app: str
    moh_class: str
    ring_timeout: int
    recording_notice: bool = True
    codes: m.FeatureCodes = field(default_factory=m.FeatureCodes)
    seek_retry: float = 3.0
    connecting_after: float = 0.0  # ringback before "an operator will be with you shortly"
    connecting_every: float = 0.0  # ... and a word this often while it rings on
    number_region: str | None = None  # national caller IDs are read in this country
    request_timeout: float = 10.0
    # keys offered after the greeting (inbound/machine.py `offers`)
    offers: tuple[tuple[str, ...], ...] = ()
    survey_queues: tuple[str, ...] = ()  # the queues whose callers get the post-call survey
    node: str | None = None  # this adapter's Asterisk node, when several share the Redis
    clock: Callable[[], float] = time.time


def _answer_now(item: object, why: Exception) -> bool:
    """The call waits for storage: an API request behind it is answered (503) at once."""
    if not isinstance(item, Request):
        return False
    if not item.answer.done():
        item.answer.set_exception(why)
    return True


class InboundStasis:
    def __init__(self, ari: AriClient, store: CallStore, rules: RuleRunner, events: CallEvents,
                 services: CallServices, settings: InboundSettings) -> None:
        self.ari, self.store, self.rules = ari, store, rules
        self.events = events.for_rule("inbound", STEPS)
        self.services, self.settings, self.clock = services, settings, settings.clock
        self.app, self.codes = settings.app, settings.codes
        self.request_timeout = settings.request_timeout
        self.handled = HANDLED | rules.wants
        self.also_allowed: frozenset[str] = frozenset()  # read by others on the socket (pool/)
        self.unwatched = rules.unwatched_prompts
        self.lanes = Lanes(self._handle, retry_on=STORAGE_ERRORS,
                           refuse_while_stalled=_answer_now, while_stalled=self._while_stalled)
        self.timers = CallTimers(lambda call_id: self.lanes.submit(call_id, Tick()), self.clock)
        # when Asterisk last started (read at every connect): a call it no longer has, begun
        # under an earlier start, was lost with the restart, not hung up by its caller
        self.asterisk_started: str | None = None
        self._lost: dict[str, str] = {}  # call -> why it was lost, for its "call ended"

    # --- routing (runs in the WebSocket reader: enqueue only) --------------------------------
    def on_event(self, event: dict) -> None:
        kind = event.get("type")
        if kind not in self.handled:
            return
        if (kind in _PLAYBACK_EVENTS and (event.get("playback") or {}).get("id", "").rsplit(
                ids.SEP, 1)[-1] in self.unwatched):
            return  # an aside nobody waits for (a nudge to the operator): not worth a lane
        resource = _resource_id(event)
        if resource is None or resource.startswith("cb-"):  # callback calls: callback/stasis.py
            return
        self.lanes.submit(call_id_of(resource), event)

    async def reconcile(self, app: str | None = None, *, takeover: bool = False,
                        pool: bool = False) -> None:
        """Take back the calls we own after a start or a reconnect; clean up what died.

        In a pool (`pool`), `app` is one shard (ARI app name) this instance holds: only the
        calls whose caller is in it are ours to resume, and with `takeover` (the shard was
        taken from an instance that died or was cut off) whoever held their leases: the
        holder of the caller's shard drives the call, and the new token fences the old one."""
        app = app or self.app
        self.store.forget_owned()
        self.rules.forget_owned()
        await self.ari.call(ops.EVENT_FILTER, applicationName=app,
                            filter={"allowed": [{"type": t} for t in sorted(
                                self.handled | self.also_allowed)]})
        info = await self.ari.call(ops.ASTERISK_INFO, only="status")
        self.asterisk_started = (info.get("status") or {}).get("startup_time") or None
        channels = await self.ari.call(ops.CHANNELS)
        live = frozenset(c["id"] for c in channels)
        in_app: frozenset[str] | None = None
        if pool:
            in_app = frozenset((await self.ari.call(ops.APPLICATION, applicationName=app))
                               .get("channel_ids", []))
        known = set(await self.store.live_calls())
        if self.settings.node is not None:  # several nodes share the live set: only ours here
            known = {c for c, machine in zip(sorted(known), await self.store.peek(sorted(known)))
                     if machine is None or machine.node in (None, self.settings.node)}
        for call_id in known:
            if in_app is not None and call_id in live and call_id not in in_app:
                continue  # in another shard: its holder resumes it
            if await self._claim(call_id, take=takeover and in_app is not None
                                 and call_id in in_app):
                if takeover:
                    self.events.note(call_id, "taken over", {"app": app})
                self.lanes.submit(call_id, Resync(live))
        for channel in channels:  # callers that reached Stasis while we were away
            cid, dialplan = channel["id"], channel.get("dialplan") or {}
            if (cid not in known and not ids.is_part_of_call(cid)
                    and (cid in in_app if in_app is not None else True)
                    and _entered_inbound(dialplan, app)):
                self.lanes.submit(cid, {"type": "StasisStart", "args": ["inbound"],
                                        "channel": channel})
        for b in await self.ari.bridges():
            if b["id"].startswith("cb-"):
                continue  # a callback call's: not ours to judge
            owner = call_id_of(b["id"])
            if (ids.is_part_of_call(b["id"]) and owner not in known | live
                    and await self._claim(owner)):  # nobody drives it: ours to clean
                await unless_gone(self.ari.destroy_bridge(b["id"]))
                if self.services.ownership is not None:
                    await self.services.ownership.release(owner)

    def moved(self, call_id: str) -> None:
        """Another instance drives the call now (its lease moved, calls/ownership.py): this one
        stops at once, timers included, and keeps nothing of it in memory."""
        self.timers.cancel(call_id)
        self.store.forget(call_id)
        self.rules.forget(call_id)
        self.events.events.forget(call_id)

    async def _claim(self, call_id: str, take: bool = False) -> bool:
        """The call's lease: ours, or free to take (its owner is gone); `take`: whoever held
        it (we hold the caller's shard)."""
        ownership = self.services.ownership
        return ownership is None or await ownership.claim(call_id, take=take) is not None

    # --- one call's items, in order -------------------------------------------------------------
    async def _handle(self, call_id: str, item: object) -> None:
        published = self.events.events
        published.begin(call_id)
        with structlog.contextvars.bound_contextvars(rule="inbound"):
            try:
                await self._handle_item(call_id, item)
            except LeaseLost as exc:  # another instance took the call over: nothing was written
                logger.warning("call moved to another instance; this one stops driving it",
                               item=type(item).__name__)
                self.moved(call_id)
                if isinstance(item, Request) and not item.answer.done():
                    item.answer.set_exception(exc)
            except BaseException as exc:
                if isinstance(exc, STORAGE_ERRORS):  # tried again (a request: answered 503)
                    self.store.rewind(call_id)        # from where the item began
                    self.rules.rewind(call_id)
                if not isinstance(item, Request):
                    if isinstance(exc, STORAGE_ERRORS):  # the lane tries this item again
                        published.cut_short(call_id)
                    raise
                if not item.answer.done():  # the API caller always gets an answer
                    if isinstance(exc, asyncio.CancelledError):
                        item.answer.cancel()
                    else:
                        item.answer.set_exception(exc)
                if isinstance(exc, STORAGE_ERRORS):
                    return  # answered (503): a request is never retried behind the caller's back
                raise
            finally:
                self.store.settle(call_id)
                self.rules.settle(call_id)
                published.settle(call_id)

    async def _while_stalled(self, call_id: str, item: object) -> None:
        """The call waits for storage: a prompt that paused the caller's music and has ended
        gets the music back now, not when storage is back (no dead air meanwhile)."""
        if isinstance(item, dict) and item.get("type") == "PlaybackFinished":
            with tolerated("music while the call waits for storage"):
                await self.rules.legs.resume_music(call_id, item["playback"]["id"])

    async def _handle_item(self, call_id: str, item: object) -> None:
        now = self.clock()
        machine = await self.store.load(call_id)
        if isinstance(item, Request):
            await self._answer_request(machine, item)
            return
        if isinstance(item, dict):
            if machine is not None or item.get("type") == "StasisStart":
                await self._note(call_id, item, now, machine.operator if machine else None)
            events = self._translate(call_id, item, machine, now)
            if not events:
                return
            if machine is None:
                if not isinstance(events[0], m.CallerArrived):
                    return  # an event for a call that already ended
                if not await self._claim(call_id):
                    return  # another instance drives this caller (first claim wins)
                events[0] = await self._returning(events[0])
                machine = m.InboundMachine(
                    call_id, recording_notice=self.settings.recording_notice,
                    seek_retry=self.settings.seek_retry,
                    connecting_after=self.settings.connecting_after,
                    connecting_every=self.settings.connecting_every,
                    operator_count=len(self.services.operators.endpoints), codes=self.codes,
                    offers=[list(o) for o in self.settings.offers],
                    survey_queues=list(self.settings.survey_queues), node=self.settings.node,
                    asterisk_started=self.asterisk_started)
        elif machine is None:
            return
        elif isinstance(item, Tick):
            # only what is due is fed: a rule's tick (a hold's check-in) leaves the call's own
            # machine out, and its snapshot is not built just to be found unchanged
            own = machine.get_timer()
            due = own is not None and own <= now
            events = [TimerFired(now)] if due else []
            rule_due = await self.rules.deadline(machine.rule, call_id)
            if rule_due is not None and rule_due <= now:
                events.append(ForRule(TimerFired(now)))
        elif isinstance(item, Resync):
            events = await self._resync_events(call_id, machine, item.live_channels, now)
            if not events:
                await self._arm_timer(call_id, machine)
                return
        else:
            raise InvalidEvent(f"unknown lane item {item!r}")
        await self._feed(machine, events)

    async def _answer_request(self, machine: m.InboundMachine | None, request: Request) -> None:
        if machine is None:
            request.answer.set_exception(LookupError("no such call"))
            return
        ownership = self.services.ownership
        if ownership is not None and not ownership.owns(machine.call_id):
            # its events reach the instance that holds it: only that one may act on it
            request.answer.set_exception(CallElsewhere(
                machine.call_id, await ownership.owner_of(machine.call_id)))
            self.store.forget(machine.call_id)
            return
        event = request.event
        if isinstance(event, ToRule):
            if machine.rule != event.rule:
                request.answer.set_exception(m.InvalidTransition(
                    f"no {event.rule} in progress: the call is {machine.state.value}"))
                return
            event = ForRule(event.event)
        try:
            await self._feed(machine, [event])
        except Exception as exc:  # the API caller must get an answer, whatever happened
            request.answer.set_exception(exc)
            if not isinstance(exc, m.InvalidTransition):
                raise
            return
        request.answer.set_result(machine.state.value)

    async def operator_of(self, call_id: str) -> str | None:
        """The call's operator (whose console may act on it); LookupError: no such call."""
        machine = await self.store.load(call_id)
        if machine is None:
            raise LookupError(call_id)
        return machine.operator

    async def request(self, call_id: str, event: object) -> str:
        """Apply an API request in the call's lane, in order with its events; the new state."""
        answer = asyncio.get_running_loop().create_future()
        self.lanes.submit(call_id, Request(event, answer))
        try:
            return await asyncio.wait_for(asyncio.shield(answer), self.request_timeout)
        except asyncio.TimeoutError:
            if (stalled := self.lanes.stalled(call_id)) is not None:
                raise stalled from None
            raise CallBusy(f"call {call_id} did not take the request within "
                           f"{self.request_timeout:.0f} s") from None

    async def _feed(self, machine: m.InboundMachine, events: list[object]) -> None:
        while events:
            event = events.pop(0)
            if isinstance(event, (ForRule, LegEntered, DropChannel, TransferProgress)):
                # what the rule's end means for the call comes before anything queued after
                events[0:0] = await self._side_step(machine, event)
                continue
            old = machine.state
            actions = machine.handle(event)
            if machine.state not in m.END_STATES:
                await self.store.save(machine)  # a step that changed nothing writes nothing
            self.events.transition(machine.call_id, old, machine.state,
                                   operator=machine.operator, at=getattr(event, "now", None))
            for action in actions:
                follow_up = await self._do(machine, action)
                if follow_up is not None:
                    events.append(follow_up)
        await self._arm_timer(machine.call_id, machine)

    def _legs(self, machine: m.InboundMachine) -> CallLegs:
        return CallLegs(machine.call_id, machine.operator_channel,
                        ids.part(machine.call_id, m.TALK_BRIDGE), machine.number, machine.name,
                        machine.language, machine.operator)

    async def _refer_taken(self, channel: str) -> None:
        """Return once Asterisk has finished taking the phone's REFER. It announces the REFER
        (ChannelTransfer) before it keeps its own record of it (res_pjsip_refer.c,
        refer_incoming_ari_request: ari_notify, then progress->ari_state), and a progress
        that arrives in between crashes it (a NULL ari_state; seen here and in CI). Reading
        the leg's SIP endpoint runs on the same SIP task queue as the REFER, behind it."""
        await self.ari.call(ops.CHANNEL_VARIABLE, channelId=channel, variable="CHANNEL(endpoint)")

    async def _side_step(self, machine: m.InboundMachine, item: object) -> list[object]:
        """What is not the call's machine's own: the rule's share, and legs to let go."""
        match item:
            case DropChannel(channel=channel):
                await unless_gone(self.ari.hangup(channel))
            case TransferProgress(channel=channel, state=state):
                with tolerated("TransferProgress"):
                    await self._refer_taken(channel)
                    await self.ari.call(ops.TRANSFER_PROGRESS, channelId=channel, states=state)
            case LegEntered(channel=channel, role=role):
                rule = machine.rule
                if rule is None or not await self.rules.rule(rule).leg_entered(
                        self._legs(machine), channel, role):
                    await unless_gone(self.ari.hangup(channel))  # asked for, but not now
            case ForRule(event=event) if machine.rule is None:
                if not isinstance(event, dict):
                    raise m.InvalidTransition(f"nothing in progress to take that: the call is "
                                              f"{machine.state.value}")
            case ForRule(event=dict() as raw):
                return _ended(await self.rules.event(machine.rule, self._legs(machine), raw))
            case ForRule(event=event):
                return _ended(await self.rules.feed(machine.rule, self._legs(machine), event))
        return []

    # --- raw ARI events -> the call's events -----------------------------------------------------
    def _translate(self, call_id: str, event: dict, machine: m.InboundMachine | None,
                   now: float) -> list[object]:
        kind = event.get("type")
        try:
            channel_id = (event.get("channel") or {}).get("id")
            if kind == "StasisStart":
                return self._entered(call_id, event, machine, now)
            if machine is None:
                return []
            rule = self.rules.rule(machine.rule) if machine.rule else None
            with_operator = rule is not None and rule.TAKES_OPERATOR
            # A channel that leaves our app is gone for this call: ARI sends StasisEnd, and
            # ChannelDestroyed only for legs that never entered Stasis (an unanswered dial).
            if kind in ("StasisEnd", "ChannelDestroyed"):
                if channel_id == call_id:  # the rule first: it may still record something
                    return [*([ForRule(CallerHungUp(now))] if rule else []), CallerHungUp(now)]
                if channel_id == machine.operator_channel:
                    return [OperatorHungUp(now), *([ForRule(OperatorHungUp(now))] if rule else [])]
                if channel_id == self._operator_channel_id(machine):
                    return [m.OperatorFailed(now, event.get("cause_txt") or "no answer",
                                             missed=event.get("cause") in RANG_OUT)]
                return [ForRule(event)] if rule else []
            if kind == "PlaybackFinished":
                played = ids.read_playback(event["playback"]["id"])
                if played is None:
                    return []
                finished = PromptFinished(now, played.prompt, played.tag, played.party)
                if played.tag.startswith(OWN_TAG) or rule is None:
                    return [finished]
                return [ForRule(finished)]
            if kind == "ChannelDtmfReceived":
                digit = event["digit"]
                if channel_id == machine.operator_channel and not with_operator:
                    return [m.OperatorDigit(now, digit)]
                if rule is not None:
                    return [ForRule(event)]
                if channel_id == call_id:
                    return [m.CallerDigit(now, digit)]
                return []
            if with_operator:
                return [ForRule(event)] if rule else []
            if kind == "ChannelTransfer":  # the operator's phone transfer button (SIP REFER)
                return self._transfer_button(event, machine, now)
            if kind in ("ChannelHold", "ChannelUnhold") and channel_id == machine.operator_channel:
                # the operator's own phone hold button
                if kind == "ChannelHold" and machine.state is m.InboundState.CONNECTED:
                    return [m.PutOnHold(now, None, None, "phone")]
                if kind == "ChannelUnhold" and machine.state is m.InboundState.HELD:
                    return [m.TakeOffHold(now, "phone")]
                return []
            if rule is not None and kind in rule.WANTS:
                return [ForRule(event)]
        except (KeyError, TypeError, IndexError) as exc:
            raise InvalidEvent(f"{kind} without {exc}") from exc
        return []

    def _entered(self, call_id: str, event: dict, machine: m.InboundMachine | None,
                 now: float) -> list[object]:
        """A channel of the call reached Stasis: the caller, the operator, or a leg a rule
        asked for (its role is the first app argument)."""
        args = event.get("args") or []
        channel = event["channel"]
        role = args[0] if args else ""
        if role == "inbound" and channel["id"] == call_id:
            caller = channel.get("caller") or {}
            number = to_e164(caller.get("number", ""), self.settings.number_region)
            return [m.CallerArrived(now, number, caller.get("name", ""),
                                    channel.get("language") or "en",
                                    self._queue_of(call_id, args))]
        if machine is None:
            return []
        if role == "operator":
            return [m.OperatorAnswered(now, channel["id"])]
        rule = self.rules.rule(machine.rule) if machine.rule else None
        if rule is not None and "StasisStart" in rule.WANTS and role in rule.LEGS:
            return [ForRule(event)]
        if role:
            return [LegEntered(channel["id"], role)]
        return []

    def _queue_of(self, call_id: str, args: list[str]) -> str | None:
        """The queue the dialplan names (`Stasis(app,inbound,<exten>,<queue>)`), else the one
        that lists the number dialled, else the policy's first; None without queues."""
        queues = self.services.queues
        if queues is None or not queues.names:
            return None
        wanted = args[2] if len(args) > 2 and args[2] else None
        if wanted is not None and wanted not in queues.policies:
            logger.warning("dialplan names an unknown queue: the number decides",
                           queue=wanted, known=queues.names, call_id=call_id)
            wanted = None
        return wanted or queues.for_number(args[1] if len(args) > 1 else "")

    async def _returning(self, arrived: object) -> object:
        """A caller who hung up while waiting and calls again within the return window."""
        queues = self.services.queues
        if (not isinstance(arrived, m.CallerArrived) or arrived.queue is None
                or queues is None or not arrived.number):
            return arrived
        if await queues.returning(arrived.queue, arrived.number):
            return replace(arrived, returning=True)
        return arrived

    def _transfer_button(self, event: dict, machine: m.InboundMachine, now: float) -> list[object]:
        """A blind transfer from the operator's phone: the dialled number names the target."""
        source = ((event.get("referred_by") or {}).get("source_channel") or {}).get("id")
        if source != machine.operator_channel:
            return []
        if machine.state not in (m.InboundState.CONNECTED, m.InboundState.HELD):
            return [TransferProgress(source, "channel_declined")]  # already being handled
        wanted = ((event.get("refer_to") or {}).get("requested_destination") or {}).get(
            "destination") or ""
        directory = self.services.directory
        entry = directory.find(wanted)
        why = directory.unavailable(entry, machine.language) if entry else "unknown"
        if entry is None or why:
            return [TransferProgress(source, "channel_unavailable"),
                    m.TransferTargetUnknown(now, wanted, why)]
        # phones hold the caller before they transfer: the call asks the hold to hand over;
        # the phone keeps its leg: the transfer rule frees the operator when it is time
        return [TransferProgress(source, "channel_progress"),
                m.TransferCall(now, directory.target(entry), self.codes.transfer_mode,
                               None, None, "phone")]

    async def _resync_events(self, call_id: str, machine: m.InboundMachine,
                             live: frozenset[str], now: float) -> list[object]:
        rule = machine.rule
        if call_id not in live:
            if None not in (machine.asterisk_started, self.asterisk_started) and (
                    machine.asterisk_started != self.asterisk_started):
                self._lost[call_id] = "lost: Asterisk restarted"
                self.events.note(call_id, "call lost", {"why": "Asterisk restarted"},
                                 operator=machine.operator, at=now)
                logger.warning("call lost: Asterisk restarted", call_id=call_id,
                               state=machine.state.value, operator=machine.operator)
            return [*([ForRule(CallerHungUp(now))] if rule else []), CallerHungUp(now)]
        if machine.operator_channel and machine.operator_channel not in live:
            return [OperatorHungUp(now), *([ForRule(OperatorHungUp(now))] if rule else [])]
        if (machine.state is m.InboundState.RINGING_OPERATOR
                and self._operator_channel_id(machine) not in live):
            return [m.OperatorFailed(now, "lost while the app was away")]
        if machine.playing in m.CONNECTING_WORDS and not await self.rules.legs.still_playing(
                _playback_id(call_id, m.CONNECTING_TAG, machine.playing, CALLER)):  # ringback again
            return [PromptFinished(now, machine.playing, f"{OWN_TAG}{m.CONNECTING_TAG}", CALLER)]
        if rule is not None:  # pick the rule up where it was: timers, a prompt that ended
            return _ended(await self.rules.resync(rule, self._legs(machine), live))
        return []

    # --- actions -> ARI ------------------------------------------------------------------------
    async def _do(self, machine: m.InboundMachine, action: object) -> object | None:
        call_id = machine.call_id
        with tolerated(type(action).__name__):
            match action:
                case HandTo(rule=rule, request=request):
                    return _first(await self.rules.start(rule, self._legs(machine), request))
                case Ask(rule=rule, what=what, data=data):
                    return _first(await self.rules.ask(rule, self._legs(machine), what, data))
                case m.Answer():
                    await self.ari.answer(call_id)
                case m.Play(prompt=prompt, media=media, tag=tag):
                    await self._play(machine, call_id, prompt, CALLER, media, tag)
                case m.StopPlayback(prompt=prompt, tag=tag, party=party):
                    await unless_gone(self.ari.stop_playback(
                        _playback_id(call_id, tag, prompt, party)))
                case Note(event=event, data=data):
                    self.events.note(call_id, event, dict(data), operator=machine.operator)
                case m.PlayToOperator(prompt=prompt):
                    await self._play(machine, machine.operator_channel, prompt, OPERATOR)
                case m.Ring():
                    await self.ari.call(ops.RING, channelId=call_id)
                case m.StopRinging():
                    await self.ari.call(ops.STOP_RING, channelId=call_id)
                case m.CreateBridge(bridge=bridge, kind=kind):
                    await self.ari.create_bridge(ids.part(call_id, bridge), kind,
                                                 name=f"{kind} {call_id}")
                case m.AddToBridge(bridge=bridge, party=party):
                    if party == m.CALLER:
                        await self.ari.add_to_bridge(ids.part(call_id, bridge), call_id)
                    else:  # the operator's feature codes must not beep in the caller's ear
                        await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=ids.part(call_id, bridge),
                                            channel=machine.operator_channel, absorbDTMF=True)
                case m.LookUpTarget(code=code, mode=mode):
                    return self._look_up(machine, code, mode)
                case m.FindSupervisor(source=source):
                    return await self._find_supervisor(machine, source)
                case m.DestroyBridge(bridge=bridge):
                    await unless_gone(self.ari.destroy_bridge(ids.part(call_id, bridge)))
                case m.StartBridgeMoh(bridge=bridge):
                    await self.ari.start_bridge_moh(ids.part(call_id, bridge),
                                                    self.settings.moh_class)
                case m.FindOperator(exclude=exclude):
                    operators, queues = self.services.operators, self.services.queues
                    if machine.queue is not None and queues is not None:
                        if await queues.someone_waiting(machine.queue):
                            return m.NoOperatorFree(self.clock())  # they came first
                        operators = queues.operators(machine.queue)
                    endpoint = await operators.reserve_free(call_id, exclude)
                    if endpoint is None:
                        return m.NoOperatorFree(self.clock())
                    self.events.note(call_id, "operator reserved", {"endpoint": endpoint})
                    return m.OperatorFound(self.clock(), endpoint)
                case m.DialOperator(endpoint=endpoint):
                    return await self._dial_operator(machine, endpoint)
                case m.ReleaseOperator(endpoint=endpoint, after=after):
                    await self.services.operators.release(endpoint, call_id, after)
                case m.HangUp(party=party, channel=channel):
                    channel = channel or (call_id if party == m.CALLER else (
                        machine.operator_channel or self._operator_channel_id(machine)))
                    await unless_gone(self.ari.hangup(channel))
                case m.Finish():
                    self.timers.cancel(call_id)
                    await self.rules.drop(call_id)
                    await self.store.delete(call_id)
                    if self.services.ownership is not None:
                        await self.services.ownership.release(call_id)
                    lost = self._lost.pop(call_id, None)
                    self.events.note(call_id, "call ended", {"outcome": lost} if lost else (),
                                     operator=machine.operator)
                case _:
                    raise InvalidEvent(f"no ARI mapping for {action!r}")
        return None

    async def _play(self, machine: m.InboundMachine, channel: str | None, prompt: str,
                    party: str, media: tuple[str, ...] = (), tag: str = "") -> None:
        """A tagged prompt (the greeting's offers) has an id its StopPlayback can name."""
        if channel:
            await self.ari.play(channel, list(media) or f"sound:etiquette/{prompt}",
                                playback_id=_playback_id(machine.call_id,
                                                         tag or uuid.uuid4().hex[:8], prompt,
                                                         party),
                                lang=machine.language)

    def _look_up(self, machine: m.InboundMachine, code: str, mode: str) -> object:
        directory = self.services.directory
        entry = directory.find(code)
        why = directory.unavailable(entry, machine.language) if entry else "unknown"
        if entry is None or why:
            self.events.note(machine.call_id, "transfer target refused",
                             {"code": code, "why": why}, operator=machine.operator)
            return m.TransferTargetUnknown(self.clock(), code, why or "unknown")
        return m.TransferCall(self.clock(), directory.target(entry), mode, None, None,
                              "feature-code")

    async def _find_supervisor(self, machine: m.InboundMachine, source: str) -> object:
        duty = await self.services.supervisors.on_duty(machine.call_id)
        self.events.note(machine.call_id, "supervisor requested", {
            "source": source, "supervisor": duty.endpoint, "why": duty.why or None},
            operator=machine.operator)
        if duty.endpoint is None:
            return m.NoSupervisor(self.clock(), duty.why)
        directory = self.services.directory
        return m.SupervisorOnDuty(self.clock(), directory.supervisor(duty.endpoint),
                                  directory.reason_prompt("escalation"))

    async def _dial_operator(self, machine: m.InboundMachine, endpoint: str) -> object | None:
        caller_id = f'"{machine.name or machine.number}" <{machine.number}>' if machine.number else None
        try:
            await self.ari.originate(endpoint, app=self.app, app_args=f"operator,{machine.call_id}",
                                     channel_id=self._operator_channel_id(machine),
                                     caller_id=caller_id, timeout=self.settings.ring_timeout,
                                     variables=desk_phone_variables(endpoint))
        except AriError as exc:
            return m.OperatorFailed(self.clock(), exc.message)
        self.events.note(machine.call_id, "operator dialed",
                         {"endpoint": endpoint, "attempt": machine.attempt})
        return None

    @staticmethod
    def _operator_channel_id(machine: m.InboundMachine) -> str:
        return ids.part(machine.call_id, f"op{machine.attempt}")

    # --- what Asterisk did, in the call's etiquette log ---------------------------------------
    async def _note(self, call_id: str, event: dict, now: float, operator: str | None) -> None:
        kind = event.get("type")
        if NOTED in event:  # published once: not again when storage makes the lane retry
            if kind == "StasisStart":
                await self._card(call_id, event)
            return
        event[NOTED] = True
        if kind in ("PlaybackStarted", "PlaybackFinished"):
            pb = event.get("playback") or {}
            prompt = pb.get("id", "").rsplit(ids.SEP, 1)[-1]
            self.events.note(call_id, kind, {"prompt": prompt, "media": pb.get("media_uri"),
                                             "state": pb.get("state")}, operator=operator, at=now)
        elif kind in ("ChannelEnteredBridge", "ChannelLeftBridge"):
            channel = event.get("channel", {}).get("id", "")
            party = ("caller" if channel == call_id else
                     "operator" if ids.is_part_of_call(channel) else "other")
            self.events.note(call_id, kind, {"party": party, "channel": channel,
                                             "bridge": event.get("bridge", {}).get("id")},
                             operator=operator, at=now)
        elif kind == "StasisStart" and (event.get("args") or [None])[0] == "inbound":
            caller = event.get("channel", {}).get("caller") or {}
            self.events.note(call_id, "call started", {"number": caller.get("number")}, at=now)
            await self._card(call_id, event)

    async def _card(self, call_id: str, event: dict) -> None:
        customers = self.services.customers
        if (event.get("args") or [None])[0] == "inbound" and customers is not None:
            caller = event.get("channel", {}).get("caller") or {}
            if caller.get("number"):
                # a repeat caller: the operator's page shows their card (GET /api/customers/...)
                await customers.note(to_e164(caller["number"], self.settings.number_region),
                                     "called in", call_id=call_id,
                                     name=caller.get("name") or None)

    # --- the single timer: the call's deadline or its rule's, whichever comes first -------------
    async def _arm_timer(self, call_id: str, machine: m.InboundMachine) -> None:
        if machine.state in m.END_STATES:
            self.timers.cancel(call_id)
            return
        try:
            rule_due = await self.rules.deadline(machine.rule, call_id)
        except STORAGE_ERRORS:
            # the item is done (never run twice); the rule's deadline is in Redis: the tick
            # comes back soon and waits for storage in the call's lane
            rule_due = self.clock() + 1.0
        self.timers.arm(call_id, (machine.get_timer(), rule_due))

    @property
    def pending_timers(self) -> int:
        return len(self.timers)

    async def close(self) -> None:
        self.timers.cancel_all()
        await self.lanes.close()


def _entered_inbound(dialplan: dict, app: str) -> bool:
    """The channel entered the app as an inbound caller: Stasis(app,inbound,...) or, in a
    pool, StasisBroadcast(timeout,filter,inbound:...)."""
    data = dialplan.get("app_data", "")
    if dialplan.get("app_name") == "StasisBroadcast":
        parts = data.split(",")
        return len(parts) > 2 and parts[2].split(":")[0] == "inbound"
    return data.startswith(f"{app},inbound")


def _playback_id(call_id: str, tag: str, prompt: str, party: str) -> str:
    """The call's own playback: a tagged one is stopped by the same id it was started with."""
    return ids.playback(call_id, f"{OWN_TAG}{tag}", prompt, party)


def _ended(ended: RuleEnded | None) -> list[object]:
    """The rule's end is an event for the call ("gone": it had already ended)."""
    return [ended] if ended is not None and ended.outcome != "gone" else []


def _first(ended: RuleEnded | None) -> object | None:
    return ended if ended is not None and ended.outcome != "gone" else None


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
