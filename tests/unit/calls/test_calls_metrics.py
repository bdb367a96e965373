"""The metrics consumer: which step moves which metric, base-unit names, `_total` counters and
bounded labels (never a call id, a number or an operator)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from ari_app.calls.events import CallEvent
from ari_app.calls.metrics import CallMetrics, bounded


def ev(name: str, at: float = 100.0, **data) -> CallEvent:
    rule = name.split(":", 1)[0]
    return CallEvent(name, "call-secret-id", at, rule, operator="PJSIP/operator1", data=data)


def samples(metrics: CallMetrics) -> dict[tuple[str, tuple], float]:
    text = metrics.render().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_given_fresh_metrics_when_rendered_then_names_are_base_units_and_counters_total():
    names = {name for name, _ in samples(CallMetrics())}
    assert {"etiquette_calls_total", "etiquette_holds_total", "etiquette_fallbacks_offered_total",
            "etiquette_ari_reconnects_total", "etiquette_event_loop_lag_seconds_count"} <= names
    families = {f.name: f.type for f in text_string_to_metric_families(
        CallMetrics().render().decode())}
    assert families["etiquette_check_in_lateness_seconds"] == "histogram"
    assert families["etiquette_check_ins"] == "counter"


def test_given_two_apps_when_counted_then_registries_apart():
    one, two = CallMetrics(), CallMetrics()
    one.on_event(ev("inbound:call_started"))
    assert samples(one)[("etiquette_calls_total", ())] == 1
    assert samples(two)[("etiquette_calls_total", ())] == 0


def test_given_hold_with_two_check_ins_when_counted_then_hold_check_ins_and_lateness():
    metrics = CallMetrics()
    metrics.on_event(ev("inbound:call_started"))
    metrics.on_event(ev("hold:started", reason="lookup"))
    metrics.on_event(ev("hold:check_in_played", at=125.02, due_at=125.0))
    metrics.on_event(ev("hold:check_in_played", at=150.3, due_at=150.0))

    s = samples(metrics)
    assert s[("etiquette_holds_total", (("reason_given", "true"),))] == 1
    assert s[("etiquette_holds_total", (("reason_given", "false"),))] == 0
    assert s[("etiquette_check_ins_total", (("rule", "hold"),))] == 2
    assert s[("etiquette_check_in_lateness_seconds_count", (("rule", "hold"),))] == 2
    assert abs(s[("etiquette_check_in_lateness_seconds_sum", (("rule", "hold"),))] - 0.32) < 1e-6
    assert s[("etiquette_check_in_lateness_seconds_bucket", (("le", "0.025"), ("rule", "hold")))] == 1


def test_given_hold_without_reason_when_counted_then_breach_by_what():
    metrics = CallMetrics()
    metrics.on_event(ev("hold:started", reason=None))
    metrics.on_event(ev("hold:breach", what="hold without a reason"))
    metrics.on_event(ev("transfer:breach", what="something new"))

    s = samples(metrics)
    assert s[("etiquette_holds_total", (("reason_given", "false"),))] == 1
    assert s[("etiquette_breaches_total", (("what", "hold_without_a_reason"),))] == 1
    assert s[("etiquette_breaches_total", (("what", "other"),))] == 1


def test_given_fallbacks_transfers_callbacks_when_counted_then_by_bounded_label():
    metrics = CallMetrics()
    metrics.on_event(ev("hold:fallback_offered", held_for=150))
    metrics.on_event(ev("hold:fallback_chosen", choice="keep holding"))
    metrics.on_event(ev("hold:fallback_chosen", choice="callback"))
    metrics.on_event(ev("hold:callback_promised", number="+12125550100"))
    metrics.on_event(ev("escalation:complaint_saved", callback="cb1"))
    metrics.on_event(ev("escalation:complaint_saved", callback=None))
    metrics.on_event(ev("callback:attempt_ended", outcome="no-answer"))
    metrics.on_event(ev("transfer:ended", outcome="caller hung up"))
    metrics.on_event(ev("transfer:ended", outcome="connected"))
    # every end the transfer rule has (transfer/machine.py's Finish) has its own label
    for outcome in ("declined", "message", "returned", "unavailable", "operator-gone",
                    "caller-left"):
        metrics.on_event(ev("transfer:ended", outcome=outcome))

    s = samples(metrics)
    for label in ("declined", "message", "returned", "unavailable", "operator_gone",
                  "caller_left"):
        assert s[("etiquette_transfers_total", (("outcome", label),))] == 1, label
    assert s[("etiquette_fallbacks_offered_total", ())] == 1
    assert s[("etiquette_fallbacks_total", (("choice", "keep_holding"),))] == 1
    assert s[("etiquette_fallbacks_total", (("choice", "callback"),))] == 1
    assert s[("etiquette_callbacks_total", (("state", "promised"),))] == 2
    assert s[("etiquette_callbacks_total", (("state", "no_answer"),))] == 1
    assert s[("etiquette_transfers_total", (("outcome", "caller_hung_up"),))] == 1
    assert s[("etiquette_transfers_total", (("outcome", "connected"),))] == 1
    text = metrics.render().decode()
    assert "call-secret-id" not in text and "operator1" not in text and "+1212" not in text


def test_given_connects_when_counted_then_only_reconnects():
    metrics = CallMetrics()
    metrics.ari_connected()
    assert samples(metrics)[("etiquette_ari_reconnects_total", ())] == 0
    metrics.ari_connected()
    metrics.ari_connected()
    assert samples(metrics)[("etiquette_ari_reconnects_total", ())] == 2


def test_given_unknown_value_when_bounded_then_other():
    assert bounded("Caller hung-up", frozenset({"caller_hung_up"})) == "caller_hung_up"
    assert bounded("+12125550100", frozenset({"caller_hung_up"})) == "other"
    assert bounded(None, frozenset({"x"})) == "other"


async def test_given_loop_when_watched_then_lag_observed():
    import asyncio

    metrics = CallMetrics()
    task = asyncio.create_task(metrics.watch_loop_lag(interval=0.01))
    await asyncio.sleep(0.05)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert samples(metrics)[("etiquette_event_loop_lag_seconds_count", ())] >= 1


def test_given_operator_state_changes_when_counted_then_by_new_state_and_missed_apart():
    metrics = CallMetrics()
    for old, new in (("logged_out", "logged_in"), ("logged_in", "paused"), ("paused", "odd")):
        metrics.on_event(CallEvent("operator:state_changed", "", 100.0, "operator",
                                   "state_changed", old=old, new=new, operator="PJSIP/operator1"))
    metrics.on_event(ev("operator:paused", reason="missed"))
    metrics.on_event(ev("operator:paused", reason="break"))

    s = samples(metrics)
    changes = {labels: value for (name, labels), value in s.items()
               if name == "etiquette_operator_state_changes_total"}
    assert changes == {(("state", "logged_in"),): 1, (("state", "paused"),): 1,
                       (("state", "logged_out"),): 0, (("state", "other"),): 1}
    assert s[("etiquette_operator_missed_calls_total", ())] == 1
    assert not any("operator1" in str(labels) for _, labels in s)  # never per operator


def test_given_survey_answers_when_counted_then_by_queue_and_score_and_skips_not_counted():
    metrics = CallMetrics()
    for score in (4, 4, 1):
        metrics.on_event(ev("survey:answered", score=score, queue="sales",
                            operator="PJSIP/operator1"))
    metrics.on_event(ev("survey:answered", score=9, queue="sales"))  # not a score: not counted
    metrics.on_event(ev("survey:skipped", why="no key", queue="sales"))

    got = samples(metrics)
    assert got[("etiquette_survey_answers_total", (("queue", "sales"), ("score", "4")))] == 2
    assert got[("etiquette_survey_answers_total", (("queue", "sales"), ("score", "1")))] == 1
    assert ("etiquette_survey_answers_total", (("queue", "sales"), ("score", "9"))) not in got


def test_given_a_caller_put_straight_through_when_counted_then_answered_in_time_by_queue():
    """A free operator of the queue answered at once: the service level counts them as the
    dashboard does (connected after 0 s in line, within the level); a call of no queue not."""
    metrics = CallMetrics()
    metrics.on_event(ev("inbound:put_through", queue="sales", waited=6.5))
    metrics.on_event(ev("queue:connected", queue="sales", waited=40.0, within_service_level=False))
    metrics.on_event(ev("inbound:put_through", queue=None, waited=1.0))

    s = samples(metrics)
    assert s[("etiquette_queue_answered_within_service_level_total", (("queue", "sales"),))] == 1
    assert s[("etiquette_queue_wait_seconds_count",
              (("outcome", "connected"), ("queue", "sales")))] == 2
    assert s[("etiquette_queue_wait_seconds_bucket",
              (("le", "5.0"), ("outcome", "connected"), ("queue", "sales")))] == 1
    assert not any(labels and dict(labels).get("queue") in (None, "None", "")
                   for name, labels in s if name.startswith("etiquette_queue_"))
