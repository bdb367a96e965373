"""Callback requests: "never say call again later; take the number and call back".

Every source (the hold fallback, a failed transfer, a supervisor's promise, the web page) comes
here. A request is in Redis (append-only persistence) before anybody is told it was taken; a
second request for a number that already has an open one is merged into it (its history
kept), so nobody is dialled twice; each request carries the window it was promised, which the
dialer (callback/dialer.py) is held to.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from zoneinfo import ZoneInfo

import orjson
import structlog
from redis.asyncio import Redis

from ari_app.callback.intake import Counted, RateLimits
from ari_app.callback.numbers import NumberRules, RefusedNumber, check_number, number_facts
from ari_app.callback.window import customer_zone, promise_window
from ari_app.customers.service import Customers
from ari_app.policy import Policy
from ari_app.storage.batch import Batched
from ari_app.storage.keyspace import CALLBACK, Keyspace
from ari_app.storage.records import DurableRecords, is_record_id
from ari_app.zones import zones_of_country

__all__ = ["Accepted", "CallbackRequest", "CallbackRequests", "NoCallbackWindow", "OPEN",
           "RefusedNumber", "intake_services"]

OPEN = ("pending", "dialing")
logger = structlog.get_logger()

# A request, in one script (atomic, so two requests for one number arriving together still
# make one callback): the form's rate counters (all counted; the first past its limit refuses
# it, nothing stored), then a merge into the number's open request, or the request created as
# the number's open one. Replies {what, merged record or '', backlog}. Every key shares the
# `{callback}` hash tag (storage/keyspace.py), one Cluster slot; the open request's record key
# is built here from its id (ARGV[5] .. id), in that slot too.
_ACCEPT = """
local counters = tonumber(ARGV[6])
local limited = 0
for i = 1, counters do
  local count = redis.call('incr', KEYS[4 + i])
  if count == 1 then redis.call('expire', KEYS[4 + i], ARGV[6 + i]) end  -- as intake.py's
  if limited == 0 and count > tonumber(ARGV[6 + counters + i]) then limited = i end
end
if limited > 0 then return {'limited', tostring(limited), redis.call('zcard', KEYS[3])} end
local open = redis.call('get', KEYS[1])
if open and #open <= 64 and string.match(open, '^[%w_-]+$') then
  local raw = redis.call('get', ARGV[5] .. open)
  if raw then
    local rec = cjson.decode(raw)
    if rec.status == 'pending' or rec.status == 'dialing' then
      table.insert(rec.history, cjson.decode(ARGV[4]))
      local merged = cjson.encode(rec)
      redis.call('set', ARGV[5] .. open, merged)
      redis.call('set', KEYS[4], open)
      return {'merged', merged, redis.call('zcard', KEYS[3])}
    end
  end
end
redis.call('set', KEYS[2], ARGV[1])
redis.call('set', KEYS[1], ARGV[3])
redis.call('zadd', KEYS[3], ARGV[2], ARGV[3])
return {'created', '', redis.call('zcard', KEYS[3])}
"""
BACKLOG_FRESH = 1.0  # seconds: the backlog a window is promised from, as the last reply said


@dataclass
class CallbackRequest:
    number: str                 # E.164
    source: str                 # hold-fallback | transfer-fallback | supervisor | web
    call_id: str | None = None
    name: str = ""
    reason: str | None = None
    operator: str | None = None
    own_number: bool = True     # the number the caller called from, or one they typed
    language: str = "en"
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    created_at: float = field(default_factory=time.time)
    status: str = "pending"     # pending | dialing | done | failed
    for_whom: str | None = None         # who should call: a directory entry, "supervisor"
    latest_at: float | None = None      # promised to the customer: called by then
    earliest_at: float | None = None    # ... and not before
    time_zone: str | None = None        # the customer's, for quiet hours
    topic: str = ""
    attempts: int = 0
    next_attempt_at: float | None = None
    outcome: str | None = None          # why it is done or failed
    history: list[dict] = field(default_factory=list)

    def to_public_dict(self) -> dict:
        return {"id": self.id, "status": self.status, "number": self.number,
                "window": {"earliest": self.earliest_at, "latest": self.latest_at,
                           "time_zone": self.time_zone},
                "attempts": self.attempts, "outcome": self.outcome, "created_at": self.created_at}


class NoCallbackWindow(Exception):
    pass


@dataclass(frozen=True)
class Accepted:
    request: CallbackRequest
    merged: bool  # an open request for this number existed: this one joined it
    # This submission's own id, the secret its submitter may follow it with (for_submission):
    # the request's id for the first one, a fresh one for each one merged into it.
    submission_id: str = ""


class CallbackRequests(DurableRecords[CallbackRequest]):
    def __init__(self, redis: Redis, policy: Policy | None = None, *, keys: Keyspace,
                 clock: Callable[[], float] = time.time, customers: Customers | None = None,
                 batch: Batched | None = None) -> None:
        super().__init__(redis, CALLBACK, CallbackRequest, keys=keys)
        self.pending_key = self.index_key  # score: when the request is due
        self.policy, self.clock, self.customers = policy, clock, customers
        # no policy, no country set up: nothing may be called back
        self.rules = NumberRules.from_policy(policy.callback) if policy else NumberRules()
        self.batch = batch or Batched(redis)  # a request's commands ride with the others'
        self._accept = self.batch.script(_ACCEPT)
        self._backlog: tuple[int, float] | None = None  # (requests pending, when read)

    def _open_key(self, number: str) -> str:
        return self.keys.callback_open(number)

    async def accept(self, request: CallbackRequest, preferred: float | None = None,
                     require_window: bool = False, counted: Counted | None = None) -> Accepted:
        """Store the request (or merge it into the number's open one) with its promised window.
        `require_window`: refuse (NoCallbackWindow) rather than store a request nobody can be
        promised a time for (the web form); a caller on the phone is never refused a window.
        Every source's number passes the one check first (callback/numbers.py): RefusedNumber,
        and nothing stored, for one the dialer must never call. `counted`: the form's rate
        counters, counted by the script that stores it (RateLimited, and nothing stored)."""
        try:
            request.number = check_number(request.number, self.rules)
        except RefusedNumber as refused:
            logger.warning("callback number refused", source=request.source,
                           call_id=request.call_id, why=refused.message)
            raise
        if request.earliest_at is None and self.policy is not None:
            self._promise(request, preferred, await self._pending_count())
            if request.earliest_at is None and require_window:
                if counted is not None:  # refused all the same: it counts (RateLimited first)
                    counted.check(await self.batch.send(counted.command(self.batch)))
                raise NoCallbackWindow("no time to call back in the next 8 days: the business "
                                       "hours and the customer's quiet hours never overlap")
        request.history.append({"t": round(self.clock(), 3), "event": "requested",
                                "source": request.source, "call_id": request.call_id,
                                "topic": request.topic or None})
        due = request.earliest_at or request.created_at
        request.next_attempt_at = due
        accepted = await self._create_or_merge(request, due, counted)
        if self.customers is not None:  # the operator sees it on the customer's card
            await self.customers.note(request.number, "callback requested",
                                      name=request.name or None, request=accepted.request.id,
                                      source=request.source, topic=request.topic or None,
                                      call_id=request.call_id, merged=accepted.merged)
        return accepted

    async def _pending_count(self) -> int:
        """The backlog ahead of a new request, for its window: as the last request's reply
        said (under load, a few milliseconds old), read again when that is over a second."""
        if self._backlog is None or time.monotonic() - self._backlog[1] > BACKLOG_FRESH:
            count, = await self.batch.send(("ZCARD", self.index_key))
            self._backlog = (int(count), time.monotonic())
        return self._backlog[0]

    async def _create_or_merge(self, request: CallbackRequest, due: float,
                               counted: Counted | None) -> Accepted:
        keys, windows, limits = counted.parts() if counted is not None else ((), (), ())
        reply, = await self.batch.send(self._accept.call(
            keys=[self._open_key(request.number), self._key(request.id), self.index_key,
                  self._submission_key(request.id), *keys],
            # vars, not asdict: every field is JSON already, and asdict deep-copies them all
            args=[orjson.dumps(vars(request)), due, request.id, orjson.dumps(request.history[-1]),
                  self._key(""), len(keys), *windows, *limits]))
        what, merged, backlog = reply
        self._backlog = (int(backlog), time.monotonic())
        if what == b"limited" and counted is not None:
            counted.refuse(int(merged) - 1)
        if what == b"merged":
            return Accepted(CallbackRequest(**orjson.loads(merged)), True, request.id)
        return Accepted(request, False, request.id)

    async def create(self, request: CallbackRequest) -> CallbackRequest:
        return (await self.accept(request)).request

    def _submission_key(self, submission_id: str) -> str:
        return self.keys.callback_submission(submission_id)

    async def for_submission(self, submission_id: str) -> CallbackRequest | None:
        """What the submitter of `submission_id` may see: the request it made or joined, under
        their own id (a copy for showing, never saved: it does not leak the request's id)."""
        request = await self.get(submission_id)
        if request is not None or not is_record_id(submission_id):
            return request
        joined = await self.redis.get(self._submission_key(submission_id))
        request = await self.get(joined.decode() if isinstance(joined, bytes) else joined or "")
        return replace(request, id=submission_id) if request is not None else None

    def _promise(self, request: CallbackRequest, preferred: float | None, backlog: int) -> None:
        policy = self.policy
        assert policy is not None
        zone = request_zone(request, policy)
        request.time_zone = zone.key
        window = promise_window(
            self.clock(), zone=zone, business=policy.business_hours, quiet=policy.quiet_hours,
            backlog=backlog, operators=len(policy.operators.endpoints) or 1,
            minutes_per_call=policy.callback.minutes_per_call,
            width_minutes=policy.callback.window_minutes, preferred=preferred)
        if window is None:
            return
        earliest, latest = window.as_epochs()
        request.earliest_at = earliest
        request.latest_at = max(latest, request.latest_at or 0) if request.latest_at else latest

    async def pending(self) -> list[CallbackRequest]:
        return await self.all()

    async def save(self, request: CallbackRequest) -> None:
        """Write back a request the dialer changed; due again at `next_attempt_at` while open."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(self._key(request.id), orjson.dumps(asdict(request)))
            if request.status in OPEN and request.next_attempt_at is not None:
                pipe.zadd(self.index_key, {request.id: request.next_attempt_at})
            else:
                pipe.zrem(self.index_key, request.id)
                pipe.delete(self._open_key(request.number))
            await pipe.execute()

    async def due(self, now: float, limit: int) -> list[str]:
        ids = await self.redis.zrangebyscore(self.index_key, "-inf", now, start=0, num=limit)
        return [i.decode() if isinstance(i, bytes) else i for i in ids]


def intake_services(redis: Redis, policy: Policy, keys: Keyspace
                    ) -> tuple[Customers, CallbackRequests, RateLimits]:
    """The card, the requests and the limits a form goes through, on one Batched: the app's
    routes and `ari-etiquette intake` wire them alike."""
    batch = Batched(redis)
    customers = Customers(redis, keys=keys, batch=batch)
    return (customers, CallbackRequests(redis, policy, keys=keys, customers=customers, batch=batch),
            RateLimits(redis, policy.callback, keys=keys, batch=batch))


def request_zone(request: CallbackRequest, policy: Policy) -> ZoneInfo:
    """The customer's zone: given, else their number's (inside the number's own country: the
    metadata gives the whole +1 area for +1 876 Jamaica), else the company's."""
    facts = number_facts(request.number)  # kept from the number's check: no lookup again
    candidates = facts.zones if facts is not None else ()
    own = zones_of_country(facts.country) if facts is not None and facts.country else ()
    if len(candidates) > 1 and own:
        candidates = tuple(z for z in candidates if z in own) or tuple(own)
    return customer_zone(candidates, request.time_zone, policy.business_hours.zone,
                         business=policy.business_hours, quiet=policy.quiet_hours)
