"""Every ARI operation the client uses exists, with the same method and parameter names, in
the api-docs that the running Asterisk serves."""

from __future__ import annotations

import pytest

from ari_app.ari import ALL_OPERATIONS
from ari_app.ari import operations as ops

pytestmark = pytest.mark.integration


async def _api_docs(ari) -> dict[tuple[str, str], set[str]]:
    session = ari.session
    async with session.get(f"{ari.api}/api-docs/resources.json") as resp:
        resources = await resp.json()
    served: dict[tuple[str, str], set[str]] = {}
    for api in resources["apis"]:
        name = api["path"].replace("{format}", "json")
        async with session.get(f"{ari.api}{name}") as resp:
            assert resp.status == 200, name
            doc = await resp.json()
        for entry in doc.get("apis", []):
            for op in entry["operations"]:
                served[(op["httpMethod"], entry["path"])] = {
                    p["name"] for p in op.get("parameters", [])}
    return served


async def test_given_running_asterisk_when_reading_api_docs_then_every_used_operation_matches(ari):
    served = await _api_docs(ari)
    assert len(served) > 50, "api-docs look empty"
    problems = []
    for name, op in ALL_OPERATIONS.items():
        params = served.get((op.method, op.path))
        if params is None:
            problems.append(f"{name}: {op.method} {op.path} is not served")
            continue
        for param in (*op.path_params, *op.query, *op.body, *([op.raw_body] if op.raw_body else [])):
            if param not in params:
                problems.append(f"{name}: {op.method} {op.path} has no parameter {param!r}")
    assert not problems, "\n".join(problems)


async def test_given_contract_when_calling_a_used_operation_then_asterisk_accepts_it(ari):
    """The table is not only well-named but callable: a read-only sample really answers."""
    assert "ping" in await ari.call(ops.PING)
    info = await ari.call(ops.ASTERISK_INFO)
    assert info["system"]["version"].startswith("22.")
