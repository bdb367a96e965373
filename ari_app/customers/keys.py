"""Typed keys for the customers capability's objects on the aiohttp application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from ari_app.customers.service import Customers

__all__ = ["customers_key"]

customers_key: web.AppKey[Customers] = web.AppKey("customers")
