"""Errors of the call core that the REST layer answers without knowing who raised them."""

from __future__ import annotations

__all__ = ["CallElsewhere", "WrongState"]


class WrongState(Exception):
    """The call is not in a state that takes this request (take it off hold when it is not on
    hold, complete a transfer nobody started). The call-control object raises it, or a
    subclass (the inbound machine's InvalidTransition), so `calls/control.py` answers 409
    without importing any rule's machine."""


class CallElsewhere(Exception):
    """Another instance drives the call (several instances share the calls): a request for it
    is answered 409 naming that instance, never carried out by one that has not its events."""

    def __init__(self, call_id: str, owner: str | None = None) -> None:
        where = f"instance {owner}" if owner else "another instance"
        super().__init__(f"call {call_id} is driven by {where}; send the request there")
        self.call_id, self.owner = call_id, owner
