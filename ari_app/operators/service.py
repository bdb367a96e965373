"""Who can take a call now. An operator is free when their phone is registered (ARI endpoint
online), no channel is up on it, no call of ours has reserved them, and, for the policy's
operators (the pool), when they are logged in, not paused and past their wrap-up. The
reservation lives in Redis (SET NX with an expiry), so two app instances never hand the same
operator two calls; the longest idle free operator is offered the call first.

People who are not in the pool (supervisors, transfer targets) are always logged in, never in
wrap-up: only their phone and the reservation say whether they are free.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog
from redis.asyncio import Redis

from ari_app.ari import AriClient, AriError, AriNotFound
from ari_app.calls.events import RuleEvents
from ari_app.operators.machine import CallEnded, Missed, OperatorMachine, Pause, next_in_line
from ari_app.operators.store import OperatorStore
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.reads import get_each

__all__ = ["NoSuchOperator", "OperatorPool", "OperatorService", "PoolSettings",
           "UnknownPauseReason", "desk_phone_variables"]

logger = structlog.get_logger()

# compare-and-delete in one step: never free an operator another call has reserved since
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# reserve a free operator, or confirm one this call already holds: a call's step tried again
# after storage failed part way (its reservation may have landed) gets the same operator back
# instead of leaving them reserved for hours by a call that moved on to another
_RESERVE = """
local held = redis.call('get', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1], 'ex', ARGV[2])
return 1
"""
# how a reservation ends for the operator (ReleaseOperator.after)
AFTER_CALL, AFTER_MISSED, UNUSED = "call", "missed", "unused"


class NoSuchOperator(LookupError):
    """Not an operator of the policy's [operators] endpoints."""


class UnknownPauseReason(ValueError):
    """A pause reason the policy does not list."""


def desk_phone_variables(endpoint: str) -> dict[str, str] | None:
    """Channel variables for a leg we dial to a person's phone: a SIP phone's transfer button
    (REFER) comes to the app as a ChannelTransfer event instead of being done by Asterisk, so
    the transfer etiquette applies to it too (Asterisk 22.3 and later)."""
    if endpoint.split("/", 1)[0].upper() == "PJSIP":
        return {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
    return None


@dataclass(frozen=True)
class PoolSettings:
    members: tuple[str, ...] = ()          # the policy's operators
    wrap_up: float = 0.0                   # seconds after a call before the next is offered
    pause_reasons: tuple[str, ...] = ()


class OperatorPool:
    """The operators' states in Redis, each change published once as an `operator:*` event
    (call_id "", the operator in `operator`: no call owns it)."""

    def __init__(self, store: OperatorStore, settings: PoolSettings, events: RuleEvents,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.settings, self.events, self.clock = store, settings, events, clock
        self.members = frozenset(settings.members)

    async def machines(self, endpoints: Sequence[str]) -> list[OperatorMachine]:
        """Each endpoint's machine; someone outside the pool is always logged in."""
        ours = [e for e in endpoints if e in self.members]
        stored = dict(zip(ours, await self.store.load_many(ours)))
        return [stored.get(e) or OperatorMachine.fresh(e, login_required=False)
                for e in endpoints]

    async def in_line(self, endpoints: Sequence[str]) -> list[str]:
        """Those who may be offered a call now, longest idle first."""
        return next_in_line(await self.machines(endpoints), self.clock(),
                            self.settings.wrap_up)

    async def change(self, endpoint: str, event: object) -> OperatorMachine | None:
        """Apply `event` to a pool member (None for anyone else) and publish what changed."""
        if endpoint not in self.members:
            return None
        old, machine, notes = await self.store.change(endpoint, event)
        at = getattr(event, "now", None)
        for note in notes:
            self.events.note("", note.event, note.data, operator=endpoint, at=at)
        self.events.transition("", old, machine.state, operator=endpoint, at=at)
        return machine


# told when an operator may be offered a call: (endpoint, after how many seconds)
FreedListener = Callable[[str, float], None]


class OperatorService:
    def __init__(self, ari: AriClient, redis: Redis, endpoints: Sequence[str], *,
                 keys: Keyspace, reservation_ttl: int = 4 * 3600,
                 pool: OperatorPool | None = None,
                 listeners: list[FreedListener] | None = None) -> None:
        self.ari, self.redis = ari, redis
        self.endpoints = list(endpoints)
        self.keys, self.ttl, self.pool = keys, reservation_ttl, pool
        self._reserve = redis.register_script(_RESERVE)  # EVALSHA: its text sent once
        # who waits for an operator to become free (the queues): shared by every view
        self.listeners: list[FreedListener] = listeners if listeners is not None else []

    def for_endpoints(self, endpoints: Sequence[str]) -> OperatorService:
        """The same reservations and pool, for other people (a department's, the
        supervisors')."""
        return OperatorService(self.ari, self.redis, endpoints, keys=self.keys,
                               reservation_ttl=self.ttl, pool=self.pool,
                               listeners=self.listeners)

    def _freed(self, endpoint: str, after: float = 0.0) -> None:
        for listener in self.listeners:
            try:
                listener(endpoint, after)
            except Exception:
                logger.exception("operator listener failed", endpoint=endpoint)

    def _key(self, endpoint: str) -> str:
        return self.keys.operator(endpoint)

    async def is_available(self, endpoint: str) -> bool:
        tech, _, resource = endpoint.partition("/")
        if tech == "Local":
            # a dialplan destination (a phone elsewhere, a group): Asterisk keeps no state for
            # it, so only our own reservation says whether it is busy
            return True
        try:
            info = await self.ari.endpoint(tech, resource)
        except AriNotFound:
            logger.warning("operator endpoint unknown to Asterisk", endpoint=endpoint)
            return False
        return info.get("state") == "online" and not info.get("channel_ids")

    async def reserve_free(self, call_id: str, exclude: Sequence[str] = ()) -> str | None:
        """Reserve and return the longest idle free operator, or None when nobody is free."""
        candidates = [e for e in self.endpoints if e not in exclude]
        if self.pool is not None:
            candidates = await self.pool.in_line(candidates)
        for endpoint in candidates:
            if not await self.is_available(endpoint):
                continue
            if await self._reserve(keys=[self._key(endpoint)], args=[call_id, self.ttl]):
                return endpoint
        return None

    async def release(self, endpoint: str, call_id: str, after: str = UNUSED) -> None:
        """Give the operator back, only if this call still holds them. `after` a call they
        talked in, their wrap-up starts; after a call they let ring out, they are paused as
        missed (only if this call still held them: a late release changes nothing)."""
        pool = self.pool if after != UNUSED else None
        now = pool.clock() if pool is not None else 0.0
        if pool is not None and after == AFTER_CALL:
            # the wrap-up on record before the reservation goes: never a moment in which
            # they show free without it (a call offered then would skip their wrap-up)
            await pool.change(endpoint, CallEnded(now, call_id))
        released = await self.redis.eval(_RELEASE, 1, self._key(endpoint), call_id)
        if pool is None:
            if released:
                self._freed(endpoint)
            return
        if after == AFTER_CALL:
            self._freed(endpoint, pool.settings.wrap_up)
        elif after == AFTER_MISSED and released:
            await pool.change(endpoint, Missed(now, call_id))

    # --- the operators' own requests (desk phone, REST) ------------------------------------
    def member(self, name: str) -> str:
        """The policy's operator named `name`: the endpoint ("PJSIP/operator1") or, when only
        one operator has it, its resource ("operator1")."""
        if self.pool is None or not self.pool.members:
            raise NoSuchOperator(f"no operator {name!r}: the policy lists none")
        if name in self.pool.members:
            return name
        found = [e for e in self.endpoints if e.partition("/")[2] == name]
        if len(found) == 1:
            return found[0]
        raise NoSuchOperator(f"no operator {name!r}; the policy lists "
                             f"{', '.join(self.endpoints)}")

    async def change(self, name: str, event: object) -> dict:
        """Log in, log out, pause or unpause a pool operator; their listing entry after it.
        NoSuchOperator, UnknownPauseReason, or the machine's InvalidTransition."""
        endpoint = self.member(name)
        assert self.pool is not None  # member() found them in it
        reasons = self.pool.settings.pause_reasons
        if isinstance(event, Pause) and event.reason is not None and event.reason not in reasons:
            raise UnknownPauseReason(f"unknown pause reason {event.reason!r}; the policy knows "
                                     f"{list(reasons)}")
        await self.pool.change(endpoint, event)
        self._freed(endpoint)  # logged in or back from a pause: calls may be waiting
        return (await self.listing([endpoint]))[0]

    async def _states(self, endpoints: Sequence[str] | None
                      ) -> tuple[list[str], list[OperatorMachine], list]:
        """The operators named (all by default), their machines and their reservations."""
        endpoints = list(self.endpoints if endpoints is None else endpoints)
        machines = (await self.pool.machines(endpoints) if self.pool is not None
                    else [OperatorMachine.fresh(e, False) for e in endpoints])
        reserved = await get_each(self.redis, [self._key(e) for e in endpoints])
        return endpoints, machines, reserved

    def _now_and_wrap_up(self) -> tuple[float, float]:
        if self.pool is None:
            return time.time(), 0.0
        return self.pool.clock(), self.pool.settings.wrap_up

    async def counts(self, endpoints: Sequence[str] | None = None) -> tuple[int, int]:
        """(logged in, free now) from our own state alone: no question to Asterisk, so a
        caller entering a queue costs two Redis round trips whatever the number of operators
        (a phone busy with a call we did not put through counts as free here)."""
        endpoints, machines, reserved = await self._states(endpoints)
        now, wrap_up = self._now_and_wrap_up()
        logged_in = sum(1 for m in machines if m.state.value == "logged_in")
        free = sum(1 for m, held in zip(machines, reserved)
                   if held is None and m.offered(now, wrap_up))
        return logged_in, free

    async def listing(self, endpoints: Sequence[str] | None = None) -> list[dict]:
        """Every operator (or those named): their state, whether the phone is registered and
        in a call (None: unknown), and whether they would be offered a call now."""
        endpoints, machines, reserved = await self._states(endpoints)
        phones = await asyncio.gather(*(self._phone(e) for e in endpoints))
        now, wrap_up = self._now_and_wrap_up()
        out = []
        for machine, held, (registered, busy) in zip(machines, reserved, phones):
            in_call = None if busy is None else busy or held is not None
            out.append({**machine.to_public_dict(wrap_up, now), "registered": registered,
                        "in_call": in_call,
                        "free": bool(machine.offered(now, wrap_up) and registered is not False
                                     and in_call is False)})
        return out

    async def _phone(self, endpoint: str) -> tuple[bool | None, bool | None]:
        """(registered, a channel up on it); None where Asterisk cannot say."""
        tech, _, resource = endpoint.partition("/")
        if tech == "Local":
            return None, False  # a dialplan destination: only our reservation tells
        try:
            info = await self.ari.endpoint(tech, resource)
        except AriNotFound:
            return False, False
        except AriError as exc:
            logger.warning("operator phone state unknown", endpoint=endpoint, error=exc.message)
            return None, None
        return info.get("state") == "online", bool(info.get("channel_ids"))
