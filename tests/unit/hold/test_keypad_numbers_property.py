"""The keypad path to a callback, as properties (issue 14): whatever a caller keys, in whatever
order, no emergency, premium, satellite, high-cost, refused or foreign number is ever asked to be
stored, nor ever dialled.

Three places a number passes on its way to an originate:
- the hold's way out (HoldMachine: 3, then 1 for the caller ID or digits then #) -> SaveCallback;
- the queue's way out (QueueMachine, the same number entry: calls/asking.py) -> KeepPlace;
- the dialer (callback/dialer.py), which checks a stored request's number again before the
  attempt's machine is started: a request stored before the check or edited in Redis.

Each stored or dialled number is judged by an oracle of its own (phonenumbers read directly),
not only by check_number, so a bug in the check shows as well as a bug in the machines. Fake
clock: each event comes 0.7 s after the previous one; "tick" is the machine's own deadline."""

import asyncio
import json

import phonenumbers
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType, shortnumberinfo

from ari_app.callback import machine as k
from ari_app.callback.numbers import NumberRules, RefusedNumber, check_number
from ari_app.callback.service import CallbackRequest
from ari_app.hold import machine as h
from ari_app.queue import machine as q
from ari_app.queue.estimate import WaitEstimate
from dialer_fakes import DialerFakes, dialer

US = NumberRules(("US",), ("+1900", "+1976"))
RULES = st.sampled_from([
    US,
    NumberRules(("US", "RU"), ("+1900", "+1976")),
    NumberRules(("RU",)),
    NumberRules(("GB", "DE", "FR"), ("+4470",)),
    NumberRules(("US", "CA", "JM"), ("+1900", "+1976", "+1242")),
    NumberRules(),  # no country set up: nothing may be called
])
# what a caller types before #: emergency, premium, satellite, Caribbean and other high-cost,
# foreign through the IDD, refused prefixes ...
REFUSED_TYPED = ["911", "112", "999", "000", "9111", "1129", "9005550100", "19005550100",
                 "9765550100", "8762345678", "2425550100", "011881612345678", "011870123456789",
                 "0118001234567", "011442079460958", "0114930123456", "011252612345678",
                 "88005553535", "07000123456", "09098790000", "0012125550100", "4930123456"]
# ... and numbers one of RULES may call (national forms of its first country, or its IDD)
GOOD_TYPED = ["2125550142", "12125550142", "6135550123", "8762091234", "89161234567",
              "84951234567", "81074951234567", "02079460958", "004930123456", "0033142685300"]
TYPED = REFUSED_TYPED + GOOD_TYPED
CALLER_IDS = ["", "anonymous", "911", "112", "999", "+911", "+19005550100", "19005550100",
              "+881612345678", "+8816123456", "+18762345678", "+12425550100", "+252612345678",
              "+447000123456", "+449098790000", "+80012345678", "89161234567"]
GOOD_CALLER_IDS = ["+12125550123", "2125550123", "+1 212 555 0123", "+16135550123",
                   "+442079460958", "+79161234567", "+78005553535", "+4930123456",
                   "+33142685300", "+18762091234"]
CALLER = st.one_of(st.sampled_from(CALLER_IDS), st.sampled_from(GOOD_CALLER_IDS),
                   st.text("0123456789", max_size=16),
                   st.text("0123456789", min_size=1, max_size=15).map(lambda d: "+" + d))
KEYS = st.sampled_from(list("0123456789*#"))
# from the start to the way out: the hold's intro, two check-ins, the fallback time (30 s);
# the queue's announcement, a check-in (its place looked up), the threshold (8 s)
TO_HOLD_MENU = ["prompt", "tick", "prompt", "tick", "prompt", "tick"]
TO_QUEUE_MENU = ["prompt", "tick", "place", "prompt", "tick"]


def passes(raw: str, rules: NumberRules) -> str | None:
    try:
        return check_number(raw, rules)
    except RefusedNumber:
        return None


# the rules, and a caller ID: often one these rules may call back (1 for your own number)
CASES = RULES.flatmap(lambda rules: st.tuples(st.just(rules), CALLER | st.sampled_from(
    [c for c in GOOD_CALLER_IDS if passes(c, rules)] or [""])))
TYPED_NUMBER = (st.sampled_from(REFUSED_TYPED) | st.sampled_from(GOOD_TYPED)).map(
    lambda t: "type:" + t)


def events(*others: str) -> st.SearchStrategy[list[str]]:
    """Anything for a while (keys, whole numbers typed then #, the clock, prompts ending, the
    machine's `others`), often 3 for a callback, then mostly keys and typed numbers: the
    number entry is where the rules bite, so most examples get there."""
    anything = st.one_of(KEYS, TYPED_NUMBER, st.sampled_from(["tick", "prompt", *others]))
    typing = st.one_of(KEYS, KEYS, TYPED_NUMBER, TYPED_NUMBER,
                       st.sampled_from(["tick", "prompt", "1", "#"]), st.sampled_from(others))
    callback = st.sampled_from([(), ("3",), ("prompt", "3"), ("prompt", "3", "prompt")])
    return st.tuples(st.lists(anything, max_size=5), callback,
                     st.lists(typing, max_size=30)).map(lambda t: [*t[0], *t[1], *t[2]])


def may_call(number: str, rules: NumberRules) -> bool:
    """The oracle: an E.164 number, valid, in an allowed country, of no refused type, without a
    refused prefix, not an emergency one (read with phonenumbers, not with check_number)."""
    if not number.startswith("+") or not number[1:].isdigit():
        return False
    parsed = phonenumbers.parse(number)
    country = phonenumbers.region_code_for_number(parsed)
    national = phonenumbers.national_significant_number(parsed)
    return (phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
            and phonenumbers.is_valid_number(parsed)
            and country in rules.allowed_countries
            and phonenumbers.number_type(parsed) not in (
                PhoneNumberType.PREMIUM_RATE, PhoneNumberType.SHARED_COST, PhoneNumberType.UAN,
                PhoneNumberType.VOICEMAIL, PhoneNumberType.PAGER)
            and not any(number.startswith(p) for p in rules.refused_prefixes)
            and not shortnumberinfo.is_emergency_number(national, country)
            and check_number(number, rules) == number)  # the dialer's check: the same answer


def offers_own_number(action: object) -> bool:
    return isinstance(action, (h.Play, q.Play)) and any(
        "callback-own-number" in m for m in (action.prompt, *action.media))


def assert_only_callable_numbers(saves: list, actions: list, caller: str,
                                 rules: NumberRules) -> None:
    """Every number asked to be stored may be called; the caller ID is neither offered (1 for
    your own number) nor used when it may not be called, and is used as checked when it may."""
    own = passes(caller, rules)
    for save in saves:
        assert may_call(save.number, rules), (save, caller, rules)
        if save.own_number:
            assert own is not None and save.number == own, (save, caller, rules)
    if own is None:
        assert not any(offers_own_number(a) for a in actions), (caller, rules)


# --- the hold's way out ----------------------------------------------------------------------
def drive(rule, machine, script: list[str], start: object, now: float,
          own: dict[str, object]) -> list[object]:
    """Feed `machine` (of the rule module `rule`: hold or queue) its start, then each step:
    the timer, the playing prompt's end, a typed number and #, a reload of its snapshot as
    another instance would, one of the rule's `own` events (a factory of `now`), else a key."""
    actions = machine.handle(start)
    for step in script:
        now += 0.7
        if step == "tick":
            now = max(now, machine.get_timer() or now)
            actions += machine.handle(rule.TimerFired(now))
        elif step == "prompt":
            if machine.playing:
                actions += machine.handle(rule.PromptFinished(now, machine.playing,
                                                              machine.playing_tag))
        elif step.startswith("type:"):
            for key in step[5:] + "#":
                now += 0.2
                actions += machine.handle(rule.DigitPressed(now, key))
        elif step == "restore":  # the snapshot in Redis, read back by another instance
            machine = type(machine).from_dict(json.loads(json.dumps(machine.to_dict())))
        elif step in own:
            actions += machine.handle(own[step](now))
        else:
            actions += machine.handle(rule.DigitPressed(now, step))
    return actions


HOLD_OWN = {"hangup": h.CallerHungUp, "operator-left": h.OperatorHungUp,
            "resume": h.ResumeRequested, "saved": h.CallbackSaved,
            "refused": lambda now: h.CallbackRefused(now, "rules changed"),
            "recorded": lambda now: h.RecordingFinished(now, 5.0, saved=True),
            "not-recorded": lambda now: h.RecordingFinished(now, 0.0, saved=False)}


def drive_hold(machine: h.HoldMachine, script: list[str], start: h.HoldRequested |
               h.FallbackRequested) -> list[object]:
    return drive(h, machine, script, start, start.now, HOLD_OWN)


HOLD_EVENTS = events("hangup", "operator-left", "resume", "saved", "refused", "recorded",
                     "not-recorded", "restore")


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=CASES, script=HOLD_EVENTS, default=st.sampled_from(["callback", "voicemail"]),
       via_hold=st.booleans(), operator_present=st.booleans())
@example(case=(US, "+19005550100"), script=["prompt", "3", "prompt", "1", "#"],
         default="callback", via_hold=False, operator_present=False)
@example(case=(US, "911"), script=["prompt", "tick", "prompt", "tick"],
         default="callback", via_hold=False, operator_present=False)
@example(case=(US, "+12125550123"), script=["prompt", "3", "type:911", "type:9005550100",
                                            "type:2125550142"],
         default="callback", via_hold=False, operator_present=False)
def test_given_any_keys_and_caller_id_when_on_hold_way_out_then_only_callable_numbers_saved(
        case, script, default, via_hold, operator_present):
    """A caller on hold may key anything, in any order, with timeouts and hang-ups between:
    the hold never asks for a number to be stored that the dialer must not call (toll fraud),
    and never offers or uses a caller ID that may not be called back."""
    rules, caller = case
    settings_ = h.HoldSettings(check_in_interval=10.0, fallback_after=30.0, choice_timeout=8.0,
                               fallback_default=default, numbers=rules)
    start = (h.HoldRequested(0.0, "lookup") if via_hold
             else h.FallbackRequested(0.0, operator_present=operator_present, why="test"))
    machine = h.HoldMachine("call-1", caller_number=caller, settings=settings_)

    actions = drive_hold(machine, [*(TO_HOLD_MENU if via_hold else ()), *script], start)

    saves = [a for a in actions if isinstance(a, h.SaveCallback)]
    assert_only_callable_numbers(saves, actions, caller, rules)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(typed=st.sampled_from(TYPED) | st.text("0123456789", min_size=1, max_size=15),
       case=CASES)
def test_given_a_number_typed_then_hash_when_hold_asks_then_saved_only_as_its_checked_form(
        typed, case):
    """The typed number itself (not a lone 1, the caller ID): saved exactly when the one check
    takes it, and then as the check's E.164 answer; refused, it is asked again, never saved.
    A number typed with its country code starts with 1 and is the number typed, not the
    caller ID."""
    rules, caller = case
    machine = h.HoldMachine("call-1", caller_number=caller, settings=h.HoldSettings(numbers=rules))

    actions = drive_hold(machine, ["prompt", "3", "prompt", "type:" + typed],
                         h.FallbackRequested(0.0, why="test"))

    saves = [a for a in actions if isinstance(a, h.SaveCallback)]
    own = passes(caller, rules)
    if typed == "1" and own:  # 1 alone is "my own number", offered as it may be called
        assert saves == [h.SaveCallback(own, True, "caller")]
    else:  # any other digits, those after a first 1 too (1 212 ...): the number typed
        expected = passes(typed, rules)
        assert saves == ([h.SaveCallback(expected, False, "caller")] if expected else [])


# --- the queue's way out ---------------------------------------------------------------------
ABOUT_4 = WaitEstimate("minutes", 4, 230.0, "samples", 115.0)


QUEUE_OWN = {"place": lambda now: q.PositionChanged(now, 2),
             "offered": lambda now: q.OperatorOffered(now, "PJSIP/op1"),
             "missed": lambda now: q.OperatorMissed(now, "PJSIP/op1", missed=True),
             "hangup": q.CallerHungUp, "kept": q.PlaceKept,
             "not-kept": lambda now: q.PlaceNotKept(now, "rules changed")}


def drive_queue(machine: q.QueueMachine, script: list[str], start: object) -> list[object]:
    return drive(q, machine, script, start, 0.0, QUEUE_OWN)


QUEUE_STARTS = st.sampled_from([
    q.QueueEntered(0.0, 3, ABOUT_4, operators=2), q.QueueEntered(0.0, 1, ABOUT_4, operators=0),
    q.QueueRefused(0.0, "closed"), q.QueueRefused(0.0, "full")])


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=CASES, start=QUEUE_STARTS,
       script=events("place", "offered", "missed", "hangup", "kept", "not-kept", "restore"),
       default=st.sampled_from(["callback", "voicemail"]))
@example(case=(US, "+19005550100"), start=q.QueueRefused(0.0, "closed"),
         script=["prompt", "tick", "prompt", "tick"], default="callback")
@example(case=(US, "+881612345678"), start=q.QueueRefused(0.0, "full"),
         script=["prompt", "3", "prompt", "1", "type:011881612345678", "type:2125550142"],
         default="callback")
def test_given_any_keys_and_caller_id_when_in_queue_way_out_then_only_callable_numbers_kept(
        case, start, script, default):
    """A caller waiting in a queue (or refused by it: closed, full) takes the way out with any
    keys, timeouts, operators ringing and hang-ups between: the place is kept as a callback
    only to a number the dialer may call, never to a caller ID that may not be called back."""
    rules, caller = case
    settings_ = q.QueueSettings(queue="sales", department="billing", check_in_interval=5,
                                threshold=8, max_wait=20, default_after_max_wait=default,
                                numbers=rules)
    machine = q.QueueMachine("call-1", caller, settings_)

    lead = TO_QUEUE_MENU if isinstance(start, q.QueueEntered) and start.operators else []
    actions = drive_queue(machine, [*lead, *script], start)

    kept = [a for a in actions if isinstance(a, q.KeepPlace)]
    assert_only_callable_numbers(kept, actions, caller, rules)


# --- the dialer ------------------------------------------------------------------------------
def dial(number: str, rules: NumberRules) -> DialerFakes:
    fakes = DialerFakes(CallbackRequest(number=number, source="hold-fallback"), rules)
    asyncio.run(dialer(fakes).dial_due())
    return fakes


STORED = st.one_of(st.sampled_from(CALLER_IDS + GOOD_CALLER_IDS), st.sampled_from(TYPED),
                   st.text("0123456789", min_size=1, max_size=15).map(lambda d: "+" + d),
                   st.sampled_from(["+1900", "+1976", "+1876", "+881", "+870", "+979", "+252",
                                    "+1809", "+4470", "+4490"]).flatmap(
                       lambda p: st.text("0123456789", min_size=4, max_size=10).map(
                           lambda d: p + d)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(number=STORED, rules=RULES)
@example(number="911", rules=US)
@example(number="+19005550100", rules=US)
@example(number="+881612345678", rules=US)
def test_given_a_stored_request_with_any_number_when_due_then_dialled_only_if_it_may_be_called(
        number, rules):
    """A request stored before the check existed, or edited in Redis, reaches the dialer with
    whatever number: the dialer checks it again, and one it must not call never starts an
    attempt (no DialCustomer, no originate); the request fails before an operator is kept."""
    fakes = dial(number, rules)

    if passes(number, rules) is None:
        assert fakes.started == []
        assert fakes.stored.status == "failed" and fakes.stored.outcome.startswith("refused")
        assert fakes.reserved == [] and fakes.released == []
    else:
        [(machine, actions)] = fakes.started
        assert fakes.reserved == ["PJSIP/op1"]
        assert k.DialOperator() in actions  # agent-first: the customer is dialled next
        assert passes(machine.number, rules) is not None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=CASES, script=HOLD_EVENTS)
def test_given_a_number_saved_by_the_hold_when_due_then_that_very_number_dialled(case, script):
    """End to end on the keypad path: what the hold saves is what the dialer dials, checked
    twice with the same answer (a number taken on the phone is never refused at the dial)."""
    rules, caller = case
    machine = h.HoldMachine("call-1", caller_number=caller, settings=h.HoldSettings(numbers=rules))
    actions = drive_hold(machine, script, h.FallbackRequested(0.0, why="test"))

    for save in [a for a in actions if isinstance(a, h.SaveCallback)]:
        [(dialled, _)] = dial(save.number, rules).started
        assert dialled.number == save.number and may_call(dialled.number, rules)


@pytest.mark.parametrize("stored", ["2125550100", "+1 212 555 0100", "+12125550100;911"])
def test_given_a_stored_number_not_in_e164_when_dialled_then_dialled_as_its_e164(stored):
    """A stored "2125550100" passes the check as +1 212 555 0100, but dialled as it is the
    trunk reads "2125550100" as E.164: +212 555 0100, Morocco, a country nobody allowed."""
    [(machine, _)] = dial(stored, US).started

    assert machine.number == check_number(stored, US)
