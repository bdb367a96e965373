"""Typed keys for the callback capability's objects on the aiohttp application.

Types are imported for the type checker only: reading a key never loads the adapter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.callback.intake import RateLimits
    from ari_app.callback.service import CallbackRequests
    from ari_app.callback.stasis import CallbackStasis

__all__ = ["callback_calls_key", "callbacks_key", "rate_limits_key"]

callbacks_key: web.AppKey[CallbackRequests] = web.AppKey("callbacks")
rate_limits_key: web.AppKey[RateLimits] = web.AppKey("rate_limits")
callback_calls_key: web.AppKey[CallbackStasis] = web.AppKey("callback_calls")
