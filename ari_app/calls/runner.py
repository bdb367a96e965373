"""One runner for every rule's machine, inside the call's lane.

A step is the same for every rule: load the machine (memory, else its Redis snapshot), feed it
the event with `now`, save the snapshot (or delete it at the end), publish the state change,
carry out the actions (the shared ones on the call's legs here, the rule's own in its `do`),
feed back what they answered. The rule's timer is its machine's wall-clock deadline, kept in
the snapshot in Redis, so it survives a restart and another instance can take it over.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from ari_app.ari import tolerated
from ari_app.calls import ids
from ari_app.calls.events import CallEvents, RuleEvents
from ari_app.calls.legs import SHARED, LegActions
from ari_app.calls.machine import RuleMachine
from ari_app.calls.rule import CallLegs, Instead, Rule
from ari_app.storage.snapshots import Fence
from ari_app.calls.vocabulary import (CALLER, CallerHungUp, Finish, Note, OperatorHungUp,
                                      PromptFinished, RuleEnded, TimerFired)

__all__ = ["RuleRunner", "UnknownRule"]

logger = structlog.get_logger()


class UnknownRule(LookupError):
    """The call handed its caller to a rule nobody registered (a policy or wiring error)."""


class RuleRunner:
    def __init__(self, rules: Iterable[Rule], legs: LegActions, events: CallEvents,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules: dict[str, Rule] = {}
        self._events: dict[str, RuleEvents] = {}
        for rule in rules:
            self.rules[rule.NAME] = rule
            self._events[rule.NAME] = events.for_rule(getattr(rule, "EVENTS_AS", rule.NAME),
                                                      rule.STEPS)
        self.legs, self.clock = legs, clock

    @property
    def wants(self) -> frozenset[str]:
        """The ARI event types some rule reads (the app's event filter adds them)."""
        return frozenset().union(*(rule.WANTS for rule in self.rules.values()))

    @property
    def unwatched_prompts(self) -> frozenset[str]:
        """Prompts no rule waits for: their playback events are dropped on arrival."""
        return frozenset().union(*(getattr(rule, "UNWATCHED_PROMPTS", ())
                                   for rule in self.rules.values()))

    def rule(self, name: str) -> Rule:
        try:
            return self.rules[name]
        except KeyError:
            raise UnknownRule(f"no rule {name!r} is registered (known: "
                              f"{sorted(self.rules)})") from None

    # --- what the call does with a rule ---------------------------------------------------
    async def start(self, name: str, legs: CallLegs, request: Mapping[str, Any]
                    ) -> RuleEnded | None:
        rule = self.rule(name)
        machine, event = rule.begin(legs, request, self.clock())
        return await self._run(rule, legs, machine, event)

    async def feed(self, name: str, legs: CallLegs, event: object) -> RuleEnded | None:
        """One of the rule's events; `gone` when it has no machine for the call any more."""
        rule = self.rule(name)
        machine = await rule.store.load(legs.call_id)
        if machine is None:
            return RuleEnded(self.clock(), name, "gone")
        return await self._run(rule, legs, machine, event)

    async def ask(self, name: str, legs: CallLegs, what: str, data: Mapping[str, Any]
                  ) -> RuleEnded | None:
        return await self.feed(name, legs, self.rule(name).ask(what, data, self.clock()))

    async def event(self, name: str, legs: CallLegs, event: dict) -> RuleEnded | None:
        """A raw ARI event of the call while the rule has the caller."""
        rule = self.rule(name)
        machine = await rule.store.load(legs.call_id)
        if machine is None:
            return None
        ended = None
        for step in await rule.translate(legs, machine, event, self.clock()):
            ended = await self._run(rule, legs, machine, step) or ended
        return ended

    async def shared(self, name: str, legs: CallLegs, event: object) -> RuleEnded | None:
        """A shared event (a hang-up, a prompt's end, the timer) for the rule."""
        return await self.feed(name, legs, event)

    async def resync(self, name: str, legs: CallLegs, live: frozenset[str]) -> RuleEnded | None:
        """After a restart: the party that left and the prompt that ended while we were
        away, then the rule's own view."""
        rule = self.rule(name)
        machine = await rule.store.load(legs.call_id)
        if machine is None:
            return RuleEnded(self.clock(), name, "gone")
        now = self.clock()
        if legs.operator_channel is None and getattr(machine, "operator_present", False):
            return await self._run(rule, legs, machine, OperatorHungUp(now))
        events = list(await rule.resync(legs, machine, live, now))
        if not events:
            events = await self._prompts_ended(legs, machine)
        ended = None
        for event in events:
            ended = await self._run(rule, legs, machine, event) or ended
        return ended

    async def deadline(self, name: str | None, call_id: str) -> float | None:
        """The rule's next deadline: from the machine this process holds, else from Redis (a
        failed write dropped it from memory: the deadline is still due)."""
        if name is None or name not in self.rules:
            return None
        store = self.rules[name].store
        machine = store.cached(call_id) or await store.load(call_id)
        return machine.get_timer() if machine is not None and hasattr(machine, "get_timer") else None

    async def tick(self, name: str, legs: CallLegs) -> RuleEnded | None:
        return await self.feed(name, legs, TimerFired(self.clock()))

    async def drop(self, call_id: str) -> None:
        """The call is over: no rule keeps anything of it."""
        self.legs.forget(call_id)
        for rule in self.rules.values():
            await rule.store.delete(call_id)

    def forget_owned(self) -> None:
        self.legs.forget()
        for rule in self.rules.values():
            rule.store.forget_owned()

    def forget(self, call_id: str) -> None:
        """Another instance drives the call now (its lease moved): no rule keeps it in memory."""
        self.legs.forget(call_id)
        for rule in self.rules.values():
            rule.store.forget(call_id)

    def rewind(self, call_id: str) -> None:
        """The call's lane item failed for storage: every rule's snapshot of the call that
        the item touched is put back as it was before it, so that its retry carries out every
        step again."""
        for rule in self.rules.values():
            rule.store.rewind(call_id)

    def settle(self, call_id: str) -> None:
        for rule in self.rules.values():
            rule.store.settle(call_id)

    def fence(self, fence: Fence) -> None:
        """Every rule's snapshot of a call this process holds the lease of is written fenced."""
        for rule in self.rules.values():
            rule.store.fence = fence

    # --- one step --------------------------------------------------------------------------
    async def _run(self, rule: Rule, legs: CallLegs, machine: RuleMachine, event: object
                   ) -> RuleEnded | None:
        call_id, before = legs.call_id, machine.state
        actions = machine.handle(event)
        if machine.state in machine.END_STATES:
            await rule.store.delete(call_id)
        else:
            await rule.store.save(machine)
        events = self._events[rule.NAME]
        events.transition(call_id, before, machine.state, operator=legs.operator,
                          at=getattr(event, "now", None))
        finish: Finish | None = None
        follow: list[object] = []
        parties = self.legs.channels(legs, rule.parties(machine))
        if call_id in self.legs.resumed:  # music put back while storage was away
            with tolerated("music taken off after the storage outage"):
                await self.legs.before_step(call_id, actions)
        for action in self.legs.plan(actions):
            if isinstance(action, Finish):
                finish = action
            elif isinstance(action, Note):
                events.note(call_id, action.event, action.data, operator=legs.operator)
            else:
                try:
                    with tolerated(type(action).__name__):
                        if isinstance(action, SHARED):
                            await self.legs.do(legs, parties, action)
                        elif (answer := await rule.do(legs, machine, action)) is not None:
                            follow.append(answer)
                except Instead as instead:
                    return await self._run(rule, legs, machine, instead.event)
        ended = (RuleEnded(self.clock(), rule.NAME, finish.outcome, rule.ended(machine, finish))
                 if finish is not None else None)
        for answer in follow:  # a dial that failed at once; what the adapter noted
            if isinstance(answer, Note):
                events.note(call_id, answer.event, answer.data, operator=legs.operator)
            else:
                ended = await self._run(rule, legs, machine, answer) or ended
        return ended

    async def _prompts_ended(self, legs: CallLegs, machine: RuleMachine) -> list[object]:
        """A prompt the snapshot says is playing but Asterisk no longer has: it ended while
        we were away."""
        playing = getattr(machine, "playing", None)
        if isinstance(playing, str):
            playing = {CALLER: (playing, getattr(machine, "playing_tag", ""))}
        for party, (prompt, tag) in (playing or {}).items():
            if not await self.legs.still_playing(ids.playback(legs.call_id, tag, prompt, party)):
                return [PromptFinished(self.clock(), prompt, tag, party)]
        return []


__all__ += ["CallerHungUp", "OperatorHungUp"]  # what the call feeds any rule on a hang-up
