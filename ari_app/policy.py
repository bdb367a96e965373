"""The etiquette policy: one TOML file, validated once at start.

A bad policy must stop the app before the first call, with messages an
operator can act on: each names the file, the dotted key and what is allowed.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from ari_app.zones import country_of_zone

__all__ = [
    "BusinessHours",
    "CallbackPolicy",
    "DirectoryEntry",
    "FeatureCodes",
    "HoldPolicy",
    "MISSED",
    "NoSuchDirectoryEntry",
    "NoSuchQueue",
    "OperatorsPolicy",
    "Policy",
    "PolicyError",
    "QueuePolicy",
    "QuietHours",
    "RecordingPolicy",
    "SupervisorPolicy",
    "TimeWindow",
    "TransferPolicy",
    "load_policy",
]


class PolicyError(Exception):
    """Every problem found in a policy file, so one run shows them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(problems)
        self.problems = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


class NoSuchDirectoryEntry(KeyError):
    """A directory id that the policy does not define."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class NoSuchQueue(KeyError):
    """A queue name that the policy's [[queues]] does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


# --- validation building blocks ---------------------------------------------

_NO_VALUE = object()


def _problem(
    reason: str, *, at: tuple[str | int, ...] = (), value: Any = _NO_VALUE
) -> PydanticCustomError:
    """An error that `_format_error` renders as `<key> = <value> <reason>`.

    `at` extends the error location below the validator that raised it, so a
    check made on a whole section can still name the offending key.
    """
    return PydanticCustomError(
        "policy", "{reason}", {"reason": reason, "at": at, "value": value}
    )


@dataclass(frozen=True)
class _InRange:
    """Range check that reports the range in force.

    `test_low` is the lower bound under `test_time_ranges`, so integration
    tests can run a hold with a 2 s check-in; only time values have one.
    """

    low: int
    high: int
    unit: str | None = None
    test_low: int | None = None

    def __call__(self, value: int, info: ValidationInfo) -> int:
        low = self.low
        if self.test_low is not None and (info.context or {}).get("test_time_ranges"):
            low = self.test_low
        if not low <= value <= self.high:
            unit = f" ({self.unit})" if self.unit else ""
            raise _problem(f"is outside the allowed range {low}-{self.high}{unit}")
        return value


def _in_range(
    low: int, high: int, unit: str | None = None, *, test_low: int | None = None
) -> AfterValidator:
    return AfterValidator(_InRange(low, high, unit, test_low))


def _zero_or(check: AfterValidator) -> AfterValidator:
    """0 (the feature is off), else the range `check` enforces."""
    def zero_or(value: int, info: ValidationInfo) -> int:
        if value == 0:
            return value
        try:
            return check.func(value, info)  # type: ignore[call-arg]
        except PydanticCustomError as error:
            raise _problem(f"{error.context['reason']}, or 0 (off)") from None

    return AfterValidator(zero_or)


def _matching(pattern: str, expected: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise _problem(f"is not valid; expected {expected}")
        return value

    return AfterValidator(check)


def _text(max_length: int) -> AfterValidator:
    def check(value: str) -> str:
        value = value.strip()
        if not 1 <= len(value) <= max_length:
            raise _problem(f"must be 1-{max_length} characters")
        return value

    return AfterValidator(check)


_TECH_RESOURCE = re.compile(r"[A-Za-z][A-Za-z0-9_]*/[^\s/]+")
_LOCAL = re.compile(r"Local/[^\s/@]+@[^\s/@]+(/[a-z]+)?")


def _check_endpoint(value: str) -> str:
    # Local channels only work with an explicit dialplan context.
    if value.startswith("Local/"):
        valid = _LOCAL.fullmatch(value)
    else:
        valid = _TECH_RESOURCE.fullmatch(value)
    if not valid:
        raise _problem(
            'is not a valid endpoint; expected "TECH/resource" such as '
            '"PJSIP/operator1", or "Local/ext@context"'
        )
    return value


def _check_unique(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise _problem(f"lists {json.dumps(value)} twice")
        seen.add(value)
    return values


Endpoint = Annotated[StrictStr, AfterValidator(_check_endpoint)]
EndpointList = Annotated[tuple[Endpoint, ...], AfterValidator(_check_unique)]
LanguageCode = Annotated[
    StrictStr,
    _matching(r"[a-z]{2,3}([_-][A-Za-z0-9]{2,8})?", 'a language code such as "en" or "en_US"'),
]
PromptName = Annotated[
    StrictStr, _matching(r"[a-z0-9][a-z0-9-]*", "lowercase letters, digits and dashes")
]
Slug = Annotated[
    StrictStr, _matching(r"[a-z0-9]+(-[a-z0-9]+)*", "lowercase letters, digits and single dashes")
]
DtmfCode = Annotated[StrictStr, _matching(r"[0-9*#]{1,4}", "1-4 characters from 0-9, * and #")]
DirectoryCode = Annotated[StrictStr, _matching(r"[0-9]{1,6}", "1-6 digits")]
# Seconds of silence after a menu before it is said once more: never more than 5 (the most
# silence a caller may hear), never so soon that the caller has no time to press a key.
MenuRepeatAfter = Annotated[StrictFloat, _in_range(2, 5, "seconds")]
PhoneNumber = Annotated[
    StrictStr, _matching(r"\+?[0-9]{3,20}", "3-20 digits with an optional leading +")
]


@dataclass(frozen=True)
class TimeWindow:
    """An `HH:MM-HH:MM` span within one day; `end` is exclusive."""

    start: time
    end: time

    def __contains__(self, moment: time) -> bool:
        return self.start <= moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _parse_clock(value: Any) -> time:
    match = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _problem('is not a time; expected "HH:MM" from "00:00" to "23:59"')
    return time(int(match[1]), int(match[2]))


def _parse_span(value: Any, expected: str) -> TimeWindow:
    parts = value.split("-") if isinstance(value, str) else []
    if len(parts) != 2 or not all(_CLOCK.fullmatch(part) for part in parts):
        raise _problem(f"is not a time span; expected {expected}")
    window = TimeWindow(_parse_clock(parts[0]), _parse_clock(parts[1]))
    if window.start >= window.end:
        raise _problem("must start before it ends")
    return window


def _parse_window(value: Any) -> TimeWindow:
    return _parse_span(value, '"HH:MM-HH:MM" such as "09:00-18:00"')


def _parse_day(value: Any) -> TimeWindow | None:
    if value == "closed":
        return None
    return _parse_span(value, '"HH:MM-HH:MM" such as "09:00-18:00", or "closed"')


ClockTime = Annotated[
    time, PlainValidator(_parse_clock), PlainSerializer(lambda t: f"{t:%H:%M}")
]
Window = Annotated[TimeWindow, PlainValidator(_parse_window), PlainSerializer(str)]
DayHours = Annotated[
    TimeWindow | None,
    PlainValidator(_parse_day),
    PlainSerializer(lambda w: "closed" if w is None else str(w)),
]


class _Section(BaseModel):
    # Frozen: the policy is read once and shared by every call task.
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- sections ------------------------------------------------------------------


MISSED = "missed"  # the pause reason the app gives an operator who let a call ring out


def _check_pause_reasons(reasons: tuple[str, ...]) -> tuple[str, ...]:
    # The digit after the pause code picks a reason: 1-9, so at most nine.
    if not 1 <= len(reasons) <= 9:
        raise _problem("must name 1-9 reasons (the digit after the pause code picks one)")
    if MISSED in reasons:
        raise _problem(f"must not include {json.dumps(MISSED)}: the app sets it after a "
                       "call rang out unanswered")
    return reasons


class OperatorsPolicy(_Section):
    endpoints: EndpointList = ()
    ring_timeout: Annotated[StrictInt, _in_range(5, 60, "seconds", test_low=1)] = 15
    # A free operator's phone that rings this long (the caller hearing ringback since the
    # greeting) gets the caller "an operator will be with you shortly" (0: never) ...
    connecting_prompt_after: Annotated[StrictInt, _zero_or(_in_range(5, 60, "seconds",
                                                                     test_low=1))] = 10
    # ... and, while the phones ring on, "we are still calling an operator" and that again in
    # turn, a word this often, start to start, as the hold's check-ins (0: the first only).
    connecting_prompt_every: Annotated[StrictInt, _zero_or(_in_range(20, 30, "seconds",
                                                                     test_low=1))] = 25
    # false: an operator the app has never seen is logged in (calls come as before).
    login_required: StrictBool = False
    # After each call the operator gets this long before the next one is offered (0: none).
    wrap_up: Annotated[StrictInt, _in_range(0, 300, "seconds")] = 5
    pause_reasons: Annotated[
        tuple[Slug, ...], AfterValidator(_check_unique), AfterValidator(_check_pause_reasons)
    ] = ("break", "after-call-work", "meeting")


class RecordingPolicy(_Section):
    # The greeting must tell callers when they are recorded.
    enabled: StrictBool = True


class HoldPolicy(_Section):
    check_in_interval: Annotated[StrictInt, _in_range(20, 30, "seconds", test_low=1)] = 25
    fallback_after: Annotated[StrictInt, _in_range(120, 180, "seconds", test_low=3)] = 150
    moh_class: Annotated[StrictStr, _text(80)] = "default"
    fallback_default: Literal["callback", "voicemail"] = "callback"
    # The way out's 1/2/3 and the callback number: a menu with no key within
    # menu_repeat_after is said once more; then fallback_choice_timeout, at most 5 s of
    # silence, before the default.
    fallback_choice_timeout: Annotated[StrictInt, _in_range(3, 20, "seconds")] = 8
    menu_repeat_after: MenuRepeatAfter = 4.0
    # A second hold in one call is allowed up to this count, but flagged.
    max_holds_per_call: Annotated[StrictInt, _in_range(1, 5)] = 1
    reasons: dict[Slug, PromptName] = Field(
        default_factory=lambda: {
            "lookup": "hold-reason-lookup",
            "consult": "hold-reason-consult",
            "system": "hold-reason-system",
        }
    )

    @model_validator(mode="after")
    def _fallback_after_a_check_in(self) -> HoldPolicy:
        # The caller must hear at least one check-in before being offered a way out.
        if self.fallback_after <= self.check_in_interval:
            raise _problem(
                f"must be greater than hold.check_in_interval ({self.check_in_interval})",
                at=("fallback_after",),
                value=self.fallback_after,
            )
        return self


class FeatureCodes(_Section):
    hold: DtmfCode = "*7"
    resume: DtmfCode = "*8"
    transfer: DtmfCode = "*2"
    supervisor: DtmfCode = "*9"
    # Warn an abusive caller during a call (a second time ends the call politely).
    warn: DtmfCode = "*5"
    # Dialled from an operator's desk phone (not during a call); the dialplan sends them to
    # the app. A reason digit may follow the pause code.
    login: DtmfCode = "*41"
    logout: DtmfCode = "*42"
    pause: DtmfCode = "*43"
    unpause: DtmfCode = "*44"

    @model_validator(mode="after")
    def _codes_tell_apart(self) -> FeatureCodes:
        # A code that is a prefix of another could never be finished.
        codes = list(self.model_dump().items())
        for index, (name, code) in enumerate(codes):
            for other_name, other in codes[:index]:
                if code == other:
                    reason = f"is already used by feature_codes.{other_name}"
                elif code.startswith(other) or other.startswith(code):
                    reason = (
                        f"clashes with feature_codes.{other_name} ({json.dumps(other)}): "
                        "one is a prefix of the other"
                    )
                else:
                    continue
                raise _problem(reason, at=(name,), value=code)
        return self


class TransferPolicy(_Section):
    ring_timeout: Annotated[StrictInt, _in_range(10, 60, "seconds", test_low=1)] = 20
    mode: Literal["announced", "attended"] = "announced"
    # The caller's 1 continue / 2 stay / 3 message after the announcement; no key = continue.
    choice_timeout: Annotated[StrictInt, _in_range(3, 20, "seconds", test_low=1)] = 6
    # The target's 1 accept / 2 decline after the introduction; no key = not verified.
    accept_timeout: Annotated[StrictInt, _in_range(5, 30, "seconds", test_low=1)] = 10
    # Either menu with no key within this is said once more; then the timeout above counts,
    # at most 5 s of silence.
    menu_repeat_after: MenuRepeatAfter = 4.0
    # Reason code -> prompt the target hears after who is calling.
    reasons: dict[Slug, PromptName] = Field(
        default_factory=lambda: {
            "question": "transfer-reason-question",
            "escalation": "transfer-reason-escalation",
        }
    )


def _check_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise _problem('is not a known IANA time zone such as "Europe/Moscow"') from None
    return value


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NINE_TO_SIX = TimeWindow(time(9), time(18))


class BusinessHours(_Section):
    time_zone: Annotated[StrictStr, AfterValidator(_check_time_zone)] = "UTC"
    mon: DayHours = _NINE_TO_SIX
    tue: DayHours = _NINE_TO_SIX
    wed: DayHours = _NINE_TO_SIX
    thu: DayHours = _NINE_TO_SIX
    fri: DayHours = _NINE_TO_SIX
    sat: DayHours = None
    sun: DayHours = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def hours_on(self, weekday: int) -> TimeWindow | None:
        """Hours for `weekday` as in `datetime.weekday()`; None when closed."""
        hours: TimeWindow | None = getattr(self, _WEEKDAYS[weekday])
        return hours

    def is_open(self, now: datetime) -> bool:
        """`now` must be timezone-aware; it is read in the company's zone."""
        if now.tzinfo is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        local = now.astimezone(self.zone)
        hours = self.hours_on(local.weekday())
        return hours is not None and local.time() in hours


class QuietHours(_Section):
    """When not to call customers back, in the customer's local time."""

    start: ClockTime = time(21)
    end: ClockTime = time(9)

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise _problem(
                "must differ from quiet_hours.start", at=("end",), value=f"{self.end:%H:%M}"
            )
        return self

    def contains(self, local_time: time) -> bool:
        if self.start < self.end:
            return self.start <= local_time < self.end
        return local_time >= self.start or local_time < self.end  # wraps midnight


CountryCode = Annotated[StrictStr, _matching(r"[A-Z]{2}", 'an ISO 3166 country code such as "US"')]
DialPrefix = Annotated[StrictStr, _matching(r"\+[0-9]{1,8}", 'a "+" and 1-8 digits')]


class CallbackPolicy(_Section):
    max_attempts: Annotated[StrictInt, _in_range(1, 10)] = 3
    retry_backoff: Annotated[StrictInt, _in_range(60, 3600, "seconds", test_low=1)] = 300
    dialing: Literal["agent-first", "customer-first"] = "agent-first"
    # How a customer's number is dialled; {number} is the E.164 number without "+".
    dial: Annotated[StrictStr, _text(120)] = "PJSIP/{number}@trunk"
    ring_timeout: Annotated[StrictInt, _in_range(10, 60, "seconds", test_low=1)] = 25
    # The customer's 1 talk now / 2 another time after the introduction; no key = not reached.
    answer_timeout: Annotated[StrictInt, _in_range(3, 20, "seconds", test_low=1)] = 8
    # Width of the window the customer is promised ("between 14:10 and 14:40").
    window_minutes: Annotated[StrictInt, _in_range(15, 240, "minutes")] = 30
    # Backlog estimate: minutes an operator spends per callback.
    minutes_per_call: Annotated[StrictInt, _in_range(1, 60, "minutes")] = 5
    # Numbers callbacks may dial (web form, keypad, caller ID, REST: callback/numbers.py):
    # countries (empty = the company's, from business_hours.time_zone; a zone in no country
    # such as UTC allows none until set) and refused prefixes.
    allowed_countries: tuple[CountryCode, ...] = ()
    refused_prefixes: tuple[DialPrefix, ...] = ("+1900", "+1976")
    # Abuse limits of the web form and API.
    requests_per_ip_per_hour: Annotated[StrictInt, _in_range(1, 1000)] = 10
    # Callers with the bearer token (a CRM, a website's backend) count apart, per address.
    requests_per_server_per_hour: Annotated[StrictInt, _in_range(1, 100000)] = 1000
    requests_per_number_per_day: Annotated[StrictInt, _in_range(1, 50)] = 3


class SupervisorPolicy(_Section):
    escalation_allowed: StrictBool = True
    endpoints: EndpointList = ()
    # Said to the caller with the transfer, so they can call a supervisor directly.
    direct_number: PhoneNumber | None = None
    # When supervisors take calls, in the business_hours time zone (default: business hours).
    hours: Window | None = None
    callback_window: Annotated[StrictInt, _in_range(15, 1440, "minutes")] = 60
    caller_key_allowed: StrictBool = False


class EtiquetteLogPolicy(_Section):
    # How long the etiquette log is kept in Redis: each call's, and each operator's per day.
    retention_days: Annotated[StrictInt, _in_range(1, 3650, "days")] = 90


class DirectoryEntry(_Section):
    id: Slug
    kind: Literal["department", "person"]
    name: Annotated[StrictStr, _text(80)]
    endpoint: Endpoint
    # Given to the caller so the next call needs no transfer.
    direct_number: PhoneNumber
    # What the operator keys after the transfer code (*2 <code> #); a phone's transfer button
    # may dial the code, the id or the direct number.
    code: DirectoryCode | None = None
    # Left out: "directory-<id>", rendered from `name` at build time (or an admin's recording).
    name_prompt: PromptName | None = None
    # Left out in the file: every policy language (filled in by Policy).
    languages: Annotated[tuple[LanguageCode, ...], AfterValidator(_check_unique)] = ()
    hours: Window | None = None


class QueuePolicy(_Section):
    """One queue callers wait in for an operator (ari_app/queue/)."""

    name: Slug
    # Whom a voice message left from the queue is for, and whose name the operator hears in
    # the whisper: a directory id (a department). Left out: no department.
    department: Slug | None = None
    # Who serves the queue: a subset of [operators] endpoints (left out: all of them).
    operators: EndpointList = ()
    # The numbers callers dial to wait here (the dialplan's ${EXTEN}, Stasis's second
    # argument); a number no queue lists waits in the first queue.
    extensions: Annotated[tuple[Annotated[StrictStr, _matching(r"[0-9*#+]{1,20}",
                                                               "1-20 of 0-9 * # +")], ...],
                          AfterValidator(_check_unique)] = ()
    # A check-in every check_in_interval seconds, start to start (20-30).
    check_in_interval: Annotated[StrictInt, _in_range(20, 30, "seconds", test_low=1)] = 25
    # The way out (1 keep waiting, 2 voice message, 3 callback keeping the place) after this
    # long in the queue, and again every as long (60-180).
    threshold: Annotated[StrictInt, _in_range(60, 180, "seconds", test_low=3)] = 90
    # After this long, no key at the way out gets default_after_max_wait (not "keep waiting").
    max_wait: Annotated[StrictInt, _in_range(60, 3600, "seconds", test_low=3)] = 600
    default_after_max_wait: Literal["callback", "voicemail"] = "callback"
    # More callers than this waiting: the queue is full (voicemail or a callback at once).
    max_waiting: Annotated[StrictInt, _in_range(1, 1000)] = 50
    # A caller whose estimated wait is longer than this many minutes is told the wait and
    # offered the way out at once, as in a full queue (left out: no such limit).
    max_estimated_wait: Annotated[StrictInt, _in_range(1, 120, "minutes")] | None = None
    # When the queue takes callers, in the business_hours time zone (default: business hours).
    hours: Window | None = None
    menu_repeat_after: MenuRepeatAfter = 4.0
    choice_timeout: Annotated[StrictInt, _in_range(3, 20, "seconds", test_low=1)] = 8
    # Callers put through within this many seconds count as answered within the service
    # level (the figure supervisors watch: 80 % within 20 s is common).
    service_level: Annotated[StrictInt, _in_range(5, 600, "seconds")] = 20
    # A caller who hung up while waiting and calls again within this many seconds is welcomed
    # back at their old place (0: never).
    return_window: Annotated[StrictInt, _in_range(0, 3600, "seconds")] = 120
    # The handle time the estimate assumes until enough calls have ended (left out: no
    # estimate is said until then).
    default_handle_time: Annotated[StrictInt, _in_range(30, 3600, "seconds")] | None = None
    # When the operator hangs up first, the caller is asked to rate the call 1-5 by keypad
    # (one question, skippable, at most 10 s; ari_app/survey/).
    survey: StrictBool = False

    @model_validator(mode="after")
    def _times_in_order(self) -> QueuePolicy:
        if self.threshold <= self.check_in_interval:
            raise _problem(f"must be greater than check_in_interval ({self.check_in_interval})",
                           at=("threshold",), value=self.threshold)
        if self.max_wait < self.threshold:
            raise _problem(f"must be at least threshold ({self.threshold})",
                           at=("max_wait",), value=self.max_wait)
        return self


GreetingKey = Annotated[StrictStr, _matching(r"[1-9]", "one digit 1-9 (0 stays: a person)")]


class GreetingPolicy(_Section):
    """Keys offered once, right after the greeting and the recording notice: never a maze
    (one level, a digit each, no key needed: without one the caller goes on as usual)."""

    # "For Billing, press 2": the queue (it needs a department: its name is said).
    queue_keys: dict[GreetingKey, Slug] = Field(default_factory=dict)
    # "Для русского языка нажмите 9": said in that language; the call goes on in it.
    language_keys: dict[GreetingKey, LanguageCode] = Field(default_factory=dict)


# --- the policy ----------------------------------------------------------------


class Policy(_Section):
    company: Annotated[StrictStr, _text(80)]
    languages: Annotated[tuple[LanguageCode, ...], AfterValidator(_check_unique)] = ("en", "ru")
    default_language: LanguageCode = "en"
    operators: OperatorsPolicy = Field(default_factory=OperatorsPolicy)
    recording: RecordingPolicy = Field(default_factory=RecordingPolicy)
    hold: HoldPolicy = Field(default_factory=HoldPolicy)
    feature_codes: FeatureCodes = Field(default_factory=FeatureCodes)
    transfer: TransferPolicy = Field(default_factory=TransferPolicy)
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    callback: CallbackPolicy = Field(default_factory=CallbackPolicy, validate_default=True)
    supervisor: SupervisorPolicy = Field(default_factory=SupervisorPolicy)
    etiquette_log: EtiquetteLogPolicy = Field(default_factory=EtiquetteLogPolicy)
    directory: tuple[DirectoryEntry, ...] = ()
    # Optional: none configured, callers wait for an operator on music alone (`shortfalls`).
    queues: tuple[QueuePolicy, ...] = ()
    greeting: GreetingPolicy = Field(default_factory=GreetingPolicy)

    def shortfalls(self) -> list[str]:
        """What this valid policy leaves callers without: said by `doctor` (WARN) and logged
        as a warning when the app starts, never refused (a lab may want it)."""
        if self.queues:
            return []
        return ["no [[queues]] in the policy: a caller who finds nobody free waits on music "
                "with no check-in, no place in line and no way out (voicemail, a callback); "
                'add one (config/policy.example.toml ships "general"; README "Queues")']

    @field_validator("languages")
    @classmethod
    def _at_least_one_language(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise _problem("must name at least one language")
        return value

    @field_validator("callback")
    @classmethod
    def _company_country_by_default(
        cls, callback: CallbackPolicy, info: ValidationInfo
    ) -> CallbackPolicy:
        """No allowed_countries: the company's own country, from business_hours.time_zone
        (the tz database's zone.tab). A zone in no country (UTC) leaves it empty: then no
        number may be called back until the list is set (toll fraud: README)."""
        if callback.allowed_countries:
            return callback
        hours: BusinessHours | None = info.data.get("business_hours")
        country = country_of_zone(hours.time_zone) if hours is not None else None
        if country is None:
            return callback
        return callback.model_copy(update={"allowed_countries": (country,)})

    @field_validator("directory")
    @classmethod
    def _directory_is_consistent(
        cls, entries: tuple[DirectoryEntry, ...], info: ValidationInfo
    ) -> tuple[DirectoryEntry, ...]:
        languages: tuple[str, ...] | None = info.data.get("languages")
        seen: dict[str, int] = {}
        completed = []
        for index, entry in enumerate(entries):
            if entry.id in seen:
                raise _problem(
                    f"is already used by directory[{seen[entry.id]}]",
                    at=(index, "id"),
                    value=entry.id,
                )
            seen[entry.id] = index
            if entry.code is not None:
                if f"code:{entry.code}" in seen:
                    raise _problem(
                        f"is already used by directory[{seen[f'code:{entry.code}']}]",
                        at=(index, "code"),
                        value=entry.code,
                    )
                seen[f"code:{entry.code}"] = index
            if languages is None:  # top-level languages invalid, already reported
                completed.append(entry)
                continue
            if "languages" not in entry.model_fields_set:
                entry = entry.model_copy(update={"languages": languages})
            elif not entry.languages:
                raise _problem("must name at least one language", at=(index, "languages"), value=[])
            for language in entry.languages:
                if language not in languages:
                    raise _problem(
                        f"includes {json.dumps(language)}, which is not in the top-level languages",
                        at=(index, "languages"),
                        value=list(entry.languages),
                    )
            completed.append(entry)
        return tuple(completed)

    @model_validator(mode="after")
    def _default_language_is_offered(self) -> Policy:
        if self.default_language not in self.languages:
            raise _problem(
                f"must be one of languages {json.dumps(list(self.languages))}",
                at=("default_language",),
                value=self.default_language,
            )
        return self

    @model_validator(mode="after")
    def _queues_are_consistent(self) -> Policy:
        seen: dict[str, int] = {}
        numbers: dict[str, int] = {}
        departments = {e.id for e in self.directory if e.kind == "department"}
        for index, queue in enumerate(self.queues):
            for number in queue.extensions:
                if number in numbers:
                    raise _problem(f"lists {number}, already in queues[{numbers[number]}]",
                                   at=("queues", index, "extensions"),
                                   value=list(queue.extensions))
                numbers[number] = index
            if queue.name in seen:
                raise _problem(f"is already used by queues[{seen[queue.name]}]",
                               at=("queues", index, "name"), value=queue.name)
            seen[queue.name] = index
            if queue.department is not None and queue.department not in departments:
                known = ", ".join(sorted(departments)) or "none"
                raise _problem(f"is not a department of the directory (departments: {known})",
                               at=("queues", index, "department"), value=queue.department)
            for endpoint in queue.operators:
                if endpoint not in self.operators.endpoints:
                    raise _problem(f"includes {json.dumps(endpoint)}, which is not in "
                                   "operators.endpoints", at=("queues", index, "operators"),
                                   value=list(queue.operators))
        return self

    @model_validator(mode="after")
    def _greeting_keys_are_known(self) -> Policy:
        keys = self.greeting
        for digit in set(keys.queue_keys) & set(keys.language_keys):
            raise _problem("is both a queue key and a language key",
                           at=("greeting", "language_keys", digit), value=digit)
        queues = {q.name: q for q in self.queues}
        for digit, name in keys.queue_keys.items():
            if name not in queues:
                known = ", ".join(queues) or "none"
                raise _problem(f"is not a queue of the policy (queues: {known})",
                               at=("greeting", "queue_keys", digit), value=name)
            if queues[name].department is None:
                raise _problem("has no department, whose name the caller would hear",
                               at=("greeting", "queue_keys", digit), value=name)
        for digit, language in keys.language_keys.items():
            if language not in self.languages:
                raise _problem(f"is not one of languages {list(self.languages)}",
                               at=("greeting", "language_keys", digit), value=language)
        return self

    def queue(self, name: str) -> QueuePolicy:
        """The queue `name`, or NoSuchQueue naming the ones the policy has."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        known = ", ".join(q.name for q in self.queues) or "none"
        raise NoSuchQueue(f"no queue named {name!r} in the policy's [[queues]] (known: {known})")

    def directory_entry(self, entry_id: str) -> DirectoryEntry:
        for entry in self.directory:
            if entry.id == entry_id:
                return entry
        known = ", ".join(entry.id for entry in self.directory) or "none"
        raise NoSuchDirectoryEntry(f"no directory entry with id {entry_id!r} (known ids: {known})")


# --- loading -------------------------------------------------------------------


def load_policy(path: str | Path, *, test_time_ranges: bool = False) -> Policy:
    """Read and validate the policy file, or raise PolicyError listing every problem.

    `test_time_ranges` widens only the time ranges (see `_InRange`); it is for
    integration tests, never for production.
    """
    source = str(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise PolicyError([f"{source}: cannot read the policy file: {error.strerror}"]) from None
    except UnicodeDecodeError:
        raise PolicyError([f"{source}: the policy file is not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError([f"{source}: TOML syntax error: {error}"]) from None
    try:
        return Policy.model_validate(data, context={"test_time_ranges": test_time_ranges})
    except ValidationError as error:
        problems = [_format_error(source, detail) for detail in error.errors()]
        raise PolicyError(problems) from None


def _format_error(source: str, error: Any) -> str:
    location = list(error["loc"])
    context = error.get("ctx") or {}
    kind = error["type"]
    if location and location[-1] == "[key]":  # a bad key in a table like hold.reasons
        location.pop()
        reason = context.get("reason", error["msg"])
        return f"{source}: key {_dotted(location)} {reason}"
    if kind == "policy":
        location.extend(context["at"])
        value = error["input"] if context["value"] is _NO_VALUE else context["value"]
        return f"{source}: {_dotted(location)} = {_show(value)} {context['reason']}"
    if kind == "extra_forbidden":
        return f"{source}: unknown key {_dotted(location)}{_key_hint(location)}"
    if kind == "missing":
        return f"{source}: {_dotted(location)} is required"
    if kind == "literal_error":
        reason = "is not allowed; expected " + context["expected"].replace("'", '"')
    elif kind in _TOML_TYPES:
        reason = f"should be {_TOML_TYPES[kind]}"
    else:
        reason = error["msg"].replace("Input should", "should", 1)
    return f"{source}: {_dotted(location)} = {_show(error['input'])} {reason}"


# Pydantic names Python types; the person editing the file thinks in TOML.
_TOML_TYPES = {
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
    "tuple_type": "an array",
    "list_type": "an array",
}

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _dotted(location: list[Any]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            key = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
            text += f".{key}" if text else key
    return text


def _show(value: Any) -> str:
    """The value roughly as it was written in TOML."""
    return json.dumps(value, ensure_ascii=False, default=str)


def _key_hint(location: list[Any]) -> str:
    model: type[BaseModel] | None = Policy
    for part in location[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(part)
        candidates = (field.annotation, *get_args(field.annotation)) if field else ()
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    if model is None:
        return ""
    known = list(model.model_fields)
    close = difflib.get_close_matches(str(location[-1]), known, n=1)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (allowed keys: {', '.join(known)})"
