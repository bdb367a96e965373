"""The callback dialer's surroundings in memory, for its unit tests: one stored request due now,
a free operator, a lock that is really taken and given back, and the attempts started."""

from __future__ import annotations

from types import SimpleNamespace

from ari_app.callback.dialer import CallbackDialer
from ari_app.callback.numbers import NumberRules
from ari_app.callback.service import CallbackRequest
from ari_app.policy import Policy

POLICY = Policy(company="X")  # agent-first
OPERATOR = "PJSIP/op1"


class DialerFakes:
    def __init__(self, request: CallbackRequest, rules: NumberRules) -> None:
        self.stored = request
        self.locks: dict[str, str] = {}
        self.reserved: list[str] = []
        self.released: list[str] = []
        self.started: list[tuple[object, list[object]]] = []  # (machine, its first actions)
        self.requests = SimpleNamespace(
            rules=rules, index_key="callbacks",
            keys=SimpleNamespace(callback_lock=lambda request_id: f"lock:{request_id}"),
            due=self._due, get=self._get, save=self._save)
        self.operators = SimpleNamespace(reserve_free=self._reserve, release=self._release)
        self.redis = SimpleNamespace(set=self._set, eval=self._eval, zrem=self._nothing)
        self.card: list[dict] = []  # the customer card's lines
        self.customers = SimpleNamespace(note=self._note, noted=self._noted)
        self.calls = SimpleNamespace(start=self._start)

    async def _due(self, now, limit):
        return [self.stored.id]

    async def _get(self, request_id):
        return self.stored

    async def _save(self, request):
        self.stored = request

    async def _set(self, key, value, nx=False, ex=None):
        if nx and key in self.locks:
            return False
        self.locks[key] = value
        return True

    async def _eval(self, script, numkeys, key, owner):  # the dialer's unlock
        if self.locks.get(key) == owner:
            del self.locks[key]
            return 1
        return 0

    async def _reserve(self, owner):
        self.reserved.append(OPERATOR)
        return OPERATOR

    async def _release(self, operator, owner, after="unused"):
        self.released.append(operator)

    async def _note(self, number, event, name=None, **data):
        self.card.append({"event": event, **data})

    async def _noted(self, number, **match):
        return any(all(line.get(k) == v for k, v in match.items()) for line in self.card)

    async def _nothing(self, *args, **kwargs):
        return None

    async def _start(self, machine, started):
        self.started.append((machine, machine.handle(started)))


class AlwaysOpen(CallbackDialer):
    """Quiet hours and business hours are not what is tested here: every moment may ring."""

    async def _may_ring(self, request, now):
        return True


def dialer(fakes: DialerFakes, **options) -> CallbackDialer:
    return AlwaysOpen(fakes.redis, fakes.requests, fakes.operators, fakes.customers, POLICY,
                      clock=lambda: 1_000_000.0, calls=fakes.calls, **options)
