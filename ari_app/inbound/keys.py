"""Typed keys for the inbound capability's objects on the aiohttp application.

Types are imported for the type checker only: reading a key never loads the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from aiohttp import web

from ari_app.keys import calls_key

if TYPE_CHECKING:
    from ari_app.inbound.stasis import InboundStasis
    from ari_app.inbound.store import CallStore

__all__ = ["inbound_key", "store_key"]

# The inbound adapter is, today, the call core's call-control object: one key under two names
# (`app[inbound_key] = inbound` sets `calls_key` too), typed as what each reader needs. Once
# the core has a call-control object of its own, give this its own web.AppKey("inbound").
inbound_key = cast("web.AppKey[InboundStasis]", calls_key)
store_key: web.AppKey[CallStore] = web.AppKey("store")
