"""Who drives a call when several app processes share one Asterisk: a lease with a fencing token.

Every instance subscribes to the same Stasis app (StasisBroadcast): a new call is offered to
all of them, and the first `claim` wins. The lease also says who drives a call after a
restart or a WebSocket drop: an instance's `reconcile` takes back the calls it owns, takes
over those whose owner's lease expired (that owner is dead or cut off), and must never take
a live instance's call or destroy its bridges.

A lease alone is not enough: an instance paused or cut off past its lease still thinks it
owns the call and may write a stale snapshot over the new owner's. So every claim draws a
fencing token from a per-call counter, the lease holds `<instance_id>:<token>`, and every
write of the call's state is a compare-token-then-write script (`fenced_set`,
`fenced_delete`): a stale owner's write finds another token and raises `LeaseLost`,
writing nothing.

Keys (Redis Cluster): a script's keys must all live in one slot, so the lease of call X is
`etq:{X}:owner`, its fence counter `etq:{X}:fence` (storage/keyspace.py), and every key
written through `fenced_set`/`fenced_delete` must carry the same hash tag `{X}` (e.g.
`etq:{X}:snapshot:hold`); this is checked before any script runs (ValueError otherwise).
Keys are passed in KEYS only, never built inside Lua.

An expired lease that nobody else claimed is still ours: the fence counter at our token
proves no claim happened since ours (any claim INCRs it). Renewals and fenced writes take
such a lease back atomically, so a Redis restart or outage longer than the ttl (with
persistence) does not orphan calls; once anyone else has claimed, it is lost for good.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.crc import key_slot

from ari_app.calls.errors import CallElsewhere
from ari_app.storage import storage_away
from ari_app.storage.keyspace import Keyspace

__all__ = ["CallOwnership", "LeaseLost"]

logger = structlog.get_logger()


class LeaseLost(CallElsewhere):
    """Our lease of the call is gone (another instance claimed it, or it was released):
    nothing was written, and this instance must stop driving the call."""

    def __init__(self, call_id: str) -> None:
        Exception.__init__(self, f"lease of call {call_id} lost: another instance drives it now")
        self.call_id, self.owner = call_id, None


# KEYS[1] lease, KEYS[2] fence counter; ARGV[1] instance id, ARGV[2] lease ttl ms,
# ARGV[3] fence counter ttl ms. The lease is free when absent or held by us (any token).
CLAIM = """
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(.*):%d+$') ~= ARGV[1] then
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

# The same, whoever holds the lease: for the holder of the shard the call's caller is in
# (pool/), which the lease of that shard makes the only instance allowed to drive it. The new
# token fences whoever held the call before (a dead or paused instance); a lease already
# ours keeps its token (writes in flight stay valid).
TAKE = """
local v = redis.call('GET', KEYS[1])
if v then
  local owner, held = string.match(v, '^(.*):(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(held)
  end
end
local token = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""

# The check every fenced script starts with. KEYS[1] lease, KEYS[2] fence counter;
# ARGV[1] our lease value `<instance>:<token>`, ARGV[2] our token, ARGV[3] lease ttl ms.
# Ours when the lease holds our value, or when it expired and the counter is still at our
# token (nobody claimed since): then the lease is set again.
_HELD = """
local function held()
  local v = redis.call('GET', KEYS[1])
  if v == ARGV[1] then return true end
  if not v and redis.call('GET', KEYS[2]) == ARGV[2] then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
    return true
  end
  return false
end
"""

RENEW = _HELD + """
if not held() then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[3] the key to set; ARGV[4] the value, ARGV[5] its ttl ms or '' for none.
FENCED_SET = _HELD + """
if not held() then return 0 end
if ARGV[5] ~= '' then
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
else
  redis.call('SET', KEYS[3], ARGV[4])
end
return 1
"""

# KEYS[3..] the keys to delete: -1 when the lease is lost, else how many were deleted.
FENCED_DELETE = _HELD + """
if not held() then return -1 end
if #KEYS < 3 then return 0 end
return redis.call('DEL', unpack(KEYS, 3))
"""

# Let go of the lease but keep the fence counter: the key is an orphan for anyone to take at
# once (pool/: a shard with callers in it, on shutdown).
ABANDON = _HELD + """
if not held() then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""

# Compare-and-delete: our lease and the call's fence counter, nothing left of the call.
RELEASE = _HELD + """
if not held() then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _text(raw: bytes | str | None) -> str | None:
    return raw.decode() if isinstance(raw, bytes) else raw


class CallOwnership:
    """The leases this instance holds, renewed in the background (`run`, under the Watchdog).

    `instance_id` must be unique among the running instances (e.g. host:pid). A stable id
    (same after a restart) lets the restarted process take its calls back at once instead of
    after the ttl; each claim draws a new token anyway, so the previous process is fenced.
    """

    def __init__(self, redis: Redis, instance_id: str, ttl: float = 15.0, *,
                 keys: Keyspace,
                 fence_ttl: float = 86400.0,
                 on_lost: Callable[[str], None] | None = None) -> None:
        if not instance_id:
            raise ValueError("instance_id must not be empty")
        if ttl <= 0:
            raise ValueError("ttl must be positive")
        self.redis, self.instance_id, self.ttl = redis, instance_id, ttl
        self.key_of, self.fence_of = keys.lease, keys.fencing_counter
        # the counter outlives the lease (tokens only grow while anyone may still write) but
        # not forever: a call nobody ever released leaves nothing behind for good
        self.fence_ttl = max(fence_ttl, ttl)
        self.on_lost = on_lost
        self._tokens: dict[str, int] = {}
        self._lost_calls: dict[str, None] = {}  # taken from us: their writes stay refused
        self._claim = redis.register_script(CLAIM)
        self._take = redis.register_script(TAKE)
        self._renew = redis.register_script(RENEW)
        self._set = redis.register_script(FENCED_SET)
        self._delete = redis.register_script(FENCED_DELETE)
        self._release = redis.register_script(RELEASE)
        self._abandon = redis.register_script(ABANDON)
        self.renewals = 0          # renew_all rounds that reached Redis (for /healthz)
        self.failures = 0          # rounds that failed (Redis away)
        self.last_renewed: float | None = None  # time.time() of the last good round

    # --- keys -------------------------------------------------------------------------------
    def _keys(self, call_id: str, *more: str) -> list[str]:
        """The lease, the fence counter and `more`, checked to share one Cluster slot."""
        keys = [self.key_of(call_id), self.fence_of(call_id), *more]
        slot = key_slot(keys[0].encode())
        for key in keys[1:]:
            if key_slot(key.encode()) != slot:
                raise ValueError(f"key {key!r} is not in the slot of {keys[0]!r}: keys fenced "
                                 f"by call {call_id}'s lease must carry its hash tag "
                                 f"{{{call_id}}}")
        return keys

    def _args(self, call_id: str) -> tuple[int, list[str | int]]:
        """Our token, and the ARGV every fenced script starts with; LeaseLost if we hold none."""
        token = self._tokens.get(call_id)
        if token is None:
            raise LeaseLost(call_id)
        return token, self._argv(token)

    def _argv(self, token: int) -> list[str | int]:
        return [f"{self.instance_id}:{token}", str(token), _ms(self.ttl)]

    def _lost(self, call_id: str, token: int) -> bool:
        """Drop the call, unless it was claimed again (a new token) meanwhile."""
        if self._tokens.get(call_id) != token:
            return False
        del self._tokens[call_id]
        self._lost_calls[call_id] = None
        while len(self._lost_calls) > 10000:  # the oldest are long over
            del self._lost_calls[next(iter(self._lost_calls))]
        logger.warning("call lost to another instance", call_id=call_id, token=token,
                       instance=self.instance_id)
        if self.on_lost is not None:
            try:
                self.on_lost(call_id)
            except Exception:
                logger.exception("call ownership on_lost callback failed", call_id=call_id)
        return True

    # --- the lease --------------------------------------------------------------------------
    async def claim(self, call_id: str, *, take: bool = False) -> int | None:
        """Take the lease of a new call, of one whose owner's lease expired, or of one we
        already own (a new token: writes in flight under the old one fail): the token, or
        None when a live instance holds it. Claim in the call's lane, where its writes run.
        `take`: whoever holds it (only for the holder of the caller's shard, pool/)."""
        script = self._take if take else self._claim
        token = await script(keys=self._keys(call_id),
                             args=[self.instance_id, _ms(self.ttl), _ms(self.fence_ttl)])
        if token is None:
            if call_id in self._tokens:
                self._lost(call_id, self._tokens[call_id])
            return None
        self._tokens[call_id] = int(token)
        self._lost_calls.pop(call_id, None)
        return int(token)

    async def renew_all(self) -> set[str]:
        """Extend every lease we hold, in one round trip; the calls another instance took are
        dropped (and returned): this instance must stop driving them."""
        held = dict(self._tokens)
        if not held:
            self._renewed()
            return set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for call_id, token in held.items():
                await self._renew(keys=self._keys(call_id), args=self._argv(token),
                                  client=pipe)
            results = await pipe.execute()
        self._renewed()
        lost = set()
        for (call_id, token), renewed in zip(held.items(), results):
            if not renewed and self._lost(call_id, token):
                lost.add(call_id)
        return lost

    def _renewed(self) -> None:
        self.renewals += 1
        self.last_renewed = time.time()

    async def run(self, interval: float | None = None) -> None:
        """Renew every ttl/3 (two missed rounds still keep the leases), for good: Redis away is
        a warning and a retry at the next tick, never the end of the loop."""
        interval = self.ttl / 3 if interval is None else interval
        while True:
            started = time.monotonic()
            try:
                # a round slower than the ttl renews nothing: give up and try again
                await asyncio.wait_for(self.renew_all(), timeout=max(self.ttl, interval))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                if storage_away(exc) or isinstance(exc, asyncio.TimeoutError):
                    logger.warning("call lease renewal failed; retrying next tick",
                                   error=f"{type(exc).__name__}: {exc}", calls=len(self._tokens),
                                   instance=self.instance_id)
                else:
                    logger.exception("call lease renewal failed; retrying next tick",
                                     calls=len(self._tokens), instance=self.instance_id)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def release(self, call_id: str) -> bool:
        """The call is over: delete our lease and its fence counter (nothing of it is left in
        Redis), only if the lease is still ours. False when it was not (ours) any more."""
        token = self._tokens.get(call_id)
        if token is None:
            return False
        released = await self._release(keys=self._keys(call_id), args=self._argv(token))
        if self._tokens.get(call_id) == token:
            del self._tokens[call_id]
        return bool(released)

    async def abandon(self, call_id: str) -> bool:
        """Let go of the lease, leaving its fence counter: another instance may take it now
        (and knows it was held, not finished). False when it was not ours any more."""
        token = self._tokens.pop(call_id, None)
        if token is None:
            return False
        return bool(await self._abandon(keys=self._keys(call_id), args=self._argv(token)))

    def drop(self, call_id: str) -> None:
        """Stop driving the call without a word to Redis (this process no longer hears it, or
        cannot reach Redis): the lease runs out or its next holder takes it, and a write of
        ours still under way is refused (LeaseLost), never made plainly."""
        if self._tokens.pop(call_id, None) is not None:
            self._lost_calls[call_id] = None

    # --- what we know -----------------------------------------------------------------------
    def owns(self, call_id: str) -> bool:
        """We hold the call's lease as far as this process knows (no Redis round trip);
        `fenced_set` is what actually guards a write."""
        return call_id in self._tokens

    def guards(self, call_id: str) -> bool:
        """Writes of the call go through the fenced scripts: we hold its lease, or held it
        and lost it (then they raise LeaseLost, never fall back to a plain write)."""
        return call_id in self._tokens or call_id in self._lost_calls

    def token(self, call_id: str) -> int | None:
        return self._tokens.get(call_id)

    def held(self) -> frozenset[str]:
        return frozenset(self._tokens)

    async def owner_of(self, call_id: str) -> str | None:
        """The instance id whose lease is live in Redis, or None."""
        value = _text(await self.redis.get(self.key_of(call_id)))
        if value is None:
            return None
        owner, _, token = value.rpartition(":")
        return owner if token.isdigit() else value

    async def may_take(self, call_id: str) -> bool:
        """For reconcile: True when we own the call or nobody holds a live lease of it; a call
        a live instance holds is never ours to resume or to clean up. Advisory: take it with
        `claim`, which decides atomically."""
        owner = await self.owner_of(call_id)
        return owner is None or owner == self.instance_id

    # --- fenced writes ----------------------------------------------------------------------
    async def fenced_set(self, call_id: str, key: str, value: str | bytes,
                         ex: float | None = None) -> None:
        """SET `key` (with a ttl of `ex` seconds) only while the call's lease holds our token:
        a stale instance never overwrites a call another instance has taken over.
        Raises LeaseLost (nothing written) otherwise."""
        keys = self._keys(call_id, key)
        token, args = self._args(call_id)
        done = await self._set(keys=keys, args=[*args, value, "" if ex is None else _ms(ex)])
        if not done:
            self._lost(call_id, token)
            raise LeaseLost(call_id)

    async def confirm(self, call_id: str) -> None:
        """Raises LeaseLost unless the call's lease still holds our token (a fenced write of
        nothing): a step about to act on a call checks it has not been taken over meanwhile."""
        await self.fenced_delete(call_id)

    async def fenced_delete(self, call_id: str, *keys: str) -> int:
        """DEL `keys` only while the call's lease holds our token: how many were deleted.
        Raises LeaseLost (nothing deleted) otherwise."""
        all_keys = self._keys(call_id, *keys)
        token, args = self._args(call_id)
        deleted = await self._delete(keys=all_keys, args=args)
        if deleted == -1:
            self._lost(call_id, token)
            raise LeaseLost(call_id)
        return int(deleted)
