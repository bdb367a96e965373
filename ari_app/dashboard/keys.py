"""Typed keys for the dashboard's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.dashboard.service import Dashboard
    from ari_app.dashboard.today import TodayFigures

__all__ = ["dashboard_key", "today_key"]

dashboard_key: web.AppKey[Dashboard] = web.AppKey("dashboard")
today_key: web.AppKey[TodayFigures] = web.AppKey("dashboard_today")
