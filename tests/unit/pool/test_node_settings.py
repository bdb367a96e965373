"""ETIQUETTE_NODES: every Asterisk node one instance serves, each with its credentials."""

import pytest
from pydantic import ValidationError

from ari_app.settings import NodeAri, Settings


def _settings(**kw) -> Settings:
    return Settings(ari_password="secret", _env_file=None, **kw)


def test_unset_is_the_one_node_at_ari_url():
    assert _settings(ari_url="http://h:8088", node="a").ari_nodes() == [
        NodeAri("a", "http://h:8088", "etiquette", "secret")]


def test_every_node_listed_own_first_with_credentials_from_the_url_kept_out_of_it():
    s = _settings(nodes=" a=http://10.0.0.1:8088/ , b=http://ops:p%40ss@10.0.0.2:8089", node="b")
    assert s.ari_nodes() == [NodeAri("b", "http://10.0.0.2:8089", "ops", "p@ss"),
                             NodeAri("a", "http://10.0.0.1:8088", "etiquette", "secret")]
    assert "p@ss" not in repr(s.ari_nodes())


def test_without_node_the_first_listed_is_home():
    assert [n.node for n in _settings(nodes="b=http://x:1,a=http://y:2").ari_nodes()] == ["b", "a"]


@pytest.mark.parametrize("bad, says", [
    ("a", "name=ARI URL"), ("a=ftp://x", "name=ARI URL"), ("a b=http://x", "name=ARI URL"),
    ("a=http://x,a=http://y", "listed twice"),
])
def test_a_broken_list_says_what_is_wrong(bad, says):
    with pytest.raises(ValidationError, match=says):
        _settings(nodes=bad)


def test_node_must_be_one_of_the_nodes():
    with pytest.raises(ValidationError, match="'c' is not one of ETIQUETTE_NODES"):
        _settings(nodes="a=http://x:1,b=http://y:2", node="c")


def test_empty_means_unset():
    assert _settings(nodes="  ").nodes is None
