"""Typed keys for the voicemail capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.voicemail.service import Voicemails

__all__ = ["voicemails_key"]

voicemails_key: web.AppKey[Voicemails] = web.AppKey("voicemails")
