"""A message the caller leaves in a rule (a voicemail, a complaint): recorded from a snoop on
the caller's channel (spy=in), never from the channel itself, whose keys would then arrive
late. The snoop and the recording are named after the call and the rule's take
(`<call>~<what>-<take>`), so their events route to it, also after a restart, and a second
complaint in the same call is a file of its own instead of overwriting the first one's.
"""

from __future__ import annotations

import io
import time
import wave
from collections.abc import Callable, Iterable

import structlog

from ari_app.ari import AriClient, AriError, AriNotFound, unless_gone
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.calls.rule import Instead
from ari_app.calls.vocabulary import RecordingFinished

__all__ = ["CallerMessage", "stored_recording", "take_of"]

logger = structlog.get_logger()
ENDED = ("RecordingFinished", "RecordingFailed")


def take_of(started_at: float | None) -> str:
    """A recording's take: when its rule started in the call (ms), the same on every try of a
    step and after a restart, another for the rule's next start in the same call."""
    return "" if started_at is None else str(int(round(started_at * 1000)))


class CallerMessage:
    """One rule's recording of the caller: `what` names the recording, `role` is the snoop's
    app argument (how its StasisStart is told apart from other legs), and `take` (`take_of`)
    which of the rule's recordings in the call it is."""

    def __init__(self, ari: AriClient, *, app: str, what: str, snoop: str, role: str,
                 max_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self.ari, self.app, self.what, self.role = ari, app, what, role
        self._snoop = snoop
        self.max_seconds, self.clock = max_seconds, clock

    def name(self, call_id: str, take: str) -> str:
        return ids.part(call_id, f"{self.what}-{take}" if take else self.what)

    def snoop(self, call_id: str, take: str) -> str:
        return ids.part(call_id, f"{self._snoop}-{take}" if take else self._snoop)

    def take_in(self, snoop: str) -> str:
        """The take a snoop's channel id names (`snoop`'s inverse)."""
        what = ids.what_of(snoop)
        return what[len(self._snoop) + 1:] if what.startswith(f"{self._snoop}-") else ""

    async def start(self, caller: str, take: str) -> None:
        """Snoop on the caller; the snoop's StasisStart (`record`) starts the recording."""
        try:
            await self.ari.call(ops.SNOOP, channelId=caller, spy="in", app=self.app,
                                appArgs=self.role, snoopId=self.snoop(caller, take))
        except AriNotFound:
            raise
        except AriError as exc:
            # a caller hanging up at the beep: Asterisk answers 500, not 404
            if caller not in {c["id"] for c in await self.ari.call(ops.CHANNELS)}:
                raise AriNotFound(exc.status, exc.method, exc.path,
                                  f"caller gone: {exc.message}") from exc
            # the caller is still there: nothing will be recorded, so say so (the machine goes
            # on without a recording) rather than wait in silence for one
            logger.warning("snoop refused", call_id=caller, recording=self.what,
                           error=exc.message)
            raise Instead(RecordingFinished(self.clock(), 0.0, False)) from exc

    async def record(self, call_id: str, channel: str, role: str) -> bool:
        """A leg of the call reached Stasis: when it is this snoop, record it (the take is in
        the snoop's name)."""
        if role != self.role:
            return False
        await self.ari.call(ops.RECORD, channelId=channel,
                            name=self.name(call_id, self.take_in(channel)),
                            format="wav", ifExists="overwrite", beep=False,
                            maxDurationSeconds=self.max_seconds, maxSilenceSeconds=5,
                            terminateOn="#")
        return True

    async def stop(self, call_id: str, take: str) -> None:
        await self.ari.call(ops.STOP_RECORDING, recordingName=self.name(call_id, take))

    async def ended(self, call_id: str, take: str, event: dict, now: float) -> list[object]:
        """The end of this take's recording as the rule's event (saved only with sound in
        it); the snoop is hung up, its work done."""
        if event.get("type") not in ENDED:
            return []
        rec = event["recording"]
        if rec.get("name") != self.name(call_id, take):
            return []
        await unless_gone(self.ari.hangup(self.snoop(call_id, take)))
        duration = float(rec.get("duration") or 0)
        return [RecordingFinished(now, duration,
                                  event["type"] == "RecordingFinished" and duration > 0)]

    async def ended_while_away(self, call_id: str, take: str, live: frozenset[str],
                               now: float) -> list[object]:
        """After a restart: this take's recording, if it ended while we were away, as the
        rule's event, with what Asterisk stored of it (the caller hung up, or it stopped on its
        own: the caller's silence, its longest length; its end was never heard). A recording
        still under way ends as usual; a snoop whose recording never started (its StasisStart
        came while we were away) records now: the caller is still there to be heard."""
        name, snoop = self.name(call_id, take), self.snoop(call_id, take)
        if snoop in live and await self._still_recording(name):
            return []
        data = await stored_recording((self.ari,), name)
        if snoop in live:
            if data is None:
                await self.record(call_id, snoop, self.role)
                return []
            await unless_gone(self.ari.hangup(snoop))
        seconds = _seconds(data) if data is not None else 0.0
        return [RecordingFinished(now, seconds, seconds > 0)]

    async def _still_recording(self, name: str) -> bool:
        try:
            await self.ari.call(ops.LIVE_RECORDING, recordingName=name)
        except AriNotFound:
            return False
        return True


def _seconds(data: bytes) -> float:
    """How long a stored WAV recording is (0: not one that can be read)."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            return round(wav.getnframes() / wav.getframerate(), 1)
    except (wave.Error, EOFError, ZeroDivisionError):
        return 0.0


async def stored_recording(nodes: Iterable[AriClient], name: str) -> bytes | None:
    """What the caller said (a voice message, a complaint), as Asterisk stored it: from the
    first node that has it (it was recorded on the caller's); None when none has it any more."""
    for ari in nodes:
        try:
            return await ari.call(ops.STORED_RECORDING_FILE, recordingName=name)
        except AriNotFound:
            continue
    return None
