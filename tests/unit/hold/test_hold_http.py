"""The call routes' answers (ari_app/calls/control.py `apply`, through the hold route) for
each way the call's lane may fail, on a small app with a stand-in for the call-control object:
each a JSON error with its own id, and a bug a 500 internal-error (logged by the middleware),
never a 500 that hides it."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis import exceptions as redis_errors

from ari_app import http as api
from ari_app.ari import AriUnavailable
from ari_app.calls.errors import WrongState
from ari_app.hold import http as hold_http
from ari_app.inbound import machine as m
from ari_app.keys import calls_key, policy_key, settings_key
from ari_app.policy import Policy
from ari_app.settings import Settings

TOKEN = "unit-token"


class Calls:
    def __init__(self) -> None:
        self.fails_with: BaseException | None = None

    async def request(self, call_id: str, event: object) -> str:
        if self.fails_with is not None:
            raise self.fails_with
        return "held"


class LaneTimeout(TimeoutError):
    """As InboundStasis.request raises when the call's lane does not take a request in time."""


@pytest.fixture
async def call_api():
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware])
    app[settings_key] = Settings(ari_password="x", api_token=TOKEN, _env_file=None)
    app[policy_key] = Policy(company="X")
    app[calls_key] = calls = Calls()
    app.add_routes(hold_http.routes)
    client = TestClient(TestServer(app))
    await client.start_server()

    async def call(fails_with: BaseException | None) -> tuple[int, dict]:
        calls.fails_with = fails_with
        async with client.post("/api/calls/1700000000.1/hold", json={},
                               headers={"Authorization": f"Bearer {TOKEN}"}) as resp:
            assert resp.content_type == "application/json"
            return resp.status, await resp.json()

    yield call
    await client.close()


@pytest.mark.parametrize(("fails_with", "status", "error_id"), [
    (None, 202, None),
    (LookupError("no such call"), 404, "no-such-call"),
    (WrongState("not talking"), 409, "wrong-call-state"),
    (AriUnavailable(0, "POST", "/channels/x/moh", "Asterisk not answering"), 502,
     "call-control-failed"),
    (redis_errors.TimeoutError("Timeout reading"), 503, "storage-unavailable"),
    (LaneTimeout("call 1700000000.1 did not take the request within 5 s"), 503, "call-busy"),
    (ZeroDivisionError("a bug"), 500, "internal-error"),
])
async def test_given_lane_outcome_when_call_request_then_its_json_answer(
        call_api, fails_with, status, error_id):
    got, body = await call_api(fails_with)

    assert (got, body.get("error_id")) == (status, error_id), body
    if error_id == "internal-error":
        assert "a bug" not in body["message"]


@pytest.mark.xfail(not issubclass(m.InvalidTransition, WrongState), strict=True,
                   reason="the inbound adapter's refusal must be (a subclass of) "
                          "calls.errors.WrongState to be answered 409")
async def test_given_inbound_refuses_transition_when_call_request_then_409(call_api):
    got, body = await call_api(m.InvalidTransition("not talking"))

    assert (got, body.get("error_id")) == (409, "wrong-call-state"), body
