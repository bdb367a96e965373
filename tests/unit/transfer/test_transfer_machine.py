"""TransferMachine: events in (each with `now`), actions out, one deadline.

Fake clock in the aioquic way: `now` starts at 0.0, is moved by hand, and timers are fired by
jumping to `get_timer()`. No event loop, no mocks.

The timeline most tests share (SETTINGS: ring 20 s, 6 s to choose, 8 s to accept, menus said
once more after 4 s without a key, check-in every 25 s):
    0.0  TransferRequested     -> transfer-announce to the caller (t1)
   10.0  announcement ends     -> no key by 14.0: the menu once more
   12.0  caller presses 1      -> transfer-expect (t2), the target dialed (ring deadline 34.0);
                                  announced: operator-freed-transfer to the operator (t3)
   14.0  operator prompt ends  -> HangUpOperator (announced)
   15.0  expect ends           -> music, first check-in 40.0 (the ring deadline comes first)
   20.0  target answers        -> announced: transfer-intro-to-target (t4); attended: consult
   26.0  intro ends            -> no key by 30.0: the target's menu once more
   28.0  target presses 1      -> transfer-connecting to the caller (t5)
   31.0  connecting ends       -> connected
"""

import json
from dataclasses import replace

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.hold.machine import DigitPressed as HoldDigitPressed
from ari_app.transfer.machine import (
    CALLER,
    OPERATOR,
    TARGET,
    AnnounceRecording,
    CallerHungUp,
    CancelRequested,
    CompleteRequested,
    ConnectTarget,
    DetachCaller,
    DialTarget,
    DigitPressed,
    EndConsultation,
    Finish,
    HangUpOperator,
    HangUpTarget,
    InvalidTransferEvent,
    Note,
    OperatorHungUp,
    Play,
    PromptFinished,
    ReattachCaller,
    StartConsultation,
    StartMusic,
    StopMusic,
    StopPlayback,
    TargetAnswered,
    TargetFailed,
    TargetHungUp,
    TimerFired,
    TransferMachine,
    TransferRequested,
    TransferSettings,
    TransferState,
    TransferTarget,
)

CALL = "call-1"
LEG = "call-1~tx1"
NUMBER = "+12125550123"
TARGET_ENTRY = TransferTarget("billing", "PJSIP/billing", "directory-billing", "+12125554100")
DIGITS = "digits:12125554100"
SETTINGS = TransferSettings(ring_timeout=20.0, choice_timeout=6.0, accept_timeout=8.0,
                            check_in_interval=25.0, recording_notice=True,
                            complete_code="*2", cancel_code="*8")
ANNOUNCE_END = 10.0
MENU_REPEAT_AT = 14.0  # no key within menu_repeat_after (4 s): the caller's menu once more
MENU_REPEAT_END = 17.0
CHOICE_DEADLINE = 22.0  # the repeat ended at 17.0; then choice_timeout, at most 5 s of silence
CHOSE_AT = 12.0
RING_DEADLINE = 34.0  # 12.0 + 20 s ring + 2 s for Asterisk's own timeout to come first
EXPECT_END = 15.0
FIRST_CHECK_IN = 40.0
ANSWER_AT = 20.0
INTRO_END = 26.0
INTRO_REPEAT_AT = 30.0  # no key within 4 s: the target's menu once more
INTRO_REPEAT_END = 32.0
ACCEPT_DEADLINE = 37.0  # the repeat ended at 32.0; then accept_timeout, at most 5 s of silence


def m(*prompts: str) -> tuple[str, ...]:
    """The media of etiquette prompts."""
    return tuple(f"sound:etiquette/{p}" for p in prompts)


ANNOUNCE_MEDIA = (*m("transfer-announce", "directory-billing", "transfer-why",
                     "transfer-direct-number"), DIGITS, *m("transfer-menu"))
EXPECT = Play("transfer-expect", m("transfer-expect", "transfer-thanks"), "t2", CALLER)
MENU_AGAIN = [Note("menu repeated", (("party", CALLER), ("prompt", "transfer-announce"))),
              Play("transfer-announce", m("transfer-menu"), "t2", CALLER)]
INTRO_AGAIN = [Note("menu repeated", (("party", TARGET), ("prompt", "transfer-intro-to-target"))),
               Play("transfer-intro-to-target", m("transfer-target-menu"), "t5", TARGET)]
UNAVAILABLE_INTRO = (*m("transfer-unavailable", "transfer-direct-number-again"), DIGITS)
BACK_MEDIA = (*m("transfer-unavailable", "transfer-direct-number-again"), DIGITS,
              *m("transfer-back-to-operator"))


def ended_note(outcome: str, cause: str | None = None) -> Note:
    return Note("transfer ended", (("outcome", outcome), ("cause", cause)))


def unavailable(cause: str) -> list[object]:
    """How a transfer with nobody to go back to ends."""
    return [ended_note("unavailable", cause),
            Finish("unavailable", {"intro": UNAVAILABLE_INTRO, "for_whom": "billing"})]


def make(**settings) -> TransferMachine:
    return TransferMachine(CALL, settings=replace(SETTINGS, **settings), target_leg=LEG)


def request(now: float = 0.0, **kwargs) -> TransferRequested:
    kwargs.setdefault("target", TARGET_ENTRY)
    kwargs.setdefault("reason", "question")
    kwargs.setdefault("reason_prompt", "transfer-reason-question")
    kwargs.setdefault("caller_number", NUMBER)
    return TransferRequested(now, **kwargs)


def operator_keys(machine: TransferMachine, now: float, keys: str) -> list[object]:
    actions: list[object] = []
    for key in keys:
        actions = machine.handle(DigitPressed(now, OPERATOR, key))
        now += 0.5
    return actions


# --- states, reached the way a real transfer reaches them -------------------------------------
def announcing(mode: str = "announced", **settings) -> TransferMachine:
    """Transfer requested at 0.0: transfer-announce (t1) playing to the caller."""
    machine = make(**settings)
    machine.handle(request(0.0, mode=mode))
    assert machine.state is TransferState.ANNOUNCING
    return machine


def announced(mode: str = "announced", **settings) -> TransferMachine:
    """The announcement ended at 10.0: with no key by 14.0, the menu is said once more."""
    machine = announcing(mode, **settings)
    assert machine.handle(PromptFinished(ANNOUNCE_END, "transfer-announce", "t1", CALLER)) == []
    assert machine.get_timer() == MENU_REPEAT_AT
    return machine


def announced_again(mode: str = "announced", **settings) -> TransferMachine:
    """No key by 14.0: the menu (only the question) said once more (t2), ended at 17.0: the
    caller has until 22.0, then no key continues."""
    machine = announced(mode, **settings)
    assert machine.handle(TimerFired(MENU_REPEAT_AT)) == MENU_AGAIN
    assert machine.get_timer() is None  # the last wait counts from the repeat's end
    assert machine.handle(PromptFinished(MENU_REPEAT_END, "transfer-announce", "t2", CALLER)) == []
    assert machine.get_timer() == CHOICE_DEADLINE
    return machine


def ringing(mode: str = "announced", **settings) -> TransferMachine:
    """The caller pressed 1 at 12.0: transfer-expect (t2) playing, the target rings until 34.0;
    announced: operator-freed-transfer (t3) playing to the operator."""
    machine = announced(mode, **settings)
    machine.handle(DigitPressed(CHOSE_AT, CALLER, "1"))
    assert machine.state is TransferState.RINGING
    return machine


def waiting(mode: str = "announced", **settings) -> TransferMachine:
    """transfer-expect ended at 15.0: music while the target rings (announced: the operator was
    hung up at 14.0)."""
    machine = ringing(mode, **settings)
    if mode == "announced":
        assert machine.handle(PromptFinished(14.0, "operator-freed-transfer", "t3",
                                             OPERATOR)) == [HangUpOperator()]
    assert machine.handle(PromptFinished(EXPECT_END, "transfer-expect", "t2", CALLER)) == [
        StartMusic()]
    return machine


def checking_in(**settings) -> TransferMachine:
    """Announced, ring timeout 60 s: transfer-checkin-1 (t4) playing to the caller since 40.0."""
    settings.setdefault("ring_timeout", 60.0)
    machine = waiting(**settings)
    assert machine.get_timer() == FIRST_CHECK_IN
    machine.handle(TimerFired(FIRST_CHECK_IN))
    assert machine.playing[CALLER] == ["transfer-checkin-1", "t4"]
    return machine


def introducing(**settings) -> TransferMachine:
    """Announced: the target answered at 20.0, transfer-intro-to-target (t4) playing to them."""
    machine = waiting(**settings)
    machine.handle(TargetAnswered(ANSWER_AT, LEG))
    assert machine.state is TransferState.INTRODUCING
    return machine


def intro_heard(**settings) -> TransferMachine:
    """The introduction ended at 26.0: with no key by 30.0, the target's menu once more."""
    machine = introducing(**settings)
    assert machine.handle(PromptFinished(INTRO_END, "transfer-intro-to-target", "t4", TARGET)) == []
    assert machine.get_timer() == INTRO_REPEAT_AT
    return machine


def intro_heard_again(**settings) -> TransferMachine:
    """No key by 30.0: the target's menu said once more (t5), ended at 32.0: the target has
    until 37.0, then no key is not verified."""
    machine = intro_heard(**settings)
    assert machine.handle(TimerFired(INTRO_REPEAT_AT)) == INTRO_AGAIN
    assert machine.get_timer() == FIRST_CHECK_IN  # only the caller's check-in while it plays
    assert machine.handle(PromptFinished(INTRO_REPEAT_END, "transfer-intro-to-target", "t5",
                                         TARGET)) == []
    assert machine.get_timer() == ACCEPT_DEADLINE
    return machine


def consulting(**settings) -> TransferMachine:
    """Attended: the target answered at 20.0; the operator talks with them, the caller on music."""
    machine = waiting("attended", **settings)
    machine.handle(TargetAnswered(ANSWER_AT, LEG))
    assert machine.state is TransferState.CONSULTING
    return machine


def connecting(**settings) -> TransferMachine:
    """Announced: the target pressed 1 at 28.0: transfer-connecting (t5) playing to the caller."""
    machine = intro_heard(**settings)
    machine.handle(DigitPressed(28.0, TARGET, "1"))
    assert machine.state is TransferState.CONNECTING
    return machine


def returning(**settings) -> TransferMachine:
    """Attended, nobody answered by 34.0: transfer-back-to-operator (t4) playing to the caller,
    transfer-failed-operator (t3) to the operator."""
    machine = waiting("attended", **settings)
    machine.handle(TimerFired(RING_DEADLINE))
    assert machine.state is TransferState.RETURNING
    return machine


def ended(**settings) -> TransferMachine:
    machine = waiting(**settings)
    machine.handle(CallerHungUp(20.0))
    assert machine.state is TransferState.ENDED
    return machine


# --- step 1 and 2: the announcement -------------------------------------------------------------
def test_given_target_with_direct_number_when_transfer_requested_then_caller_detached_and_told_to_whom_why_the_number_and_menu():
    machine = make()

    actions = machine.handle(request(0.0, source="feature-code"))

    assert actions == [
        Note("transfer started", (("target", "billing"), ("mode", "announced"),
                                  ("reason", "question"), ("source", "feature-code"))),
        DetachCaller(),
        Play("transfer-announce", ANNOUNCE_MEDIA, "t1", CALLER),
    ]
    assert machine.state is TransferState.ANNOUNCING
    assert machine.get_timer() is None
    assert machine.started_at == 0.0


def test_given_target_without_direct_number_when_transfer_requested_then_no_number_said():
    machine = make()
    target = replace(TARGET_ENTRY, direct_number="")

    actions = machine.handle(request(0.0, target=target))

    assert actions[-1] == Play("transfer-announce",
                               m("transfer-announce", "directory-billing", "transfer-why",
                                 "transfer-menu"), "t1", CALLER)
    assert not any(media.startswith("digits:") for media in actions[-1].media)


def test_given_number_without_plus_when_transfer_requested_then_same_digits():
    machine = make()

    actions = machine.handle(request(0.0, target=replace(TARGET_ENTRY, direct_number="4100")))

    assert "digits:4100" in actions[-1].media


def test_given_second_transfer_of_the_call_when_requested_then_breach_noted():
    machine = make()

    actions = machine.handle(request(0.0, transfers_before=1))

    assert actions[:2] == [
        Note("transfer started", (("target", "billing"), ("mode", "announced"),
                                  ("reason", "question"), ("source", "rest"))),
        Note("breach", (("what", "caller transferred again"), ("transfer_number", 2))),
    ]
    assert actions[2:] == [DetachCaller(), Play("transfer-announce", ANNOUNCE_MEDIA, "t1", CALLER)]


def test_given_first_transfer_when_requested_then_no_breach():
    machine = make()

    actions = machine.handle(request(0.0))

    assert not any(isinstance(a, Note) and a.event == "breach" for a in actions)


def test_given_transfer_started_when_requested_again_then_harmless_no_op():
    machine = announcing()

    assert machine.handle(request(1.0, mode="attended")) == []
    assert machine.mode == "announced"
    assert machine.started_at == 0.0
    assert machine.playing[CALLER] == ["transfer-announce", "t1"]


def test_given_announcement_playing_when_time_passes_then_no_timer():
    machine = announcing()

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(500.0)) == []
    assert machine.state is TransferState.ANNOUNCING


def test_given_announcement_playing_when_it_finishes_then_menu_repeat_armed_after_4s():
    machine = announcing()

    assert machine.handle(PromptFinished(ANNOUNCE_END, "transfer-announce", "t1", CALLER)) == []
    assert machine.get_timer() == ANNOUNCE_END + 4.0
    assert CALLER not in machine.playing


def test_given_announced_when_no_key_within_4s_then_only_the_menu_said_once_more():
    machine = announced()
    assert machine.handle(TimerFired(MENU_REPEAT_AT - 0.5)) == []

    actions = machine.handle(TimerFired(MENU_REPEAT_AT))

    assert actions == MENU_AGAIN
    assert machine.state is TransferState.ANNOUNCING
    assert machine.playing[CALLER] == ["transfer-announce", "t2"]
    assert machine.get_timer() is None  # nothing counts while the menu is said


def test_given_menu_said_again_when_it_ends_then_choice_timeout_from_its_end():
    machine = announced_again()

    assert machine.get_timer() == MENU_REPEAT_END + 5.0  # choice_timeout 6 s: at most 5 s


def test_given_short_choice_timeout_when_menu_said_again_then_that_timeout_from_its_end():
    machine = announced(choice_timeout=3.0)
    machine.handle(TimerFired(MENU_REPEAT_AT))

    machine.handle(PromptFinished(MENU_REPEAT_END, "transfer-announce", "t2", CALLER))

    assert machine.get_timer() == MENU_REPEAT_END + 3.0


def test_given_menu_repeat_after_setting_when_announcement_ends_then_repeat_due_that_long_after():
    machine = announcing(menu_repeat_after=2.5)

    machine.handle(PromptFinished(ANNOUNCE_END, "transfer-announce", "t1", CALLER))

    assert machine.get_timer() == ANNOUNCE_END + 2.5


def test_given_menu_said_again_when_caller_presses_2_during_it_then_it_is_stopped_and_declined():
    machine = announced()
    machine.handle(TimerFired(MENU_REPEAT_AT))

    actions = machine.handle(DigitPressed(15.0, CALLER, "2"))

    assert actions[:2] == [StopPlayback("transfer-announce", "t2", CALLER),
                           Note("transfer choice", (("choice", "stay"),))]
    assert actions[-1] == Finish("declined", {"for_whom": "billing"})


def test_given_menu_said_again_when_caller_presses_1_during_it_then_it_is_stopped_and_rings():
    machine = announced()
    machine.handle(TimerFired(MENU_REPEAT_AT))

    actions = machine.handle(DigitPressed(15.0, CALLER, "1"))

    assert actions[:3] == [StopPlayback("transfer-announce", "t2", CALLER),
                           Note("transfer choice", (("choice", "continue"), ("key", "1"))),
                           Play("transfer-expect", m("transfer-expect", "transfer-thanks"), "t3",
                                CALLER)]
    assert machine.state is TransferState.RINGING
    assert machine.handle(PromptFinished(15.1, "transfer-announce", "t2", CALLER)) == []


# --- the caller's choice ------------------------------------------------------------------------
def test_given_announced_when_caller_presses_1_then_told_what_to_expect_target_dialed_and_operator_freed():
    machine = announced()

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "1"))

    assert actions == [
        Note("transfer choice", (("choice", "continue"), ("key", "1"))),
        EXPECT,
        DialTarget("PJSIP/billing", 20),
        Note("target dialed", (("endpoint", "PJSIP/billing"),)),
        Play("operator-freed-transfer", m("operator-freed-transfer"), "t3", OPERATOR),
    ]
    assert machine.state is TransferState.RINGING
    assert machine.get_timer() == RING_DEADLINE
    assert machine.operator_present is False


def test_given_announcement_still_playing_when_caller_presses_1_then_announcement_stopped():
    machine = announcing()

    actions = machine.handle(DigitPressed(5.0, CALLER, "1"))

    assert actions[:2] == [StopPlayback("transfer-announce", "t1", CALLER),
                           Note("transfer choice", (("choice", "continue"), ("key", "1")))]
    assert machine.state is TransferState.RINGING
    assert machine.get_timer() == 5.0 + 22.0


def test_given_announcement_stopped_when_its_finish_arrives_then_ignored():
    machine = announcing()
    machine.handle(DigitPressed(5.0, CALLER, "1"))

    assert machine.handle(PromptFinished(5.1, "transfer-announce", "t1", CALLER)) == []
    assert machine.state is TransferState.RINGING
    assert machine.get_timer() == 27.0  # no choice deadline came back
    assert machine.playing[CALLER] == ["transfer-expect", "t2"]


def test_given_menu_said_again_when_choice_deadline_passes_with_no_key_then_transfer_continues():
    machine = announced_again()
    assert machine.handle(TimerFired(CHOICE_DEADLINE - 0.5)) == []
    now = machine.get_timer()
    assert now == CHOICE_DEADLINE

    actions = machine.handle(TimerFired(now))

    assert actions[:4] == [
        Note("transfer choice", (("choice", "continue"), ("key", None))),
        replace(EXPECT, tag="t3"),
        DialTarget("PJSIP/billing", 20),
        Note("target dialed", (("endpoint", "PJSIP/billing"),)),
    ]
    assert machine.state is TransferState.RINGING
    assert machine.get_timer() == CHOICE_DEADLINE + 22.0


def test_given_announced_when_caller_presses_2_then_declined_operator_told_and_caller_back():
    machine = announced()

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "2"))

    assert actions == [
        Note("transfer choice", (("choice", "stay"),)),
        ReattachCaller(),
        Play("transfer-declined-operator", m("transfer-declined-operator"), "t2", OPERATOR),
        ended_note("declined"),
        Finish("declined", {"for_whom": "billing"}),
    ]
    assert machine.state is TransferState.ENDED
    assert machine.outcome == "declined"
    assert machine.get_timer() is None


def test_given_announcement_playing_when_caller_presses_2_then_announcement_stopped_and_declined():
    machine = announcing()

    actions = machine.handle(DigitPressed(4.0, CALLER, "2"))

    assert actions[0] == StopPlayback("transfer-announce", "t1", CALLER)
    assert actions[-1] == Finish("declined", {"for_whom": "billing"})


def test_given_operator_left_when_caller_presses_2_then_operator_gone():
    machine = announcing()
    assert machine.handle(OperatorHungUp(5.0)) == [
        Note("operator left", (("during", "announcing"),))]
    machine.handle(PromptFinished(ANNOUNCE_END, "transfer-announce", "t1", CALLER))

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "2"))

    assert actions == [
        Note("transfer choice", (("choice", "stay"),)),
        ended_note("operator-gone"),
        Finish("operator-gone", {"intro": m("operator-gone"), "for_whom": "billing"}),
    ]
    assert machine.outcome == "operator-gone"


def test_given_announced_when_caller_presses_3_then_message_for_the_target():
    machine = announced()

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "3"))

    assert actions == [
        Note("transfer choice", (("choice", "message"),)),
        ended_note("message"),
        Finish("message", {"for_whom": "billing"}),
    ]
    assert machine.state is TransferState.ENDED
    assert machine.get_timer() is None


def test_given_operator_left_when_caller_continues_then_no_operator_prompt():
    machine = announced()
    machine.handle(OperatorHungUp(11.0))

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "1"))

    assert not any(isinstance(a, Play) and a.party == OPERATOR for a in actions)
    assert actions[-1] == Note("target dialed", (("endpoint", "PJSIP/billing"),))


# --- step 3: ringing, music, check-ins ----------------------------------------------------------
def test_given_announced_ringing_when_operator_prompt_ends_then_operator_hung_up():
    machine = ringing()

    assert machine.handle(PromptFinished(14.0, "operator-freed-transfer", "t3", OPERATOR)) == [
        HangUpOperator()]
    assert OPERATOR not in machine.playing
    assert machine.handle(OperatorHungUp(14.5)) == []  # that was us


def test_given_attended_when_caller_presses_1_then_operator_stays_and_is_not_told():
    machine = announced("attended")

    actions = machine.handle(DigitPressed(CHOSE_AT, CALLER, "1"))

    assert actions == [
        Note("transfer choice", (("choice", "continue"), ("key", "1"))),
        EXPECT,
        DialTarget("PJSIP/billing", 20),
        Note("target dialed", (("endpoint", "PJSIP/billing"),)),
    ]
    assert machine.operator_present is True


def test_given_ringing_when_expect_prompt_ends_then_music_and_ring_deadline_before_check_in():
    machine = ringing()
    machine.handle(PromptFinished(14.0, "operator-freed-transfer", "t3", OPERATOR))

    assert machine.handle(PromptFinished(EXPECT_END, "transfer-expect", "t2", CALLER)) == [
        StartMusic()]
    assert machine.music is True
    assert machine.next_check_in == FIRST_CHECK_IN
    assert machine.get_timer() == RING_DEADLINE


def test_given_long_ring_when_check_in_due_then_music_stopped_and_caller_checked_on():
    machine = waiting(ring_timeout=60.0)
    now = machine.get_timer()
    assert now == FIRST_CHECK_IN

    actions = machine.handle(TimerFired(now))

    assert actions == [StopMusic(), Play("transfer-checkin-1", m("transfer-checkin-1"), "t4", CALLER),
                       Note("check-in", (("prompt", "transfer-checkin-1"), ("waited", 40),
                                          ("due_at", FIRST_CHECK_IN)))]
    assert machine.music is False
    assert machine.get_timer() == CHOSE_AT + 62.0  # only the ring deadline is left


def test_given_check_in_playing_when_it_finishes_then_music_resumes_and_next_check_in_25s_after_it_started():
    machine = checking_in()

    assert machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t4", CALLER)) == [StartMusic()]
    assert machine.state is TransferState.RINGING
    assert machine.get_timer() == FIRST_CHECK_IN + 25.0  # start to start, not 44.0 + 25


def test_given_check_in_longer_than_the_interval_when_it_finishes_then_next_one_after_2s_of_music():
    machine = checking_in()

    assert machine.handle(PromptFinished(FIRST_CHECK_IN + 27.0, "transfer-checkin-1", "t4", CALLER)) == [
        StartMusic()]
    assert machine.get_timer() == FIRST_CHECK_IN + 27.0 + 2.0  # never before it finished


def test_given_check_in_and_other_prompts_when_check_ins_come_then_start_to_start_only_after_a_check_in():
    machine = waiting(ring_timeout=200.0)
    starts = []
    for length in (6.0, 3.0, 9.0):
        now = machine.get_timer()
        machine.handle(TimerFired(now))
        starts.append(now)
        machine.handle(PromptFinished(now + length, *machine.playing[CALLER], CALLER))

    # the first 25 s after the music started (15.0), the others 25 s start to start
    assert starts == [EXPECT_END + 25.0, EXPECT_END + 50.0, EXPECT_END + 75.0]
    assert machine.get_timer() == EXPECT_END + 100.0


def test_given_check_in_playing_when_old_prompt_finish_arrives_then_ignored():
    machine = checking_in()

    assert machine.handle(PromptFinished(41.0, "transfer-expect", "t2", CALLER)) == []
    assert machine.handle(PromptFinished(41.0, "transfer-checkin-1", "t1", CALLER)) == []  # an old tag
    assert machine.music is False
    assert machine.playing[CALLER] == ["transfer-checkin-1", "t4"]


def test_given_very_long_ring_when_check_ins_come_then_prompts_vary_in_turn_and_wait_grows():
    machine = waiting(ring_timeout=200.0)
    prompts, waited = [], []

    for _ in range(5):
        now = machine.get_timer()
        actions = machine.handle(TimerFired(now))
        play = next(a for a in actions if isinstance(a, Play))
        prompts.append(play.prompt)
        waited.extend(dict(a.data)["waited"] for a in actions if isinstance(a, Note))
        assert machine.handle(PromptFinished(now + 4.0, play.prompt, play.tag, CALLER)) == [
            StartMusic()]

    assert prompts == ["transfer-checkin-1", "transfer-checkin-2", "transfer-checkin-3", "transfer-checkin-1", "transfer-checkin-2"]
    assert waited == [40, 65, 90, 115, 140]  # every 25 s, start to start


def test_given_music_when_timer_fired_early_then_nothing_happens():
    machine = waiting(ring_timeout=60.0)

    assert machine.handle(TimerFired(FIRST_CHECK_IN - 1.0)) == []
    assert machine.music is True
    assert machine.get_timer() == FIRST_CHECK_IN


# --- step 4, announced: the target is introduced -------------------------------------------------
def test_given_announced_ringing_when_target_answers_then_told_who_calls_why_and_the_menu():
    machine = waiting()

    actions = machine.handle(TargetAnswered(ANSWER_AT, LEG))

    assert actions == [
        Note("target answered", (("channel", LEG),)),
        Play("transfer-intro-to-target",
             (*m("transfer-intro-to-target"), "digits:12125550123",
              *m("transfer-reason-question", "transfer-target-menu")), "t4", TARGET),
    ]
    assert machine.state is TransferState.INTRODUCING
    assert machine.target_channel == LEG
    assert machine.get_timer() == FIRST_CHECK_IN  # the caller keeps their music and check-ins


def test_given_unknown_caller_and_no_reason_when_target_answers_then_caller_unknown_and_no_reason():
    machine = make()
    machine.handle(request(0.0, caller_number="", reason=None, reason_prompt=None))
    machine.handle(DigitPressed(1.0, CALLER, "1"))

    actions = machine.handle(TargetAnswered(5.0, LEG))

    assert actions[-1].media == m("transfer-intro-to-target", "transfer-caller-unknown",
                                  "transfer-target-menu")


def test_given_introduction_ended_when_target_presses_1_then_caller_thanked_and_connected():
    machine = intro_heard()

    actions = machine.handle(DigitPressed(28.0, TARGET, "1"))

    assert actions == [
        Note("target accepted", ()),
        StopMusic(),
        Play("transfer-connecting", m("transfer-connecting"), "t5", CALLER),
    ]
    assert machine.state is TransferState.CONNECTING
    assert machine.get_timer() is None


def test_given_introduction_playing_when_target_presses_1_then_introduction_stopped_and_accepted():
    machine = introducing()

    actions = machine.handle(DigitPressed(22.0, TARGET, "1"))

    assert actions[:2] == [StopPlayback("transfer-intro-to-target", "t4", TARGET),
                           Note("target accepted", ())]
    assert machine.state is TransferState.CONNECTING


def test_given_connecting_when_prompt_ends_then_target_connected_caller_back_and_recording_announced():
    machine = connecting()

    actions = machine.handle(PromptFinished(31.0, "transfer-connecting", "t5", CALLER))

    assert actions == [ConnectTarget(), ReattachCaller(), AnnounceRecording(),
                       ended_note("connected"), Finish("connected", {"for_whom": "billing"})]
    assert machine.state is TransferState.ENDED
    assert machine.outcome == "connected"
    assert machine.target_channel == LEG
    assert machine.get_timer() is None


def test_given_no_recording_notice_when_connected_then_no_announcement():
    machine = connecting(recording_notice=False)

    actions = machine.handle(PromptFinished(31.0, "transfer-connecting", "t5", CALLER))

    assert actions == [ConnectTarget(), ReattachCaller(), ended_note("connected"),
                       Finish("connected", {"for_whom": "billing"})]
    assert not any(isinstance(a, AnnounceRecording) for a in actions)


def test_given_introduction_ended_when_target_presses_2_then_failed_and_unavailable_with_number_again():
    machine = intro_heard()

    actions = machine.handle(DigitPressed(28.0, TARGET, "2"))

    assert actions == [
        Note("transfer failed", (("cause", "declined by the target"),)),
        HangUpTarget(),
        StopMusic(),
        *unavailable("declined by the target"),
    ]
    assert machine.state is TransferState.ENDED
    assert machine.outcome == "unavailable"
    assert machine.failure == "declined by the target"


def test_given_introduction_ended_when_no_key_within_4s_then_only_the_target_menu_said_once_more():
    machine = intro_heard()
    assert machine.handle(TimerFired(INTRO_REPEAT_AT - 0.5)) == []

    assert machine.handle(TimerFired(INTRO_REPEAT_AT)) == INTRO_AGAIN
    assert machine.state is TransferState.INTRODUCING
    assert machine.playing[TARGET] == ["transfer-intro-to-target", "t5"]


def test_given_target_menu_said_again_when_target_presses_1_during_it_then_stopped_and_accepted():
    machine = intro_heard()
    machine.handle(TimerFired(INTRO_REPEAT_AT))

    actions = machine.handle(DigitPressed(31.0, TARGET, "1"))

    assert actions[:2] == [StopPlayback("transfer-intro-to-target", "t5", TARGET),
                           Note("target accepted", ())]
    assert machine.state is TransferState.CONNECTING


def test_given_target_menu_said_again_when_no_key_within_accept_timeout_then_not_verified_and_unavailable():
    machine = intro_heard_again()
    assert machine.handle(TimerFired(ACCEPT_DEADLINE - 0.5)) == []

    actions = machine.handle(TimerFired(machine.get_timer()))

    assert actions == [
        Note("transfer failed", (("cause", "not verified (no key)"),)),
        HangUpTarget(),
        StopMusic(),
        *unavailable("not verified (no key)"),
    ]
    assert machine.get_timer() is None


def test_given_introduction_playing_when_time_passes_then_no_accept_deadline_yet():
    machine = introducing()

    assert machine.deadline is None
    assert machine.get_timer() == FIRST_CHECK_IN


def test_given_introduction_ended_when_target_presses_another_key_then_ignored():
    machine = intro_heard()

    assert machine.handle(DigitPressed(27.0, TARGET, "5")) == []
    assert machine.state is TransferState.INTRODUCING
    assert machine.get_timer() == INTRO_REPEAT_AT


def test_given_introducing_when_target_hangs_up_then_unavailable_without_hanging_up_again():
    machine = intro_heard()

    actions = machine.handle(TargetHungUp(27.0))

    assert actions == [Note("transfer failed", (("cause", "target hung up"),)), StopMusic(),
                       *unavailable("target hung up")]
    assert machine.target_channel is None


def test_given_connecting_when_target_hangs_up_then_caller_told_unavailable():
    machine = connecting()

    actions = machine.handle(TargetHungUp(29.0))

    assert actions == [
        Note("transfer failed", (("cause", "target hung up before connecting"),)),
        StopPlayback("transfer-connecting", "t5", CALLER),
        *unavailable("target hung up before connecting"),
    ]


def test_given_check_in_playing_when_target_accepts_then_check_in_stopped_before_connecting():
    machine = checking_in()
    machine.handle(TargetAnswered(41.0, LEG))
    machine.handle(PromptFinished(45.0, "transfer-intro-to-target", "t5", TARGET))

    actions = machine.handle(DigitPressed(46.0, TARGET, "1"))

    assert actions == [Note("target accepted", ()), StopPlayback("transfer-checkin-1", "t4", CALLER),
                       Play("transfer-connecting", m("transfer-connecting"), "t6", CALLER)]


def test_given_check_in_ended_while_introducing_then_music_resumes():
    machine = checking_in()
    machine.handle(TargetAnswered(41.0, LEG))

    assert machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t4", CALLER)) == [StartMusic()]
    assert machine.state is TransferState.INTRODUCING


# --- step 5, announced: failures never go back to the freed operator ------------------------------
def test_given_announced_ringing_when_target_fails_then_unavailable_with_direct_number_again():
    machine = waiting()

    actions = machine.handle(TargetFailed(18.0, "busy"))

    assert actions == [Note("transfer failed", (("cause", "busy"),)), HangUpTarget(), StopMusic(),
                       *unavailable("busy")]
    assert machine.state is TransferState.ENDED
    assert actions[-1].data["for_whom"] == "billing"


def test_given_announced_ringing_when_ring_deadline_passes_then_no_answer_and_unavailable():
    machine = waiting()
    now = machine.get_timer()
    assert now == RING_DEADLINE

    actions = machine.handle(TimerFired(now))

    assert actions == [Note("transfer failed", (("cause", "no answer"),)), HangUpTarget(),
                       StopMusic(), *unavailable("no answer")]


def test_given_announced_ringing_when_target_leg_ends_then_no_answer_without_hanging_up():
    machine = waiting()

    actions = machine.handle(TargetHungUp(25.0))

    assert actions == [Note("transfer failed", (("cause", "no answer"),)), StopMusic(),
                       *unavailable("no answer")]


def test_given_dial_fails_at_once_when_operator_not_yet_told_they_are_free_then_operator_hung_up_anyway():
    # a dial that fails at once ends the transfer before operator-freed-transfer ends; no
    # PromptFinished is handled after the end, so the operator is freed with the failure
    machine = ringing()

    actions = machine.handle(TargetFailed(12.1, "unreachable"))

    assert actions == [
        Note("transfer failed", (("cause", "unreachable"),)),
        HangUpTarget(),
        StopPlayback("transfer-expect", "t2", CALLER),
        HangUpOperator(),
        *unavailable("unreachable"),
    ]


def test_given_operator_already_hung_up_by_us_when_transfer_fails_then_not_hung_up_twice():
    machine = waiting()

    actions = machine.handle(TargetFailed(18.0, "busy"))

    assert HangUpOperator() not in actions


# --- step 4, attended: the consultation ----------------------------------------------------------
def test_given_attended_ringing_when_target_answers_then_consultation_starts():
    machine = waiting("attended")

    actions = machine.handle(TargetAnswered(ANSWER_AT, LEG))

    assert actions == [Note("target answered", (("channel", LEG),)), StartConsultation()]
    assert machine.state is TransferState.CONSULTING
    assert machine.get_timer() == FIRST_CHECK_IN  # no deadline, the caller's check-ins go on


def test_given_consultation_when_operator_keys_complete_code_then_operator_leaves_and_caller_connected():
    machine = consulting()

    assert machine.handle(DigitPressed(22.0, OPERATOR, "*")) == []
    actions = machine.handle(DigitPressed(22.5, OPERATOR, "2"))

    assert actions == [
        Note("transfer completed", (("source", "feature-code"),)),
        EndConsultation(False),
        HangUpOperator(),
        StopMusic(),
        Play("transfer-connecting", m("transfer-connecting"), "t3", CALLER),
    ]
    assert machine.state is TransferState.CONNECTING
    assert machine.operator_present is False
    assert machine.handle(PromptFinished(25.0, "transfer-connecting", "t3", CALLER)) == [
        ConnectTarget(), ReattachCaller(), AnnounceRecording(), ended_note("connected"),
        Finish("connected", {"for_whom": "billing"})]


def test_given_consultation_when_complete_requested_by_rest_then_same_as_the_code():
    machine = consulting()

    actions = machine.handle(CompleteRequested(22.0))

    assert actions == [
        Note("transfer completed", (("source", "rest"),)),
        EndConsultation(False),
        HangUpOperator(),
        StopMusic(),
        Play("transfer-connecting", m("transfer-connecting"), "t3", CALLER),
    ]


def test_given_consultation_when_other_keys_before_the_code_then_code_still_recognised():
    machine = consulting()

    actions = operator_keys(machine, 22.0, "13*2")

    assert actions[0] == Note("transfer completed", (("source", "feature-code"),))


def test_given_custom_codes_when_operator_keys_them_then_they_count():
    machine = consulting(complete_code="#1", cancel_code="#0")

    assert operator_keys(machine, 22.0, "*2") == []
    assert machine.state is TransferState.CONSULTING
    assert operator_keys(machine, 23.0, "#1")[0] == Note("transfer completed",
                                                         (("source", "feature-code"),))


def test_given_consultation_when_operator_keys_cancel_code_then_target_dropped_and_caller_back():
    machine = consulting()

    actions = operator_keys(machine, 22.0, "*8")

    assert actions == [
        Note("transfer cancelled", (("source", "feature-code"),)),
        EndConsultation(True),
        HangUpTarget(),
        StopMusic(),
        ReattachCaller(),
        ended_note("returned"),
        Finish("returned", {"for_whom": "billing"}),
    ]
    assert machine.state is TransferState.ENDED
    assert machine.target_channel is None
    assert machine.get_timer() is None


def test_given_consultation_when_cancel_requested_by_rest_then_returned():
    machine = consulting()

    actions = machine.handle(CancelRequested(22.0))

    assert actions == [
        Note("transfer cancelled", (("source", "rest"),)),
        EndConsultation(True),
        HangUpTarget(),
        StopMusic(),
        ReattachCaller(),
        ended_note("returned"),
        Finish("returned", {"for_whom": "billing"}),
    ]


def test_given_consultation_when_operator_hangs_up_then_transfer_completes():
    machine = consulting()

    actions = machine.handle(OperatorHungUp(22.0))

    assert actions == [
        Note("operator left", (("during", "consultation"),)),
        EndConsultation(False),
        Note("transfer completed", (("source", "operator hung up"),)),
        StopMusic(),
        Play("transfer-connecting", m("transfer-connecting"), "t3", CALLER),
    ]
    assert machine.state is TransferState.CONNECTING
    assert machine.handle(PromptFinished(25.0, "transfer-connecting", "t3", CALLER))[-1] == Finish(
        "connected", {"for_whom": "billing"})


def test_given_consultation_when_target_hangs_up_then_operator_back_and_caller_returning():
    machine = consulting()

    actions = machine.handle(TargetHungUp(22.0))

    assert actions == [
        Note("transfer failed", (("cause", "target hung up"),)),
        EndConsultation(True),
        StopMusic(),
        Play("transfer-failed-operator", m("transfer-failed-operator"), "t3", OPERATOR),
        Play("transfer-back-to-operator", BACK_MEDIA, "t4", CALLER),
    ]
    assert machine.state is TransferState.RETURNING


def test_given_consultation_when_check_in_due_then_caller_checked_on():
    machine = consulting()

    actions = machine.handle(TimerFired(machine.get_timer()))

    assert actions[:2] == [StopMusic(), Play("transfer-checkin-1", m("transfer-checkin-1"), "t3", CALLER)]
    assert machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t3", CALLER)) == [StartMusic()]
    assert machine.state is TransferState.CONSULTING


def test_given_consultation_when_caller_or_target_keys_then_ignored():
    machine = consulting()

    assert machine.handle(DigitPressed(22.0, CALLER, "2")) == []
    assert machine.handle(DigitPressed(22.0, TARGET, "1")) == []
    assert machine.state is TransferState.CONSULTING


# --- a long consultation: the caller's way out ---------------------------------------------------
WAY_OUT_AT = 72.0  # way_out_after 60 s from the target's dial at 12.0
WAY_OUT_MEDIA = m("transfer-way-out", "operator-gone-menu")
LEFT_OPERATOR = Play("transfer-caller-left-operator", m("transfer-caller-left-operator"), "t6",
                     OPERATOR)
LEFT_TARGET = Play("transfer-caller-left-target", m("transfer-caller-left-target"), "t7", TARGET)


def offered_way_out(**settings) -> TransferMachine:
    """Consulting since 20.0, way out after 60 s: check-ins at 40.0 (t3) and 65.0 (t4), each
    4 s; on music again at 69.0, the offer (t5) at 72.0, ended at 80.0."""
    settings.setdefault("way_out_after", 60.0)
    machine = consulting(**settings)
    for start, prompt, tag in ((FIRST_CHECK_IN, "transfer-checkin-1", "t3"),
                               (65.0, "transfer-checkin-2", "t4")):
        assert machine.get_timer() == start
        assert machine.handle(TimerFired(start))[1] == Play(prompt, m(prompt), tag, CALLER)
        assert machine.handle(PromptFinished(start + 4.0, prompt, tag, CALLER)) == [StartMusic()]
    assert machine.get_timer() == WAY_OUT_AT

    assert machine.handle(TimerFired(WAY_OUT_AT)) == [
        StopMusic(), Play("transfer-way-out", WAY_OUT_MEDIA, "t5", CALLER),
        Note("way out offered", (("waited", 60),))]
    assert machine.state is TransferState.CONSULTING and machine.get_timer() is None
    assert machine.handle(PromptFinished(80.0, "transfer-way-out", "t5", CALLER)) == [StartMusic()]
    return machine


def leaving(digit: str = "3") -> TransferMachine:
    """The caller pressed `digit` at 85.0: the operator (t6) and the target (t7) are told."""
    machine = offered_way_out()
    machine.handle(DigitPressed(85.0, CALLER, digit))
    assert machine.state is TransferState.LEAVING
    return machine


def caller_left(choice: str) -> list[object]:
    return [ended_note("caller-left"),
            Finish("caller-left", {"for_whom": "billing", "preselect": choice})]


def test_given_a_long_consultation_when_the_way_out_is_due_then_offered_and_no_key_keeps_waiting():
    machine = offered_way_out()

    # no key: the caller keeps waiting; the next check-in, start to start from the offer,
    # says the keys again (a menu never said once and forgotten)
    assert machine.get_timer() == WAY_OUT_AT + 25.0
    actions = machine.handle(TimerFired(WAY_OUT_AT + 25.0))
    assert actions[:2] == [StopMusic(), Play("transfer-checkin-3", m(
        "transfer-checkin-3", "operator-gone-menu"), "t6", CALLER)]
    assert machine.handle(PromptFinished(101.0, "transfer-checkin-3", "t6", CALLER)) == [
        StartMusic()]
    assert machine.state is TransferState.CONSULTING and machine.way_out_offered


def test_given_the_way_out_due_during_a_check_in_then_offered_when_it_ends():
    machine = consulting(way_out_after=30.0)  # due at 42.0, the check-in plays 40.0-44.0
    machine.handle(TimerFired(FIRST_CHECK_IN))
    assert machine.get_timer() is None  # the check-in is said to its end

    assert machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t3", CALLER)) == [
        Play("transfer-way-out", WAY_OUT_MEDIA, "t4", CALLER),
        Note("way out offered", (("waited", 32),))]


def test_given_no_offer_yet_when_caller_keys_2_or_3_then_ignored():
    machine = consulting(way_out_after=60.0)

    assert machine.handle(DigitPressed(30.0, CALLER, "3")) == []
    assert machine.handle(DigitPressed(30.0, CALLER, "2")) == []
    assert machine.state is TransferState.CONSULTING


@pytest.mark.parametrize("digit, choice", [("2", "voicemail"), ("3", "callback")])
def test_given_the_offer_when_caller_chooses_then_consultation_ends_and_both_staff_told(digit,
                                                                                      choice):
    machine = offered_way_out()

    actions = machine.handle(DigitPressed(85.0, CALLER, digit))

    assert actions == [
        Note("transfer choice", (("choice", choice), ("during", "consultation"))),
        EndConsultation(False), LEFT_OPERATOR, LEFT_TARGET]
    assert machine.state is TransferState.LEAVING
    assert machine.get_timer() == 100.0  # at most 15 s for the two goodbyes
    assert machine.handle(PromptFinished(90.0, "transfer-caller-left-operator", "t6",
                                         OPERATOR)) == [HangUpOperator()]
    assert machine.handle(PromptFinished(91.0, "transfer-caller-left-target", "t7",
                                         TARGET)) == [HangUpTarget(), *caller_left(choice)]
    assert machine.state is TransferState.ENDED and machine.outcome == "caller-left"


def test_given_a_snapshot_that_stored_the_way_out_time_when_restored_then_it_is_still_due():
    """Snapshots written before the way out's time was worked out carry `way_out_at`."""
    data = json.loads(json.dumps(consulting(way_out_after=60.0).to_dict()))
    data["way_out_at"] = WAY_OUT_AT

    machine = TransferMachine.from_dict(data)

    assert machine.get_timer() == FIRST_CHECK_IN
    machine.handle(TimerFired(FIRST_CHECK_IN))
    machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t3", CALLER))
    assert machine.get_timer() == 65.0  # the next check-in comes first, then the way out
    machine.handle(TimerFired(65.0))
    machine.handle(PromptFinished(69.0, "transfer-checkin-2", "t4", CALLER))
    assert machine.get_timer() == WAY_OUT_AT


def test_given_the_offer_playing_when_caller_chooses_then_it_stops_and_music_plays():
    machine = consulting(way_out_after=30.0)
    machine.handle(TimerFired(FIRST_CHECK_IN))
    machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t3", CALLER))  # the offer, t4

    actions = machine.handle(DigitPressed(46.0, CALLER, "2"))

    assert actions[1:4] == [StopPlayback("transfer-way-out", "t4", CALLER),
                            EndConsultation(False), StartMusic()]
    assert machine.handle(PromptFinished(46.1, "transfer-way-out", "t4", CALLER)) == []


def test_given_leaving_when_staff_hang_up_first_then_the_caller_left_all_the_same():
    machine = leaving()

    assert machine.handle(OperatorHungUp(86.0)) == [
        Note("operator left", (("during", "leaving"),))]
    assert machine.handle(TargetHungUp(87.0)) == caller_left("callback")


def test_given_leaving_when_a_goodbye_never_ends_then_let_go_at_the_deadline():
    machine = leaving("2")
    machine.handle(PromptFinished(90.0, "transfer-caller-left-operator", "t6", OPERATOR))

    assert machine.handle(TimerFired(100.0)) == [HangUpTarget(), *caller_left("voicemail")]


def test_given_leaving_when_caller_hangs_up_then_both_staff_let_go():
    machine = leaving()

    actions = machine.handle(CallerHungUp(86.0))

    assert HangUpOperator() in actions and HangUpTarget() in actions
    assert actions[-1] == Finish("caller-hung-up")


def test_given_leaving_when_operator_cancels_then_too_late():
    machine = leaving()

    with pytest.raises(InvalidTransferEvent):
        machine.handle(CancelRequested(86.0))
    assert operator_keys(machine, 86.0, "*8") == []
    assert machine.state is TransferState.LEAVING


def test_given_leaving_when_restored_from_a_snapshot_then_it_goes_on():
    machine = leaving()

    again = TransferMachine.from_dict(json.loads(json.dumps(machine.to_dict())))

    assert again.state is TransferState.LEAVING and again.leaving_choice == "callback"
    again.handle(PromptFinished(90.0, "transfer-caller-left-operator", "t6", OPERATOR))
    assert again.handle(PromptFinished(91.0, "transfer-caller-left-target", "t7", TARGET))[-1] \
        == Finish("caller-left", {"for_whom": "billing", "preselect": "callback"})


def test_given_an_announced_transfer_then_no_way_out_while_the_target_rings():
    """Ringing is bounded by ring_timeout and an introduction by accept_timeout: the way out
    is for a consultation only, whose length nobody bounds."""
    machine = checking_in(way_out_after=30.0)

    assert machine.handle(PromptFinished(44.0, "transfer-checkin-1", "t4", CALLER)) == [
        StartMusic()]
    assert machine.get_timer() == 65.0


# --- step 5, attended: back to the operator ------------------------------------------------------
def test_given_attended_ringing_when_target_fails_then_operator_told_and_caller_hears_why_and_the_number():
    machine = waiting("attended")

    actions = machine.handle(TargetFailed(18.0, "busy"))

    assert actions == [
        Note("transfer failed", (("cause", "busy"),)),
        HangUpTarget(),
        StopMusic(),
        Play("transfer-failed-operator", m("transfer-failed-operator"), "t3", OPERATOR),
        Play("transfer-back-to-operator", BACK_MEDIA, "t4", CALLER),
    ]
    assert machine.state is TransferState.RETURNING
    assert machine.get_timer() is None


def test_given_attended_ringing_when_ring_deadline_passes_then_returning():
    machine = waiting("attended")
    assert machine.get_timer() == RING_DEADLINE

    actions = machine.handle(TimerFired(RING_DEADLINE))

    assert actions[:2] == [Note("transfer failed", (("cause", "no answer"),)), HangUpTarget()]
    assert actions[-1] == Play("transfer-back-to-operator", BACK_MEDIA, "t4", CALLER)
    assert machine.state is TransferState.RETURNING


def test_given_returning_when_back_to_operator_prompt_ends_then_returned_to_the_operator():
    machine = returning()

    assert machine.handle(PromptFinished(36.0, "transfer-failed-operator", "t3", OPERATOR)) == []
    actions = machine.handle(PromptFinished(38.0, "transfer-back-to-operator", "t4", CALLER))

    assert actions == [ReattachCaller(), ended_note("returned", "no answer"),
                       Finish("returned", {"for_whom": "billing"})]
    assert machine.state is TransferState.ENDED


def test_given_target_without_direct_number_when_returning_then_no_number_again():
    machine = make()
    machine.handle(request(0.0, mode="attended", target=replace(TARGET_ENTRY, direct_number="")))
    machine.handle(DigitPressed(1.0, CALLER, "1"))

    actions = machine.handle(TargetFailed(3.0, "busy"))

    assert actions[-1].media == m("transfer-unavailable", "transfer-back-to-operator")


def test_given_returning_when_target_answers_late_then_that_leg_hung_up():
    machine = returning()

    assert machine.handle(TargetAnswered(35.0, LEG)) == [HangUpTarget()]
    assert machine.state is TransferState.RETURNING


def test_given_attended_operator_left_while_ringing_when_target_answers_then_introduced_as_announced():
    machine = waiting("attended")
    assert machine.handle(OperatorHungUp(18.0)) == [Note("operator left", (("during", "ringing"),))]

    actions = machine.handle(TargetAnswered(ANSWER_AT, LEG))

    assert actions[-1].party == TARGET and actions[-1].prompt == "transfer-intro-to-target"
    assert machine.state is TransferState.INTRODUCING


def test_given_attended_operator_left_while_ringing_when_target_fails_then_unavailable():
    machine = waiting("attended")
    machine.handle(OperatorHungUp(18.0))

    actions = machine.handle(TargetFailed(19.0, "busy"))

    assert actions == [Note("transfer failed", (("cause", "busy"),)), HangUpTarget(), StopMusic(),
                       *unavailable("busy")]


# --- cancel and complete, where they do not belong -------------------------------------------------
@pytest.mark.parametrize("reach", [announcing, announced, ringing, waiting, introducing,
                                   connecting, returning],
                         ids=lambda f: f.__name__)
def test_given_not_consulting_when_complete_requested_then_invalid_transfer_event(reach):
    machine = reach()
    before = machine.to_dict()

    with pytest.raises(InvalidTransferEvent, match="nothing to complete"):
        machine.handle(CompleteRequested(40.0))
    assert machine.to_dict() == before


@pytest.mark.parametrize("reach", [connecting, returning], ids=lambda f: f.__name__)
def test_given_connecting_or_returning_when_cancel_requested_then_too_late(reach):
    machine = reach()

    with pytest.raises(InvalidTransferEvent, match="too late to cancel"):
        machine.handle(CancelRequested(40.0))


def test_given_attended_ringing_when_cancel_requested_then_target_leg_dropped_and_returned():
    machine = waiting("attended")

    actions = machine.handle(CancelRequested(18.0))

    assert actions == [Note("transfer cancelled", (("source", "rest"),)), HangUpTarget(),
                       StopMusic(), ReattachCaller(), ended_note("returned"),
                       Finish("returned", {"for_whom": "billing"})]


def test_given_announcing_when_cancel_requested_then_announcement_stopped_and_returned():
    machine = announcing()

    actions = machine.handle(CancelRequested(3.0))

    assert actions == [Note("transfer cancelled", (("source", "rest"),)),
                       StopPlayback("transfer-announce", "t1", CALLER), ReattachCaller(),
                       ended_note("returned"), Finish("returned", {"for_whom": "billing"})]


def test_given_announced_operator_freed_when_cancel_requested_then_unavailable():
    machine = intro_heard()

    actions = machine.handle(CancelRequested(27.0))

    assert actions == [Note("transfer cancelled", (("source", "rest"),)), HangUpTarget(),
                       StopMusic(), *unavailable(None)]


# --- the caller hangs up --------------------------------------------------------------------------
def test_given_target_ringing_when_caller_hangs_up_then_target_leg_cancelled():
    machine = waiting()

    actions = machine.handle(CallerHungUp(20.0))

    assert actions == [Note("transfer ended", (("outcome", "caller hung up"),)), HangUpTarget(),
                       Finish("caller-hung-up")]
    assert machine.state is TransferState.ENDED
    assert machine.outcome == "caller-hung-up"


def test_given_announcing_when_caller_hangs_up_then_nothing_to_hang_up():
    machine = announcing()

    assert machine.handle(CallerHungUp(3.0)) == [
        Note("transfer ended", (("outcome", "caller hung up"),)), Finish("caller-hung-up")]


def test_given_consultation_when_caller_hangs_up_then_consultation_ends_and_target_dropped():
    machine = consulting()

    actions = machine.handle(CallerHungUp(22.0))

    assert actions == [Note("transfer ended", (("outcome", "caller hung up"),)),
                       EndConsultation(), HangUpTarget(), Finish("caller-hung-up")]


def test_given_connecting_when_caller_hangs_up_then_target_hung_up():
    machine = connecting()

    assert machine.handle(CallerHungUp(29.0)) == [
        Note("transfer ended", (("outcome", "caller hung up"),)), HangUpTarget(),
        Finish("caller-hung-up")]


# --- stray events -----------------------------------------------------------------------------
@pytest.mark.parametrize("reach", [announced, consulting, intro_heard], ids=lambda f: f.__name__)
def test_given_not_ringing_when_target_failed_then_ignored(reach):
    machine = reach()
    before = machine.to_dict()

    assert machine.handle(TargetFailed(30.0, "busy")) == []
    assert machine.to_dict() == before


def test_given_announcing_when_target_hangs_up_then_ignored():
    machine = announcing()

    assert machine.handle(TargetHungUp(3.0)) == []
    assert machine.state is TransferState.ANNOUNCING


def test_given_ringing_when_caller_presses_keys_then_ignored():
    machine = waiting()
    before = machine.to_dict()

    assert machine.handle(DigitPressed(16.0, CALLER, "2")) == []
    assert machine.handle(DigitPressed(16.0, CALLER, "3")) == []
    assert machine.to_dict() == before


def test_given_prompt_finished_with_no_tag_when_prompt_matches_then_accepted():
    machine = announcing()

    assert machine.handle(PromptFinished(ANNOUNCE_END, "transfer-announce", party=CALLER)) == []
    assert machine.get_timer() == MENU_REPEAT_AT


def test_given_nothing_playing_for_a_party_when_its_prompt_finishes_then_ignored():
    machine = announcing()

    assert machine.handle(PromptFinished(2.0, "transfer-intro-to-target", "t1", TARGET)) == []
    assert machine.handle(PromptFinished(2.0, "operator-freed-transfer", "t1", OPERATOR)) == []


# --- ended ------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    TransferRequested(30.0, TARGET_ENTRY), PromptFinished(30.0, "transfer-expect", "t2", CALLER),
    DigitPressed(30.0, CALLER, "2"), TimerFired(RING_DEADLINE), TargetAnswered(30.0, LEG),
    TargetFailed(30.0, "busy"), TargetHungUp(30.0), CallerHungUp(30.0), OperatorHungUp(30.0),
    CompleteRequested(30.0), CancelRequested(30.0)], ids=lambda e: type(e).__name__)
def test_given_transfer_ended_when_any_event_then_no_op(event):
    machine = ended()
    before = machine.to_dict()

    assert machine.handle(event) == []
    assert machine.to_dict() == before


@pytest.mark.parametrize("reach, event", [
    (announced, DigitPressed(CHOSE_AT, CALLER, "3")),
    (waiting, TargetFailed(18.0, "busy")),
    (consulting, CompleteRequested(22.0)),
], ids=["message", "unavailable", "connected"])
def test_given_transfer_finished_by_the_rule_then_no_timer_left(reach, event):
    machine = reach()
    actions = machine.handle(event)
    if machine.state is TransferState.CONNECTING:
        actions = machine.handle(PromptFinished(25.0, "transfer-connecting", "t3", CALLER))

    assert isinstance(actions[-1], Finish)
    assert machine.state is TransferState.ENDED
    assert machine.get_timer() is None
    assert machine.music is False


# --- logging and the public view -----------------------------------------------------------------
def test_given_announced_transfer_when_it_goes_through_then_transitions_logged():
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        machine = intro_heard()
        machine.handle(DigitPressed(28.0, TARGET, "1"))
        machine.handle(PromptFinished(31.0, "transfer-connecting", "t5", CALLER))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "transfer transition"]
    assert transitions == [("announcing", "ringing"), ("ringing", "introducing"),
                           ("introducing", "connecting"), ("connecting", "ended")]


def test_given_failed_transfer_when_public_dict_then_status_target_and_failure():
    machine = waiting()
    machine.handle(TargetFailed(18.0, "busy"))

    assert machine.to_public_dict() == {
        "status": "ended", "target": "billing", "mode": "announced", "reason": "question",
        "started_at": 0.0, "outcome": "unavailable", "failure": "busy"}


def test_given_new_machine_when_public_dict_then_no_target_yet():
    assert make().to_public_dict() == {
        "status": "announcing", "target": None, "mode": "announced", "reason": None,
        "started_at": None, "outcome": None, "failure": None}


# --- persistence ------------------------------------------------------------------------------
def answer(now: float) -> TargetAnswered:
    return TargetAnswered(now, LEG)


def key(party: str, digit: str):
    def press(now: float) -> DigitPressed:
        return DigitPressed(now, party, digit)
    return press


def drive(machine: TransferMachine, now: float, plan: list) -> list[tuple]:
    """Play the rest of the transfer: prompts end 3 s after they start (the caller's first),
    planned events come 1 s apart when nothing plays, timers fire on time. Returns what
    happened at each step."""
    plan, trace = list(plan), []
    for _ in range(100):
        if machine.state is TransferState.ENDED:
            return trace
        if machine.playing:
            party = sorted(machine.playing)[0]
            now += 3.0
            event = PromptFinished(now, *machine.playing[party], party=party)
        elif plan:
            now += 1.0
            event = plan.pop(0)(now)
        else:
            now = max(now, machine.get_timer())
            event = TimerFired(now)
        trace.append((event, machine.handle(event), machine.get_timer(), machine.state))
    raise AssertionError("the transfer never ended")


def consulting_long() -> TransferMachine:
    return consulting(ring_timeout=60.0)


@pytest.mark.parametrize("reach, now, plan", [
    (announcing, 0.0, []),
    (announced, ANNOUNCE_END, [key(CALLER, "1"), answer, key(TARGET, "1")]),
    (announced_again, MENU_REPEAT_END, []),
    (ringing, CHOSE_AT, [answer, key(TARGET, "2")]),
    (waiting, EXPECT_END, [answer, key(TARGET, "1")]),
    (checking_in, FIRST_CHECK_IN, []),
    (introducing, ANSWER_AT, []),
    (intro_heard, INTRO_END, [key(TARGET, "1")]),
    (intro_heard_again, INTRO_REPEAT_END, []),
    (consulting, ANSWER_AT, [key(OPERATOR, "*"), key(OPERATOR, "2")]),
    (consulting_long, ANSWER_AT, [key(OPERATOR, "*"), key(OPERATOR, "8")]),
    (connecting, 28.0, []),
    (returning, RING_DEADLINE, []),
], ids=lambda v: getattr(v, "__name__", None))
def test_given_transfer_stored_mid_way_when_restored_then_it_continues_identically(reach, now, plan):
    original = reach()
    restored = TransferMachine.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original

    expected = drive(original, now, plan)
    actual = drive(restored, now, plan)

    assert actual == expected
    assert isinstance(expected[-1][1][-1], Finish)


def test_given_fresh_machine_when_stored_and_restored_then_equal():
    original = make()

    restored = TransferMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert restored == original
    assert restored.target is None


def test_given_restored_transfer_when_next_prompt_plays_then_tag_continues_after_the_stored_ones():
    machine = TransferMachine.from_dict(json.loads(json.dumps(waiting().to_dict())))

    actions = machine.handle(TargetAnswered(ANSWER_AT, LEG))

    assert actions[-1].tag == "t4"


# --- unknown events ---------------------------------------------------------------------------
@pytest.mark.parametrize("event", [object(), "TimerFired", {"now": 1.0}, Finish("connected")],
                         ids=["object", "str", "dict", "an-output"])
def test_given_transfer_when_unknown_event_then_invalid_transfer_event(event):
    machine = waiting()

    with pytest.raises(InvalidTransferEvent):
        machine.handle(event)


def test_given_transfer_ended_when_unknown_event_then_invalid_transfer_event():
    machine = ended()

    with pytest.raises(InvalidTransferEvent):
        machine.handle(object())


def test_given_transfer_when_hold_machine_event_with_same_name_then_invalid_transfer_event():
    machine = waiting()

    with pytest.raises(InvalidTransferEvent):
        machine.handle(HoldDigitPressed(RING_DEADLINE, "1"))


def test_given_announcement_when_caller_presses_a_key_not_on_the_menu_then_ignored_and_timeout_still_continues():
    machine = announced()

    assert machine.handle(DigitPressed(11.0, CALLER, "9")) == []
    assert machine.state is TransferState.ANNOUNCING
    assert machine.get_timer() == MENU_REPEAT_AT
    machine.handle(TimerFired(MENU_REPEAT_AT))
    machine.handle(PromptFinished(MENU_REPEAT_END, "transfer-announce", "t2", CALLER))
    assert machine.handle(DigitPressed(18.0, CALLER, "9")) == []
    assert machine.get_timer() == CHOICE_DEADLINE
    machine.handle(TimerFired(CHOICE_DEADLINE))
    assert machine.state is TransferState.RINGING


def test_given_back_to_operator_playing_when_operator_hangs_up_then_operator_gone_offer():
    machine = returning()

    actions = machine.handle(OperatorHungUp(36.0))

    assert StopPlayback("transfer-back-to-operator", "t4", CALLER) in actions
    assert actions[-1] == Finish("operator-gone",
                                 {"intro": m("operator-gone"), "for_whom": "billing"})
    assert ReattachCaller() not in actions


def test_given_caller_hung_up_when_asked_for_timer_then_none():
    machine = waiting()
    machine.handle(CallerHungUp(20.0))
    assert machine.get_timer() is None
