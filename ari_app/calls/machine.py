"""What every rule's pure machine shares: the one entry point that hands an event to its
`_on_<Event>` handler, the choke point every state change goes through (and is logged at),
and the snapshot stored in Redis."""

from __future__ import annotations

import copy
from dataclasses import fields, is_dataclass
from typing import Any, ClassVar

import structlog

from ari_app.calls import vocabulary

__all__ = ["RuleMachine"]

logger = structlog.get_logger()


class RuleMachine:
    KIND: ClassVar[str]                       # "hold", "transfer", ... (logs, errors)
    END_STATES: ClassVar[frozenset[Any]]
    INVALID: ClassVar[type[Exception]]        # raised for an event of another machine
    # where the events it takes are defined, besides its own module: the shared words (a
    # hang-up, the timer) and, for a machine split in modules, its own other ones
    EVENT_MODULES: ClassVar[frozenset[str]] = frozenset({vocabulary.__name__})
    state: Any

    def handle(self, event: object) -> list[object]:
        """Events of this machine's own modules or the shared vocabulary only (another rule's
        event of the same name is refused, not misread); after the end, every event is a no-op
        (a late hang-up, a second one)."""
        handler = getattr(self, "_on_" + type(event).__name__, None)
        module = type(event).__module__
        if handler is None or (module != type(self).__module__
                               and module not in self.EVENT_MODULES):
            raise self.INVALID(f"{module}.{type(event).__name__} is not a {self.KIND} event")
        if self.state in self.END_STATES:
            return []
        return handler(event)

    def _set_state(self, state: Any) -> None:
        logger.debug(f"{self.KIND} transition", old=self.state.value, new=state.value)
        self.state = state

    def to_dict(self) -> dict:
        """What `dataclasses.asdict` gives, without its deep copy of every value (the
        snapshot is built at every step of every call)."""
        data = _plain(self)
        data["state"] = self.state.value
        return data


_ATOMS = frozenset({str, int, float, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is list or kind is tuple:
        return kind([_plain(v) for v in value])
    if kind is dict:
        return {k: _plain(v) for k, v in value.items()}
    names = _FIELDS.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[kind] = tuple(f.name for f in fields(value))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    return copy.deepcopy(value)
