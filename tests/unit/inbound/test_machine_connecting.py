"""InboundMachine: a free operator's phone that rings on gets the caller a word in place of the
ringback ("an operator will be with you shortly"), then the ringback again, and while it rings
on another word every `connecting_every`, the two in turn.

Fake clock: `now` is moved by hand and the timer fired by jumping to `get_timer()`.
"""

import pytest

from ari_app.inbound.machine import (
    CONNECTING,
    CONNECTING_AGAIN,
    CONNECTING_TAG,
    CallerHungUp,
    DialOperator,
    FindOperator,
    Finish,
    InboundMachine,
    InboundState,
    NoOperatorFree,
    OperatorAnswered,
    OperatorFailed,
    OperatorFound,
    Play,
    PromptFinished,
    ReleaseOperator,
    Ring,
    StopPlayback,
    StopRinging,
    TimerFired,
)

from test_machine import OP1, OP1_CHANNEL, OP2, TALK, greeted

AFTER = 10.0
EVERY = 25.0
WORD = Play(CONNECTING, tag=CONNECTING_TAG)
AGAIN = Play(CONNECTING_AGAIN, tag=CONNECTING_TAG)


def ringing_since(now: float = 0.0, **kwargs) -> tuple[InboundMachine, float]:
    """Greeted, a free operator found: ringback from the returned `now`."""
    machine = InboundMachine("call-1", connecting_after=AFTER, operator_count=2, **kwargs)
    now = greeted(machine, now)
    assert machine.handle(OperatorFound(now, OP1)) == [Ring(), DialOperator(OP1, 1)]
    return machine, now


def test_given_a_phone_ringing_on_when_connecting_after_passes_then_the_word_then_ringback():
    machine, rang = ringing_since()
    assert machine.get_timer() == rang + AFTER

    assert machine.handle(TimerFired(rang + AFTER)) == [StopRinging(), WORD]
    assert machine.get_timer() is None and machine.state is InboundState.RINGING_OPERATOR

    assert machine.handle(PromptFinished(rang + AFTER + 4.0, CONNECTING)) == [Ring()]
    assert machine.get_timer() is None  # connecting_every 0: no second word however long

    assert machine.handle(OperatorAnswered(rang + 14.0, OP1_CHANNEL)) == [StopRinging(), *TALK]


def test_given_the_word_playing_when_the_operator_answers_then_it_stops_and_they_talk_at_once():
    machine, rang = ringing_since()
    machine.handle(TimerFired(rang + AFTER))

    assert machine.handle(OperatorAnswered(rang + AFTER + 1.0, OP1_CHANNEL)) == [
        StopPlayback(CONNECTING, CONNECTING_TAG), *TALK]
    assert machine.playing is None and not machine.ringing
    # the stopped playback's end changes nothing
    assert machine.handle(PromptFinished(rang + AFTER + 1.2, CONNECTING)) == []


def test_given_an_answer_before_connecting_after_then_no_word():
    machine, rang = ringing_since()

    assert machine.handle(OperatorAnswered(rang + 3.0, OP1_CHANNEL)) == [StopRinging(), *TALK]
    assert machine.get_timer() is None
    assert machine.handle(TimerFired(rang + AFTER)) == []


def test_given_the_first_phone_rang_out_then_counted_from_the_first_ring_across_operators():
    machine, rang = ringing_since()
    now = rang + 4.0
    assert machine.handle(OperatorFailed(now, "no answer", missed=True)) == [
        ReleaseOperator(OP1, "missed"), FindOperator((OP1,))]
    assert machine.handle(OperatorFound(now, OP2)) == [DialOperator(OP2, 2)]  # rings on
    assert machine.get_timer() == rang + AFTER

    assert machine.handle(TimerFired(rang + AFTER)) == [StopRinging(), WORD]


def test_given_the_word_playing_when_the_phone_rings_out_and_the_next_is_found_then_no_ring_over_it():
    machine, rang = ringing_since()
    machine.handle(TimerFired(rang + AFTER))
    now = rang + AFTER + 1.0
    machine.handle(OperatorFailed(now, "no answer", missed=True))

    assert machine.handle(OperatorFound(now, OP2)) == [DialOperator(OP2, 2)]
    assert machine.handle(PromptFinished(now + 3.0, CONNECTING)) == [Ring()]


@pytest.mark.parametrize("word", [False, True], ids=["ringback", "the word"])
def test_given_everybody_rang_out_then_the_ringback_or_the_word_stops_and_the_caller_is_told(word):
    machine, rang = ringing_since()
    stop = [StopRinging()]
    if word:
        machine.handle(TimerFired(rang + AFTER))
        stop = [StopPlayback(CONNECTING, CONNECTING_TAG)]
    now = rang + AFTER + 1.0
    machine.handle(OperatorFailed(now, "no answer", missed=True))
    machine.handle(OperatorFound(now, OP2))

    assert machine.handle(OperatorFailed(now + 4.0, "no answer", missed=True)) == [
        ReleaseOperator(OP2, "missed"), *stop, Play("all-operators-busy")]
    assert machine.state is InboundState.WAITING
    assert machine.connecting_at is None and machine.get_timer() == now + 4.0 + 3.0


def test_given_nobody_free_at_once_then_no_ringback_and_no_word():
    machine = InboundMachine("call-1", connecting_after=AFTER)
    now = greeted(machine)

    assert machine.handle(NoOperatorFree(now)) == [Play("all-operators-busy")]
    assert machine.connecting_at is None


def test_given_connecting_after_0_then_never_said():
    machine = InboundMachine("call-1", connecting_after=0.0)
    now = greeted(machine)
    machine.handle(OperatorFound(now, OP1))

    assert machine.get_timer() is None
    assert machine.handle(TimerFired(now + 60.0)) == []


def test_given_the_caller_hangs_up_during_the_word_then_the_call_ends():
    machine, rang = ringing_since()
    machine.handle(TimerFired(rang + AFTER))

    actions = machine.handle(CallerHungUp(rang + AFTER + 1.0))
    assert machine.state is InboundState.ENDED and isinstance(actions[-1], Finish)


def test_given_a_snapshot_from_before_the_word_then_it_restores_without_one():
    machine, rang = ringing_since()
    data = machine.to_dict()
    for key in ("connecting_after", "connecting_at", "connecting_every", "connecting_said"):
        data.pop(key)

    restored = InboundMachine.from_dict(data)
    assert restored.connecting_at is None and restored.get_timer() is None


def test_given_the_word_due_then_the_snapshot_keeps_it():
    machine, rang = ringing_since()

    restored = InboundMachine.from_dict(machine.to_dict())
    assert restored.get_timer() == rang + AFTER
    assert restored.handle(TimerFired(rang + AFTER)) == [StopRinging(), WORD]


def test_given_connecting_every_when_the_phones_ring_on_then_a_word_every_25_s_the_two_in_turn():
    """Start to start: 10 s, 35 s, 60 s after the first ring, across the operators rung in
    turn; ringback between the words; never the same word twice in a row."""
    machine, rang = ringing_since(connecting_every=EVERY)
    said = []
    for n, at in enumerate((AFTER, AFTER + EVERY, AFTER + 2 * EVERY)):
        assert machine.get_timer() == rang + at
        actions = machine.handle(TimerFired(rang + at))
        assert actions[0] == StopRinging() and actions[1].tag == CONNECTING_TAG
        said.append(actions[1].prompt)
        assert machine.get_timer() == rang + at + EVERY  # due from the word's start
        assert machine.handle(PromptFinished(rang + at + 4.0, actions[1].prompt)) == [Ring()]
        if n == 0:  # the first phone rings out: the next one rings on, the count goes on
            machine.handle(OperatorFailed(rang + 15.0, "no answer", missed=True))
            assert machine.handle(OperatorFound(rang + 15.0, OP2)) == [DialOperator(OP2, 2)]
    assert said == [CONNECTING, CONNECTING_AGAIN, CONNECTING]

    assert machine.handle(OperatorAnswered(rang + 70.0, OP1_CHANNEL)) == [StopRinging(), *TALK]
    assert machine.get_timer() is None


def test_given_the_second_word_playing_when_the_operator_answers_then_it_stops():
    machine, rang = ringing_since(connecting_every=EVERY)
    machine.handle(TimerFired(rang + AFTER))
    machine.handle(PromptFinished(rang + AFTER + 4.0, CONNECTING))
    assert machine.handle(TimerFired(rang + AFTER + EVERY)) == [StopRinging(), AGAIN]

    assert machine.handle(OperatorAnswered(rang + AFTER + EVERY + 1.0, OP1_CHANNEL)) == [
        StopPlayback(CONNECTING_AGAIN, CONNECTING_TAG), *TALK]
    assert machine.get_timer() is None and machine.playing is None


def test_given_the_second_word_due_then_the_snapshot_keeps_which_comes_next():
    machine, rang = ringing_since(connecting_every=EVERY)
    machine.handle(TimerFired(rang + AFTER))
    machine.handle(PromptFinished(rang + AFTER + 4.0, CONNECTING))

    restored = InboundMachine.from_dict(machine.to_dict())
    assert restored.get_timer() == rang + AFTER + EVERY
    assert restored.handle(TimerFired(rang + AFTER + EVERY)) == [StopRinging(), AGAIN]
