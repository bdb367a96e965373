"""Complaints.close against a real Redis: a supervisor closes an open complaint with what was
done; closed already (by a colleague, even at the same moment) is said so and changes
nothing; the listing sorts newest first and filters by status."""

from __future__ import annotations

import asyncio

import pytest

from ari_app.escalation.service import Complaint, ComplaintClosed, Complaints
from ari_app.storage import Keyspace


@pytest.fixture
async def complaints(redis) -> Complaints:
    return Complaints(redis, keys=Keyspace())


async def test_given_an_open_complaint_when_closed_then_who_when_and_what_kept(complaints):
    made = await complaints.create(Complaint("call-1", caller_number="+12125550100"))

    closed = await complaints.close(made.id, by="supervisor1", resolution="refund agreed",
                                    now=1000.0)

    assert (closed.status, closed.closed_by, closed.closed_at, closed.resolution) == (
        "closed", "supervisor1", 1000.0, "refund agreed")
    assert await complaints.get(made.id) == closed
    assert await complaints.close("0" * 32, by="x", resolution="", now=1.0) is None


async def test_given_two_supervisors_closing_at_once_then_one_closes_and_the_other_is_told(
        complaints):
    made = await complaints.create(Complaint("call-1"))

    results = await asyncio.gather(
        complaints.close(made.id, by="supervisor1", resolution="one", now=1.0),
        complaints.close(made.id, by="supervisor2", resolution="two", now=1.0),
        return_exceptions=True)

    done = [r for r in results if isinstance(r, Complaint)]
    told = [r for r in results if isinstance(r, ComplaintClosed)]
    assert len(done) == 1 and len(told) == 1, results
    kept = await complaints.get(made.id)
    assert (kept.closed_by, kept.resolution) == (done[0].closed_by, done[0].resolution)


async def test_given_open_and_closed_complaints_when_listed_then_newest_first_by_status(
        complaints):
    old = await complaints.create(Complaint("call-1", created_at=100.0))
    new = await complaints.create(Complaint("call-2", created_at=200.0))
    await complaints.close(old.id, by="s", resolution="", now=300.0)

    assert [c.id for c in await complaints.listing()] == [new.id, old.id]
    assert [c.id for c in await complaints.listing("open")] == [new.id]
    assert [c.id for c in await complaints.listing("closed")] == [old.id]
