"""A call's ARI action where failure is telephony: a channel already gone is no error (Asterisk
answers addChannel for a hung-up channel with 400 "Channel not found", not 404)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ari_app.ari.client import AriError, AriNotFound, tolerated


@pytest.mark.parametrize("error", [
    AriNotFound(404, "DELETE", "/channels/x", "Channel not found"),
    AriError(400, "POST", "/bridges/b/addChannel", "Channel not found"),
])
def test_given_gone_channel_then_info_not_error(error):
    with capture_logs() as logs, tolerated("ReattachCaller"):
        raise error
    assert [line["log_level"] for line in logs] == ["info"]


def test_given_other_failure_then_logged_as_error():
    with capture_logs() as logs, tolerated("Play"):
        raise AriError(500, "POST", "/channels/x/play", "Internal Server Error")
    assert [line["log_level"] for line in logs] == ["error"]
