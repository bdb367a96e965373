"""Errors of the call core that the REST layer answers without knowing who raised them."""

from __future__ import annotations

__all__ = ["WrongState"]


class WrongState(Exception):
    """The call is not in a state that takes this request (take it off hold when it is not on
    hold, complete a transfer nobody started). The call-control object raises it, or a
    subclass (the inbound machine's InvalidTransition), so `calls/control.py` answers 409
    without importing any rule's machine."""
