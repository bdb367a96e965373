"""Who can take a call now. An operator is free when their phone is registered (ARI endpoint
online), no channel is up on it, and no call of ours has reserved them. The reservation lives
in Redis (SET NX with an expiry), so two app instances never hand the same operator two calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from redis.asyncio import Redis

from ari_app.ari import AriClient, AriNotFound
from ari_app.storage.keyspace import Keyspace

__all__ = ["OperatorService", "desk_phone_variables"]

logger = structlog.get_logger()

# compare-and-delete in one step: never free an operator another call has reserved since
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


def desk_phone_variables(endpoint: str) -> dict[str, str] | None:
    """Channel variables for a leg we dial to a person's phone: a SIP phone's transfer button
    (REFER) comes to the app as a ChannelTransfer event instead of being done by Asterisk, so
    the transfer etiquette applies to it too (Asterisk 22.3 and later)."""
    if endpoint.split("/", 1)[0].upper() == "PJSIP":
        return {"PJSIP_TRANSFER_HANDLING()": "ari-only"}
    return None


class OperatorService:
    def __init__(self, ari: AriClient, redis: Redis, endpoints: Sequence[str], *,
                 keys: Keyspace, reservation_ttl: int = 4 * 3600) -> None:
        self.ari, self.redis = ari, redis
        self.endpoints = list(endpoints)
        self.keys, self.ttl = keys, reservation_ttl

    def for_endpoints(self, endpoints: Sequence[str]) -> OperatorService:
        """The same reservations, for other people (a department's, the supervisors')."""
        return OperatorService(self.ari, self.redis, endpoints, keys=self.keys,
                               reservation_ttl=self.ttl)

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
        """Reserve and return the first free operator, or None when nobody is free."""
        for endpoint in self.endpoints:
            if endpoint in exclude or not await self.is_available(endpoint):
                continue
            if await self.redis.set(self._key(endpoint), call_id, nx=True, ex=self.ttl):
                return endpoint
        return None

    async def release(self, endpoint: str, call_id: str) -> None:
        """Give the operator back, only if this call still holds them."""
        await self.redis.eval(_RELEASE, 1, self._key(endpoint), call_id)
