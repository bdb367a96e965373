"""Typed keys for the escalation capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.escalation.service import Complaints

__all__ = ["complaints_key"]

complaints_key: web.AppKey[Complaints] = web.AppKey("complaints")
