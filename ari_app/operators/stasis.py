"""ARI adapter for the operators' desk codes: the operator dials a code from their desk phone
(`*41` log in, `*42` log out, `*43`[reason digit] pause, `*44` unpause; the policy's
[feature_codes]), the dialplan sends it to `Stasis(<app>,operator-state,${EXTEN})`, and the app
applies it, answers, says what happened in one short prompt, and hangs up.

Who dialled is the channel's endpoint (`PJSIP/operator1-0000002a` -> `PJSIP/operator1`): a
phone that is not an operator's is told the code is not available. Each such call lasts a
few seconds and is kept in memory only; one that a restart left in Stasis is hung up on the
next connect (`reconcile`): the operator dials again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from ari_app.ari import AriClient, AriError, unless_gone
from ari_app.ari import operations as ops
from ari_app.calls import ids
from ari_app.operators.feature_codes import DeskCodes, desk_request
from ari_app.operators.machine import InvalidTransition, LogIn, LogOut, Pause, Unpause
from ari_app.operators.service import NoSuchOperator, OperatorService, UnknownPauseReason
from ari_app.storage import storage_away

__all__ = ["ROLE", "OperatorStasis", "endpoint_of"]

logger = structlog.get_logger()

ROLE = "operator-state"  # the dialplan's first Stasis argument
TAG = "desk"
DONE = {LogIn: "operator-logged-in", LogOut: "operator-logged-out",
        Pause: "operator-paused", Unpause: "operator-unpaused"}
REFUSED = {LogIn: "operator-still-paused"}  # else: operator-not-logged-in
UNKNOWN, NOT_SAVED = "operator-code-unknown", "operator-state-not-saved"


def endpoint_of(channel_name: str) -> str:
    """`PJSIP/operator1-0000002a` -> `PJSIP/operator1` (the endpoint that placed the call)."""
    return channel_name.rsplit("-", 1)[0]


class OperatorStasis:
    def __init__(self, ari: AriClient, operators: OperatorService, codes: DeskCodes, *,
                 app: str, prompt_timeout: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.ari, self.operators, self.codes, self.app = ari, operators, codes, app
        self.prompt_timeout, self.clock = prompt_timeout, clock
        self._prompt_done: dict[str, asyncio.Future] = {}  # desk channel -> its prompt ended
        self._tasks: set[asyncio.Task] = set()

    # --- routing (runs in the WebSocket reader: start or signal only) ---------------------------
    def on_event(self, event: dict) -> bool:
        """True when the event is a desk code's (nobody else needs it)."""
        kind = event.get("type")
        channel = event.get("channel") or {}
        if kind == "StasisStart" and (event.get("args") or [None])[0] == ROLE:
            if channel.get("id") and channel["id"] not in self._prompt_done:
                self._prompt_done[channel["id"]] = asyncio.get_running_loop().create_future()
                args = event.get("args") or []
                task = asyncio.get_running_loop().create_task(
                    self._serve(channel, args[1] if len(args) > 1 else ""), name="desk-code")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return True
        playback = (event.get("playback") or {}).get("id")
        owner = ids.call_of(playback) if playback else channel.get("id")
        done = self._prompt_done.get(owner or "")
        if done is None:
            return False
        if kind in ("PlaybackFinished", "StasisEnd", "ChannelDestroyed") and not done.done():
            done.set_result(kind)
        return True

    async def reconcile(self) -> None:
        """After a (re)connect: a desk call left in Stasis by a restart is hung up."""
        for channel in await self.ari.call(ops.CHANNELS):
            data = (channel.get("dialplan") or {}).get("app_data", "")
            if data.startswith(f"{self.app},{ROLE}") and channel["id"] not in self._prompt_done:
                await unless_gone(self.ari.hangup(channel["id"]))

    # --- one desk call ------------------------------------------------------------------------
    async def _serve(self, channel: dict, dialed: str) -> None:
        channel_id = channel["id"]
        try:
            prompt = await self._apply(endpoint_of(channel.get("name", "")), dialed)
            await self.ari.answer(channel_id)
            await self.ari.play(channel_id, f"sound:etiquette/{prompt}",
                                playback_id=ids.playback(channel_id, TAG, prompt, "operator"),
                                lang=channel.get("language") or "en")
            await asyncio.wait_for(asyncio.shield(self._prompt_done[channel_id]),
                                   self.prompt_timeout)
        except (AriError, asyncio.TimeoutError) as exc:
            logger.info("desk code call ended early", channel=channel_id,
                        why=getattr(exc, "message", type(exc).__name__))
        except Exception:
            logger.exception("desk code failed", channel=channel_id, dialed=dialed)
        finally:
            self._prompt_done.pop(channel_id, None)
            try:
                await unless_gone(self.ari.hangup(channel_id))
            except AriError as exc:
                logger.warning("desk code call not hung up", channel=channel_id,
                               error=exc.message)

    async def _apply(self, endpoint: str, dialed: str) -> str:
        """Carry out the code; the prompt that says what happened."""
        request = desk_request(self.codes, dialed, self.clock())
        if request is None:
            logger.info("desk code unknown", endpoint=endpoint, dialed=dialed)
            return UNKNOWN
        try:
            await self.operators.change(endpoint, request)
        except (NoSuchOperator, UnknownPauseReason) as exc:
            logger.info("desk code refused", endpoint=endpoint, dialed=dialed, why=str(exc))
            return UNKNOWN
        except InvalidTransition as exc:
            logger.info("desk code refused", endpoint=endpoint, dialed=dialed, why=str(exc))
            return REFUSED.get(type(request), "operator-not-logged-in")
        except Exception as exc:
            if not storage_away(exc):
                raise
            logger.warning("desk code not saved", endpoint=endpoint, dialed=dialed,
                           error=f"{type(exc).__name__}: {exc}")
            return NOT_SAVED
        return DONE[type(request)]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
