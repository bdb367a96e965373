"""Typed keys for the transfer capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.transfer.directory import Directory

__all__ = ["directory_key"]

directory_key: web.AppKey[Directory] = web.AppKey("directory")
