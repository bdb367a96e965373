"""Everything the app keeps in Redis: what "storage is away" means (`faults`), and the two
kinds of store: a rule's per-call snapshot (`snapshots`) and the durable records (`records`).

Only the light part is re-exported here, so `from ari_app.storage import storage_away` stays
cheap.
"""

from __future__ import annotations

from ari_app.storage.faults import STORAGE_ERRORS, storage_away

__all__ = ["STORAGE_ERRORS", "storage_away"]
