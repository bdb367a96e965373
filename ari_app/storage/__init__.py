"""Everything the app keeps in Redis: what "storage is away" means (`faults`), the one
`Keyspace` that names every key (`keyspace`), and the two kinds of store built on it: a
rule's per-call snapshot (`snapshots`) and the durable records (`records`).

Only the light part is re-exported here, so `from ari_app.storage import storage_away` stays
cheap.
"""

from __future__ import annotations

from ari_app.storage.faults import STORAGE_ERRORS, storage_away
from ari_app.storage.keyspace import Keyspace

__all__ = ["STORAGE_ERRORS", "Keyspace", "storage_away"]
