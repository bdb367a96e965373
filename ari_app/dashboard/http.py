"""The supervisor dashboard: its page and its snapshot.

    GET /dashboard            the page (public HTML; it signs in through the API)
    GET /dashboard/dashboard.js, /dashboard/dashboard.css   its script and style (public)
    GET /api/dashboard        the snapshot (supervisors and admins: the API's default)

The page follows the live stream (/api/events) and fetches the snapshot again when something
happened.
"""

from __future__ import annotations

from aiohttp import web

from ari_app.dashboard.keys import dashboard_key
from ari_app.http import browser_files

__all__ = ["routes"]

routes = web.RouteTableDef()

browser_files(routes, "ari_app.dashboard", {"/dashboard": "page.html",
                                             "/dashboard/dashboard.js": "dashboard.js",
                                             "/dashboard/dashboard.css": "dashboard.css"})


@routes.get("/api/dashboard")
async def snapshot(request: web.Request) -> web.Response:
    return web.Response(body=await request.app[dashboard_key].snapshot_body(),
                        content_type="application/json")



