"""Typed keys for the queue capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.queue.service import QueueDesk

__all__ = ["queues_key"]

queues_key: web.AppKey[QueueDesk] = web.AppKey("queues")
