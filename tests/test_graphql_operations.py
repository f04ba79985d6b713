"""Persisted queries and the allow-list (gateway/graphql/operations.py), without a database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pytest

from gateway.errors import GatewayError
from gateway.graphql.operations import AllowList, PersistedQueries, digest
from gateway.identity import ADMIN, ANON, Identity

QUERY = "{ posts { id } }"
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
USER = Identity("authenticated", {"role": "authenticated", "sub": "x"})


def apq(sha: str = HASH) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha}}


def test_a_request_without_persisted_query_runs_its_own_document() -> None:
    assert PersistedQueries().resolve(QUERY, None) == QUERY


def test_an_unknown_hash_is_persisted_query_not_found_and_the_document_then_registers() -> None:
    store = PersistedQueries()
    with pytest.raises(GatewayError) as caught:
        store.resolve(None, apq())
    assert (caught.value.message, caught.value.code) == ("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND")
    assert store.resolve(QUERY, apq()) == QUERY
    assert store.resolve(None, apq()) == QUERY
    assert store.resolve("", apq(HASH.upper())) == QUERY


def test_a_document_whose_hash_does_not_match_is_refused_and_not_registered() -> None:
    store = PersistedQueries()
    with pytest.raises(GatewayError, match="does not match"):
        store.resolve("{ other }", apq())
    with pytest.raises(GatewayError, match="PersistedQueryNotFound"):
        store.resolve(None, apq())


@pytest.mark.parametrize("extensions", [{"persistedQuery": {"version": 2, "sha256Hash": HASH}},
                                        {"persistedQuery": "x"}, {"persistedQuery": {"version": 1}}])
def test_a_malformed_persisted_query_is_a_400(extensions: dict[str, object]) -> None:
    with pytest.raises(GatewayError) as caught:
        PersistedQueries().resolve(None, extensions)
    assert caught.value.status == 400


def test_the_store_is_bounded() -> None:
    store = PersistedQueries(size=2)
    docs = [f"{{ a{i} }}" for i in range(3)]
    for d in docs:
        store.resolve(d, apq(digest(d)))
    with pytest.raises(GatewayError, match="PersistedQueryNotFound"):
        store.resolve(None, apq(digest(docs[0])))
    assert store.resolve(None, apq(digest(docs[2]))) == docs[2]


def test_the_allow_list_admits_listed_documents_and_the_admin(tmp_path: Path) -> None:
    path = tmp_path / "allow.json"
    path.write_bytes(orjson.dumps({"Posts": QUERY}))
    allow = AllowList.load(str(path))
    allow.check(QUERY, USER)
    allow.check("{ anything }", ADMIN)
    for who in (USER, ANON):
        with pytest.raises(GatewayError) as caught:
            allow.check("{ posts { id title } }", who)
        assert caught.value.status == 403
    assert PersistedQueries(allow).resolve(None, apq()) == QUERY  # listed documents are known by hash


def test_no_allow_list_admits_everything_and_a_bad_file_is_a_start_up_error(tmp_path: Path) -> None:
    AllowList.load(None).check("{ anything }", USER)
    bad = tmp_path / "bad.json"
    for content in (b"not json", b"[1, 2]", b'{"a": ""}'):
        bad.write_bytes(content)
        with pytest.raises(ValueError, match="GATEWAY_GRAPHQL_ALLOWLIST"):
            AllowList.load(str(bad))
