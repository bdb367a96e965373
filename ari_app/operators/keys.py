"""Typed keys for the operators capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.operators.service import OperatorService

__all__ = ["operators_key"]

operators_key: web.AppKey[OperatorService] = web.AppKey("operators")
