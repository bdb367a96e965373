"""The operator console's view of one call, shaped from the machines' snapshots. Pure: the
snapshots and `now` in, plain JSON out; the page counts its timers from the absolute times
given here (epoch seconds), so a view fetched once keeps ticking in the browser.
"""

from __future__ import annotations

from ari_app.hold.machine import HoldMachine, HoldState
from ari_app.inbound.machine import InboundMachine
from ari_app.transfer.machine import TransferMachine, TransferState

__all__ = ["ORDINALS", "activity", "call_view", "etiquette_view", "next_hold_warning"]

ORDINALS = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth"}
# how the operator reads the call's state (the machine's internal ones are not theirs)
_SHOWN = {"ringing_operator": "ringing", "connected": "talking", "held": "on hold",
          "transferring": "transferring", "complaining": "with a supervisor",
          "warning": "hearing a warning", "surveying": "answering the survey",
          "releasing": "ending", "ended": "ended"}


def next_hold_warning(holds: int, max_holds: int) -> str | None:
    """Said before the operator presses hold once more: a hold past the policy's limit is a
    breach the caller notices; None while another hold is within it."""
    if holds < max_holds:
        return None
    nth = holds + 1
    return (f"this would be the {ORDINALS.get(nth, f'{nth}th')} hold in this call "
            f"(the policy allows {max_holds})")


def etiquette_view(call: InboundMachine, hold: HoldMachine | None, max_holds: int,
                   now: float) -> dict:
    """On hold or not; when the hold started, when the next check-in and the way out (the
    2-3 minute fallback menu) are due; holds so far against the policy."""
    holding = hold is not None and hold.state is not HoldState.ENDED
    view: dict = {"on_hold": holding, "holds": call.holds, "max_holds": max_holds,
                  "next_hold_warning": next_hold_warning(call.holds, max_holds), "hold": None,
                  "now": round(now, 3)}
    if holding and hold is not None:
        view["hold"] = {
            "status": hold.state.value, "reason": hold.reason, "source": hold.source,
            "started_at": hold.started_at,
            "held_for": round(now - hold.started_at, 1) if hold.started_at else 0.0,
            # None while a check-in or a prompt plays: the next one is set when music resumes
            "next_check_in_at": hold.next_check_in, "way_out_at": hold.fallback_at,
            "check_ins": len(hold.check_ins), "operator_present": hold.operator_present}
    return view


def call_view(call: InboundMachine, *, department: str | None, hold: HoldMachine | None,
              transfer: TransferMachine | None, max_holds: int, now: float) -> dict:
    """What the operator's page shows of their call: who, from which department's line, how
    long the caller waited for them, the etiquette view and a transfer in progress."""
    waited_until = call.answered_at if call.answered_at is not None else now
    started = call.started_at if call.started_at is not None else now
    moving = transfer is not None and transfer.state is not TransferState.ENDED
    return {
        **call.to_public_dict(),
        "shown_status": _SHOWN.get(call.state.value, call.state.value.replace("_", " ")),
        "warnings": getattr(call, "warnings", 0),  # the abusive-caller warning (`callflow`)
        "department": department, "waited": round(max(waited_until - started, 0.0), 1),
        "etiquette": etiquette_view(call, hold, max_holds, now),
        "transfer": transfer.to_public_dict() if moving and transfer is not None else None,
    }


def activity(operator: dict, calls: list[dict]) -> str:
    """One word for the operator's state: in a call, wrap-up, paused, logged in/out."""
    if calls:
        return "in a call"
    if operator.get("wrap_up_until"):
        return "wrap-up"
    return {"logged_in": "ready", "paused": "paused",
            "logged_out": "logged out"}.get(operator.get("state", ""), operator.get("state", ""))
