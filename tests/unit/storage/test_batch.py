"""Batched names a script by its digest, hashed once per text: a form's script is named
thousands of times a second."""

from __future__ import annotations

import hashlib

from ari_app.storage.batch import Batched

COUNT = "return redis.call('incr', KEYS[1])"


def test_given_one_text_named_twice_then_one_digest_hashed_once():
    batch = Batched(redis=None)  # naming a script sends nothing
    first, again = batch.script(COUNT), batch.script(COUNT)
    assert first is again
    assert first.sha == hashlib.sha1(COUNT.encode()).hexdigest()
    assert first.call(keys=["k"], args=[1]) == ("EVALSHA", first.sha, 1, "k", 1)
