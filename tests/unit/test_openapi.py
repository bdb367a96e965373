"""The OpenAPI document stays true: every route the app registers is in it (with the same
method), and every operation in it is a route."""

import json

from ari_app.app import build_app
from ari_app.openapi import document
from ari_app.policy import load_policy
from ari_app.settings import Settings


def registered(tmp_path) -> set[tuple[str, str]]:
    policy = tmp_path / "policy.toml"
    policy.write_text('company = "X"\n')
    app = build_app(Settings(ari_password="x", api_token="t" * 24, policy_file=policy),
                    load_policy(policy))
    out = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        path = info.get("path") or info.get("formatter")
        if route.method != "HEAD" and path:
            out.add((route.method.lower(), path))
    return out


def test_given_the_app_when_its_routes_are_listed_then_each_is_described_and_nothing_else(
        tmp_path):
    described = {(method, path) for path, ops in document()["paths"].items() for method in ops}

    assert registered(tmp_path) == described


def test_given_the_document_when_read_then_openapi_31_with_errors_auth_and_public_routes():
    doc = json.loads(json.dumps(document()))  # plain JSON all the way down

    assert doc["openapi"] == "3.1.0" and doc["security"] == [{"bearer": []}, {"session": []}]
    ops = [op for ops in doc["paths"].values() for op in ops.values()]
    assert all(op["summary"] and op["responses"] for op in ops)
    public = {path for path, o in doc["paths"].items() for op in o.values()
              if op.get("security") == []}
    assert {"/api/callbacks", "/api/callbacks/{request_id}", "/healthz",
            "/api/openapi.json"} <= public
    assert "/api/calls" not in public
    for path, o in doc["paths"].items():  # every error is the shared body (health: its own)
        for status, answer in [r for op in o.values() for r in op["responses"].items()
                               if path != "/healthz"]:
            if int(status) >= 400 and "application/json" in answer.get("content", {}):
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/Error"}


def test_given_a_call_control_route_when_read_then_every_error_it_may_answer_is_listed():
    """calls/control.py's errors, each under its own status: a client told 409 for `call-busy`
    (a 503 with Retry-After) would not try again."""
    hold = document()["paths"]["/api/calls/{call_id}/hold"]["post"]["responses"]

    listed = {status: answer["description"] for status, answer in hold.items()}
    assert "call-busy" in listed["503"] and "storage-unavailable" in listed["503"]
    assert "call-busy" not in listed["409"]
    assert "call-on-another-instance" in listed["409"] and "wrong-call-state" in listed["409"]
    assert listed["403"] == "not-your-call" and listed["502"] == "call-control-failed"
    assert listed["404"] == "no-such-call"
