"""ComplaintMachine: events in (each with `now`), actions out, no deadline of its own.

Fake clock in the aioquic way: `now` starts at 0.0 and is moved by hand. No event loop, no mocks.
(Named after the hold's `test_hold_machine.py`: tests/unit has no `__init__.py`, so two
`test_machine.py` files would clash on import.)

The timeline most tests share (a 60-minute callback window, 120 s to speak):
    0.0  ComplaintStarted     -> supervisor-unavailable, complaint-record, voicemail-intro, beep (c1)
    9.0  that prompt ends     -> recording
   30.0  the caller presses # -> stop recording
   30.5  recording finished   -> complaint saved, then complaint-saved ... within 60 minutes (c2)
   38.0  that prompt ends     -> back to the operator (or the call ends)
"""

import json

import pytest
import structlog
from structlog.testing import capture_logs

from ari_app.escalation.machine import (
    CallerHungUp,
    ComplaintMachine,
    ComplaintSaved,
    ComplaintStarted,
    ComplaintState,
    DetachCaller,
    DigitPressed,
    Finish,
    InvalidComplaintEvent,
    Note,
    OperatorHungUp,
    Play,
    PromptFinished,
    ReattachCaller,
    RecordingFinished,
    SaveComplaint,
    StartRecording,
    StopRecording,
)
from ari_app.calls.vocabulary import OPERATOR
from ari_app.hold.machine import DigitPressed as HoldDigitPressed
from ari_app.prompts.catalog import minutes_prompt

CALL = "call-1"
WINDOW = 60
TOLD_END = 9.0
HASH_AT = 30.0
RECORDED_AT = 30.5
PROMISE_END = 38.0
TELL_TAG, PROMISE_TAG = "c1", "c2"


def m(*prompts: str) -> tuple[str, ...]:
    """The media of etiquette prompts."""
    return tuple(f"sound:etiquette/{p}" for p in prompts)


TELL = Play("complaint-record", (*m("supervisor-unavailable", "complaint-record",
                                    "voicemail-intro"), "sound:beep"), TELL_TAG)


def promise(minutes: int = WINDOW, word: str = "minutes", *, goodbye: bool = False) -> Play:
    media = (*m("complaint-saved", "supervisor-callback-within"), f"number:{minutes}", *m(word))
    return Play("complaint-saved", media + (m("goodbye") if goodbye else ()), PROMISE_TAG)


def finish_recording(machine: ComplaintMachine, event: RecordingFinished,
                     said: tuple[str, ...] = ()) -> list[object]:
    """The recording ends; the adapter stores the complaint and answers `ComplaintSaved`."""
    actions = machine.handle(event)
    if any(isinstance(a, SaveComplaint) for a in actions):
        actions += machine.handle(ComplaintSaved(event.now, said))
    return actions


SAVED = Note("complaint saved", ())


def told(prompt: str, tag: str = "c3") -> Play:
    """What the operator hears when the caller comes back."""
    return Play(prompt, m(prompt), tag, OPERATOR)


def start(now: float = 0.0, **kwargs) -> ComplaintStarted:
    kwargs.setdefault("window_minutes", WINDOW)
    return ComplaintStarted(now, **kwargs)


# --- states, reached the way a real complaint reaches them ----------------------------------
def telling(**kwargs) -> ComplaintMachine:
    """Started at 0.0: no supervisor, the complaint is recorded, the tone (c1)."""
    machine = ComplaintMachine(CALL)
    machine.handle(start(0.0, **kwargs))
    assert machine.state is ComplaintState.TELLING
    return machine


def recording(**kwargs) -> ComplaintMachine:
    """The tone ended at 9.0: recording."""
    machine = telling(**kwargs)
    assert machine.handle(PromptFinished(TOLD_END, "complaint-record", TELL_TAG)) == [
        StartRecording(machine.max_seconds)]
    assert machine.state is ComplaintState.RECORDING
    return machine


def promising(duration: float = 21.0, saved: bool = True, **kwargs) -> ComplaintMachine:
    """Recording finished at 30.5: complaint-saved ... (c2) playing."""
    machine = recording(**kwargs)
    finish_recording(machine, RecordingFinished(RECORDED_AT, duration, saved))
    assert machine.state is ComplaintState.PROMISING
    return machine


def ended(**kwargs) -> ComplaintMachine:
    machine = promising(**kwargs)
    machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))
    assert machine.state is ComplaintState.ENDED
    return machine


# --- telling ------------------------------------------------------------------------------------
def test_given_no_supervisor_when_complaint_started_then_noted_caller_detached_and_told_with_tone():
    machine = ComplaintMachine(CALL)

    actions = machine.handle(start(0.0, why="outside supervisor hours"))

    assert actions == [Note("complaint started", (("why", "outside supervisor hours"),)),
                       DetachCaller(), TELL]
    assert machine.state is ComplaintState.TELLING
    assert machine.playing == "complaint-record" and machine.playing_tag == TELL_TAG
    assert machine.get_timer() is None


def test_given_complaint_started_when_started_again_then_harmless_no_op():
    machine = telling()

    assert machine.handle(start(2.0, window_minutes=15, language="ru")) == []
    assert (machine.started_at, machine.window_minutes, machine.language) == (0.0, WINDOW, "en")
    assert machine.playing_tag == TELL_TAG


def test_given_telling_when_prompt_finishes_then_recording_starts_with_the_policy_maximum():
    machine = telling(max_seconds=90)

    assert machine.handle(PromptFinished(TOLD_END, "complaint-record", TELL_TAG)) == [
        StartRecording(90)]
    assert machine.state is ComplaintState.RECORDING
    assert machine.recording_since == TOLD_END
    assert machine.playing is None


def test_given_telling_when_prompt_finishes_without_a_tag_then_recording_starts():
    machine = telling()

    assert machine.handle(PromptFinished(TOLD_END, "complaint-record")) == [StartRecording(120)]


@pytest.mark.parametrize("event", [PromptFinished(3.0, "complaint-record", "c0"),
                                   PromptFinished(3.0, "complaint-saved", TELL_TAG),
                                   PromptFinished(3.0, "greeting")],
                         ids=["old-tag", "other-prompt", "unrelated"])
def test_given_telling_when_stale_prompt_finishes_then_ignored(event):
    machine = telling()

    assert machine.handle(event) == []
    assert machine.state is ComplaintState.TELLING
    assert machine.playing == "complaint-record"


def test_given_telling_when_caller_presses_hash_then_nothing_to_stop():
    machine = telling()

    assert machine.handle(DigitPressed(3.0, "#")) == []
    assert machine.state is ComplaintState.TELLING


def test_given_telling_when_recording_finished_arrives_then_ignored():
    machine = telling()

    assert finish_recording(machine, RecordingFinished(3.0, 2.0)) == []
    assert machine.state is ComplaintState.TELLING


# --- recording ----------------------------------------------------------------------------------
def test_given_recording_when_caller_presses_hash_then_recording_stopped():
    machine = recording()

    assert machine.handle(DigitPressed(HASH_AT, "#")) == [StopRecording()]
    assert machine.state is ComplaintState.RECORDING  # RecordingFinished moves it on


@pytest.mark.parametrize("digit", ["1", "9", "*", "0"])
def test_given_recording_when_caller_presses_another_key_then_ignored(digit):
    machine = recording()

    assert machine.handle(DigitPressed(HASH_AT, digit)) == []
    assert machine.state is ComplaintState.RECORDING


def test_given_recording_when_finished_then_complaint_saved_before_the_callback_promise():
    machine = recording()
    machine.handle(DigitPressed(HASH_AT, "#"))

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, 21.04))

    assert actions == [SaveComplaint(21.0, True, WINDOW),
                       Note("complaint recorded", (("duration", 21.0), ("recorded", True))),
                       SAVED, promise()]
    assert machine.state is ComplaintState.PROMISING
    assert machine.saved is True
    assert machine.playing == "complaint-saved" and machine.playing_tag == PROMISE_TAG


@pytest.mark.parametrize("minutes, language, word", [
    (1, "en", "minute"), (60, "en", "minutes"), (21, "en", "minutes"),
    (1, "ru", "minute"), (3, "ru", "minutes-few"), (60, "ru", "minutes"),
    (21, "ru", "minute"), (11, "ru", "minutes"), (24, "ru_RU", "minutes-few")])
def test_given_window_and_language_when_recording_finishes_then_minutes_word_agrees(minutes, language,
                                                                                  word):
    machine = recording(window_minutes=minutes, language=language)

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))

    assert minutes_prompt(minutes, language) == word
    assert actions[0] == SaveComplaint(21.0, True, minutes)
    assert actions[-1] == promise(minutes, word)


@pytest.mark.parametrize("duration, saved", [(0.0, True), (12.0, False), (0.0, False)],
                         ids=["empty", "failed", "failed-and-empty"])
def test_given_failed_or_empty_recording_when_finished_then_complaint_still_saved_and_callback_promised(
        duration, saved):
    machine = recording()

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, duration, saved))

    assert actions == [SaveComplaint(duration, False, WINDOW),
                       Note("complaint recorded", (("duration", duration), ("recorded", False))),
                       SAVED, promise()]
    assert machine.state is ComplaintState.PROMISING


def test_given_operator_left_earlier_when_recording_finishes_then_promise_ends_with_goodbye():
    machine = recording()
    assert machine.handle(OperatorHungUp(15.0)) == [Note("operator left", (("during", "complaint"),))]

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))

    assert actions[0] == SaveComplaint(21.0, True, WINDOW)
    assert actions[-1] == promise(goodbye=True)


def test_given_operator_gone_from_the_start_when_recording_finishes_then_promise_ends_with_goodbye():
    machine = recording(operator_present=False)

    assert finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))[-1] == promise(goodbye=True)


def test_given_recording_when_recording_finished_twice_then_saved_once():
    machine = promising()

    assert finish_recording(machine, RecordingFinished(31.0, 21.0)) == []
    assert machine.state is ComplaintState.PROMISING


# --- the promise and the way back ---------------------------------------------------------------
def test_given_operator_present_when_promise_ends_then_caller_back_with_operator_who_is_told():
    machine = promising()

    actions = machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))

    assert actions == [ReattachCaller(), told("operator-complaint-recorded"),
                       Note("complaint ended", (("outcome", "returned"),)), Finish("returned")]
    assert machine.state is ComplaintState.ENDED
    assert machine.outcome == "returned"


def test_given_operator_hung_up_while_recording_when_promise_ends_then_call_ends():
    machine = recording()
    machine.handle(OperatorHungUp(15.0))
    finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))

    actions = machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))

    assert actions == [Note("complaint ended", (("outcome", "ended"),)), Finish("ended")]
    assert machine.outcome == "ended"


def test_given_operator_hung_up_while_told_when_promise_ends_then_call_ends():
    machine = telling()
    machine.handle(OperatorHungUp(3.0))
    machine.handle(PromptFinished(TOLD_END, "complaint-record", TELL_TAG))
    finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))

    assert machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))[-1] == (
        Finish("ended"))


def test_given_failed_recording_when_promise_ends_then_caller_still_returned():
    machine = promising(duration=0.0, saved=False)

    assert machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))[-1] == (
        Finish("returned"))


@pytest.mark.parametrize("event", [PromptFinished(33.0, "complaint-saved", TELL_TAG),
                                   PromptFinished(33.0, "complaint-record", TELL_TAG),
                                   PromptFinished(33.0, "complaint-record")],
                         ids=["old-tag", "old-prompt", "old-prompt-untagged"])
def test_given_promising_when_stale_prompt_finishes_then_ignored(event):
    machine = promising()

    assert machine.handle(event) == []
    assert machine.state is ComplaintState.PROMISING
    assert machine.playing == "complaint-saved"


def test_given_promising_when_caller_presses_hash_then_ignored():
    machine = promising()

    assert machine.handle(DigitPressed(33.0, "#")) == []


# --- the caller hangs up ----------------------------------------------------------------------
def test_given_recording_when_caller_hangs_up_then_complaint_kept_with_elapsed_duration():
    machine = recording()

    actions = machine.handle(CallerHungUp(TOLD_END + 12.34))

    assert actions == [SaveComplaint(12.3, True, WINDOW),
                       Note("complaint ended", (("outcome", "caller hung up"),)),
                       Finish("caller-hung-up")]
    assert machine.state is ComplaintState.ENDED
    assert machine.outcome == "caller-hung-up"


def test_given_recording_just_started_when_caller_hangs_up_then_kept_but_not_recorded():
    machine = recording()

    assert machine.handle(CallerHungUp(TOLD_END))[0] == SaveComplaint(0.0, False, WINDOW)


def test_given_telling_when_caller_hangs_up_then_nothing_saved():
    machine = telling()

    actions = machine.handle(CallerHungUp(5.0))

    assert actions == [Note("complaint ended", (("outcome", "caller hung up"),)),
                       Finish("caller-hung-up")]
    assert not any(isinstance(a, SaveComplaint) for a in actions)
    assert machine.state is ComplaintState.ENDED


def test_given_promising_when_caller_hangs_up_then_not_saved_twice():
    machine = promising()

    actions = machine.handle(CallerHungUp(33.0))

    assert actions == [Note("complaint ended", (("outcome", "caller hung up"),)),
                       Finish("caller-hung-up")]


# --- ended ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("event", [
    start(40.0), PromptFinished(40.0, "complaint-saved", PROMISE_TAG), DigitPressed(40.0, "#"),
    RecordingFinished(40.0, 5.0), CallerHungUp(40.0), OperatorHungUp(40.0)],
    ids=lambda e: type(e).__name__)
def test_given_ended_when_any_complaint_event_then_no_op(event):
    machine = ended()
    before = machine.to_dict()

    assert machine.handle(event) == []
    assert machine.to_dict() == before


def test_given_caller_hung_up_when_more_events_then_no_op():
    machine = recording()
    machine.handle(CallerHungUp(20.0))

    assert finish_recording(machine, RecordingFinished(20.1, 11.0)) == []
    assert machine.handle(CallerHungUp(20.2)) == []


# --- not complaint events ------------------------------------------------------------------------
@pytest.mark.parametrize("event", [object(), "PromptFinished", {"now": 1.0}, Finish("ended"),
                                   HoldDigitPressed(31.0, "#")],
                         ids=["object", "str", "dict", "an-output", "hold-event-same-name"])
def test_given_complaint_when_not_a_complaint_event_then_invalid_complaint_event(event):
    machine = telling()

    with pytest.raises(InvalidComplaintEvent):
        machine.handle(event)


def test_given_ended_when_not_a_complaint_event_then_still_refused():
    machine = ended()

    with pytest.raises(InvalidComplaintEvent):
        machine.handle(object())


# --- logs ---------------------------------------------------------------------------------------
def test_given_a_complaint_when_it_runs_then_each_transition_logged_once():
    machine = ComplaintMachine(CALL)

    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        machine.handle(start(0.0))
        machine.handle(PromptFinished(TOLD_END, "complaint-record", TELL_TAG))
        finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0))
        machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))

    transitions = [(e["old"], e["new"]) for e in logs if e["event"] == "complaint transition"]
    assert transitions == [("telling", "recording"), ("recording", "promising"),
                           ("promising", "ended")]


# --- persistence --------------------------------------------------------------------------------
def _rest(machine: ComplaintMachine) -> list[list[object]]:
    """Play the rest of the complaint: # at 30.0, 21 s recorded, the promise ends at 38.0."""
    steps: list[object] = []
    if machine.state is ComplaintState.TELLING:
        steps.append(PromptFinished(TOLD_END, "complaint-record", TELL_TAG))
    if machine.state in (ComplaintState.TELLING, ComplaintState.RECORDING):
        steps += [DigitPressed(HASH_AT, "#"), RecordingFinished(RECORDED_AT, 21.0),
                  ComplaintSaved(RECORDED_AT)]
    steps.append(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))
    return [machine.handle(step) for step in steps]


@pytest.mark.parametrize("reach", [telling, recording, promising],
                         ids=lambda v: v.__name__)
@pytest.mark.parametrize("kwargs", [{}, {"operator_present": False, "language": "ru",
                                         "window_minutes": 23, "max_seconds": 60}],
                         ids=["defaults", "ru-no-operator"])
def test_given_complaint_stored_mid_way_when_restored_through_json_then_it_continues_identically(
        reach, kwargs):
    original = reach(**kwargs)
    restored = ComplaintMachine.from_dict(json.loads(json.dumps(original.to_dict())))
    assert restored == original
    assert restored.state is original.state

    assert _rest(restored) == _rest(original)
    assert restored.to_dict() == original.to_dict()
    assert restored.state is ComplaintState.ENDED


def test_given_ended_complaint_when_restored_then_outcome_kept():
    original = ended()

    restored = ComplaintMachine.from_dict(json.loads(json.dumps(original.to_dict())))

    assert (restored.state, restored.outcome, restored.saved) == (
        ComplaintState.ENDED, "returned", True)


def test_given_promise_playing_when_operator_hangs_up_then_goodbye_before_the_call_ends():
    machine = promising()
    machine.handle(OperatorHungUp(31.0))

    actions = machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))

    assert [a for a in actions if isinstance(a, Play)] == [
        Play("goodbye", m("goodbye"), machine.playing_tag)]
    assert machine.state is ComplaintState.PROMISING
    finish = machine.handle(PromptFinished(PROMISE_END + 2, "goodbye", machine.playing_tag))
    assert finish[-1] == Finish("ended")


# --- a caller whose number may not be called back ----------------------------------------------
def test_given_number_not_callable_when_complaint_started_then_told_recorded_without_callback():
    machine = ComplaintMachine(CALL)

    actions = machine.handle(start(0.0, callback_possible=False))

    assert Note("no callback promised", (("why", "number not called back"),)) in actions
    assert actions[-1] == Play("complaint-record", (*m(
        "supervisor-unavailable", "complaint-record-no-callback", "voicemail-intro"),
        "sound:beep"), TELL_TAG)


def test_given_number_not_callable_when_recording_finishes_then_complaint_saved_no_promise():
    machine = recording(callback_possible=False)

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0, True))

    assert actions[0] == SaveComplaint(21.0, True, WINDOW, callback=False)
    assert actions[-1] == Play("complaint-saved", m("complaint-saved"), PROMISE_TAG)
    assert not any("supervisor-callback-within" in " ".join(a.media)
                   for a in actions if isinstance(a, Play))


def test_given_number_not_callable_when_promise_ends_then_operator_told_no_callback():
    machine = promising(callback_possible=False)

    actions = machine.handle(PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))

    assert told("operator-complaint-recorded-no-callback") in actions


def test_given_number_not_callable_when_caller_hangs_up_recording_then_complaint_kept_no_callback():
    machine = recording(callback_possible=False)

    actions = machine.handle(CallerHungUp(TOLD_END + 5))

    assert actions[0] == SaveComplaint(5.0, True, WINDOW, callback=False)


def test_given_complaint_saved_when_window_said_then_promise_says_it_as_the_service_promised():
    machine = recording()
    said = ("number:2", "sound:etiquette/hours")

    actions = finish_recording(machine, RecordingFinished(RECORDED_AT, 21.0), said)

    assert actions[-1] == Play("complaint-saved", (
        *m("complaint-saved", "supervisor-callback-within"), *said), PROMISE_TAG)


def test_given_callback_not_stored_when_complaint_saved_then_no_promise_and_operator_told_so():
    machine = recording()
    machine.handle(RecordingFinished(RECORDED_AT, 21.0))

    actions = machine.handle(ComplaintSaved(RECORDED_AT, (), (("callback", None),), promised=False))

    assert actions[-1] == Play("complaint-saved", m("complaint-saved"), PROMISE_TAG)
    assert told("operator-complaint-recorded-no-callback") in machine.handle(
        PromptFinished(PROMISE_END, "complaint-saved", PROMISE_TAG))
