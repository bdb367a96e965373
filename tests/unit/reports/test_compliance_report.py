"""The compliance report from a scripted day of etiquette log entries: every figure checked,
and the score by its written formula. No Redis, no clock: `now` is passed in."""

from __future__ import annotations

from ari_app.reports.compliance import (
    CSV_COLUMNS, SCORE_FORMULA, compliance, csv_row, promised_requests)

OP = "PJSIP/operator1"
DAY = "2026-12-03"
T0 = 1_796_280_000.0  # 2026-12-03 some time UTC


def e(t: float, step: str, call: str | None = "c1", **data) -> dict:
    rule, _, event = step.partition(":")
    entry = {"t": T0 + t, "rule": rule, "event": event.replace("_", " "), **data, "step": step,
             "operator": OP}
    if call is not None:
        entry["call_id"] = call
    return entry


# c1: two holds (flagged), the second without a reason; check-ins on time and one late
# c2: one hold that reaches the way out, the caller asks for a callback (kept)
# c3: an announced transfer connected; c4: an attended transfer that failed, brought back
# c5: an announced transfer that failed with the operator gone (a message instead); an
#     escalation that became a complaint with a supervisor's callback promise (missed: late)
# c6: a warning, the call ended after it; a survey answered 4, one skipped (c3)
# plus the operator's own steps and a callback attempt of theirs (not calls)
DAY_OF_CALLS = [
    e(0, "operator:logged_in", call=None),
    e(10, "inbound:call_started", number="+12125550100"),
    e(15, "hold:started", reason="lookup", source="rest", expected_minutes=2),
    e(19, "hold:check_in_played", prompt="checkin-1", held_for=4, due_at=T0 + 19.0),
    e(23.5, "hold:check_in_played", prompt="checkin-2", held_for=8, due_at=T0 + 21.0),  # late
    e(25, "hold:ended", outcome="resumed", held_for=10.0),
    e(40, "hold:started", reason=None, source="feature-code", expected_minutes=None),
    e(40, "hold:breach", what="hold without a reason"),
    e(40, "hold:breach", what="caller put on hold again", hold_number=2),
    e(44, "hold:check_in_played", prompt="checkin-1", held_for=4, due_at=T0 + 43.6),
    e(46, "hold:ended", outcome="resumed", held_for=6.0),
    e(50, "inbound:call_ended"),
    e(100, "hold:started", call="c2", reason="consult", source="rest", expected_minutes=None),
    e(102, "hold:check_in_played", call="c2", prompt="checkin-1", held_for=2, due_at=T0 + 102),
    e(107, "hold:fallback_offered", call="c2", held_for=7),
    e(109, "hold:fallback_chosen", call="c2", choice="callback", chosen="caller"),
    e(109, "hold:ended", call="c2", outcome="callback", held_for=9.0, chosen="caller"),
    e(109.2, "hold:callback_promised", call="c2", request="r-kept", number="+12125550100",
      chosen="caller", window=[T0 + 200, T0 + 2000]),
    e(200, "transfer:started", call="c3", target="billing", mode="announced", reason=None,
      source="rest"),
    e(205, "transfer:check_in_played", call="c3", prompt="checkin-1", waited=2,
      due_at=T0 + 204.9),
    e(210, "transfer:ended", call="c3", outcome="connected", cause=None),
    e(215, "survey:skipped", call="c3"),
    e(300, "transfer:started", call="c4", target="billing", mode="attended", reason=None,
      source="rest"),
    e(306, "transfer:failed", call="c4", cause="no answer"),
    e(310, "transfer:ended", call="c4", outcome="returned", cause="no answer"),
    e(400, "transfer:started", call="c5", target="billing", mode="announced", reason=None,
      source="feature-code"),
    e(406, "transfer:failed", call="c5", cause="declined"),
    e(406, "transfer:ended", call="c5", outcome="unavailable", cause="declined"),
    e(407, "hold:fallback_offered", call="c5", why="transfer failed", **{"for": "billing"}),
    e(420, "hold:ended", call="c5", outcome="voicemail", held_for=13.0),
    e(430, "inbound:supervisor_requested", call="c5", source="rest", supervisor=None,
      why="no supervisor on duty"),
    e(431, "escalation:complaint_started", call="c5", why="no supervisor on duty"),
    e(450, "escalation:complaint_saved", call="c5", complaint="k1", callback="r-late",
      callback_by=T0 + 600),
    e(500, "warning:warned", call="c6", count=1),
    e(510, "warning:warned", call="c6", count=2),
    e(511, "warning:call_ended", call="c6"),
    e(520, "survey:answered", call="c6", score=4, queue=None, operator=OP),
    e(600, "callback:operator_dialed", call="r-other", attempt="cb-r-other1", order="agent-first"),
    e(700, "operator:paused", call=None, reason="break", source="rest"),
]

REQUESTS = {
    "r-kept": [e(900, "callback:connected", call="r-kept", attempt="cb-r-kept1")],
    "r-late": [e(700, "callback:attempt_ended", call="r-late", outcome="busy", detail=""),
               e(1000, "callback:connected", call="r-late", attempt="cb-r-late2")],
}


def report(now: float = T0 + 5000, **kw) -> dict:
    return compliance(OP, DAY, DAY_OF_CALLS, requests=kw.get("requests", REQUESTS),
                      statuses=kw.get("statuses"), now=now).to_dict()


def test_given_a_scripted_day_when_reported_then_calls_and_holds_counted_and_two_holds_flagged():
    r = report()

    assert (r["operator"], r["day"], r["calls"]) == (OP, DAY, 6)
    assert r["holds"] == {"total": 3, "per_call": 0.5, "calls_with_more_than_one": ["c1"],
                          "without_reason": 1, "lengths": [10.0, 6.0, 9.0],
                          "average_length": 8.3, "longest": 10.0, "reached_way_out": 1}


def test_given_a_scripted_day_when_reported_then_check_ins_on_time_within_a_second():
    assert report()["check_ins"] == {"played": 5, "on_time": 4, "late": 1}


def test_given_a_scripted_day_when_reported_then_transfers_by_mode_and_failed_brought_back():
    assert report()["transfers"] == {"total": 3, "announced": 2, "attended": 1, "connected": 1,
                                     "failed": 2, "failed_brought_back": 1,
                                     "failed_not_brought_back": 1}


def test_given_promises_when_joined_with_their_requests_then_kept_by_the_window_end_else_missed():
    promises = report()["callback_promises"]

    assert (promises["total"], promises["kept"], promises["missed"], promises["pending"]) == (
        2, 1, 1, 0)
    kept, late = promises["promises"]
    assert kept == {"request": "r-kept", "call_id": "c2", "source": "hold",
                    "promised_at": T0 + 109.2, "window_end": T0 + 2000,
                    "reached_at": T0 + 900, "outcome": "kept"}
    assert (late["request"], late["source"], late["reached_at"], late["outcome"]) == (
        "r-late", "complaint", T0 + 1000, "missed")
    assert promised_requests(DAY_OF_CALLS) == ["r-kept", "r-late"]


def test_given_the_customer_reached_in_the_window_chose_another_time_then_the_promise_is_kept():
    """They answered in time and agreed a new time: the request's window moved there, and the
    operator's promise was kept, however long after the old window the call then comes."""
    chose = {"r-kept": [e(900, "callback:customer_chose", call="r-kept", choice="another time",
                          attempt="cb-r-kept1"),
                        e(905, "callback:attempt_ended", call="r-kept", outcome="rescheduled")],
             "r-late": [e(500, "callback:customer_chose", call="r-late", choice="talk now",
                          attempt="cb-r-late1")]}
    promises = report(now=T0 + 90_000, requests=chose)["callback_promises"]

    kept, late = promises["promises"]
    assert (kept["outcome"], kept["reached_at"]) == ("kept", T0 + 900)
    assert (late["outcome"], late["reached_at"]) == ("missed", None)  # "talk now", no connect


def test_given_a_promise_not_yet_called_when_reported_then_pending_until_its_window_ends():
    before = report(now=T0 + 550, requests={})["callback_promises"]
    after = report(now=T0 + 2500, requests={})["callback_promises"]
    failed = report(now=T0 + 300, requests={}, statuses={"r-kept": "failed"})

    assert (before["kept"], before["missed"], before["pending"]) == (0, 0, 2)
    assert (after["kept"], after["missed"], after["pending"]) == (0, 2, 0)
    assert failed["callback_promises"]["missed"] == 1


def test_given_a_scripted_day_when_reported_then_escalations_warnings_and_survey():
    r = report()

    assert r["escalations"] == {"total": 1, "complaints": 1}
    assert r["warnings"] == {"total": 2, "calls_ended": 1}
    assert r["survey"] == {"answered": 1, "skipped": 1, "average": 4.0, "scores": [4.0]}


def test_given_a_scripted_day_when_scored_then_by_the_written_formula():
    r = report()

    # 1 extra hold (10) + 1 without a reason (5) + 1 late check-in (5) + 1 way out (10)
    # + 1 failed transfer not brought back (10) + 1 promise missed (15)
    assert r["score"] == 100 - 10 - 5 - 5 - 10 - 10 - 15 == 45
    assert r["score_formula"] == SCORE_FORMULA
    assert SCORE_FORMULA.startswith(
        "score = 100 − 10 × holds beyond the policy's per-call limit − 5 × holds without a reason − 5 × "
        "check-ins played late − 10 × holds that reached the way out − 10 × failed transfers "
        "not brought back − 15 × callback promises missed; at least 0.")


def test_given_no_calls_when_reported_then_zeros_and_no_score():
    r = compliance(OP, DAY, [e(0, "operator:logged_in", call=None)], now=T0).to_dict()

    assert (r["calls"], r["holds"]["total"], r["holds"]["per_call"], r["score"]) == (
        0, 0, 0.0, None)


def test_given_a_second_hold_the_policy_allows_when_scored_then_it_costs_nothing():
    """max_holds_per_call = 2: the second hold is no breach (the machine says none), so the
    score does not take it off either; the call is still listed with more than one hold."""
    two = [e(0, "hold:started", reason="lookup"), e(5, "hold:ended", held_for=5.0),
           e(10, "hold:started", reason="lookup"), e(15, "hold:ended", held_for=5.0)]

    r = compliance(OP, DAY, two, now=T0).to_dict()

    assert (r["score"], r["holds"]["calls_with_more_than_one"]) == (100, ["c1"])


def test_given_many_faults_when_scored_then_never_below_zero():
    holds = [x for i in range(12) for x in (
        e(i * 10, "hold:started", reason=None),
        e(i * 10, "hold:breach", what="hold without a reason"),
        *([e(i * 10, "hold:breach", what="caller put on hold again", hold_number=i + 1)]
          if i else []),
        e(i * 10 + 5, "hold:ended", held_for=5.0))]

    assert compliance(OP, DAY, holds, now=T0).to_dict()["score"] == 0


def test_given_survey_scores_as_digits_or_missing_when_reported_then_digits_read_others_left():
    entries = [e(0, "survey:answered", score="5"), e(1, "survey:answered", score=None, call="c2"),
               e(2, "survey:answered", score=3, call="c3")]

    assert compliance(OP, DAY, entries, now=T0).to_dict()["survey"] == {
        "answered": 2, "skipped": 0, "average": 4.0, "scores": [5.0, 3.0]}


def test_given_a_report_when_made_a_csv_row_then_one_cell_per_column_in_order():
    row = csv_row(report())
    names = [name for name, _ in CSV_COLUMNS]

    assert len(row) == len(names)
    cells = dict(zip(names, row))
    assert (cells["operator"], cells["score"], cells["holds"],
            cells["calls_with_more_than_one_hold"], cells["failed_transfers_brought_back"],
            cells["callback_promises_kept"], cells["survey_average"]) == (OP, 45, 3, 1, 1, 1, 4.0)
    empty = dict(zip(names, csv_row(compliance(OP, DAY, [], now=T0).to_dict())))
    assert (empty["score"], empty["average_hold_seconds"]) == ("", "")
