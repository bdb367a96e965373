"""The compliance report: one operator's day of etiquette, in figures, and a score.

Pure (no I/O, `now` passed in): it reads the entries of the operator's day from the etiquette
log (`EtiquetteLog.read_operator(endpoint, day)`: each entry has "t", "rule", "event",
"step" = "rule:step", "call_id" and the step's data) and, for the callback promises made in
that day, the timelines of those requests (`EtiquetteLog.read(request_id)`: the attempts'
`callback:*` steps), joined by the request id the promise names. What is counted, by step:

- calls: the distinct calls in the day (callback attempts and the operator's own steps, which
  are not calls of theirs, are left out);
- holds: `hold:started` .. `hold:ended` of one call is one hold; its length is the end's
  `held_for`; a call with more than one hold is flagged; a hold with a `hold:breach` "hold
  without a reason" counts as without a reason, one with "caller put on hold again" as beyond
  the policy's limit (`hold.max_holds_per_call`, the score's extra holds); one with a `hold:fallback_offered` reached the
  way out (a way out offered without a hold, after a failed transfer, is not a hold);
- check-ins: `hold:check_in_played` and `transfer:check_in_played`, on time when played at most
  `ON_TIME_SLACK` seconds after they were due (`due_at`);
- transfers: `transfer:started` by mode (`announced`: the operator leaves at once, the target
  is introduced by the app; `attended`: the operator consults first); `transfer:failed`, and
  brought back when that transfer then ended `returned` (the caller is with the operator
  again), not brought back otherwise (a message or a callback for the target);
- callback promises: `hold:callback_promised` (its `window`) and `escalation:complaint_saved`
  with a `callback` (its `callback_by`): kept when the request's timeline has a
  `callback:connected` by the window's end, or the customer reached by then chose another
  time (`callback:customer_chose`: a new time agreed with them, not a promise broken); missed
  when reached later, when the request failed, or when the window is over without either;
  else pending;
- escalations: `inbound:supervisor_requested` (of which complaints: `escalation:complaint_started`);
- warnings: `warning:warned`, calls ended after a warning `warning:call_ended`;
- survey: `survey:answered` (its `score`) and `survey:skipped`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["ON_TIME_SLACK", "SCORE_FORMULA", "CSV_COLUMNS", "OperatorDay", "compliance",
           "csv_row", "promised_requests", "score_of"]

ON_TIME_SLACK = 1.0  # s a check-in may come after it was due and still be on time

# the score's penalties, per occurrence in the day (`score_of` applies them)
PENALTIES = (
    ("extra_holds", 10, "holds beyond the policy's per-call limit"),
    ("holds_without_reason", 5, "holds without a reason"),
    ("late_check_ins", 5, "check-ins played late"),
    ("holds_reached_way_out", 10, "holds that reached the way out"),
    ("failed_transfers_not_brought_back", 10, "failed transfers not brought back"),
    ("callback_promises_missed", 15, "callback promises missed"),
)
SCORE_FORMULA = ("score = 100 − " + " − ".join(f"{points} × {what}"
                                                 for _, points, what in PENALTIES)
                 + "; at least 0. No calls that day: no score. Escalations, warnings and "
                 "survey scores are shown, not scored (the caller's doing as much as the "
                 "operator's).")

NOT_CALLS = frozenset({"callback", "operator"})  # rules whose entries are not the operator's calls


@dataclass
class _Hold:
    call_id: str
    started_at: float
    reason_given: bool = True
    reached_way_out: bool = False
    beyond_limit: bool = False  # a hold:breach "caller put on hold again" (max_holds_per_call)
    length: float | None = None


@dataclass
class _Transfer:
    call_id: str
    mode: str
    failed: bool = False
    outcome: str | None = None


@dataclass
class OperatorDay:
    """The figures of one operator's day (`to_dict` is the JSON form)."""
    operator: str
    day: str
    calls: set[str] = field(default_factory=set)
    holds: list[_Hold] = field(default_factory=list)
    check_ins: list[float] = field(default_factory=list)  # lateness of each, s
    transfers: list[_Transfer] = field(default_factory=list)
    promises: list[dict] = field(default_factory=list)
    escalations: int = 0
    complaints: int = 0
    warnings: int = 0
    ended_after_warning: int = 0
    survey_scores: list[float] = field(default_factory=list)
    surveys_skipped: int = 0

    # --- derived figures ------------------------------------------------------------------
    def holds_per_call(self) -> dict[str, int]:
        per: dict[str, int] = {}
        for hold in self.holds:
            per[hold.call_id] = per.get(hold.call_id, 0) + 1
        return per

    def figures(self) -> dict[str, int]:
        """The counts the score is made of."""
        return {
            # the machine says which holds went past the policy's limit (1 by default: every
            # hold after a call's first), so the score follows the policy the call ran under
            "extra_holds": sum(h.beyond_limit for h in self.holds),
            "holds_without_reason": sum(not h.reason_given for h in self.holds),
            "late_check_ins": sum(late > ON_TIME_SLACK for late in self.check_ins),
            "holds_reached_way_out": sum(h.reached_way_out for h in self.holds),
            "failed_transfers_not_brought_back": sum(
                t.failed and t.outcome != "returned" for t in self.transfers),
            "callback_promises_missed": sum(p["outcome"] == "missed" for p in self.promises),
        }

    def to_dict(self) -> dict:
        per_call = self.holds_per_call()
        lengths = [round(h.length, 1) for h in self.holds if h.length is not None]
        failed = [t for t in self.transfers if t.failed]
        scores = self.survey_scores
        on_time = sum(late <= ON_TIME_SLACK for late in self.check_ins)
        return {
            "operator": self.operator, "day": self.day, "calls": len(self.calls),
            "holds": {
                "total": len(self.holds),
                "per_call": round(len(self.holds) / len(self.calls), 2) if self.calls else 0.0,
                "calls_with_more_than_one": sorted(c for c, n in per_call.items() if n > 1),
                "without_reason": sum(not h.reason_given for h in self.holds),
                "lengths": lengths,
                "average_length": round(sum(lengths) / len(lengths), 1) if lengths else None,
                "longest": max(lengths) if lengths else None,
                "reached_way_out": sum(h.reached_way_out for h in self.holds)},
            "check_ins": {"played": len(self.check_ins), "on_time": on_time,
                          "late": len(self.check_ins) - on_time},
            "transfers": {
                "total": len(self.transfers),
                "announced": sum(t.mode == "announced" for t in self.transfers),
                "attended": sum(t.mode == "attended" for t in self.transfers),
                "connected": sum(t.outcome == "connected" for t in self.transfers),
                "failed": len(failed),
                "failed_brought_back": sum(t.outcome == "returned" for t in failed),
                "failed_not_brought_back": sum(t.outcome != "returned" for t in failed)},
            "callback_promises": {
                "total": len(self.promises),
                "kept": sum(p["outcome"] == "kept" for p in self.promises),
                "missed": sum(p["outcome"] == "missed" for p in self.promises),
                "pending": sum(p["outcome"] == "pending" for p in self.promises),
                "promises": self.promises},
            "escalations": {"total": self.escalations, "complaints": self.complaints},
            "warnings": {"total": self.warnings, "calls_ended": self.ended_after_warning},
            "survey": {"answered": len(scores), "skipped": self.surveys_skipped,
                       "average": round(sum(scores) / len(scores), 2) if scores else None,
                       "scores": scores},
            "score": score_of(self),
            "score_formula": SCORE_FORMULA,
        }


def score_of(day: OperatorDay) -> int | None:
    """0-100 by SCORE_FORMULA; None for a day without calls (nothing to judge)."""
    if not day.calls:
        return None
    counts = day.figures()
    return max(0, 100 - sum(points * counts[name] for name, points, _ in PENALTIES))


def promised_requests(entries: Iterable[Mapping]) -> list[str]:
    """The callback requests promised in these entries: whose timelines the report joins."""
    out = []
    for entry in entries:
        request = _promise(entry)
        if request is not None and request[0] not in out:
            out.append(request[0])
    return out


def _promise(entry: Mapping) -> tuple[str, float | None, str] | None:
    """(request id, the window's end, source) of a promise entry, else None."""
    step = entry.get("step")
    if step == "hold:callback_promised" and entry.get("request"):
        window = entry.get("window") or [None, None]
        return str(entry["request"]), _number(window[1] if len(window) > 1 else None), "hold"
    if step == "escalation:complaint_saved" and entry.get("callback"):
        return str(entry["callback"]), _number(entry.get("callback_by")), "complaint"
    return None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _outcome(latest: float | None, timeline: Iterable[Mapping], status: str | None,
             now: float) -> tuple[str, float | None]:
    """kept / missed / pending, and when the customer was reached: connected, or answered and
    chose another time (the window they then agreed on is the request's, not this promise)."""
    reached = min((float(e["t"]) for e in timeline if e.get("step") == "callback:connected"
                   or (e.get("step") == "callback:customer_chose"
                       and e.get("choice") == "another time")), default=None)
    if reached is not None:
        return ("kept" if latest is None or reached <= latest else "missed"), reached
    if status == "failed" or (latest is not None and now > latest):
        return "missed", None
    return "pending", None


def compliance(operator: str, day: str, entries: Iterable[Mapping], *,
               requests: Mapping[str, Iterable[Mapping]] | None = None,
               statuses: Mapping[str, str] | None = None, now: float) -> OperatorDay:
    """The figures of `operator`'s `day` from its etiquette log entries (in log order);
    `requests`: the timeline of each promised callback request (`promised_requests`),
    `statuses`: their records' status where known (`failed` is a missed promise)."""
    report = OperatorDay(operator, day)
    requests, statuses = requests or {}, statuses or {}
    open_holds: dict[str, _Hold] = {}
    open_transfers: dict[str, _Transfer] = {}
    for entry in entries:
        step, call = str(entry.get("step", "")), str(entry.get("call_id") or "")
        rule = step.split(":", 1)[0]
        if call and rule not in NOT_CALLS:
            report.calls.add(call)
        t = float(entry.get("t", 0.0))
        match step:
            case "hold:started":
                hold = open_holds[call] = _Hold(call, t, reason_given=entry.get("reason")
                                                is not None)
                report.holds.append(hold)
            case "hold:breach" if entry.get("what") == "hold without a reason":
                if call in open_holds:
                    open_holds[call].reason_given = False
            case "hold:breach" if entry.get("what") == "caller put on hold again":
                if call in open_holds:
                    open_holds[call].beyond_limit = True
            case "hold:fallback_offered":
                if call in open_holds:  # a way out offered without a hold is no hold's
                    open_holds[call].reached_way_out = True
            case "hold:ended":
                if (hold := open_holds.pop(call, None)) is not None:
                    held = _number(entry.get("held_for"))
                    hold.length = held if held is not None else t - hold.started_at
            case "hold:check_in_played" | "transfer:check_in_played":
                due = _number(entry.get("due_at"))
                report.check_ins.append(max(0.0, t - due) if due is not None else 0.0)
            case "transfer:started":
                transfer = open_transfers[call] = _Transfer(call, str(entry.get("mode") or ""))
                report.transfers.append(transfer)
            case "transfer:failed":
                if call in open_transfers:
                    open_transfers[call].failed = True
            case "transfer:ended":
                if (transfer := open_transfers.pop(call, None)) is not None:
                    transfer.outcome = str(entry.get("outcome") or "")
            case "inbound:supervisor_requested":
                report.escalations += 1
            case "escalation:complaint_started":
                report.complaints += 1
            case "warning:warned":
                report.warnings += 1
            case "warning:call_ended":
                report.ended_after_warning += 1
            case "survey:answered":  # a key 1-5 (an int; a digit as text is read too)
                try:
                    report.survey_scores.append(float(str(entry.get("score"))))
                except ValueError:
                    pass
            case "survey:skipped":
                report.surveys_skipped += 1
        promise = _promise(entry)
        if promise is not None:
            request, latest, source = promise
            outcome, reached = _outcome(latest, requests.get(request, ()),
                                        statuses.get(request), now)
            report.promises.append({"request": request, "call_id": call, "source": source,
                                    "promised_at": t, "window_end": latest,
                                    "reached_at": reached, "outcome": outcome})
    return report


CSV_COLUMNS = (
    ("operator", lambda d: d["operator"]), ("day", lambda d: d["day"]),
    ("score", lambda d: d["score"]), ("calls", lambda d: d["calls"]),
    ("holds", lambda d: d["holds"]["total"]), ("holds_per_call", lambda d: d["holds"]["per_call"]),
    ("calls_with_more_than_one_hold", lambda d: len(d["holds"]["calls_with_more_than_one"])),
    ("holds_without_reason", lambda d: d["holds"]["without_reason"]),
    ("average_hold_seconds", lambda d: d["holds"]["average_length"]),
    ("longest_hold_seconds", lambda d: d["holds"]["longest"]),
    ("holds_reached_way_out", lambda d: d["holds"]["reached_way_out"]),
    ("check_ins", lambda d: d["check_ins"]["played"]),
    ("check_ins_on_time", lambda d: d["check_ins"]["on_time"]),
    ("transfers", lambda d: d["transfers"]["total"]),
    ("transfers_announced", lambda d: d["transfers"]["announced"]),
    ("transfers_attended", lambda d: d["transfers"]["attended"]),
    ("transfers_failed", lambda d: d["transfers"]["failed"]),
    ("failed_transfers_brought_back", lambda d: d["transfers"]["failed_brought_back"]),
    ("callback_promises", lambda d: d["callback_promises"]["total"]),
    ("callback_promises_kept", lambda d: d["callback_promises"]["kept"]),
    ("callback_promises_missed", lambda d: d["callback_promises"]["missed"]),
    ("callback_promises_pending", lambda d: d["callback_promises"]["pending"]),
    ("escalations", lambda d: d["escalations"]["total"]),
    ("complaints", lambda d: d["escalations"]["complaints"]),
    ("warnings", lambda d: d["warnings"]["total"]),
    ("surveys_answered", lambda d: d["survey"]["answered"]),
    ("surveys_skipped", lambda d: d["survey"]["skipped"]),
    ("survey_average", lambda d: d["survey"]["average"]),
)


def csv_row(report: Mapping) -> list[object]:
    """One operator's row (CSV_COLUMNS' order; None is an empty cell)."""
    return ["" if (value := get(report)) is None else value for _, get in CSV_COLUMNS]
