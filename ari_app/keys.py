"""Typed keys for the core objects `build_app` puts on the aiohttp application.

Only the core's: each capability declares the keys of its own objects in its own package
(`ari_app/<capability>/keys.py`), so this module, which every web module reads, depends on
nothing above the core (ari, calls, policy, settings, watchdog).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web
from redis.asyncio import Redis

from ari_app.ari import AriClient, EventStream
from ari_app.calls.etiquette_log import EtiquetteLog
from ari_app.calls.events import CallEvents
from ari_app.calls.metrics import CallMetrics
from ari_app.calls.stream import LiveEvents
from ari_app.policy import Policy
from ari_app.settings import Settings
from ari_app.watchdog import Watchdog

if TYPE_CHECKING:  # calls/control.py reads these keys: a runtime import would be a cycle
    from ari_app.calls.control import CallControl
    from ari_app.http import SessionFinder

settings_key = web.AppKey("settings", Settings)
policy_key = web.AppKey("policy", Policy)
redis_key = web.AppKey("redis", Redis)
ari_key = web.AppKey("ari", AriClient)  # this instance's own node (the first it serves)
ari_nodes_key: web.AppKey[dict[str | None, AriClient]] = web.AppKey("ari_nodes")  # every node's
events_key = web.AppKey("events", EventStream)
watchdog_key = web.AppKey("watchdog", Watchdog)
call_events_key = web.AppKey("call_events", CallEvents)
metrics_key = web.AppKey("metrics", CallMetrics)
live_events_key = web.AppKey("live_events", LiveEvents)
etiquette_log_key = web.AppKey("etiquette_log", EtiquetteLog)
# the object that carries out REST requests on live calls (calls/control.py `apply`); today
# the inbound adapter, stored under this same key as `inbound.keys.inbound_key`
calls_key: web.AppKey[CallControl] = web.AppKey("calls")
# the staff sessions (staff/sessions.py) the root's auth middleware asks who a cookie is;
# absent when no staff file is set
sessions_key: web.AppKey[SessionFinder] = web.AppKey("sessions")
