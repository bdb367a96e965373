"""The console's view of a call, from machine snapshots and `now` (pure, no I/O)."""

from __future__ import annotations

from ari_app.console.view import activity, call_view, etiquette_view, next_hold_warning
from ari_app.hold.machine import HoldMachine, HoldRequested, HoldSettings, PromptFinished
from ari_app.inbound.machine import InboundMachine, InboundState


def call(**kwargs) -> InboundMachine:
    machine = InboundMachine("call-1", number="+12125550100", name="Ann Lee", started_at=100.0,
                             operator="PJSIP/operator1", **kwargs)
    machine.state = kwargs.get("state", InboundState.CONNECTED)
    return machine


def holding(now: float) -> HoldMachine:
    hold = HoldMachine("call-1", settings=HoldSettings(check_in_interval=25, fallback_after=150))
    hold.handle(HoldRequested(now, "lookup"))
    hold.handle(PromptFinished(now + 5, "hold-intro", hold.playing_tag))
    return hold


def test_given_no_hold_yet_when_viewed_then_not_on_hold_and_no_warning():
    view = etiquette_view(call(), None, max_holds=1, now=130.0)

    assert view["on_hold"] is False and view["hold"] is None
    assert view["holds"] == 0 and view["next_hold_warning"] is None


def test_given_one_hold_done_and_policy_allows_one_when_viewed_then_second_hold_warned():
    view = etiquette_view(call(holds=1), None, max_holds=1, now=130.0)

    assert view["next_hold_warning"] == ("this would be the second hold in this call "
                                         "(the policy allows 1)")
    assert next_hold_warning(1, 2) is None
    assert next_hold_warning(2, 2).startswith("this would be the third hold")


def test_given_music_playing_when_viewed_then_check_in_and_way_out_due_at_absolute_times():
    hold = holding(now=200.0)

    view = etiquette_view(call(holds=1, state=InboundState.HELD), hold, max_holds=1, now=210.0)

    assert view["on_hold"] is True
    assert view["hold"]["started_at"] == 200.0 and view["hold"]["held_for"] == 10.0
    assert view["hold"]["next_check_in_at"] == 230.0  # 25 s after the music started
    assert view["hold"]["way_out_at"] == 350.0        # 150 s after the hold started
    assert view["hold"]["reason"] == "lookup" and view["hold"]["status"] == "holding"


def test_given_answered_call_when_viewed_then_wait_is_ring_to_answer_and_status_readable():
    machine = call(answered_at=112.5)

    view = call_view(machine, department="Billing", hold=None, transfer=None, max_holds=1,
                     now=300.0)

    assert view["waited"] == 12.5 and view["department"] == "Billing"
    assert view["shown_status"] == "talking" and view["caller"] == "+12125550100"
    assert view["name"] == "Ann Lee" and view["transfer"] is None


def test_given_operator_states_when_activity_read_then_one_plain_word():
    assert activity({"state": "logged_in"}, []) == "ready"
    assert activity({"state": "logged_in"}, [{"call_id": "c"}]) == "in a call"
    assert activity({"state": "logged_in", "wrap_up_until": 5.0}, []) == "wrap-up"
    assert activity({"state": "paused", "reason": "break"}, []) == "paused"
