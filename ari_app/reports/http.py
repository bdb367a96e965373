"""The compliance report over REST (JSON and CSV) and its page.

    GET /api/reports/compliance?day=2026-12-03               every operator of the policy
    GET /api/reports/compliance?day=...&operator=operator1    one of them
    GET /api/reports/compliance?day=...&format=csv            text/csv, a row per operator
    GET /reports                                              the page (table, chart, formula)

`day` is a UTC day (the etiquette log's operator days are UTC), today when left out. The API
is for supervisors and admins (the default of every /api/ route); the page is public HTML that
signs in through the API (/static/staff.js) before it asks for anything.
"""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import date
from importlib import resources

from aiohttp import web

from ari_app.callback.keys import callbacks_key
from ari_app.http import InvalidRequest, public, query, shown
from ari_app.keys import etiquette_log_key, policy_key
from ari_app.reports.compliance import (
    CSV_COLUMNS, SCORE_FORMULA, compliance, csv_row, promised_requests)

__all__ = ["routes"]

routes = web.RouteTableDef()
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
FORMATS = ("json", "csv")
_PAGE = resources.files("ari_app.reports").joinpath("page.html").read_text(encoding="utf-8")


def _day(request: web.Request, now: float) -> str:
    value = query(request, "day")
    if not value:
        return time.strftime("%Y-%m-%d", time.gmtime(now))
    try:
        if not DAY.fullmatch(value):
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f'"day" must be a UTC day as YYYY-MM-DD, not {shown(value)}',
                             "day") from None
    return value


def _operators(request: web.Request) -> list[str]:
    endpoints = list(request.app[policy_key].operators.endpoints)
    name = query(request, "operator")
    if not name:
        return endpoints
    for endpoint in endpoints:
        if name in (endpoint, endpoint.split("/", 1)[-1]):
            return [endpoint]
    raise InvalidRequest(f'"operator" must be one of the policy\'s operators '
                         f'({", ".join(endpoints)}), not {shown(name)}', "operator")


def _format(request: web.Request) -> str:
    kind = query(request, "format") or "json"
    if kind not in FORMATS:
        raise InvalidRequest(f'"format" must be "json" or "csv", not {shown(kind)}', "format")
    return kind


async def _report(request: web.Request, endpoint: str, day: str, now: float) -> dict:
    """One operator's day, with the callback requests it promised joined by their id: their
    own timelines (the attempts' steps) and their records' status."""
    log, callbacks = request.app[etiquette_log_key], request.app[callbacks_key]
    entries = await log.read_operator(endpoint, day)
    requests, statuses = {}, {}
    for request_id in promised_requests(entries):
        requests[request_id] = await log.read(request_id)
        record = await callbacks.get(request_id)
        if record is not None:
            statuses[request_id] = record.status
    return compliance(endpoint, day, entries, requests=requests, statuses=statuses,
                      now=now).to_dict()


@routes.get("/api/reports/compliance")
async def compliance_report(request: web.Request) -> web.StreamResponse:
    now = time.time()
    day, endpoints, kind = _day(request, now), _operators(request), _format(request)
    reports = [await _report(request, endpoint, day, now) for endpoint in endpoints]
    if kind == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([name for name, _ in CSV_COLUMNS])
        writer.writerows(csv_row(r) for r in reports)
        return web.Response(text=out.getvalue(), content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="compliance-{day}.csv"'})
    return web.json_response({"day": day, "score_formula": SCORE_FORMULA,
                              "operators": reports})


@routes.get("/reports")
@public
async def page(request: web.Request) -> web.Response:
    """The page itself holds no data: it signs in and asks the API."""
    return web.Response(text=_PAGE.replace("{{formula}}", _escape(SCORE_FORMULA)),
                        content_type="text/html")


def _escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))
