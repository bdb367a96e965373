"""Typed app keys of the staff sign-in's objects."""

from __future__ import annotations

from aiohttp import web

from ari_app.staff.accounts import StaffAccounts
from ari_app.staff.sessions import Sessions

accounts_key = web.AppKey("staff_accounts", StaffAccounts)
staff_sessions_key = web.AppKey("staff_sessions", Sessions)
