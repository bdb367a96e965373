"""What one operator answers for, besides their own calls: their endpoint, the directory
entries that ring their phone (a department or a person), the queues they serve and those
queues' departments. A voice message or a callback for any of these is theirs to see; the
operator console and the voice-message routes scope an operator's session with it."""

from __future__ import annotations

from ari_app.policy import Policy

__all__ = ["Scope"]


class Scope:
    def __init__(self, policy: Policy, endpoint: str) -> None:
        self.endpoint = endpoint
        self.directory = tuple(e.id for e in policy.directory if e.endpoint == endpoint)
        queues = [q for q in policy.queues if endpoint in q.operators]
        self.queues = tuple(q.name for q in queues)
        self.departments = tuple(dict.fromkeys(q.department for q in queues if q.department))
        self.names = frozenset({endpoint, *self.directory, *self.queues, *self.departments})

    def covers(self, for_whom: str | None) -> bool:
        return for_whom is not None and for_whom in self.names
