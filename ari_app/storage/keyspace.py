"""The one place that names Redis keys: every store and service asks the `Keyspace` built
once in app.py instead of formatting keys itself, so a key family is renamed here alone and
tests ask the same object what to look at.

Redis Cluster: the keys one MULTI/EXEC or one script touches must live in one hash slot, and
only the part of a key inside `{...}` (its hash tag) is hashed when there is one. So:

- everything of one call shares the call id as tag, `etq:{<call id>}:...` (its record, its
  rules' snapshots, its timeline, its lease and fence counter): a fenced write
  (calls/ownership.py) checks the lease and writes any of them in one script;
- a durable record and its index share the kind, `etq:{<kind>}:...`; the callback requests'
  other keys (open-by-number, submission, dialer lock) are `{callback}` too, since the
  create-or-merge script touches the request, the index, the open key and a submission;
- a queue's waiting line and its entries share the queue, `etq:{queue:<name>}:...`: taking the
  head for an operator reads and writes both in one script;
- a customer card and its history share the number, `etq:customer:{<number>}...`;
- keys always used alone (live calls, operator reservations and states, rate counters, an
  operator's day) carry no tag, so they spread over the cluster.

A script gets every key it touches in KEYS, never builds one inside Lua (Cluster routes by
KEYS).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CALLBACK", "CALL_STATE_TTL", "Keyspace"]

CALLBACK = "callback"  # the callback requests' record kind, and their hash tag

# A call's own state (its record, its rules' snapshots) outlives its last write by at most
# this, refreshed on every write: deleted when the call or rule ends, and gone anyway when no
# process is left to end it.
CALL_STATE_TTL = 86400


@dataclass(frozen=True)
class Keyspace:
    """Every Redis key the app uses, one method per key family."""

    prefix: str = "etq"

    def __post_init__(self) -> None:
        if not self.prefix or "{" in self.prefix or "}" in self.prefix:
            # a brace in the prefix would become every key's hash tag: one slot for all
            raise ValueError(f"key prefix must be non-empty and without braces: {self.prefix!r}")

    def _of_call(self, call_id: str, what: str) -> str:
        return f"{self.prefix}:{{{call_id}}}:{what}"

    def _tagged(self, tag: str, what: str) -> str:
        return f"{self.prefix}:{{{tag}}}:{what}"

    # --- one call (tag: the call id) ------------------------------------------------------
    def call(self, call_id: str) -> str:
        """The inbound call's machine snapshot (inbound/store.py)."""
        return self._of_call(call_id, "call")

    def snapshot(self, rule: str, call_id: str) -> str:
        """A rule's machine snapshot for the call (storage/snapshots.py): hold, transfer,
        complaint-flow, callback-call."""
        return self._of_call(call_id, f"snapshot:{rule}")

    def timeline(self, call_id: str) -> str:
        """The call's etiquette log (calls/etiquette_log.py)."""
        return self._of_call(call_id, "timeline")

    def lease(self, call_id: str) -> str:
        """Which instance drives the call: `<instance>:<token>` (calls/ownership.py)."""
        return self._of_call(call_id, "owner")

    def fencing_counter(self, call_id: str) -> str:
        """The call's fencing token counter, INCRed by every claim (calls/ownership.py)."""
        return self._of_call(call_id, "fence")

    def shards(self, node: str | None = None) -> "Keyspace":
        """The pool's shard leases (pool/): the same lease and fence-counter keys, per ARI app
        name instead of per call (`etq:shard:{<app>}:owner`); per Asterisk node when several
        share the Redis (`etq:shard:<node>:{<app>}:owner`: app names are per node)."""
        return Keyspace(f"{self.prefix}:shard" + (f":{node}" if node else ""))

    # --- used alone (no tag) --------------------------------------------------------------
    def live_calls(self) -> str:
        """The set of inbound calls in progress (what reconcile resumes)."""
        return f"{self.prefix}:calls"

    def operator(self, endpoint: str) -> str:
        """An operator's reservation: the call id that holds them (operators/service.py)."""
        return f"{self.prefix}:operator:{endpoint}"

    def operator_state(self, endpoint: str) -> str:
        """An operator's place in the pool: logged in, paused, logged out, and when their last
        call ended (operators/store.py). Kept until they log in again: no expiry."""
        return f"{self.prefix}:operator-state:{endpoint}"

    def operator_day(self, endpoint: str, day: str) -> str:
        """An operator's etiquette log for one UTC day, YYYY-MM-DD (calls/etiquette_log.py)."""
        return f"{self.prefix}:etiquette:operator:{endpoint}:{day}"

    def dashboard_hour(self, hour: str) -> str:
        """The supervisor dashboard's figures of one UTC hour, YYYY-MM-DDTHH, a hash of
        counters (dashboard/today.py), kept a few days."""
        return f"{self.prefix}:dashboard:hour:{hour}"

    def rate(self, key: str, slot: int | str) -> str:
        """A fixed-window rate counter of the callback intake (callback/intake.py): `key` is
        what is counted ("ip:<address>"), `slot` the window's number. In the callback slot:
        the script that stores a request counts them."""
        return self._tagged("callback", f"rate:{key}:{slot}")

    def session(self, token_digest: str) -> str:
        """A staff member's signed-in session, a hash (staff/sessions.py), keyed by the
        SHA-256 of the cookie's token: Redis never holds a usable cookie."""
        return f"{self.prefix}:session:{token_digest}"

    def sign_in_failures(self, user: str) -> str:
        """Wrong passwords for one user name in the current window (staff/sessions.py)."""
        return f"{self.prefix}:sign-in-failures:{user}"

    # --- a queue (tag: queue:<name>) -------------------------------------------------------
    def queue_line(self, queue: str) -> str:
        """The queue's waiting line, a sorted set of entry ids by their place (queue/store.py)."""
        return self._tagged(f"queue:{queue}", "line")

    def queue_entries(self, queue: str) -> str:
        """The queue's entries, a hash: entry id -> JSON (arrival, priority, kind, ...)."""
        return self._tagged(f"queue:{queue}", "entries")

    def queue_handle_times(self, queue: str) -> str:
        """The queue's recent talk durations, a list of `[ended_at, seconds]` JSON, newest
        first, trimmed to the estimate's window (queue/service.py)."""
        return self._tagged(f"queue:{queue}", "handle-times")

    def queue_left(self, queue: str, number: str) -> str:
        """A caller who hung up while waiting: their entry JSON, kept for the policy's
        return window, so that calling again puts them back at their place."""
        return self._tagged(f"queue:{queue}", f"left:{number}")

    def queue_offers(self) -> str:
        """Operators reserved for queued callers and not yet taken up by the caller's call, a
        hash: call id -> JSON (queue, entry, operator, at); an offer nobody takes up in time
        is undone (queue/dispatcher.py)."""
        return f"{self.prefix}:queue-offers"

    def queue_talking(self) -> str:
        """Calls put through from a queue and still talking, a hash: call id -> JSON (queue,
        since), for the handle times."""
        return f"{self.prefix}:queue-talking"

    def queue_channel(self) -> str:
        """The pub/sub channel an instance tells the instance that owns a call that an
        operator was reserved for its caller."""
        return f"{self.prefix}:queue-offered"

    # --- a customer (tag: the number) -----------------------------------------------------
    def customer(self, number: str) -> str:
        """The customer card, a hash (customers/service.py)."""
        return f"{self.prefix}:customer:{{{number}}}"

    def customer_history(self, number: str) -> str:
        """What happened with the customer, a list written with the card."""
        return f"{self.customer(number)}:history"

    # --- durable records (tag: the kind) --------------------------------------------------
    def record(self, kind: str, record_id: str) -> str:
        """One durable record (storage/records.py): callback, voicemail, complaint."""
        return self._tagged(kind, f"record:{record_id}")

    def record_index(self, kind: str) -> str:
        """The kind's time-ordered index, written with the record in one transaction (for
        callback requests: the open ones, scored by when they are due)."""
        return self._tagged(kind, "index")

    def callback_open(self, number: str) -> str:
        """The open callback request of a number, so a second request merges into it."""
        return self._tagged(CALLBACK, f"open:{number}")

    def callback_submission(self, submission_id: str) -> str:
        """A submission merged into another request: that request's id."""
        return self._tagged(CALLBACK, f"submission:{submission_id}")

    def callback_lock(self, request_id: str) -> str:
        """The dialer instance working on a request (callback/dialer.py)."""
        return self._tagged(CALLBACK, f"lock:{request_id}")

    def callback_attempts(self) -> str:
        """The callback attempts under way, scored by when each started: what the process
        that next holds an attempt's app takes up (callback/stasis.py), without a SCAN."""
        return self._tagged(CALLBACK, "attempts")

    def callback_attempts_indexed(self) -> str:
        """Set once the attempts a version before the index left under way were listed in it."""
        return self._tagged(CALLBACK, "attempts-indexed")
