"""The transfer directory: departments and people from the policy, found by what an operator
keys or a phone dials, and whether they take a transfer now."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone

from ari_app.policy import DirectoryEntry, Policy
from ari_app.transfer.machine import TransferTarget

__all__ = ["Directory", "name_prompt"]


def name_prompt(entry: DirectoryEntry) -> str:
    """The prompt that says the entry's name: the policy's, or one rendered from `name`."""
    return entry.name_prompt or f"directory-{entry.id}"


class Directory:
    def __init__(self, policy: Policy, clock: Callable[[], float] = time.time) -> None:
        self.policy, self.clock = policy, clock

    def find(self, wanted: str) -> DirectoryEntry | None:
        """By id, code, direct number (with or without +) or endpoint resource."""
        wanted = wanted.strip()
        for entry in self.policy.directory:
            resource = entry.endpoint.split("/", 1)[-1].split("@", 1)[0]
            if wanted and wanted.lstrip("+") in (entry.id, entry.code, resource,
                                                 entry.direct_number.lstrip("+")):
                return entry
        return None

    def unavailable(self, entry: DirectoryEntry, language: str) -> str:
        """Why the entry cannot take this caller now ('' when it can)."""
        if language not in entry.languages:
            return f"{entry.id} does not take calls in {language!r}"
        if entry.hours is not None:
            zone = self.policy.business_hours.zone
            local = datetime.fromtimestamp(self.clock(), timezone.utc).astimezone(zone)
            if local.time() not in entry.hours:
                return f"{entry.id} takes transfers {entry.hours} ({zone.key})"
        return ""

    def target(self, entry: DirectoryEntry) -> TransferTarget:
        return TransferTarget(entry.id, entry.endpoint, name_prompt(entry), entry.direct_number)

    def supervisor(self, endpoint: str) -> TransferTarget:
        return TransferTarget("supervisor", endpoint, "supervisor-name",
                              self.policy.supervisor.direct_number or "")

    def reason_prompt(self, reason: str) -> str | None:
        """What the target hears about why the caller comes (the policy's transfer reasons)."""
        return self.policy.transfer.reasons.get(reason)

    def rendered_names(self) -> dict[str, str]:
        """Prompts to render at build time: `directory-<id>` -> the entry's name."""
        return {name_prompt(e): e.name for e in self.policy.directory if e.name_prompt is None}
