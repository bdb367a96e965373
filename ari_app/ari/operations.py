"""Every ARI operation the app uses, as data.

Keeping them in one table lets the contract test check each path, method and parameter against
the api-docs that the running Asterisk serves, so a typo or an Asterisk upgrade that renames a
parameter fails a test instead of a live call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

__all__ = ["Op", "ALL_OPERATIONS"]


@dataclass(frozen=True)
class Op:
    method: str
    path: str
    query: tuple[str, ...] = ()
    body: tuple[str, ...] = ()  # JSON body fields (ARI takes `variables` that way)
    raw_body: str | None = None  # a parameter that is the whole JSON body
    binary: bool = False  # the answer is a file (bytes), not JSON

    @cached_property
    def path_params(self) -> tuple[str, ...]:
        return tuple(re.findall(r"{(\w+)}", self.path))


PING = Op("GET", "/asterisk/ping")
ASTERISK_INFO = Op("GET", "/asterisk/info", ("only",))
MODULES = Op("GET", "/asterisk/modules")
APPLICATIONS = Op("GET", "/applications")
APPLICATION = Op("GET", "/applications/{applicationName}")
CLAIM = Op("POST", "/events/claim", ("channelId", "application"))
# Only the events we use: Asterisk then skips serialising the rest (measured: the app's event
# queue in Asterisk, not the app, was the bottleneck with hundreds of callers on hold).
EVENT_FILTER = Op("PUT", "/applications/{applicationName}/eventFilter", raw_body="filter")
SUBSCRIBE = Op("POST", "/applications/{applicationName}/subscription", ("eventSource",))

CHANNELS = Op("GET", "/channels")
CHANNEL = Op("GET", "/channels/{channelId}")
ORIGINATE = Op("POST", "/channels", (
    "endpoint", "extension", "context", "priority", "app", "appArgs", "callerId", "timeout",
    "channelId", "otherChannelId", "originator", "formats"), ("variables",))
DIAL = Op("POST", "/channels/{channelId}/dial", ("caller", "timeout"))
HANGUP = Op("DELETE", "/channels/{channelId}", ("reason",))
ANSWER = Op("POST", "/channels/{channelId}/answer")
RING = Op("POST", "/channels/{channelId}/ring")
STOP_RING = Op("DELETE", "/channels/{channelId}/ring")
SEND_DTMF = Op("POST", "/channels/{channelId}/dtmf", ("dtmf", "before", "between", "duration"))
PLAY = Op("POST", "/channels/{channelId}/play", ("media", "lang", "playbackId"))
START_MOH = Op("POST", "/channels/{channelId}/moh", ("mohClass",))
STOP_MOH = Op("DELETE", "/channels/{channelId}/moh")
START_SILENCE = Op("POST", "/channels/{channelId}/silence")
# a phone's transfer button (SIP REFER handed to ARI): tell the phone how it went
TRANSFER_PROGRESS = Op("POST", "/channels/{channelId}/transfer_progress", ("states",))
CHANNEL_VARIABLE = Op("GET", "/channels/{channelId}/variable", ("variable",))
SNOOP = Op("POST", "/channels/{channelId}/snoop", ("spy", "whisper", "app", "appArgs", "snoopId"))
RECORD = Op("POST", "/channels/{channelId}/record", (
    "name", "format", "maxDurationSeconds", "maxSilenceSeconds", "ifExists", "beep",
    "terminateOn"))

BRIDGES = Op("GET", "/bridges")
CREATE_BRIDGE = Op("POST", "/bridges", ("type", "bridgeId", "name"))
DESTROY_BRIDGE = Op("DELETE", "/bridges/{bridgeId}")
ADD_TO_BRIDGE = Op("POST", "/bridges/{bridgeId}/addChannel", ("channel", "role", "absorbDTMF"))
REMOVE_FROM_BRIDGE = Op("POST", "/bridges/{bridgeId}/removeChannel", ("channel",))
START_BRIDGE_MOH = Op("POST", "/bridges/{bridgeId}/moh", ("mohClass",))
BRIDGE_PLAY = Op("POST", "/bridges/{bridgeId}/play", ("media", "lang", "playbackId"))

PLAYBACK = Op("GET", "/playbacks/{playbackId}")
STOP_PLAYBACK = Op("DELETE", "/playbacks/{playbackId}")
LIVE_RECORDING = Op("GET", "/recordings/live/{recordingName}")
STOP_RECORDING = Op("POST", "/recordings/live/{recordingName}/stop")
STORED_RECORDINGS = Op("GET", "/recordings/stored")
STORED_RECORDING_FILE = Op("GET", "/recordings/stored/{recordingName}/file", binary=True)
DELETE_STORED_RECORDING = Op("DELETE", "/recordings/stored/{recordingName}")
ENDPOINT = Op("GET", "/endpoints/{tech}/{resource}")
SOUND = Op("GET", "/sounds/{soundId}")

ALL_OPERATIONS: dict[str, Op] = {
    name: value for name, value in globals().items() if isinstance(value, Op)
}
