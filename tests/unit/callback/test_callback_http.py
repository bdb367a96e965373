"""POST /api/callbacks (ari_app/callback/http.py) with random JSON and random bytes: never a 5xx,
every refusal a JSON {"error_id", "message"}. Redis-free: the rate limits and the store are
stand-ins; the middlewares, body reading, field checks and check_form are the real ones."""

from __future__ import annotations

import asyncio
import json
from zoneinfo import available_timezones

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ari_app import http as api
from ari_app.callback import http as callback_http
from ari_app.callback.keys import callbacks_key, rate_limits_key
from ari_app.callback.service import Accepted
from ari_app.keys import policy_key, settings_key
from ari_app.policy import Policy
from ari_app.settings import Settings

TOKEN = "unit-token"


class Limits:
    def for_form(self, ip: str, number: str, *, server: bool = False) -> None: ...
    async def check_sender(self, ip: str, *, server: bool = False) -> None: ...


class Callbacks:
    async def accept(self, request, preferred=None, require_window=False,
                     counted=None) -> Accepted:
        return Accepted(request, merged=False, submission_id=request.id)


def make_app() -> web.Application:
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware],
                          client_max_size=api.MAX_BODY)
    app[settings_key] = Settings(ari_password="x", api_token=TOKEN, _env_file=None)
    app[policy_key] = Policy(company="X", callback={"allowed_countries": ["US", "GB", "RU"]})
    app[rate_limits_key] = Limits()
    app[callbacks_key] = Callbacks()
    app.add_routes(callback_http.routes)
    return app


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
NUMBERS = st.sampled_from(["+12125550100", "+1 212 555 0100", "911", "112", "+1900555 0100",
                           "+447911123456", "+79161234567", "0", "+", "", "++1", "1" * 40])
ZONES = st.sampled_from(sorted(available_timezones())[:50] + ["Europe", "zone.tab", "../x",
                                                                "/etc/passwd", "UTC\x00", ""])
MOMENTS = st.datetimes().map(lambda d: d.isoformat()) | st.text(max_size=30)
FIELDS = {"number": NUMBERS | JSON, "name": st.text(max_size=100) | JSON,
          "topic": st.text(max_size=400) | JSON, "preferred_time": MOMENTS | JSON,
          "time_zone": ZONES | JSON, "language": st.sampled_from(["en", "ru", "xx"]) | JSON}
OTHERS = {k: v for k, v in FIELDS.items() if k != "number"}
FORMS = (st.fixed_dictionaries({"number": NUMBERS}, optional=OTHERS)  # mostly past the number
         | st.fixed_dictionaries({"number": NUMBERS}, optional={k: st.text() for k in OTHERS})
         | st.fixed_dictionaries({}, optional=FIELDS)
         | st.dictionaries(st.text(max_size=10), JSON))
BODIES = (FORMS.map(lambda f: json.dumps(f).encode()) | JSON.map(lambda v: json.dumps(v).encode())
          | st.binary(max_size=200))


def test_given_random_bodies_when_posted_then_never_5xx_and_errors_are_json():
    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(make_app()), loop=loop)
    loop.run_until_complete(client.start_server())

    async def post(body: bytes, bearer: bool) -> tuple[int, str, bytes]:
        headers = {"Content-Type": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {TOKEN}"
        else:
            headers.update({"X-CSRF-Token": "t", "Cookie": "etq_csrf=t"})
        async with client.post("/api/callbacks", data=body, headers=headers) as resp:
            return resp.status, resp.content_type, await resp.read()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=BODIES, bearer=st.booleans())
    def check(body: bytes, bearer: bool) -> None:
        status, kind, answer = loop.run_until_complete(post(body, bearer))
        assert status < 500, (status, answer)
        assert kind == "application/json"
        if status >= 400:
            error = json.loads(answer)
            assert isinstance(error["error_id"], str) and isinstance(error["message"], str)
        else:
            assert status == 201

    try:
        check()
    finally:
        loop.run_until_complete(client.close())
        loop.close()
