"""ARI adapter for callback calls: Stasis events -> CallbackCallMachine, its decisions -> ARI.

Each attempt is a call of its own, `cb-<attempt>`: the operator's leg `cb-<attempt>~op`, the
customer's `cb-<attempt>~cust`, their bridge `cb-<attempt>~talk`. Events run in the attempt's
own lane; the attempt's end goes to the dialer (`on_finished`), which decides what next.

An attempt's legs are dialled into this process's Stasis app, and only the process holding an
app name hears its legs: so that process drives the attempt, and when it dies, whoever holds
the app name next (the same instance restarted, a pool survivor) takes it up from Redis.
Each attempt holds a lease of its own (calls/ownership.py, as an inbound call does): the
taker draws a new fencing token, so a process paused in the middle of a step, resumed after
the takeover, writes nothing and acts no further (LeaseLost). An attempt's snapshot goes only
once its end is carried out, so storage failing in the middle of an end never skips it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog

from ari_app.ari import AriClient, AriError, Lanes, tolerated, unless_gone
from ari_app.ari import operations as ops
from ari_app.callback import machine as k
from ari_app.operators.service import desk_phone_variables
from ari_app.storage.snapshots import SnapshotStore
from ari_app.storage import STORAGE_ERRORS
from ari_app.calls import ids
from ari_app.calls.events import CallEvents
from ari_app.calls.ownership import CallOwnership, LeaseLost
from ari_app.calls.timers import CallTimers

__all__ = ["CallbackStasis", "PREFIX"]

logger = structlog.get_logger()
PREFIX = "cb-"
# an attempt in the index without a snapshot this long after it started: its process died
# before writing one (an attempt's snapshot is written at its first step)
STALE = 600.0
ROLE = {"op": k.OPERATOR, "cust": k.CUSTOMER}


class CallbackStasis:
    def __init__(self, ari: AriClient, store: SnapshotStore[k.CallbackCallMachine],
                 events: CallEvents, *, app: str, dial_template: str, ring_timeout: int,
                 operator_ring_timeout: int, company_id: str,
                 on_finished: Callable[[k.CallbackCallMachine, k.Finish], Awaitable[None]],
                 on_adopted: Callable[[k.CallbackCallMachine], Awaitable[None]] | None = None,
                 node: str | None = None, ownership: CallOwnership | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.store, self.ownership = ari, store, ownership
        self.events = events.for_rule("callback")  # `callback:operator_dialed`, ...
        self._published = events
        # attempt -> its request, which names its call events: a lane item cut short by
        # storage publishes each step once over its tries (`CallEvents.cut_short`)
        self._requests: dict[str, str] = {}
        self.app, self.dial_template, self.ring_timeout = app, dial_template, ring_timeout
        self.operator_ring_timeout, self.company_id = operator_ring_timeout, company_id
        self.on_finished, self.on_adopted, self.clock = on_finished, on_adopted, clock
        self.node = node or ""
        # whether this process holds an app's events now (pool/: its lease); a single instance
        # always holds its own
        self.holds: Callable[[str], bool] = lambda app: True
        self.lanes = Lanes(self._handle, retry_on=STORAGE_ERRORS)
        self.timers = CallTimers(lambda call_id: self.lanes.submit(call_id, "tick"), clock)
        self._playing: dict[str, dict[str, str]] = {}  # attempt -> party -> last playback id
        # the attempts this process drives, till they end, and the app each was dialled into
        self._attempts: dict[str, str] = {}
        self._index = store.keys.callback_attempts()

    @staticmethod
    def owns(resource_id: str) -> bool:
        return resource_id.startswith(PREFIX)

    def on_event(self, event: dict) -> None:
        resource = next((event[key]["id"] for key in ("playback", "channel", "bridge")
                         if isinstance(event.get(key), dict) and event[key].get("id")), None)
        if resource and self.owns(resource):
            self.lanes.submit(ids.call_of(resource), event)

    async def start(self, machine: k.CallbackCallMachine, started: k.Started) -> None:
        machine.app, machine.node = self.app, self.node  # its legs' events come to this app
        if self.ownership is not None:  # a fresh id: nobody else can hold it
            await self.ownership.claim(machine.call_id)
        await self.store.redis.zadd(self._index, {machine.call_id: started.now})
        self._attempts[machine.call_id] = self.app
        self.lanes.submit(machine.call_id, (machine, started))

    async def reconcile(self, *, adopt: str | None = None) -> None:
        """After a (re)connect: Asterisk says nothing of a leg lost while we were away (it
        restarted, or a leg hung up while this process was down), so each attempt this process
        drives hears of its answered legs that are gone, and ends (its operator freed, its
        request retried or closed). A ringing leg is left to its ring guard: it may yet be
        created by an originate under way.

        `adopt`: an app name whose events this process now holds (its own, after a restart; a
        dead pool instance's, taken over): the attempts under way (Redis' index of them) that
        were dialled into it on this node are driven here from now on, those a process before
        this one drove. Only the holder of an app name hears its legs, so no live process's
        attempt is taken."""
        known = set(self._attempts)
        started: dict[str, float] = {}  # the attempts under way anywhere, when each started
        if adopt is not None:
            await self._index_from_before()
            started = {(c.decode() if isinstance(c, bytes) else c): score for c, score in
                       await self.store.redis.zrange(self._index, 0, -1, withscores=True)}
        attempts = [(call, await self.store.load(call)) for call in sorted({*known, *started})]
        live = frozenset(c["id"] for c in await self.ari.call(ops.CHANNELS))  # read after
        for call, machine in attempts:
            if machine is None:  # ended; or just started, its first snapshot not written yet
                if not self.lanes.busy(call):
                    self._attempts.pop(call, None)
                    self._forget_request(call)
                if call not in known and started[call] < self.clock() - STALE:
                    await self.store.redis.zrem(self._index, call)  # its process died early
                continue
            if call not in known:
                if (machine.app, machine.node) != (adopt, self.node):
                    self.store.forget(call)  # another app's attempt: its holder drives it
                    continue
                if self.ownership is not None:  # the process before ours is fenced off
                    await self.ownership.claim(call, take=True)
                self._attempts[call] = adopt
                logger.info("callback attempt taken up", call_id=call, app=adopt,
                            request=machine.request_id)
                if self.on_adopted is not None:
                    await self.on_adopted(machine)  # its request's lock is ours now
            self.timers.arm(call, (machine.get_timer(),))  # a process before ours armed it
            for party in machine.up:
                leg = ids.part(call, "op" if party == k.OPERATOR else "cust")
                if leg not in live:
                    logger.warning("callback leg lost while Asterisk was away", call_id=call,
                                   party=party)
                    self.lanes.submit(call, {"type": "StasisEnd", "channel": {"id": leg}})

    async def _index_from_before(self) -> None:
        """An upgrade from a version without the index may leave attempts under way that are
        not in it: listed once per Redis (a marker), by the only SCAN attempts ever need."""
        redis, marker = self.store.redis, self.store.keys.callback_attempts_indexed()
        if await redis.exists(marker):
            return
        pattern = self.store.keys.snapshot("callback-call", "*")
        head, tail = pattern.split("*")
        found = {}
        async for key in redis.scan_iter(match=pattern, count=1000):
            key = key.decode() if isinstance(key, bytes) else key
            found[key[len(head):len(key) - len(tail)]] = self.clock()
        if found:  # a snapshot was written: never pruned as stale
            await redis.zadd(self._index, found, nx=True)
            logger.info("callback attempts from before the index listed", attempts=len(found))
        await redis.set(marker, "1")

    def let_go(self, app: str) -> None:
        """This process no longer holds `app`'s events (its pool lease lost, cut off from
        Redis, or handed back): the attempts dialled into it are for its next holder to take
        up; nothing of them is kept or timed here."""
        for call in [c for c, held in self._attempts.items() if held == app]:
            if self.ownership is not None:  # a write of ours still under way is refused
                self.ownership.drop(call)
            self.moved(call)

    def moved(self, call_id: str) -> None:
        """Another process drives the attempt now: nothing of it is kept or timed here."""
        self._attempts.pop(call_id, None)
        self._forget_request(call_id)
        self.timers.cancel(call_id)
        self.store.forget(call_id)
        self._playing.pop(call_id, None)

    def _forget_request(self, call_id: str) -> None:
        """The attempt is no longer driven here: nothing of its call events is kept."""
        if (request := self._requests.pop(call_id, None)) is not None:
            self._published.forget(request)

    # --- one attempt's events, in order --------------------------------------------------------
    async def _handle(self, call_id: str, item: object) -> None:
        try:
            await self._step(call_id, item)
        except LeaseLost:  # taken over while this process was paused: nothing was written
            logger.warning("callback attempt moved to another process; this one stops driving it",
                           call_id=call_id)
            self.moved(call_id)
        except STORAGE_ERRORS:
            self.store.rewind(call_id)  # tried again from where the item began
            if (request := self._requests.get(call_id)) is not None:
                self._published.cut_short(request)
            raise
        finally:
            self.store.settle(call_id)
            if (request := self._requests.get(call_id)) is not None:
                self._published.settle(request)
                if call_id not in self._attempts:  # over
                    del self._requests[call_id]

    async def _step(self, call_id: str, item: object) -> None:
        now = self.clock()
        if isinstance(item, tuple):
            started, event = item  # a copy: a try again (storage away) starts from the same
            machine = k.CallbackCallMachine.from_dict(started.to_dict())
            events: list[object] = [event]
        else:
            machine = await self.store.load(call_id)
            if machine is None:
                if self.ownership is not None and self.ownership.owns(call_id):
                    await self._ended(call_id)  # its end was cut short after its snapshot went
                return
            if machine.app and not self.holds(machine.app):  # paused past its app's lease
                logger.info("callback step left to the app's next holder", call_id=call_id,
                            app=machine.app, item=item if isinstance(item, str)
                            else item.get("type"))
                return
            events = [k.TimerFired(now)] if item == "tick" else self._translate(machine, item, now)
        self._requests[call_id] = machine.request_id
        self._published.begin(machine.request_id)
        with structlog.contextvars.bound_contextvars(call_id=call_id, rule="callback"):
            while events:
                event = events.pop(0)
                before = machine.state
                actions = machine.handle(event)
                if machine.state in k.END_STATES:
                    # the snapshot before this step stays till the end is carried out: should
                    # storage fail meanwhile, the step is tried again from it, the hang-ups and
                    # the dialer's part done again (both idempotent), never skipped
                    self.store.forget(call_id)
                    if self.ownership is not None and self.ownership.guards(call_id):
                        await self.ownership.confirm(call_id)  # still ours?
                else:
                    await self.store.save(machine)
                # a callback's trace is its request's: every attempt of it in one place
                self.events.transition(machine.request_id, before, machine.state,
                                       operator=machine.operator, at=getattr(event, "now", None))
                for action in actions:
                    follow = await self._do(machine, action)
                    if follow is not None:
                        events.append(follow)
            if machine.state in k.END_STATES:
                self.timers.cancel(call_id)
                await self.store.delete(call_id)
                await self._ended(call_id)
            else:
                self.timers.arm(call_id, (machine.get_timer(),))

    async def _ended(self, call_id: str) -> None:
        """The attempt is over and its snapshot gone: out of the index, its lease let go."""
        await self.store.redis.zrem(self._index, call_id)
        if self.ownership is not None:
            await self.ownership.release(call_id)
        self._attempts.pop(call_id, None)

    def _translate(self, machine: k.CallbackCallMachine, event: dict, now: float) -> list[object]:
        kind = event.get("type")
        channel = (event.get("channel") or {}).get("id", "")
        role = ROLE.get(ids.what_of(channel))
        if kind == "StasisStart" and role == k.OPERATOR:
            return [k.OperatorAnswered(now)]
        if kind == "StasisStart" and role == k.CUSTOMER:
            return [k.CustomerAnswered(now)]
        if kind == "ChannelDestroyed" and role == k.OPERATOR and k.OPERATOR not in machine.up:
            return [k.OperatorFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "ChannelDestroyed" and role == k.CUSTOMER and k.CUSTOMER not in machine.up:
            return [k.CustomerFailed(now, event.get("cause_txt") or "no answer")]
        if kind == "StasisEnd" and role in machine.up:
            return [k.HungUp(now, role)]
        if kind == "PlaybackFinished":
            played = ids.read_playback(event["playback"]["id"])
            if played is not None:
                return [k.PromptFinished(now, played.prompt, played.tag, played.party)]
        if kind == "ChannelDtmfReceived" and role:
            return [k.DigitPressed(now, role, event["digit"])]
        return []

    # --- actions -> ARI ------------------------------------------------------------------------
    async def _do(self, machine: k.CallbackCallMachine, action: object) -> object | None:
        call = machine.call_id
        leg = {k.OPERATOR: ids.part(call, "op"), k.CUSTOMER: ids.part(call, "cust")}
        with tolerated(type(action).__name__):
            match action:
                case k.DialOperator():
                    try:
                        await self.ari.originate(
                            machine.operator, app=self.app, app_args="callback-operator",
                            channel_id=leg[k.OPERATOR], timeout=self.operator_ring_timeout,
                            caller_id=f'"Callback" <{machine.number}>',
                            variables=desk_phone_variables(machine.operator))
                    except AriError as exc:
                        return k.OperatorFailed(self.clock(), exc.message)
                case k.DialCustomer():
                    endpoint = self.dial_template.format(number=machine.number.lstrip("+"))
                    try:
                        await self.ari.originate(endpoint, app=self.app,
                                                 app_args="callback-customer",
                                                 channel_id=leg[k.CUSTOMER],
                                                 caller_id=self.company_id,
                                                 timeout=self.ring_timeout)
                    except AriError as exc:
                        return k.CustomerFailed(self.clock(), exc.message)
                case k.Play(party=party, prompt=prompt, media=media):
                    playback = ids.playback(call, uuid.uuid4().hex[:6], prompt, party)
                    self._playing.setdefault(call, {})[party] = playback
                    await self.ari.play(leg[party], list(media), playback, lang=machine.language)
                case k.Connect():
                    # the customer chose (1) during the introduction: it stops there, as any
                    # menu does. Asterisk would add a channel to the bridge only once its
                    # playback ended, the ARI request timing out meanwhile.
                    for playback in self._playing.pop(call, {}).values():
                        await unless_gone(self.ari.stop_playback(playback))
                    await self.ari.create_bridge(ids.part(call, "talk"), "mixing", name=f"callback {call}")
                    for channel in leg.values():
                        await self.ari.call(ops.ADD_TO_BRIDGE, bridgeId=ids.part(call, "talk"),
                                            channel=channel, absorbDTMF=True)
                case k.StopPrompt(party=party):
                    playing = self._playing.get(call, {}).pop(party, None)
                    if playing:
                        await unless_gone(self.ari.stop_playback(playing))
                case k.WaitingMusic(party=party):
                    await self.ari.start_moh(leg[party])
                case k.StopWaitingMusic(party=party):
                    await unless_gone(self.ari.call(ops.STOP_MOH, channelId=leg[party]))
                case k.HangUp(party=party):
                    await unless_gone(self.ari.hangup(leg[party]))
                case k.Note(event=event, data=data):
                    self.events.note(machine.request_id, event, {"attempt": call, **dict(data)},
                                     operator=machine.operator)
                case k.Finish():
                    self.timers.cancel(call)
                    self._playing.pop(call, None)
                    await unless_gone(self.ari.destroy_bridge(ids.part(call, "talk")))
                    await self.on_finished(machine, action)
                case _:
                    raise TypeError(f"no ARI mapping for {action!r}")
        return None

    @property
    def attempts(self) -> dict[str, str]:
        """The attempts this process drives, and the app each was dialled into."""
        return dict(self._attempts)

    @property
    def pending_timers(self) -> int:
        return len(self.timers)

    async def close(self) -> None:
        self.timers.cancel_all()
        await self.lanes.close()

