"""The supervisor dashboard: its page and its snapshot.

    GET /dashboard            the page (public HTML; it signs in through the API)
    GET /dashboard/{asset}    its script and style sheet (public, no external resources)
    GET /api/dashboard        the snapshot (supervisors and admins: the API's default)

The page follows the live stream (/api/events) and fetches the snapshot again when something
happened.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from ari_app.dashboard.keys import dashboard_key
from ari_app.http import ApiError

__all__ = ["routes"]

routes = web.RouteTableDef()

_FILES = resources.files("ari_app.dashboard")
ASSETS = {"dashboard.js": "application/javascript", "dashboard.css": "text/css"}


class NoSuchAsset(ApiError):
    status = 404
    error_id = "no-such-asset"


def _read(name: str) -> str:
    return _FILES.joinpath(name).read_text(encoding="utf-8")


@routes.get("/api/dashboard")
async def snapshot(request: web.Request) -> web.Response:
    return web.Response(body=await request.app[dashboard_key].snapshot_body(),
                        content_type="application/json")


@routes.get("/dashboard")
async def page(request: web.Request) -> web.Response:
    return web.Response(text=_read("page.html"), content_type="text/html",
                        headers={"Cache-Control": "no-cache"})


@routes.get("/dashboard/{asset}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["asset"]
    if name not in ASSETS:
        raise NoSuchAsset(f"no dashboard file {name!r}; there are {', '.join(sorted(ASSETS))}")
    return web.Response(text=_read(name), content_type=ASSETS[name],
                        headers={"Cache-Control": "no-cache"})
