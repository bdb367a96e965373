"""Music after a prompt while the call waits for storage: the executor of the shared actions
puts it back at once, and the machine's next step takes it off again unless that step says
what the music does itself (calls/legs.py)."""

from ari_app.calls import ids
from ari_app.calls.legs import LegActions
from ari_app.calls.rule import CallLegs
from ari_app.calls.vocabulary import (CALLER, OPERATOR, Note, Play, ReattachCaller, StartMusic,
                                      StopMusic)


class RecordingAri:
    """Records the ARI calls the executor makes (what Asterisk would be asked)."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str]] = []

    async def start_moh(self, channel_id, moh_class=None):
        self.done.append(("moh on", channel_id))

    async def stop_moh(self, channel_id):
        self.done.append(("moh off", channel_id))

    async def play(self, channel, media, playback_id, lang=None):
        self.done.append(("play", playback_id))


LEGS = CallLegs(call_id="call-1", operator_channel=None, talk_bridge="call-1~talk")


async def paused_for_check_in() -> tuple[LegActions, RecordingAri, str]:
    ari = RecordingAri()
    legs = LegActions(ari, "default")
    parties = legs.channels(LEGS, {})
    await legs.do(LEGS, parties, StopMusic())
    await legs.do(LEGS, parties, Play("checkin-1", tag="t1"))
    return legs, ari, ids.playback("call-1", "t1", "checkin-1", CALLER)


async def test_given_prompt_paused_music_when_it_ends_while_storage_away_then_music_back_once():
    legs, ari, playback = await paused_for_check_in()

    assert await legs.resume_music("call-1", playback)
    assert not await legs.resume_music("call-1", playback)  # offered again at the next retry
    assert ari.done[-1] == ("moh on", "call-1") and ari.done.count(("moh on", "call-1")) == 1


async def test_given_prompt_over_no_music_when_it_ends_then_nothing_started():
    """A prompt the music was not paused for (the greeting, a menu) has no music to resume."""
    ari = RecordingAri()
    legs = LegActions(ari, "default")
    await legs.do(LEGS, legs.channels(LEGS, {}), Play("greeting", tag="g"))

    assert not await legs.resume_music("call-1", ids.playback("call-1", "g", "greeting", CALLER))
    assert ari.done == [("play", ids.playback("call-1", "g", "greeting", CALLER))]


async def test_given_music_resumed_when_next_step_starts_music_then_left_on():
    legs, ari, playback = await paused_for_check_in()
    await legs.resume_music("call-1", playback)

    await legs.before_step("call-1", [Note("check-in"), StartMusic()])
    assert ari.done[-1] == ("moh on", "call-1")


async def test_given_music_resumed_when_next_step_does_something_else_then_music_off_first():
    """The machine still thinks the music is paused: it is, before its next prompt or bridge."""
    legs, ari, playback = await paused_for_check_in()
    await legs.resume_music("call-1", playback)
    resumed = len(ari.done)

    await legs.before_step("call-1", [Note("queue")])  # nothing audible yet: left on
    assert ari.done[-1] == ("moh on", "call-1")
    await legs.before_step("call-1", [Play("checkin-2", tag="t2")])
    assert ari.done[-1] == ("moh off", "call-1")
    await legs.before_step("call-1", [Play("checkin-3", tag="t3")])
    assert ari.done[resumed:].count(("moh off", "call-1")) == 1


async def test_given_call_forgotten_when_its_prompt_ends_then_nothing_resumed():
    legs, ari, playback = await paused_for_check_in()
    legs.forget("call-1")
    assert not await legs.resume_music("call-1", playback)


async def test_given_stop_then_prompt_to_the_caller_when_planned_then_no_stop_request():
    """A check-in (music off, the prompt, ...): the prompt's stream ends the music itself, so
    one request less; the music still counts as paused for that prompt."""
    ari = RecordingAri()
    legs = LegActions(ari, "default")
    parties = legs.channels(LEGS, {})
    for action in legs.plan([StopMusic(), Play("checkin-1", tag="t1"), Note("check-in")]):
        if not isinstance(action, Note):
            await legs.do(LEGS, parties, action)

    playback = ids.playback("call-1", "t1", "checkin-1", CALLER)
    assert ari.done == [("play", playback)]
    assert await legs.resume_music("call-1", playback)  # paused, as a stop would have left it


def test_given_stop_not_followed_by_a_prompt_to_the_caller_when_planned_then_kept():
    """The music stops for real before anything else: the caller back with the operator, a
    prompt to the operator only, the end of the step."""
    to_operator = Play("nudge", tag="n", party=OPERATOR)
    for actions in ([StopMusic()], [StopMusic(), ReattachCaller()], [StopMusic(), to_operator],
                    [StopMusic(), Note("x"), Play("checkin-1")]):
        assert LegActions.plan(actions) == actions
