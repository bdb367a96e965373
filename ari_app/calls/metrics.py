"""Prometheus metrics, a consumer of call events, in a registry the app owns (several apps may
live in one process: the tests build one per test).

Base units, `_total` counters, and only bounded labels: never a call id, a number or an
operator. A label value that is not in its known set is counted as "other".
"""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ari_app.calls.events import CallEvent

__all__ = ["CONTENT_TYPE", "CallMetrics", "bounded"]

logger = structlog.get_logger()

# the classic text format every Prometheus reads (our names need none of 1.0.0's escaping)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
WAIT_BUCKETS = (5, 10, 20, 30, 60, 90, 120, 180, 300, 600, 1200)
ERROR_BUCKETS = (5, 15, 30, 60, 120, 300, 600)
QUEUE_OUTCOMES = frozenset({"connected", "abandoned", "voicemail", "callback"})

FALLBACK_CHOICES = frozenset({"keep_holding", "voicemail", "callback"})
# the transfer rule's outcomes (transfer/machine.py): a failed or cancelled transfer ends
# `returned` (back with the operator) or `unavailable` (the way out, the operator gone)
TRANSFER_OUTCOMES = frozenset({"connected", "declined", "message", "returned", "unavailable",
                               "operator_gone", "caller_left", "caller_hung_up"})
CALLBACK_STATES = frozenset({"promised", "connected", "busy", "no_answer", "not_reached",
                             "rescheduled", "operator_unavailable"})
OPERATOR_STATES = frozenset({"logged_in", "paused", "logged_out"})
BREACHES = frozenset({"hold_without_a_reason", "caller_put_on_hold_again",
                      "caller_transferred_again"})


SCORES = frozenset("12345")


def bounded(value: object, known: frozenset[str]) -> str:
    """"caller hung up" -> "caller_hung_up" if known, else "other"."""
    word = str(value or "").strip().lower().replace(" ", "_").replace("-", "_")
    return word if word in known else "other"


class CallMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        self.calls = Counter("etiquette_calls", "Inbound calls that reached the app.",
                             registry=r)
        self.holds = Counter("etiquette_holds", "Holds started, by whether a reason was given.",
                             ["reason_given"], registry=r)
        self.check_ins = Counter("etiquette_check_ins",
                                 "Check-ins played to a waiting caller, by rule.", ["rule"],
                                 registry=r)
        self.check_in_lateness = Histogram(
            "etiquette_check_in_lateness_seconds",
            "When a check-in was played minus when it was due.", ["rule"],
            buckets=LATENESS_BUCKETS, registry=r)
        self.fallbacks_offered = Counter("etiquette_fallbacks_offered",
                                         "Ways out offered to a held caller (hold's fallback).",
                                         registry=r)
        self.fallbacks = Counter("etiquette_fallbacks", "Fallback choices, by choice.",
                                 ["choice"], registry=r)
        self.transfers = Counter("etiquette_transfers", "Transfers ended, by outcome.",
                                 ["outcome"], registry=r)
        self.callbacks = Counter("etiquette_callbacks",
                                 "Callbacks promised on the phone, and callback attempts by "
                                 "outcome.", ["state"], registry=r)
        self.breaches = Counter("etiquette_breaches", "Etiquette breaches, by what.", ["what"],
                                registry=r)
        self.operator_states = Counter(
            "etiquette_operator_state_changes",
            "Operators logging in, pausing, unpausing or logging out, by the new state.",
            ["state"], registry=r)
        self.missed_calls = Counter(
            "etiquette_operator_missed_calls",
            "Calls an operator let ring out unanswered (they are paused as missed).", registry=r)
        self.ari_reconnects = Counter("etiquette_ari_reconnects",
                                      "ARI events WebSocket reconnects after the first connect.",
                                      registry=r)
        self.loop_lag = Histogram("etiquette_event_loop_lag_seconds",
                                  "How late the event loop ran a timer it was asked to run.",
                                  buckets=LAG_BUCKETS, registry=r)
        # the queues: the wait is what callers notice most
        self.queue_entered = Counter("etiquette_queue_entered",
                                     "Callers who entered a queue.", ["queue"], registry=r)
        self.queue_waiting = Gauge("etiquette_queue_waiting",
                                   "Callers waiting in a queue, on this instance.", ["queue"],
                                   registry=r)
        self.queue_longest_wait = Gauge(
            "etiquette_queue_longest_wait_seconds",
            "The longest wait of a caller still waiting in a queue on this instance, as of the "
            "queue's last step.", ["queue"], registry=r)
        self.queue_waits = Histogram("etiquette_queue_wait_seconds",
                                     "How long callers waited in a queue, by how it ended.",
                                     ["queue", "outcome"], buckets=WAIT_BUCKETS, registry=r)
        self.queue_within_sla = Counter(
            "etiquette_queue_answered_within_service_level",
            "Callers put through from a queue within its service level.", ["queue"],
            registry=r)
        self.queue_overflows = Counter("etiquette_queue_overflows",
                                       "Callers refused by a closed or full queue.",
                                       ["queue", "why"], registry=r)
        self.queue_estimate_error = Histogram(
            "etiquette_queue_estimate_error_seconds",
            "How far the wait a caller was told was from the wait they had (absolute).",
            ["queue"], buckets=ERROR_BUCKETS, registry=r)
        self.pool_claims = Counter("etiquette_pool_claims",
                                   "New callers claimed by this instance (pool), by outcome.",
                                   ["outcome"], registry=r)
        self.pool_takeovers = Counter("etiquette_pool_takeovers",
                                      "Calls taken over from an instance that died (pool).",
                                      registry=r)
        self.survey_answers = Counter("etiquette_survey_answers",
                                      "Post-call survey answers, by queue and score (1-5).",
                                      ["queue", "score"], registry=r)
        # who waits, per queue, in the order they entered (the first is the longest wait):
        # each queue event updates the gauges in O(1), whatever the line's length
        self._lines: dict[str, dict[str, float]] = {}  # queue -> {call: entered at}
        self._in_line: dict[str, str] = {}  # call -> queue
        self._connects = 0
        for reason in ("true", "false"):  # both series exist from the start
            self.holds.labels(reason_given=reason)
        for state in sorted(OPERATOR_STATES):
            self.operator_states.labels(state=state)

    # --- the consumer --------------------------------------------------------------------------
    def on_event(self, event: CallEvent) -> None:
        d = event.data
        match event.name:
            case "inbound:call_started":
                self.calls.inc()
            case "hold:started":
                self.holds.labels(reason_given="true" if d.get("reason") else "false").inc()
            case ("queue:entered" | "queue:check_in_played" | "queue:connected"
                  | "queue:abandoned" | "queue:overflow" | "queue:queue_left"
                  | "queue:place_kept" | "queue:state_changed"):
                self._queue(event)
            case "hold:fallback_offered":
                self.fallbacks_offered.inc()
            case "hold:fallback_chosen":
                self.fallbacks.labels(choice=bounded(d.get("choice"), FALLBACK_CHOICES)).inc()
            case "transfer:ended":
                self.transfers.labels(outcome=bounded(d.get("outcome"), TRANSFER_OUTCOMES)).inc()
            case "inbound:put_through" if isinstance(d.get("queue"), str) and d.get("queue"):
                # straight to a free operator of the queue: answered with no wait in line,
                # within its service level (the dashboard counts it the same way)
                self.queue_waits.labels(queue=d["queue"], outcome="connected").observe(0.0)
                self.queue_within_sla.labels(queue=d["queue"]).inc()
            case "hold:callback_promised":
                self.callbacks.labels(state="promised").inc()
            case "escalation:complaint_saved" if d.get("callback"):
                self.callbacks.labels(state="promised").inc()
            case "operator:state_changed":
                self.operator_states.labels(state=bounded(event.new, OPERATOR_STATES)).inc()
            case "operator:paused" if d.get("reason") == "missed":
                self.missed_calls.inc()
            case "survey:answered" if str(d.get("score")) in SCORES:
                self.survey_answers.labels(queue=str(d.get("queue") or "other"),
                                           score=str(d.get("score"))).inc()
            case "pool:claimed":
                self.pool_claims.labels(outcome="won").inc()
            case "pool:claim_lost":
                self.pool_claims.labels(outcome="lost").inc()
            case "inbound:taken_over":
                self.pool_takeovers.inc()
            case "callback:attempt_ended":
                self.callbacks.labels(state=bounded(d.get("outcome"), CALLBACK_STATES)).inc()
        if event.name in ("hold:check_in_played", "transfer:check_in_played",
                          "queue:check_in_played"):
            self.check_ins.labels(rule=event.rule).inc()
            due = d.get("due_at")
            if isinstance(due, (int, float)):
                self.check_in_lateness.labels(rule=event.rule).observe(max(0.0, event.at - due))
        if event.step == "breach":
            self.breaches.labels(what=bounded(d.get("what"), BREACHES)).inc()

    def _queue(self, event: CallEvent) -> None:
        d, call = event.data, event.call_id
        queue = str(d.get("queue") or self._in_line.get(call) or "other")
        match event.step:
            case "entered":
                self.queue_entered.labels(queue=queue).inc()
                if (d.get("operators") or 0) > 0:
                    self._in_line[call] = queue
                    self._lines.setdefault(queue, {})[call] = event.at
            case "overflow":
                self.queue_overflows.labels(queue=queue, why=bounded(
                    d.get("why"), frozenset({"closed", "full"}))).inc()
            case "connected" | "abandoned" | "queue_left" | "place_kept":
                outcome = {"queue_left": d.get("outcome"), "place_kept": "callback"}.get(
                    event.step, event.step)
                waited = d.get("waited")
                if isinstance(waited, (int, float)):
                    self.queue_waits.labels(queue=queue, outcome=bounded(
                        outcome, QUEUE_OUTCOMES)).observe(waited)
                if event.step == "connected" and d.get("within_service_level"):
                    self.queue_within_sla.labels(queue=queue).inc()
                error = d.get("estimate_error")
                if event.step == "connected" and isinstance(error, (int, float)):
                    self.queue_estimate_error.labels(queue=queue).observe(abs(error))
                self._out_of_line(call)
            case "state_changed" if event.new in ("connecting", "keeping_place", "ended"):
                self._out_of_line(call)
        self._count_queue(queue, event.at)

    def _out_of_line(self, call: str) -> None:
        queue = self._in_line.pop(call, None)
        if queue is not None:
            self._lines.get(queue, {}).pop(call, None)

    def _count_queue(self, queue: str, now: float) -> None:
        line = self._lines.get(queue) or {}
        self.queue_waiting.labels(queue=queue).set(len(line))
        first = next(iter(line.values()), None)  # entered first: waited longest
        self.queue_longest_wait.labels(queue=queue).set(
            max(0.0, now - first) if first is not None else 0.0)

    def ari_connected(self) -> None:
        """Called on every connect of the events WebSocket; the first one is no reconnect."""
        self._connects += 1
        if self._connects > 1:
            self.ari_reconnects.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def watch_loop_lag(self, interval: float = 1.0) -> None:
        """Ask the loop to wake up every `interval`; how late it does is the lag."""
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + interval
            await asyncio.sleep(interval)
            self.loop_lag.observe(max(0.0, loop.time() - expected))
