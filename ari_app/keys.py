"""Typed keys for what `build_app` puts on the aiohttp application."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from ari_app.ari import AriClient, EventStream
from ari_app.callback.intake import RateLimits
from ari_app.callback.service import CallbackRequests
from ari_app.callback.stasis import CallbackStasis
from ari_app.customers.service import Customers
from ari_app.inbound.stasis import InboundStasis
from ari_app.inbound.store import CallStore
from ari_app.policy import Policy
from ari_app.settings import Settings
from ari_app.transfer.directory import Directory
from ari_app.voicemail.service import Voicemails

settings_key = web.AppKey("settings", Settings)
policy_key = web.AppKey("policy", Policy)
redis_key = web.AppKey("redis", Redis)
ari_key = web.AppKey("ari", AriClient)
inbound_key = web.AppKey("inbound", InboundStasis)
events_key = web.AppKey("events", EventStream)
store_key = web.AppKey("store", CallStore)
directory_key = web.AppKey("directory", Directory)
callbacks_key = web.AppKey("callbacks", CallbackRequests)
customers_key = web.AppKey("customers", Customers)
rate_limits_key = web.AppKey("rate_limits", RateLimits)
callback_calls_key = web.AppKey("callback_calls", CallbackStasis)
voicemails_key = web.AppKey("voicemails", Voicemails)
