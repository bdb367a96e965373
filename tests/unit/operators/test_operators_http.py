"""The operators' routes (ari_app/operators/http.py) on a small app with a stand-in for the
service: each action's event, the endpoint with its slash in the path, and a JSON 4xx for each
bad input (unknown operator or reason, a state that does not take it, malformed JSON)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis import exceptions as redis_errors

from ari_app import http as api
from ari_app.operators import http as operators_http
from ari_app.operators.keys import operators_key
from ari_app.operators.machine import InvalidTransition, LogIn, LogOut, Pause, Unpause
from ari_app.operators.service import NoSuchOperator, UnknownPauseReason
from ari_app.keys import settings_key
from ari_app.settings import Settings

TOKEN = "unit-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Operators:
    def __init__(self) -> None:
        self.changes: list[tuple[str, object]] = []
        self.fails_with: BaseException | None = None

    async def listing(self) -> list[dict]:
        if self.fails_with is not None:
            raise self.fails_with
        return [{"endpoint": "PJSIP/operator1", "state": "logged_in"}]

    async def change(self, name: str, event: object) -> dict:
        if self.fails_with is not None:
            raise self.fails_with
        self.changes.append((name, event))
        return {"endpoint": name, "state": type(event).__name__}


@pytest.fixture
async def client():
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware])
    app[settings_key] = Settings(ari_password="x", api_token=TOKEN, _env_file=None)
    app[operators_key] = Operators()  # type: ignore[assignment]
    app.add_routes(operators_http.routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


def operators(client: TestClient) -> Operators:
    return client.server.app[operators_key]  # type: ignore[return-value]


async def test_given_operators_when_listed_then_200_with_each_operator(client):
    async with client.get("/api/operators", headers=AUTH) as resp:
        assert resp.status == 200
        assert await resp.json() == {"operators": [{"endpoint": "PJSIP/operator1",
                                                    "state": "logged_in"}]}


@pytest.mark.parametrize(("action", "body", "kind", "reason"), [
    ("login", None, LogIn, None), ("logout", None, LogOut, None),
    ("pause", {"reason": "break"}, Pause, "break"), ("pause", None, Pause, None),
    ("unpause", {}, Unpause, None),
])
async def test_given_action_when_posted_with_endpoint_path_then_its_event_from_rest(
        client, action, body, kind, reason):
    async with client.post(f"/api/operators/PJSIP/operator1/{action}", json=body,
                           headers=AUTH) as resp:
        assert resp.status == 200, await resp.text()
    (name, event), = operators(client).changes
    assert name == "PJSIP/operator1" and isinstance(event, kind)
    assert event.source == "rest" and getattr(event, "reason", None) == reason


async def test_given_resource_only_when_posted_then_passed_on_as_given(client):
    async with client.post("/api/operators/operator2/login", headers=AUTH) as resp:
        assert resp.status == 200
    assert operators(client).changes[0][0] == "operator2"


@pytest.mark.parametrize(("fails_with", "status", "error_id"), [
    (NoSuchOperator("no operator 'x'; the policy lists PJSIP/operator1"), 404,
     "no-such-operator"),
    (UnknownPauseReason("unknown pause reason 'nap'"), 422, "invalid-request"),
    (InvalidTransition("not logged in: log in first"), 409, "wrong-operator-state"),
    (redis_errors.ConnectionError("Connection refused"), 503, "storage-unavailable"),
])
async def test_given_service_refuses_when_posted_then_its_json_error(client, fails_with, status,
                                                                      error_id):
    operators(client).fails_with = fails_with
    async with client.post("/api/operators/x/pause", json={"reason": "nap"},
                           headers=AUTH) as resp:
        assert resp.status == status
        body = await resp.json()
    assert body["error_id"] == error_id and body["message"]
    if error_id == "invalid-request":
        assert body["field"] == "reason"


async def test_given_redis_away_when_listed_then_503(client):
    operators(client).fails_with = redis_errors.TimeoutError("Timeout reading")
    async with client.get("/api/operators", headers=AUTH) as resp:
        assert resp.status == 503
        assert (await resp.json())["error_id"] == "storage-unavailable"


@pytest.mark.parametrize(("data", "status", "error_id"), [
    ("{not json", 400, "invalid-json"),
    ('["break"]', 422, "invalid-request"),
    ('{"reason": 3}', 422, "invalid-request"),
])
async def test_given_bad_body_when_paused_then_4xx_and_nothing_changed(client, data, status,
                                                                       error_id):
    async with client.post("/api/operators/operator1/pause", data=data,
                           headers={**AUTH, "Content-Type": "application/json"}) as resp:
        assert resp.status == status
        assert (await resp.json())["error_id"] == error_id
    assert operators(client).changes == []


async def test_given_unknown_action_or_no_token_when_posted_then_404_or_401(client):
    async with client.post("/api/operators/operator1/vanish", headers=AUTH) as resp:
        assert (resp.status, (await resp.json())["error_id"]) == (404, "no-such-route")
    async with client.post("/api/operators/operator1/login") as resp:
        assert (resp.status, (await resp.json())["error_id"]) == (401, "unauthorized")
    assert operators(client).changes == []


async def test_given_name_too_long_when_posted_then_404_no_such_operator(client):
    async with client.post(f"/api/operators/{'x' * 200}/login", headers=AUTH) as resp:
        assert (resp.status, (await resp.json())["error_id"]) == (404, "no-such-operator")
