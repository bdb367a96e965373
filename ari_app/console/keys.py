"""Typed keys for the console's objects on the aiohttp application."""

from __future__ import annotations

from aiohttp import web

from ari_app.console.service import ConsoleService

__all__ = ["console_key"]

console_key = web.AppKey("console", ConsoleService)
