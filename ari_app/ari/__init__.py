"""Our asyncio ARI layer: REST client, events WebSocket, per-call lanes."""

from ari_app.ari.client import (
    AriClient, AriConflict, AriError, AriNotFound, AriUnauthorized, AriUnavailable, tolerated,
    unless_gone,
)
from ari_app.ari.events import EventStream
from ari_app.ari.lanes import Lanes
from ari_app.ari.operations import ALL_OPERATIONS, Op

__all__ = [
    "ALL_OPERATIONS", "AriClient", "AriConflict", "AriError", "AriNotFound", "AriUnauthorized",
    "AriUnavailable", "EventStream", "Lanes", "Op", "tolerated",
    "unless_gone",
]
