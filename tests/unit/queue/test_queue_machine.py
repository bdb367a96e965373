"""QueueMachine: events in (each with `now`), actions out, one deadline. Fake clock, no loop.

The timeline most tests share (SETTINGS: check-in every 20 s start to start, threshold 60 s,
max wait 150 s, menus said once more after 4 s, 8 s to choose then (at most 5 s)):
    0.0  QueueEntered (3rd, about 4 minutes) -> queue-entered (q1)
    6.0  it ends                             -> music, check-in 26.0, offer 60.0
   26.0  timer                               -> LookUpPosition; the answer -> a check-in (q2)
   30.0  it ends                             -> music, next check-in 46.0
   46.0  timer, the answer                   -> a check-in (q3)
   50.0  it ends                             -> music, next check-in 66.0 (offer 60.0 first)
   60.0  timer                               -> queue-menu (q4)
An operator is offered (OperatorOffered: rung on leg qop<n>, the caller waits on), then answers
(OperatorFound: "connecting you now" and the whisper) or not (OperatorMissed: back in line).
"""

import json

from dataclasses import replace

import pytest

from ari_app.callback.numbers import NumberRules
from ari_app.calls.vocabulary import OPERATOR
from ari_app.queue.estimate import WaitEstimate
from ari_app.queue.machine import (
    CallerHungUp,
    DialOperator,
    DigitPressed,
    Finish,
    HangUpOperator,
    InvalidQueueEvent,
    JoinQueue,
    KeepPlace,
    LeaveLine,
    LookUpPosition,
    Note,
    OperatorFound,
    OperatorHungUp,
    OperatorMissed,
    OperatorOffered,
    PlaceKept,
    PlaceNotKept,
    Play,
    PositionChanged,
    PromptFinished,
    PutBack,
    QueueEntered,
    QueueJoin,
    QueueMachine,
    QueueRefused,
    QueueSettings,
    QueueState,
    ReleaseOperator,
    StartMusic,
    StopMusic,
    StopPlayback,
    TimerFired,
    Whisper,
    minutes_media,
)

NUMBERS = NumberRules(allowed_countries=("US",))
SETTINGS = QueueSettings(queue="sales", department="billing", name_prompt="directory-billing",
                         check_in_interval=20, threshold=60, max_wait=150, numbers=NUMBERS)
ABOUT_4 = WaitEstimate("minutes", 4, 230.0, "samples", 115.0)
CALLER = "+12125550100"
OP1, OP2 = "PJSIP/operator1", "PJSIP/operator2"


def of(actions, kind):
    return [a for a in actions if isinstance(a, kind)]


def notes(actions):
    return {n.event: dict(n.data) for n in of(actions, Note)}


def play(actions) -> Play:
    [p] = [a for a in actions if type(a) is Play]
    return p


def finish(m: QueueMachine, prompt: str | None = None, now: float = 0.0):
    prompt = prompt or m.playing
    return m.handle(PromptFinished(now, prompt, m.playing_tag))


def waiting(settings=SETTINGS, position=3, estimate=ABOUT_4, caller=CALLER) -> QueueMachine:
    m = QueueMachine("c1", caller, settings)
    m.handle(QueueEntered(0.0, position, estimate, operators=2))
    finish(m, now=6.0)
    return m


def check_in(m: QueueMachine, t: float, position: int | None = None) -> list[object]:
    """A check-in at `t`: the timer asks for the caller's place, the queue answers `position`
    (left out: the place as it stands) and the check-in plays; the answer's actions."""
    assert m.handle(TimerFired(t)) == [LookUpPosition()]
    assert m.state is QueueState.CHECKING_IN and m.checking_in
    return m.handle(PositionChanged(t, m.position if position is None else position))


def offered(m: QueueMachine, t: float, operator: str = OP1) -> list[object]:
    """`operator` is reserved for the caller at `t` and rung; the offer's actions."""
    actions = m.handle(OperatorOffered(t, operator))
    assert of(actions, DialOperator) == [DialOperator(operator, f"qop{m.attempt}")]
    return actions


def connecting(m: QueueMachine, t: float, operator: str = OP1, **found) -> list[object]:
    """`operator` offered and answering at `t`: the caller hears "connecting", they the whisper."""
    offered(m, t, operator)
    actions = m.handle(OperatorFound(t, operator, **found))
    assert m.state is QueueState.CONNECTING
    return actions


def own_number(m: QueueMachine, t: float) -> list[object]:
    """1 then # at `t`: "the number I am calling from", said at once."""
    m.handle(DigitPressed(t, "1"))
    return m.handle(DigitPressed(t, "#"))


def at_menu() -> QueueMachine:
    m = waiting()
    for t in (26.0, 46.0):
        check_in(m, t)
        finish(m, now=t + 4)
    m.handle(TimerFired(60.0))
    finish(m, now=66.0)
    return m


# --- entering the queue ------------------------------------------------------------------------
def test_given_a_caller_when_entering_then_why_place_and_estimate_then_music():
    m = QueueMachine("c1", CALLER, SETTINGS)

    actions = m.handle(QueueEntered(0.0, 3, ABOUT_4, operators=2))

    p = play(actions)
    assert p.media == ("sound:etiquette/all-operators-busy", "sound:etiquette/queue-position",
                       "number:3", "sound:etiquette/queue-wait-about", "number:4",
                       "sound:etiquette/minutes")
    assert not of(actions, StartMusic)  # never music before the words
    entered = notes(actions)["queue entered"]
    assert entered["position"] == 3 and entered["estimate_seconds"] == 230.0
    assert entered["estimate"] == "minutes" and entered["estimate_minutes"] == 4
    assert finish(m, now=6.0) == [StartMusic()]
    assert m.get_timer() == 26.0 and m.offer_at == 60.0


def test_given_next_in_line_and_no_estimate_when_entering_then_no_number_said():
    m = QueueMachine("c1", CALLER, SETTINGS)

    p = play(m.handle(QueueEntered(0.0, 1, WaitEstimate("none", None, None, "too-few-samples"),
                                   operators=1)))

    assert p.media == ("sound:etiquette/all-operators-busy", "sound:etiquette/queue-next-in-line")


def test_given_less_than_a_minute_when_entering_then_said_so():
    m = QueueMachine("c1", CALLER, SETTINGS)

    p = play(m.handle(QueueEntered(0.0, 2, WaitEstimate("less-than-a-minute", None, 40.0,
                                                        "samples"), operators=2)))

    assert p.media[-1] == "sound:etiquette/queue-wait-under-a-minute"


def test_given_no_operator_logged_in_when_entering_then_told_and_way_out_at_once():
    m = QueueMachine("c1", CALLER, SETTINGS)

    actions = m.handle(QueueEntered(0.0, 1, WaitEstimate("none", None, None, "no-operator"),
                                    operators=0))

    assert play(actions).media == ("sound:etiquette/queue-no-operator",
                                   "sound:etiquette/queue-way-out-menu")
    assert m.state is QueueState.OFFERING
    # 1 (keep waiting) is not offered: not a choice
    finish(m, now=8.0)
    assert play(m.handle(DigitPressed(9.0, "1"))).media[0] == "sound:etiquette/invalid-choice"


@pytest.mark.parametrize("why, prompt", [("closed", "queue-closed"), ("full", "queue-full")])
def test_given_overflow_when_refused_then_told_why_and_offered_voicemail_or_callback(why, prompt):
    m = QueueMachine("c1", CALLER, SETTINGS)

    actions = m.handle(QueueRefused(0.0, why, ("sound:etiquette/hours",)))

    assert play(actions).media == (f"sound:etiquette/{prompt}", "sound:etiquette/hours",
                                   "sound:etiquette/queue-way-out-menu")
    assert notes(actions)["overflow"]["why"] == why
    # no key at all: the default, a callback to the caller ID
    finish(m, now=5.0)
    m.handle(TimerFired(9.0))
    finish(m, now=12.0)
    assert of(m.handle(TimerFired(17.0)), KeepPlace) == [KeepPlace(CALLER, True, "default")]


# --- check-ins -----------------------------------------------------------------------------
def test_given_waiting_when_check_ins_then_start_to_start_and_varied():
    m = waiting()
    prompts = []
    t = 26.0
    for _ in range(4):
        assert m.get_timer() == pytest.approx(t)
        actions = check_in(m, t)
        assert actions[0] == StopMusic()
        prompts.append(play(actions).prompt)
        assert finish(m, now=t + 5) == [StartMusic()]
        t += 20
        m.offer_at = 1000.0  # keep the menu out of this test
    assert all(a != b for a, b in zip(prompts, prompts[1:]))
    assert set(prompts) <= {"queue-checkin-still-1", "queue-checkin-still-2",
                            "queue-checkin-still-3"}


def test_given_position_changed_when_check_in_then_new_place_said_once():
    m = waiting()

    actions = check_in(m, 26.0, 2)
    assert play(actions).media[-1] == "number:2"
    assert play(actions).prompt.startswith("queue-checkin-moved")
    assert notes(actions)["check-in"]["position"] == 2
    finish(m, now=30.0)

    again = play(check_in(m, 46.0, 2))
    assert again.prompt.startswith("queue-checkin-still")


def test_given_the_place_later_twice_when_check_ins_then_said_plainly_in_turn():
    m = waiting()  # 3rd when entering

    first = play(check_in(m, 26.0, 4))
    finish(m, now=30.0)
    second = play(check_in(m, 50.0, 5))
    assert {first.prompt, second.prompt} == {"queue-checkin-place-1", "queue-checkin-place-2"}
    assert (first.media[-1], second.media[-1]) == ("number:4", "number:5")


def test_given_first_in_line_when_check_in_then_next_in_line():
    m = waiting()

    assert play(check_in(m, 26.0, 1)).prompt.startswith("queue-checkin-next")


@pytest.mark.parametrize("answered, kind, said", [
    (2, "moved", ("number:2",)),
    (1, "next", ()),
    (3, "still", ()),
    (4, "place", ("number:4",)),  # put behind someone: never "you have moved up"
], ids=["moved", "next", "still", "moved back"])
def test_given_a_check_in_due_when_the_place_is_answered_then_that_place_is_said(
        answered, kind, said):
    m = waiting()  # 3rd when entering
    m.handle(PositionChanged(10.0, 5))  # news between check-ins: the answer at the check-in wins

    asked = m.handle(TimerFired(26.0))
    assert asked == [LookUpPosition()]  # the music goes on while the place is looked up
    assert m.get_timer() is None and m.playing is None
    actions = m.handle(PositionChanged(26.2, answered))

    assert actions[0] == StopMusic()
    p = play(actions)
    assert p.prompt.startswith(f"queue-checkin-{kind}")
    assert p.media == (f"sound:etiquette/{p.prompt}", *said)
    assert notes(actions)["check-in"] == {"prompt": p.prompt, "position": answered,
                                          "waited": 26, "due_at": 26.0}
    assert m.told_position == answered and not m.checking_in


def test_given_the_place_unknown_when_check_in_then_the_last_place_stands():
    m = waiting()
    check_in(m, 26.0, 2)
    finish(m, now=30.0)

    m.handle(TimerFired(46.0))
    actions = m.handle(PositionChanged(46.1, None))  # Redis did not answer

    assert play(actions).prompt.startswith("queue-checkin-still")
    assert notes(actions)["check-in"]["position"] == 2 and m.position == 2


def test_given_waiting_when_position_changed_unasked_then_nothing_said_until_the_check_in():
    m = waiting()

    assert m.handle(PositionChanged(10.0, 2)) == []
    assert m.state is QueueState.WAITING and m.get_timer() == 26.0
    assert m.handle(PositionChanged(11.0, None)) == [] and m.position == 2


def test_given_a_long_check_in_when_it_ends_then_two_seconds_of_music_first():
    m = waiting()
    check_in(m, 26.0)
    finish(m, now=47.0)

    assert m.get_timer() == 49.0


# --- the threshold menu --------------------------------------------------------------------
def test_given_the_threshold_when_reached_then_menu_with_the_place_kept():
    m = waiting()
    for t in (26.0, 46.0):
        check_in(m, t)
        finish(m, now=t + 4)

    actions = m.handle(TimerFired(60.0))

    assert actions[0] == StopMusic()
    assert play(actions).prompt == "queue-menu"
    assert notes(actions)["threshold offered"] == {"waited": 60, "offer": 1, "position": 3,
                                                   "final": False}


def test_given_no_key_at_the_first_offer_when_repeat_and_timeout_then_keep_waiting():
    m = at_menu()
    assert m.get_timer() == 70.0
    repeat = m.handle(TimerFired(70.0))
    assert "menu repeated" in notes(repeat)
    finish(m, now=76.0)
    assert m.get_timer() == 81.0  # at most 5 s of silence

    actions = m.handle(TimerFired(81.0))

    assert notes(actions)["queue choice"] == {"choice": "keep waiting", "chosen": "default"}
    assert StartMusic() in actions and m.offer_at == 120.0


def test_given_key_1_when_menu_then_keep_waiting_until_the_next_threshold():
    m = at_menu()

    actions = m.handle(DigitPressed(67.0, "1"))

    assert StartMusic() in actions and m.state is QueueState.WAITING
    assert m.offer_at == 120.0 and m.next_check_in == 87.0


def test_given_max_wait_when_offered_and_no_key_then_the_policy_default_callback():
    m = at_menu()
    m.handle(DigitPressed(67.0, "1"))
    m.offer_at = None
    m.handle(DigitPressed(68.0, "5"))  # keys while waiting do nothing
    m.offer_at = m._next_offer(118.0)
    assert m.offer_at == 120.0
    m.next_check_in = 500.0
    m.handle(TimerFired(120.0))
    finish(m, now=126.0)
    m.handle(DigitPressed(127.0, "1"))
    assert m.offer_at == 150.0  # the max wait comes before the next threshold (180)
    m.next_check_in = 500.0

    offer = m.handle(TimerFired(150.0))
    assert notes(offer)["threshold offered"]["final"] is True
    finish(m, now=156.0)
    m.handle(TimerFired(160.0))
    finish(m, now=166.0)
    actions = m.handle(TimerFired(171.0))

    assert of(actions, KeepPlace) == [KeepPlace(CALLER, True, "default")]
    assert m.state is QueueState.KEEPING_PLACE


def test_given_max_wait_and_voicemail_default_when_no_key_then_voicemail_for_the_department():
    settings = replace(SETTINGS, default_after_max_wait="voicemail", max_wait=60)
    m = waiting(settings)
    check_in(m, 26.0); finish(m, now=30.0)  # noqa: E702
    check_in(m, 46.0); finish(m, now=50.0)  # noqa: E702
    m.handle(TimerFired(60.0)); finish(m, now=66.0)  # noqa: E702
    m.handle(TimerFired(70.0)); finish(m, now=76.0)  # noqa: E702

    actions = m.handle(TimerFired(81.0))

    assert of(actions, Finish) == [Finish("voicemail", {"for": "billing", "waited": 81})]


def test_given_key_2_when_menu_then_voicemail_for_the_department():
    m = at_menu()

    actions = m.handle(DigitPressed(67.0, "2"))

    assert of(actions, Finish) == [Finish("voicemail", {"for": "billing", "waited": 67})]
    assert notes(actions)["queue choice"] == {"choice": "voicemail", "chosen": "caller"}


def test_given_key_3_and_1_when_menu_then_place_kept_for_the_caller_id():
    m = at_menu()
    ask = m.handle(DigitPressed(67.0, "3"))
    assert play(ask).prompt == "callback-own-number"
    finish(m, now=70.0)

    assert m.handle(DigitPressed(71.0, "1")) == []
    assert m.get_timer() == 73.0  # a 1 that nothing follows is their own number
    actions = m.handle(TimerFired(73.0))
    assert of(actions, KeepPlace) == [KeepPlace(CALLER, True, "caller")]

    said = m.handle(PlaceKept(73.5, ("sound:etiquette/callback-window-prefix",)))
    assert play(said).media == ("sound:etiquette/queue-place-kept",
                                "sound:etiquette/callback-window-prefix",
                                "sound:etiquette/goodbye")
    assert notes(said)["place kept"]["position"] == 3
    assert of(finish(m, now=80.0), Finish) == [Finish("callback", {"waited": 80})]


def test_given_a_typed_number_refused_when_hash_then_said_and_asked_again():
    m = at_menu()
    m.handle(DigitPressed(67.0, "3"))
    finish(m, now=70.0)
    m.handle(DigitPressed(70.5, "2"))  # not 1: typing a number
    for d in "900555":
        m.handle(DigitPressed(71.0, d))

    actions = m.handle(DigitPressed(72.0, "#"))

    assert play(actions).prompt == "callback-number-refused"
    assert "callback number refused" in notes(actions)


def test_given_a_refused_callback_when_the_queue_answers_then_voicemail():
    m = at_menu()
    m.handle(DigitPressed(67.0, "3"))
    own_number(m, 68.0)

    actions = m.handle(PlaceNotKept(69.0, "number refused"))

    assert of(actions, Finish)[0].outcome == "voicemail"


# --- the queue: joining ----------------------------------------------------------------------
def test_given_a_caller_handed_to_the_queue_when_joining_then_put_in_line_once():
    m = QueueMachine("c1", CALLER, SETTINGS)

    assert m.handle(QueueJoin(0.0)) == [JoinQueue()]
    assert m.state is QueueState.ANNOUNCING and m.get_timer() is None
    m.handle(QueueEntered(0.1, 3, ABOUT_4, operators=2, arrival=-30.0))
    assert m.handle(QueueJoin(0.2)) == []  # a replayed hand-off: already in line
    assert m.arrival == -30.0 and m.entered_at == 0.1  # a returning caller's old place


def test_given_a_new_caller_when_entered_then_their_place_is_now():
    m = waiting()

    assert m.arrival == 0.0


# --- an operator offered (ringing) ------------------------------------------------------------
def test_given_waiting_when_operator_offered_then_dialled_and_the_caller_waits_on():
    m = waiting()

    actions = m.handle(OperatorOffered(20.0, OP1))

    assert of(actions, DialOperator) == [DialOperator(OP1, "qop1")]
    assert notes(actions)["operator offered"] == {"operator": OP1, "attempt": 1, "waited": 20}
    assert not of(actions, StopMusic) and not of(actions, Play)  # music on while it rings
    assert m.state is QueueState.WAITING and m.get_timer() == 26.0
    assert (m.operator, m.leg, m.answered) == (OP1, "qop1", False)


def test_given_an_operator_ringing_when_check_ins_fall_due_then_they_go_on():
    m = waiting()
    offered(m, 20.0)

    actions = check_in(m, 26.0, 2)

    assert actions[0] == StopMusic() and play(actions).media[-1] == "number:2"
    assert finish(m, now=30.0) == [StartMusic()]
    assert m.get_timer() == 46.0 and m.operator == OP1


def test_given_an_operator_ringing_when_another_is_offered_then_the_other_released():
    m = waiting()
    offered(m, 20.0)

    actions = m.handle(OperatorOffered(21.0, OP2))

    assert of(actions, ReleaseOperator) == [ReleaseOperator(OP2)]
    assert not of(actions, DialOperator) and m.operator == OP1


@pytest.mark.parametrize("missed, after", [(True, "missed"), (False, "unused")],
                         ids=["rang-out", "busy"])
def test_given_an_operator_ringing_when_missed_then_released_and_put_back_in_line(missed, after):
    m = waiting()
    offered(m, 20.0)

    actions = m.handle(OperatorMissed(40.0, OP1, missed=missed, why="no answer"))

    assert actions[1:] == [ReleaseOperator(OP1, after), PutBack()]
    assert notes(actions)["operator missed"] == {"operator": OP1, "missed": missed,
                                                 "why": "no answer"}
    assert (m.operator, m.leg) == (None, None)
    # the caller keeps waiting as before: music, the same check-ins, the next offer a new leg
    assert m.state is QueueState.WAITING and m.get_timer() == 26.0
    assert m.handle(OperatorOffered(41.0, OP2))[-1] == DialOperator(OP2, "qop2")


def test_given_an_operator_ringing_when_another_operator_missed_then_nothing():
    m = waiting()
    offered(m, 20.0)

    assert m.handle(OperatorMissed(40.0, OP2, missed=True)) == []
    assert m.operator == OP1


def test_given_no_operator_offered_when_operator_found_then_nothing():
    m = waiting()

    assert m.handle(OperatorFound(20.0, OP1)) == []
    assert m.state is QueueState.WAITING


def test_given_an_operator_ringing_when_caller_takes_a_way_out_then_the_operator_let_go():
    m = at_menu()
    offered(m, 66.5)

    actions = m.handle(DigitPressed(67.0, "2"))

    assert actions[-4:] == [HangUpOperator("qop1"), ReleaseOperator(OP1), LeaveLine(),
                            Finish("voicemail", {"for": "billing", "waited": 67})]


def test_given_an_operator_ringing_when_callback_chosen_then_let_go_before_the_place_is_kept():
    m = at_menu()
    m.handle(DigitPressed(67.0, "3"))
    finish(m, now=67.4)  # "1 for the number you are calling from"
    offered(m, 67.5)

    assert m.handle(DigitPressed(68.0, "1")) == []
    actions = m.handle(DigitPressed(68.2, "#"))

    assert actions == [HangUpOperator("qop1"), ReleaseOperator(OP1),
                       KeepPlace(CALLER, True, "caller")]
    # that leg's end reports nothing more: the operator went back once
    assert m.handle(OperatorMissed(68.5, OP1)) == []
    assert m.handle(OperatorFound(68.5, OP1)) == []


@pytest.mark.parametrize("state", ["keeping_place", "connecting"])
def test_given_no_more_waiting_when_operator_offered_then_released(state):
    if state == "keeping_place":
        m = at_menu()
        m.handle(DigitPressed(67.0, "3"))
        own_number(m, 68.0)
    else:
        m = waiting()
        connecting(m, 68.0)

    actions = m.handle(OperatorOffered(69.0, OP2))

    assert of(actions, ReleaseOperator) == [ReleaseOperator(OP2)]
    assert not of(actions, DialOperator)
    assert notes(actions)["operator released"] == {"operator": OP2, "state": state}


# --- an operator found (answered) -------------------------------------------------------------
def test_given_waiting_when_operator_found_then_connecting_and_whisper_then_connected():
    m = waiting()
    offered(m, 120.0)

    actions = m.handle(OperatorFound(125.0, OP1, calling_again=True, last_topic="invoice"))

    assert actions[0] == StopMusic()
    assert play(actions).prompt == "queue-connecting"
    [w] = of(actions, Whisper)
    assert (w.operator, w.department, w.waited, w.party) == (OP1, "billing", 125, OPERATOR)
    assert w.last_topic == "invoice"
    assert w.media == ("sound:etiquette/queue-whisper", "sound:etiquette/directory-billing",
                       "sound:etiquette/queue-whisper-waited", "number:2",
                       "sound:etiquette/minutes", "sound:etiquette/queue-whisper-calling-again")
    assert m.get_timer() is None and m.answered
    assert finish(m, "queue-connecting", 127.0) == []
    done = m.handle(PromptFinished(128.0, "queue-whisper", w.tag, OPERATOR))
    assert of(done, Finish) == [Finish("connected", {"operator": OP1, "leg": "qop1",
                                                     "waited": 128, "queue": "sales"})]
    assert notes(done)["connected"] == {"operator": OP1, "waited": 128, "queue": "sales",
                                        "within_service_level": False,
                                        "estimate_error": round(128 - ABOUT_4.seconds, 1)}
    assert m.state is QueueState.ENDED


def test_given_connecting_when_the_whisper_ends_first_then_connected_after_the_caller_heard():
    m = waiting()
    actions = connecting(m, 30.0)
    [w] = of(actions, Whisper)
    tag = play(actions).tag

    assert m.handle(PromptFinished(32.0, "queue-whisper", w.tag, OPERATOR)) == []
    assert m.handle(PromptFinished(32.5, "queue-whisper", w.tag, OPERATOR)) == []  # a repeat
    done = m.handle(PromptFinished(33.0, "queue-connecting", tag))

    assert of(done, Finish)[0].data["leg"] == "qop1"


def test_given_a_check_in_playing_when_operator_found_then_it_stops():
    m = waiting()
    check_in(m, 26.0)

    actions = connecting(m, 27.0)

    assert isinstance(actions[0], StopPlayback)
    assert not of(actions, StopMusic)  # the check-in had stopped it
    assert of(actions, Whisper)[0].media[-1] == "sound:etiquette/queue-whisper-waited-short"


def test_given_the_place_being_looked_up_when_operator_found_then_music_stops_first():
    m = waiting()
    m.handle(TimerFired(26.0))  # LookUpPosition: the music still plays

    actions = connecting(m, 26.1)

    assert actions[0] == StopMusic()
    assert play(actions).prompt == "queue-connecting"
    assert not m.checking_in
    assert m.handle(PositionChanged(26.2, 1)) == []  # the late answer says nothing


def test_given_a_menu_playing_when_operator_found_then_it_stops_and_no_choice_awaited():
    m = waiting()
    for t in (26.0, 46.0):
        check_in(m, t)
        finish(m, now=t + 4)
    m.handle(TimerFired(60.0))

    actions = connecting(m, 61.0)

    assert actions[0] == StopPlayback("queue-menu", "q4")
    assert m.get_timer() is None and m.choice_deadline is None
    assert m.handle(DigitPressed(62.0, "2")) == []  # keys while connecting mean nothing


def test_given_connecting_when_operator_leaves_then_back_to_music():
    m = waiting()
    connecting(m, 30.0)

    actions = m.handle(OperatorHungUp(31.0))

    assert StartMusic() in actions and m.state is QueueState.WAITING
    assert ReleaseOperator(OP1) in actions and actions[-1] == PutBack()
    assert "operator left before connect" in notes(actions)
    assert (m.operator, m.leg, m.answered) == (None, None, False)
    assert m.handle(OperatorOffered(40.0, OP2))[-1] == DialOperator(OP2, "qop2")


def test_given_connecting_when_operator_missed_reported_late_then_nothing():
    m = waiting()
    connecting(m, 30.0)

    assert m.handle(OperatorMissed(31.0, OP1, missed=True)) == []
    assert m.state is QueueState.CONNECTING


# --- hanging up ------------------------------------------------------------------------------
def test_given_waiting_when_caller_hangs_up_then_abandoned_with_wait_and_position():
    m = waiting()
    m.handle(PositionChanged(30.0, 2))

    actions = m.handle(CallerHungUp(42.0))

    assert notes(actions)["abandoned"] == {"waited": 42, "position": 2, "queue": "sales"}
    assert of(actions, LeaveLine) == [LeaveLine(abandoned=True, waited=42, position=2)]
    assert of(actions, Finish) == [Finish("abandoned", {"waited": 42, "position": 2})]
    assert not of(actions, HangUpOperator)
    assert m.handle(CallerHungUp(43.0)) == []  # after the end: a no-op


def test_given_an_operator_ringing_when_caller_hangs_up_then_operator_let_go_and_abandoned():
    m = waiting()
    check_in(m, 26.0, 1)
    finish(m, now=30.0)
    offered(m, 35.0)

    actions = m.handle(CallerHungUp(38.0))

    assert [a for a in actions if not isinstance(a, Note)] == [
        HangUpOperator("qop1"), ReleaseOperator(OP1),
        LeaveLine(abandoned=True, waited=38, position=1),
        Finish("abandoned", {"waited": 38, "position": 1})]
    assert m.state is QueueState.ENDED and m.outcome == "abandoned"
    assert m.handle(OperatorMissed(39.0, OP1)) == []  # the leg's end: the call is over


def test_given_the_whisper_playing_when_caller_hangs_up_then_operator_leg_hung_up():
    m = waiting()
    connecting(m, 30.0)

    actions = m.handle(CallerHungUp(31.0))

    assert actions[:2] == [HangUpOperator("qop1"), ReleaseOperator(OP1)]
    assert of(actions, Finish)[0].outcome == "abandoned"


def test_given_place_kept_when_caller_hangs_up_then_not_an_abandon():
    m = at_menu()
    m.handle(DigitPressed(67.0, "3"))
    own_number(m, 68.0)

    actions = m.handle(CallerHungUp(69.0))

    assert of(actions, Finish) == [Finish("callback", {"waited": 69})]
    assert not of(actions, LeaveLine)  # the entry is the callback now


def test_given_key_2_when_menu_then_out_of_line_for_good_not_abandoned():
    m = at_menu()

    actions = m.handle(DigitPressed(67.0, "2"))

    assert of(actions, LeaveLine) == [LeaveLine()]
    assert notes(actions)["queue left"] == {"outcome": "voicemail", "waited": 67}
    assert m.state is QueueState.ENDED and m.outcome == "voicemail"


# --- the rest ------------------------------------------------------------------------------
def test_given_another_rules_event_when_handled_then_refused():
    from ari_app.hold.machine import DigitPressed as HoldDigit

    with pytest.raises(InvalidQueueEvent):
        QueueMachine("c1").handle(HoldDigit(0.0, "1"))


def test_given_a_machine_when_snapshot_round_trips_then_equal():
    m = at_menu()

    assert QueueMachine.from_dict(m.to_dict()) == m


@pytest.mark.parametrize("through_json", [False, True], ids=["dict", "json"])
def test_given_an_operator_ringing_when_snapshot_restored_then_continues_identically(
        through_json):
    original = waiting()
    check_in(original, 26.0, 2)
    original.handle(OperatorOffered(27.0, OP1))  # ringing while the check-in plays

    snapshot = original.to_dict()
    if through_json:
        snapshot = json.loads(json.dumps(snapshot))
    restored = QueueMachine.from_dict(snapshot)
    assert restored == original
    assert (restored.operator, restored.leg, restored.attempt) == (OP1, "qop1", 1)

    script = [OperatorFound(29.0, OP1, calling_again=True),
              PromptFinished(30.0, "queue-connecting", "q3"),
              PromptFinished(31.0, "queue-whisper", "q3w", OPERATOR)]
    for event in script:
        assert restored.handle(event) == original.handle(event)
        assert restored.to_dict() == original.to_dict()
        assert restored.get_timer() == original.get_timer()
    assert restored.outcome == "connected" and restored.state is QueueState.ENDED


@pytest.mark.parametrize("count, language, media", [
    (3, "en", ("number:3", "sound:etiquette/minutes")),
    (2, "ru", ("sound:etiquette/count-2f", "sound:etiquette/minutes-few")),
    (21, "ru", ("number:20", "sound:etiquette/count-1f", "sound:etiquette/minute")),
    (12, "ru", ("number:12", "sound:etiquette/minutes")),
    (5, "ru", ("number:5", "sound:etiquette/minutes")),
])
def test_given_minutes_when_said_then_russian_feminine_one_and_two(count, language, media):
    assert minutes_media(count, language) == media
