"""The operator console's one read: everything an operator's page shows, for that operator
only, assembled from the services (never from another capability's adapter or REST module).

Fetched again on every event that concerns the operator, so it stays a few Redis round trips:
the operator's state (one pipeline), the live calls' snapshots (the live set, then one
pipeline; calls this process drives come from memory), their rules' snapshots (one pipeline),
the customer's card, the callbacks due within the hour and the voice messages.

Whose is what: a call whose `operator` is them; callbacks and voice messages for what they
answer for (operators/scope.py: their endpoint, the directory entries that ring their phone,
their queues' departments), and the callbacks they promised themselves. A callback nobody was
named for is on nobody's page: the dialer offers it to whoever is free.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict

from redis.asyncio import Redis

from ari_app.callback.service import OPEN, CallbackRequests
from ari_app.console.view import activity, call_view
from ari_app.customers.service import Customers
from ari_app.hold.machine import HoldMachine
from ari_app.inbound.machine import InboundMachine
from ari_app.inbound.store import CallStore
from ari_app.operators.scope import Scope
from ari_app.operators.service import OperatorService
from ari_app.policy import Policy
from ari_app.storage.keyspace import Keyspace
from ari_app.storage.reads import get_each
from ari_app.transfer.directory import Directory
from ari_app.transfer.machine import TransferMachine
from ari_app.voicemail.service import Voicemails

__all__ = ["ConsoleService"]

CALLBACKS_AHEAD = 3600.0   # s: callbacks due within the next hour are "due"
CALLBACKS_READ = 200       # the soonest due read from the index, at most
VOICEMAILS_SHOWN = 20      # unheard first, then the latest heard


class ConsoleService:
    def __init__(self, redis: Redis, policy: Policy, *, keys: Keyspace,
                 operators: OperatorService, calls: CallStore, customers: Customers,
                 callbacks: CallbackRequests, voicemails: Voicemails, directory: Directory,
                 clock: Callable[[], float] = time.time) -> None:
        self.redis, self.policy, self.keys = redis, policy, keys
        self.operators, self.calls, self.customers = operators, calls, customers
        self.callbacks, self.voicemails, self.directory = callbacks, voicemails, directory
        self.clock = clock
        self._scopes: dict[str, Scope] = {}

    def scope(self, endpoint: str) -> Scope:
        if endpoint not in self._scopes:
            self._scopes[endpoint] = Scope(self.policy, endpoint)
        return self._scopes[endpoint]

    async def calls_of(self, endpoint: str) -> list[InboundMachine]:
        """The live calls whose operator is them (ringing their phone, talking, holding...)."""
        ids = await self.calls.live_calls()
        return [c for c in await self.calls.peek(ids) if c is not None and c.operator == endpoint]

    # --- the page's one read --------------------------------------------------------------
    async def view(self, endpoint: str) -> dict:
        now = self.clock()
        scope = self.scope(endpoint)
        (operator,), calls = await asyncio.gather(self.operators.listing([endpoint]),
                                                  self.calls_of(endpoint))
        rules = await self._rules([c.call_id for c in calls])
        shown = []
        for call in sorted(calls, key=lambda c: c.started_at or 0.0):
            hold, transfer = rules.get(call.call_id, (None, None))
            view = call_view(call, department=self._department(call), hold=hold,
                             transfer=transfer, max_holds=self.policy.hold.max_holds_per_call,
                             now=now)
            view["card"] = await self._card(call)
            shown.append(view)
        callbacks, voicemails = await asyncio.gather(self._callbacks(scope, now),
                                                     self._voicemails(scope))
        return {
            "operator": {**operator, "activity": activity(operator, shown),
                         "pause_reasons": list(self.policy.operators.pause_reasons)},
            "calls": shown, "now": round(now, 3),
            "answers_for": sorted(scope.names - {endpoint}),
            "hold_reasons": sorted(self.policy.hold.reasons),
            "transfer_reasons": sorted(self.policy.transfer.reasons),
            "transfer_mode": self.policy.transfer.mode,
            "directory": self._directory(call_language(shown)),
            "callbacks": callbacks, "voicemails": voicemails,
            "check_in_interval": self.policy.hold.check_in_interval,
        }

    async def _rules(self, call_ids: list[str]
                     ) -> dict[str, tuple[HoldMachine | None, TransferMachine | None]]:
        """Each call's hold and transfer snapshots (the rules' own state), one round trip."""
        if not call_ids:
            return {}
        raws = await get_each(self.redis, [key for call_id in call_ids for key in (
            self.keys.snapshot("hold", call_id), self.keys.snapshot("transfer", call_id))])
        found = {}
        for index, call_id in enumerate(call_ids):
            hold, transfer = raws[2 * index], raws[2 * index + 1]
            found[call_id] = (HoldMachine.from_dict(json.loads(hold)) if hold else None,
                              TransferMachine.from_dict(json.loads(transfer)) if transfer
                              else None)
        return found

    def _department(self, call: InboundMachine) -> str | None:
        """The department whose line the caller chose (their queue's), by its directory name."""
        if call.queue is None:
            return None
        queue = next((q for q in self.policy.queues if q.name == call.queue), None)
        department = queue.department if queue is not None else None
        entry = next((e for e in self.policy.directory if e.id == department), None)
        return entry.name if entry is not None else (department or call.queue)

    async def _card(self, call: InboundMachine) -> dict | None:
        """The customer's card, grouped as the operator reads it; this call left out."""
        card = await self.customers.card(call.number) if call.number else None
        if card is None:
            return None
        groups: dict[str, list[dict]] = {"calls": [], "callbacks": [], "voicemails": [],
                                         "complaints": [], "surveys": [], "other": []}
        for entry in card["history"]:
            event = str(entry.get("event", ""))
            if event == "called in":
                if entry.get("call_id") != call.call_id:
                    groups["calls"].append(entry)
            elif event.startswith("callback"):
                groups["callbacks"].append(entry)
            elif event.startswith("voicemail"):
                groups["voicemails"].append(entry)
            elif event.startswith("complaint"):
                groups["complaints"].append(entry)
            elif event.startswith("survey"):
                groups["surveys"].append(entry)
            else:
                groups["other"].append(entry)
        return {"number": card["number"], "name": card["name"],
                "first_seen": card["first_seen"], **groups}

    def _directory(self, language: str | None) -> list[dict]:
        """Whom a call may be transferred to, with why not now (language, hours)."""
        language = language or self.policy.default_language
        return [{"id": e.id, "name": e.name, "kind": e.kind, "code": e.code,
                 "unavailable": self.directory.unavailable(e, language) or None}
                for e in self.policy.directory]

    async def _callbacks(self, scope: Scope, now: float) -> list[dict]:
        ids = await self.callbacks.due(now + CALLBACKS_AHEAD, CALLBACKS_READ)
        requests = await asyncio.gather(*(self.callbacks.get(i) for i in ids))
        return [{**r.to_public_dict(), "name": r.name, "topic": r.topic, "reason": r.reason,
                 "for_whom": r.for_whom, "next_attempt_at": r.next_attempt_at}
                for r in requests
                if r is not None and r.status in OPEN
                and (r.operator == scope.endpoint or scope.covers(r.for_whom))]

    async def _voicemails(self, scope: Scope) -> list[dict]:
        mine = [v for v in await self.voicemails.listing() if scope.covers(v.for_whom)]
        mine.sort(key=lambda v: (v.heard, -v.created_at))
        return [asdict(v) for v in mine[:VOICEMAILS_SHOWN]]


def call_language(calls: list[dict]) -> str | None:
    return calls[0].get("language") if calls else None
