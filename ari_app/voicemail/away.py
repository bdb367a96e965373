"""Messages of callers no app instance took (dialplan context `etiquette-away`), filed as voice
messages exactly once, however many instances run the import at the same time.

With a pool of instances, a caller nobody claims in time is answered by the dialplan alone: an
honest word, then Record() into an ARI stored recording named
`etiquette-away/<epoch>-<caller number, or unknown>-<exten>-<uniqueid>`. No app saw that call,
so the name carries all we know. Every instance lists the stored recordings (one GET per
interval) and files each new one under an id derived from its name with a create-if-absent
(`DurableRecords.create_once`): two instances importing at once file one voice message, and
only the one that filed it notes it on the customer's card and tells the webhook.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass

import structlog

from ari_app.ari import AriClient, AriError, AriNotFound, AriUnavailable
from ari_app.ari import operations as ops
from ari_app.policy import Policy
from ari_app.storage import storage_away
from ari_app.voicemail.service import Voicemail, Voicemails, voicemail_id

__all__ = ["AWAY_FOLDER", "AwayMessage", "AwayMessages", "away_for_whom", "voicemail_id",
           "wav_seconds"]

logger = structlog.get_logger()

AWAY_FOLDER = "etiquette-away"  # the dialplan's folder in the spool's recording folder
INTERVAL = 5.0  # seconds between two looks at Asterisk's stored recordings (one GET each)
REASON = "nobody could take the call"
# under a second of sound: the caller hung up at the tone, but we know they called
NO_MESSAGE = f"{REASON}; no message (hung up at the tone)"
SHORTEST = 1.0
# whom a message is for when the policy has no queue: nobody in particular, the whole team
TEAM = "team"
# fixed: the same recording name gives the same voice message id in every instance, forever
_NAME = re.compile(
    rf"{AWAY_FOLDER}/(?P<at>[0-9]{{1,12}})-(?P<number>[0-9+]{{1,32}}|unknown)"
    r"-(?P<exten>[0-9]{0,20})-(?P<channel>[^/]{1,128})")


@dataclass(frozen=True)
class AwayMessage:
    """What the dialplan put in an away recording's name."""

    recording: str      # the ARI stored recording's name (etiquette-away/...)
    at: float           # when the call came (epoch seconds)
    caller_number: str  # digits and +; "" when the caller's number was hidden
    exten: str          # the published number they dialled
    channel: str        # the caller's channel (uniqueid, as far as the dialplan kept it)

    @classmethod
    def parse(cls, name: str) -> AwayMessage | None:
        """The message named `name`, or None for a name the dialplan does not make."""
        found = _NAME.fullmatch(name)
        if found is None:
            return None
        number = found["number"]
        return cls(recording=name, at=float(found["at"]),
                   caller_number="" if number == "unknown" else number,
                   exten=found["exten"], channel=found["channel"])

    @property
    def voicemail_id(self) -> str:
        return voicemail_id(self.recording)


def away_for_whom(policy: Policy, exten: str) -> str:
    """Whom a message left at `exten` is for: the department of the queue whose `extensions`
    list it (else of the first queue, where the app itself would have put the caller); a
    queue without a department by its name; with no queue, the whole team."""
    listed = [q for q in policy.queues if exten in q.extensions]
    queue = listed[0] if listed else (policy.queues[0] if policy.queues else None)
    if queue is None:
        return TEAM
    return queue.department or queue.name


def wav_seconds(data: bytes) -> float:
    """Seconds of sound in a WAV file, from its size past the header (a header whose sizes
    were never written, the recorder having died, still gives the right length); 0 for
    anything else."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return 0.0
    pos, byte_rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt " and pos + 16 <= len(data):
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif chunk == b"data":
            return (len(data) - pos - 8) / byte_rate if byte_rate else 0.0
        pos += 8 + size + (size & 1)
    return 0.0


class AwayMessages:
    """The import, run under the watchdog in every instance."""

    def __init__(self, ari: AriClient, voicemails: Voicemails, policy: Policy, *,
                 interval: float = INTERVAL) -> None:
        self.ari, self.voicemails, self.policy = ari, voicemails, policy
        self.interval = interval
        self._filed: set[str] = set()  # names known filed: no Redis look-up for them each round
        self._malformed: set[str] = set()  # told once, not every round

    async def run(self) -> None:
        """For as long as the app runs: Asterisk or Redis away is a warning and the next round,
        never the end of the loop."""
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if storage_away(exc) or isinstance(exc, (AriUnavailable, asyncio.TimeoutError)) \
                        or (isinstance(exc, AriError) and exc.status >= 500):
                    logger.warning("away messages not looked at; next round",
                                   error=f"{type(exc).__name__}: {exc}")
                else:
                    logger.exception("away messages not looked at; next round")
            await asyncio.sleep(self.interval)

    async def sweep(self) -> list[Voicemail]:
        """One round: the away recordings not filed yet, filed; returns those this call filed."""
        stored = await self.ari.call(ops.STORED_RECORDINGS)
        names = {r["name"] for r in stored
                 if isinstance(r, dict) and isinstance(r.get("name"), str)
                 and r["name"].startswith(AWAY_FOLDER + "/")}
        self._filed &= names  # a deleted voice message takes its recording with it
        waiting = []
        for name in sorted(names - self._filed):
            message = AwayMessage.parse(name)
            if message is not None:
                waiting.append(message)
            elif name not in self._malformed:
                self._malformed.add(name)
                logger.warning("not an away message's name; left alone", recording=name)
        filed = []
        known = await self.voicemails.exist([m.voicemail_id for m in waiting])
        for message, exists in zip(waiting, known):
            if exists:
                self._filed.add(message.recording)
            elif (voicemail := await self._file(message)) is not None:
                filed.append(voicemail)
        return filed

    async def _file(self, message: AwayMessage) -> Voicemail | None:
        if await self._still_recording(message):
            return None  # the caller is still speaking: next round
        try:
            audio = await self.ari.call(ops.STORED_RECORDING_FILE, recordingName=message.recording)
        except AriNotFound:
            return None  # deleted meanwhile (with its voice message)
        seconds = wav_seconds(audio)
        voicemail = Voicemail(
            recording=message.recording,
            for_whom=away_for_whom(self.policy, message.exten),
            caller_number=message.caller_number, call_id=message.channel,
            reason=REASON if seconds >= SHORTEST else NO_MESSAGE,
            duration=round(seconds, 1), id=message.voicemail_id, created_at=message.at)
        created = await self.voicemails.create_once(voicemail)
        self._filed.add(message.recording)
        if not created:
            return None  # another instance filed it first
        logger.info("away message filed", voicemail=voicemail.id, recording=message.recording,
                    for_whom=voicemail.for_whom, caller=message.caller_number,
                    duration=voicemail.duration)
        return voicemail

    async def _still_recording(self, message: AwayMessage) -> bool:
        """The caller's channel is still up: Record() is still writing the file."""
        try:
            await self.ari.call(ops.CHANNEL, channelId=message.channel)
        except AriNotFound:
            return False
        return True
