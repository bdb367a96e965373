"""Who is asking, in the staff sign-in's words (ari_app/http.py: `Principal`, `principal_of`,
`for_operators`). Until that lands, the bearer token is the only caller: an admin."""

from __future__ import annotations

try:
    from ari_app.http import Principal, for_operators, principal_of
except ImportError:  # before "Staff sign-in": the bearer token only
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Principal:  # type: ignore[no-redef]
        user: str
        role: str
        operator: str | None = None

    def for_operators(handler):  # type: ignore[no-redef]
        handler.for_operators = True
        return handler

    def principal_of(request) -> Principal:  # type: ignore[no-redef]
        return Principal("api-token", "admin", None)

__all__ = ["Principal", "for_operators", "principal_of"]
