"""What counts as storage away: a master without replicas in sync (NOREPLICAS) refuses the
write like a failover does, so calls wait and the API answers 503, never 500."""

from redis._parsers.base import BaseParser
from redis.exceptions import ResponseError

from ari_app.storage import storage_away
from ari_app.storage.faults import NoReplicasError


def test_given_noreplicas_answer_when_parsed_then_storage_away():
    error = BaseParser.parse_error("NOREPLICAS Not enough good replicas to write.")
    assert isinstance(error, NoReplicasError) and isinstance(error, ResponseError)
    assert storage_away(error)


def test_given_wrong_command_when_parsed_then_a_bug_not_an_outage():
    error = BaseParser.parse_error("WRONGTYPE Operation against a key holding the wrong kind")
    assert not storage_away(error)
