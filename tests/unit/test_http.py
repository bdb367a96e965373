"""The shared HTTP layer (ari_app/http.py) on a small app of its own, without Redis or Asterisk:
every error is JSON {"error_id", "message"}, aiohttp's own included; Redis unreachable is a
503; anything unexpected a 500 logged once; bodies are bounded and parsed strictly."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from redis import exceptions as redis_errors
from structlog.testing import capture_logs

from ari_app import http as api
from ari_app.keys import settings_key
from ari_app.settings import Settings

TOKEN = "unit-token"


def _raise(exc: BaseException):
    async def handler(request: web.Request) -> web.Response:
        raise exc
    return handler


async def _os_error_inside_redis(request: web.Request) -> web.Response:
    # an OSError raised from a frame of redis-py, as a socket error can leak out of it
    exec(compile("raise ConnectionRefusedError(111, 'Connection refused')",
                 "redis/asyncio/connection.py", "exec"), {"__name__": "redis.asyncio.connection"})
    raise AssertionError("not reached")


async def _echo(request: web.Request) -> web.Response:
    return web.json_response(await api.read_json(request))


async def _redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


@pytest.fixture
async def client():
    app = web.Application(middlewares=[api.error_middleware, api.auth_middleware],
                          client_max_size=api.MAX_BODY)
    app[settings_key] = Settings(ari_password="x", api_token=TOKEN, _env_file=None)
    app.router.add_post("/api/echo", _echo)
    app.router.add_get("/api/redis-down", _raise(redis_errors.ConnectionError("refused")))
    app.router.add_get("/api/redis-slow", _raise(redis_errors.TimeoutError("Timeout reading")))
    app.router.add_get("/api/redis-loading", _raise(redis_errors.BusyLoadingError("loading")))
    app.router.add_get("/api/redis-readonly", _raise(redis_errors.ReadOnlyError("READONLY")))
    app.router.add_get("/api/redis-oserror", _os_error_inside_redis)
    app.router.add_get("/api/wrongtype", _raise(redis_errors.ResponseError("WRONGTYPE")))
    app.router.add_get("/api/other-oserror", _raise(ConnectionResetError("peer")))
    app.router.add_get("/api/bug", _raise(KeyError("secret-internal-detail")))
    app.router.add_get("/old", _redirect)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _call(client, method, path, **kwargs):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    async with client.request(method, path, headers=headers, **kwargs) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, await resp.json(), resp.headers


@pytest.mark.parametrize("path", ["/api/redis-down", "/api/redis-slow", "/api/redis-loading",
                                  "/api/redis-readonly", "/api/redis-oserror"])
async def test_given_redis_unreachable_when_route_fails_then_json_503_storage_unavailable(
        client, path):
    status, body, headers = await _call(client, "GET", path)

    assert (status, body["error_id"]) == (503, "storage-unavailable")
    assert body["message"] == ("storage (Redis) not reachable; nothing was changed, "
                               "please retry")
    assert headers["Retry-After"]


@pytest.mark.parametrize("path", ["/api/bug", "/api/wrongtype", "/api/other-oserror"])
async def test_given_unexpected_error_when_route_fails_then_json_500_logged_once_no_traceback(
        client, path, caplog):
    with caplog.at_level(logging.ERROR), capture_logs() as logs:
        status, body, _ = await _call(client, "GET", path)

    assert (status, body["error_id"]) == (500, "internal-error")
    assert "Traceback" not in json.dumps(body) and "secret-internal-detail" not in json.dumps(body)
    assert [(e["event"], e.get("exc_info")) for e in logs if e["log_level"] == "error"] == [
        ("unexpected error in a request", True)]
    assert not [r for r in caplog.records if r.exc_info]  # aiohttp logs nothing more


async def test_given_unknown_route_when_called_then_json_404_no_such_route(client):
    status, body, _ = await _call(client, "GET", "/api/nothing-here")
    assert (status, body["error_id"]) == (404, "no-such-route")
    status, body, _ = await _call(client, "GET", "/not-api-either")
    assert (status, body["error_id"]) == (404, "no-such-route")


async def test_given_wrong_method_when_called_then_json_405_with_allow(client):
    status, body, headers = await _call(client, "DELETE", "/api/echo")

    assert (status, body["error_id"]) == (405, "method-not-allowed")
    assert headers["Allow"] == "POST"


async def test_given_redirect_when_called_then_passed_through(client):
    async with client.get("/old", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/elsewhere"


@pytest.mark.parametrize(("data", "headers", "status", "error_id"), [
    (b"[" * 5000 + b"]" * 5000, {}, 400, "invalid-json"),
    (b'{"a":' * 20 + b"1" + b"}" * 20, {}, 400, "invalid-json"),
    (b'{"reason": "x"}', {"Content-Type": "application/json; charset=nope"}, 400, "invalid-json"),
    # codecs that raise a bare UnicodeError (a 500 before the OpenAPI fuzz test found it)
    (b'{"reason": "x\xc3"}', {"Content-Type": "application/json; charset=punycode"}, 400,
     "invalid-json"),
    (b'{"reason": "x"}', {"Content-Type": "application/json; charset=undefined"}, 400,
     "invalid-json"),
    (b'{"reason": "\xff"}', {"Content-Type": "application/json"}, 400, "invalid-json"),
    (b"{not json", {}, 400, "invalid-json"),
    (b'{"n": NaN}', {}, 400, "invalid-json"),
    (b'{"n": ' + b"9" * 5000 + b"}", {}, 400, "invalid-json"),
    (b"[1, 2]", {}, 422, "invalid-request"),
    (b'"text"', {}, 422, "invalid-request"),
    (b"x" * (api.MAX_BODY + 1), {}, 413, "request-too-large"),
])
async def test_given_bad_body_when_read_then_json_4xx(client, data, headers, status, error_id):
    got, body, _ = await _call(client, "POST", "/api/echo", data=data, headers=headers)

    assert (got, body["error_id"]) == (status, error_id), body
    assert body["message"]


async def test_given_empty_or_flat_body_when_read_then_object(client):
    assert (await _call(client, "POST", "/api/echo", data=b""))[:2] == (200, {})
    assert (await _call(client, "POST", "/api/echo", data=b'{"a": [1, {"b": 2}]}'))[:2] == \
        (200, {"a": [1, {"b": 2}]})


async def test_given_stalled_body_when_read_then_408_within_timeout(client, monkeypatch):
    monkeypatch.setattr(api, "BODY_TIMEOUT", 0.5)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                 + b"\r\nContent-Length: 1000\r\n\r\n0123456789")
    await writer.drain()
    status, body = await asyncio.wait_for(read_answer(reader), timeout=5)
    writer.close()

    assert (status, body["error_id"]) == (408, "request-timeout")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict]:
    """One HTTP/1.1 answer with a Content-Length, read off a raw socket."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    length = next(int(line.split(":", 1)[1]) for line in head.split("\r\n")
                  if line.lower().startswith("content-length:"))
    assert "application/json" in head, head
    return int(head.split()[1]), json.loads(await reader.readexactly(length))


@pytest.mark.parametrize(("sent", "expected", "same"), [
    ("Bearer abc", "Bearer abc", True), ("Bearer abd", "Bearer abc", False),
    ("Bearer \udcff", "Bearer abc", False), ("Bearer é", "Bearer é", True), ("", "x", False),
])
def test_given_any_header_text_when_compared_then_bool_never_error(sent, expected, same):
    assert api.same_secret(sent, expected) is same


async def test_given_non_ascii_bearer_bytes_when_called_then_401_not_500(client):
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(b"GET /api/nothing-here HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe"
                 b"\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status, body = await asyncio.wait_for(read_answer(reader), timeout=5)
    writer.close()

    assert (status, body["error_id"]) == (401, "unauthorized")


def test_given_value_of_wrong_type_when_field_then_422_names_it():
    assert api.field({"reason": "x"}, "reason", str, "a text") == "x"
    assert api.field({}, "reason", str, "a text") is None
    for bad in (["lookup"], {"a": 1}, 3, True):
        with pytest.raises(api.InvalidRequest) as error:
            api.field({"reason": bad}, "reason", str, "a text")
        assert error.value.body()["field"] == "reason" and error.value.status == 422
    with pytest.raises(api.InvalidRequest):
        api.field({"n": True}, "n", int, "a number")  # a bool is not a number


def test_given_a_whole_float_when_field_of_int_then_that_int():
    """JSON has one number type: 5.0 is 5 (JSON Schema's integer includes it); 5.5 is not."""
    assert api.field({"n": 5.0}, "n", int, "a number") == 5
    assert type(api.field({"n": 5.0}, "n", int, "a number")) is int
    for bad in (5.5, float("inf"), float("nan")):
        with pytest.raises(api.InvalidRequest):
            api.field({"n": bad}, "n", int, "a number")
    assert api.field({"n": 5.0}, "n", (int, float), "a number") == 5.0


def test_given_a_query_parameter_twice_when_read_then_422_names_it():
    assert api.query(make_mocked_request("GET", "/x?heard=true"), "heard") == "true"
    assert api.query(make_mocked_request("GET", "/x"), "heard") == ""
    with pytest.raises(api.InvalidRequest) as error:
        api.query(make_mocked_request("GET", "/x?heard=true&heard=false"), "heard")
    assert error.value.body()["field"] == "heard" and "2 times" in error.value.message
