"""What every call-control route shares (hold, transfer, escalation): the path's call id, the
body's reason, and `apply`, which sends one event to the call and turns each way that can fail
into its JSON error.

It lives in the call core so a capability's REST module never imports another's (the import
rule, tests/unit/test_import_rules.py); it sends to whatever object `calls_key` names.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from ari_app.ari import AriError
from ari_app.calls.errors import CallElsewhere, WrongState
from ari_app.http import (
    ApiError, InvalidRequest, StorageUnavailable, field, principal_of, shown, storage_failure,
)
from ari_app.keys import calls_key

if TYPE_CHECKING:
    from ari_app.ari import Lanes

__all__ = ["CallBusy", "CallControl", "CallControlFailed", "NoSuchCall", "NotYourCall",
           "WrongCallState", "apply", "call_id_of", "check_own_call", "reason_of"]


class CallControl(Protocol):
    """The object that carries out a request on a live call, in the call's lane."""

    lanes: Lanes  # /healthz counts them

    async def request(self, call_id: str, event: object) -> str:
        """Apply `event` to call `call_id`; its new state. LookupError: no such call;
        WrongState: not now; AriError: Asterisk refused; TimeoutError: the lane was busy."""
        ...

    async def operator_of(self, call_id: str) -> str | None:
        """The call's operator endpoint; LookupError: no such call."""
        ...


class NoSuchCall(ApiError):
    status = 404
    error_id = "no-such-call"


class NotYourCall(ApiError):
    status = 403
    error_id = "not-your-call"


class WrongCallState(ApiError):
    status = 409
    error_id = "wrong-call-state"


class CallOnAnotherInstance(ApiError):
    status = 409  # several instances share the calls: the one with the call's events acts
    error_id = "call-on-another-instance"


class CallControlFailed(ApiError):
    status = 502  # Asterisk refused the change or did not answer
    error_id = "call-control-failed"


class CallBusy(ApiError):
    status = 503
    error_id = "call-busy"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": "2"}


_CALL_ID = re.compile(r"[\x21-\x7e]{1,128}")  # Asterisk's ids: printable ASCII, bounded


def call_id_of(request: web.Request) -> str:
    """The path's call id; one that no channel can have is a 404 like an unknown one."""
    call_id = request.match_info["call_id"]
    if not _CALL_ID.fullmatch(call_id):
        raise NoSuchCall(f"no live call {shown(call_id)}")
    return call_id


async def apply(request: web.Request, event: object) -> web.Response:
    """Send `event` to the path's call: 202 with its new state, or the JSON error for each
    way it can fail (a bug is re-raised: the error middleware logs it, answers 500)."""
    call_id = call_id_of(request)
    await check_own_call(request, call_id)
    try:
        state = await request.app[calls_key].request(call_id, event)
    except LookupError as exc:
        raise NoSuchCall(f"no live call {call_id}") from exc
    except WrongState as exc:
        raise WrongCallState(str(exc)) from exc
    except CallElsewhere as exc:
        raise CallOnAnotherInstance(str(exc)) from exc
    except AriError as exc:
        raise CallControlFailed(f"Asterisk could not change the call: {exc}") from exc
    except Exception as exc:
        if storage_failure(exc):
            raise StorageUnavailable() from exc
        if isinstance(exc, TimeoutError):  # the call's lane did not take it in time
            raise CallBusy(f"{exc}; it may still be carried out: check GET /api/calls "
                           "before retrying") from exc
        raise  # a bug: the error middleware logs it and answers 500 internal-error
    return web.json_response({"call_id": call_id, "status": state}, status=202)


async def check_own_call(request: web.Request, call_id: str) -> None:
    """An operator's session acts on their own calls only (403 `not-your-call`); the admin's
    token and supervisors on any."""
    principal = principal_of(request)
    if not principal.is_operator:
        return
    try:
        operator = await request.app[calls_key].operator_of(call_id)
    except LookupError as exc:
        raise NoSuchCall(f"no live call {call_id}") from exc
    if operator != principal.operator:
        raise NotYourCall(f"call {call_id} is not yours ({principal.operator}); only its "
                          "operator or a supervisor may change it")


def reason_of(body: dict, reasons: dict) -> str | None:
    """The body's "reason": absent, or a key of the policy's reasons."""
    reason = field(body, "reason", str, "a text (a key of the policy's reasons)")
    if reason is not None and reason not in reasons:
        raise InvalidRequest(f"unknown reason {shown(reason)}; the policy knows "
                             f"{sorted(reasons)}", "reason")
    return reason
