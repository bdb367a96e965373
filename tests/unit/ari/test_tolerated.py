"""A call's ARI action where failure is telephony: a channel already gone is no error (Asterisk
answers addChannel for a hung-up channel with 400 "Channel not found", not 404), and an action
whose target may be gone already (`unless_gone`)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ari_app.ari.client import AriError, AriNotFound, tolerated, unless_gone


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


async def _failing(error: AriError) -> None:
    raise error


@pytest.mark.parametrize("error, also", [
    (AriNotFound(404, "DELETE", "/bridges/b", "Bridge not found"), ()),
    (AriError(422, "POST", "/bridges/b/removeChannel", "Channel not in bridge"), (422,)),
])
async def test_given_target_gone_when_unless_gone_then_no_error(error, also):
    await unless_gone(_failing(error), also=also)


async def test_given_a_status_not_named_when_unless_gone_then_raised():
    with pytest.raises(AriError):
        await unless_gone(_failing(AriError(422, "POST", "/bridges/b/removeChannel",
                                            "Channel not in bridge")))
