"""The running app serves its OpenAPI document to anybody (it holds no data), and what it
serves is the document the unit test keeps true."""

import pytest

from ari_app.keys import policy_key
from ari_app.openapi import document

pytestmark = pytest.mark.integration


async def test_given_running_app_when_openapi_asked_without_token_then_served(app, app_runner):
    status, body = await app_runner.api("GET", "/api/openapi.json", token=None)

    assert status == 200 and body == document(app[policy_key])  # its policy's values as enums
    hold = body["paths"]["/api/calls/{call_id}/hold"]["post"]["requestBody"]
    reason = hold["content"]["application/json"]["schema"]["properties"]["reason"]
    assert reason["enum"] == list(app[policy_key].hold.reasons)
    status, _ = await app_runner.api("GET", "/api/calls", token=None)
    assert status == 401  # the API it describes still needs the token
