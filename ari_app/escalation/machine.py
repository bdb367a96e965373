"""A caller's complaint, when their demand for a supervisor cannot be met by a transfer. Pure:
events in (each with `now`), actions out.

Whether a supervisor takes the call is decided by the policy and who is on duty (the adapter
checks, then either starts an announced transfer or this). Decided here, for the complaint:
the caller is never just refused: they hear that no supervisor is available, that their
complaint will be recorded and passed on, leave it after the tone (# ends it), and are
promised a callback from a supervisor within the policy's window, said as a number of minutes.
The complaint and the callback are stored even when nothing was said, because the promise
was made. A caller whose number may not be called back (hidden, premium-rate, another country:
callback/numbers.py) still leaves the complaint, but is promised no callback. Then the caller goes back to their operator, or hears goodbye if the operator left.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

import structlog

from ari_app.calls.machine import RuleMachine
# the words every rule shares (hang-ups, prompts, the end): re-exported
from ari_app.calls.vocabulary import (OPERATOR, CallerHungUp, DetachCaller, Finish, Note,
                                      OperatorHungUp, Play, PromptFinished, ReattachCaller,
                                      RecordingFinished, prompt_media)
from ari_app.prompts.catalog import minutes_prompt

__all__ = [
    "ComplaintState", "ComplaintMachine", "InvalidComplaintEvent",
    "ComplaintStarted", "PromptFinished", "DigitPressed", "RecordingFinished", "ComplaintSaved",
    "CallerHungUp",
    "OperatorHungUp",
    "DetachCaller", "ReattachCaller", "Play", "StartRecording", "StopRecording", "SaveComplaint",
    "Note", "Finish",
]

logger = structlog.get_logger()


class ComplaintState(Enum):
    TELLING = "telling"        # no supervisor; recorded and passed on; the tone
    RECORDING = "recording"
    PROMISING = "promising"    # thank you; a supervisor calls back within N minutes
    ENDED = "ended"


END_STATES = frozenset({ComplaintState.ENDED})


# --- inputs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComplaintStarted:
    now: float
    window_minutes: int
    language: str = "en"
    operator_present: bool = True
    why: str = "no supervisor on duty"
    max_seconds: int = 120
    callback_possible: bool = True  # the caller's number passes the callback number check


@dataclass(frozen=True)
class DigitPressed:
    now: float
    digit: str


@dataclass(frozen=True)
class ComplaintSaved:
    """The complaint is stored; `promised`: so is the supervisor's callback, and `said` is
    when it comes, as the callback service promised it (media; empty: the policy's window)."""
    now: float
    said: tuple[str, ...] = ()
    data: tuple[tuple[str, object], ...] = ()
    promised: bool = True


# --- outputs --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StartRecording:
    max_seconds: int


@dataclass(frozen=True)
class StopRecording:
    pass


@dataclass(frozen=True)
class SaveComplaint:
    """The complaint and a supervisor's callback within `window_minutes`: before the promise."""
    duration: float
    recorded: bool
    window_minutes: int
    callback: bool = True  # False: the complaint only, no callback promised


# Finish(outcome): returned | ended | caller-hung-up


class InvalidComplaintEvent(Exception):
    pass



@dataclass
class ComplaintMachine(RuleMachine):
    KIND: ClassVar[str] = "complaint"
    END_STATES: ClassVar[frozenset] = END_STATES
    INVALID: ClassVar[type[Exception]] = InvalidComplaintEvent

    call_id: str
    state: ComplaintState = ComplaintState.TELLING
    started_at: float | None = None
    window_minutes: int = 60
    language: str = "en"
    operator_present: bool = True
    max_seconds: int = 120
    callback_possible: bool = True
    recording_since: float | None = None
    saved: bool = False
    goodbye_said: bool = False
    playing: str | None = None
    plays: int = 0
    outcome: str | None = None

    @property
    def playing_tag(self) -> str:
        return f"c{self.plays}"


    def get_timer(self) -> float | None:
        return None  # Asterisk ends the recording (silence, #, maximum length)


    def _on_ComplaintStarted(self, ev: ComplaintStarted) -> list[object]:
        if self.started_at is not None:
            return []
        self.started_at, self.window_minutes = ev.now, ev.window_minutes
        self.language, self.operator_present = ev.language, ev.operator_present
        self.max_seconds, self.callback_possible = ev.max_seconds, ev.callback_possible
        record = "complaint-record" if self.callback_possible else "complaint-record-no-callback"
        media = (prompt_media("supervisor-unavailable"), prompt_media(record),
                 prompt_media("voicemail-intro"), "sound:beep")
        notes = [Note("complaint started", (("why", ev.why),))]
        if not self.callback_possible:
            notes.append(Note("no callback promised", (("why", "number not called back"),)))
        return [*notes, DetachCaller(),
                self._play("complaint-record", media)]

    def _on_PromptFinished(self, ev: PromptFinished) -> list[object]:
        if ev.prompt != self.playing or (ev.tag and ev.tag != self.playing_tag):
            return []
        self.playing = None
        if self.state is ComplaintState.TELLING:
            self._set_state(ComplaintState.RECORDING)
            self.recording_since = ev.now
            return [StartRecording(self.max_seconds)]
        if self.state is ComplaintState.PROMISING:
            if self.operator_present:
                told = ("operator-complaint-recorded" if self.callback_possible
                        else "operator-complaint-recorded-no-callback")
                self.plays += 1  # the operator's own prompt: not what the caller waits for
                return self._finish("returned", ReattachCaller(), Play(
                    told, (prompt_media(told),), self.playing_tag, OPERATOR))
            if not self.goodbye_said:  # the operator left while the promise was being said
                self.goodbye_said = True
                return [self._play("goodbye", (prompt_media("goodbye"),))]
            return self._finish("ended")
        return []

    def _on_DigitPressed(self, ev: DigitPressed) -> list[object]:
        if self.state is ComplaintState.RECORDING and ev.digit == "#":
            return [StopRecording()]
        return []

    def _on_RecordingFinished(self, ev: RecordingFinished) -> list[object]:
        if self.state is not ComplaintState.RECORDING:
            return []
        self._set_state(ComplaintState.PROMISING)
        # the promise stands even if nothing was recorded: store it before saying it; what is
        # said waits for the stored callback (`ComplaintSaved`)
        self.saved = True
        return [SaveComplaint(round(ev.duration, 1), ev.saved and ev.duration > 0,
                              self.window_minutes, self.callback_possible),
                Note("complaint recorded", (("duration", round(ev.duration, 1)),
                                            ("recorded", ev.saved and ev.duration > 0)))]

    def _on_ComplaintSaved(self, ev: ComplaintSaved) -> list[object]:
        if self.state is not ComplaintState.PROMISING or self.playing is not None:
            return []
        self.callback_possible = self.callback_possible and ev.promised
        minutes = self.window_minutes
        media = [prompt_media("complaint-saved")]
        if self.callback_possible:  # the promise only when it can be kept
            media += [prompt_media("supervisor-callback-within"), *(ev.said or (
                f"number:{minutes}", prompt_media(minutes_prompt(minutes, self.language))))]
        self.goodbye_said = not self.operator_present
        if self.goodbye_said:
            media.append(prompt_media("goodbye"))
        return [Note("complaint saved", ev.data), self._play("complaint-saved", tuple(media))]

    def _on_CallerHungUp(self, ev: CallerHungUp) -> list[object]:
        # a caller who hangs up instead of pressing # still complained: keep it, call back
        kept: list[object] = []
        if self.state is ComplaintState.RECORDING and self.recording_since is not None:
            duration = round(ev.now - self.recording_since, 1)
            kept = [SaveComplaint(duration, duration > 0, self.window_minutes,
                                  self.callback_possible)]
        self._set_state(ComplaintState.ENDED)
        self.outcome = "caller-hung-up"
        return [*kept, Note("complaint ended", (("outcome", "caller hung up"),)),
                Finish("caller-hung-up")]

    def _on_OperatorHungUp(self, ev: OperatorHungUp) -> list[object]:
        self.operator_present = False
        return [Note("operator left", (("during", "complaint"),))]

    def _play(self, prompt: str, media: tuple[str, ...]) -> Play:
        self.playing = prompt
        self.plays += 1
        return Play(prompt, media, self.playing_tag)

    def _finish(self, outcome: str, *actions: object) -> list[object]:
        self._set_state(ComplaintState.ENDED)
        self.outcome = outcome
        return [*actions, Note("complaint ended", (("outcome", outcome),)), Finish(outcome)]


    @classmethod
    def from_dict(cls, data: dict) -> "ComplaintMachine":
        data = dict(data)
        data["state"] = ComplaintState(data["state"])
        return cls(**data)
