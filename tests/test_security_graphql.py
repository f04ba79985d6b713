"""Abusive GraphQL documents are refused before they cost CPU (gateway/graphql/view.py, limits.py).

Attack tests over HTTP against the real database: fragment bombs with and without a
credential, cycles, fields repeated under one key at several levels, and the largest
documents the token limit lets through. Where the point is the algorithm, the tests count
work (selection sets walked, validation rules run) rather than time it: a timing bound in a test
fails on a busy machine and proves little on an idle one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support import Running, app_with

from gateway.graphql import limits
from gateway.graphql.view import current_schema

SCHEMA = "gql_abuse"
FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.nodes (id int PRIMARY KEY, parent_id int REFERENCES {SCHEMA}.nodes(id), label text);
GRANT SELECT ON {SCHEMA}.nodes TO anon, authenticated, project_admin;
INSERT INTO {SCHEMA}.nodes VALUES (1, NULL, 'root'), (2, 1, 'child');
"""


def bomb(levels: int) -> str:
    """Each fragment spreads the previous one twice: 2**levels fields once expanded, ~40 bytes a level."""
    parts = ["fragment F0 on Nodes { id }"]
    parts += [f"fragment F{i} on Nodes {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels + 1)]
    return f"{{ nodes {{ ...F{levels} }} }} " + " ".join(parts)


def repeated(counts: tuple[int, ...]) -> str:
    """``parent`` repeated counts[i] times at level i: pairwise comparison costs the product of squares."""
    inner = "id"
    for count in counts:
        inner = " ".join([f"parent {{ {inner} }}"] * count)
    return "{ nodes { " + inner + " } }"


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        yield running


@pytest.fixture
def walks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the selection sets ``Limits`` walks (one entry per call)."""
    calls: list[int] = []
    original = limits.Limits.shape

    def counting(self: limits.Limits, *args: Any, **kwargs: Any) -> limits.Shape:
        calls.append(1)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(limits.Limits, "shape", counting)
    return calls


async def post(gw: Running, query: str, headers: dict[str, str] | None) -> Any:
    """The response to ``query`` posted with ``headers``."""
    return await gw.client.post("/graphql", json={"query": query}, headers=headers or {})


def assert_graphql_error(response: Any, status: int, error: str, words: str) -> None:
    assert response.status_code == status, response.text
    entry = response.json()["errors"][0]
    assert entry["extensions"]["error"] == error and entry["extensions"]["statusCode"] == status
    assert words in entry["message"], entry["message"]


async def test_a_fragment_bomb_without_a_credential_is_refused_before_it_is_parsed(
        gw: Running, walks: list[int]) -> None:
    documents = current_schema(gw.gateway).documents
    before = len(documents)
    response = await post(gw, bomb(29), None)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["error"] == "AUTH_INVALID_CREDENTIALS"
    assert walks == [] and len(documents) == before  # never parsed, never judged, never cached


@pytest.mark.parametrize("who", ["anon", "user", "admin"])
async def test_a_fragment_bomb_with_a_credential_is_refused_with_400_after_a_linear_walk(
        gw: Running, walks: list[int], who: str) -> None:
    headers = {"anon": gw.anon, "user": gw.user(), "admin": gw.admin}[who]
    document = bomb(29)
    assert len(document) < 1500
    response = await post(gw, document, headers)
    assert_graphql_error(response, 400, "INVALID_QUERY", "fields once its fragments are expanded")
    assert len(walks) <= document.count("{")  # each selection set once, whatever the spreads


async def test_the_work_of_judging_nested_fragments_grows_linearly_with_the_levels(
        gw: Running, walks: list[int]) -> None:
    counts = []
    for levels in (5, 10):  # both under the field limit: judged in full, then executed
        walks.clear()
        response = await post(gw, bomb(levels), gw.admin)
        assert response.status_code == 200, response.text
        counts.append(len(walks))
    assert counts[1] - counts[0] == 5  # one more fragment walked per level; doubling would be 32x


async def test_fragments_that_spread_each_other_are_refused_as_a_cycle(gw: Running) -> None:
    document = "{ nodes { ...A } } fragment A on Nodes { id ...B } fragment B on Nodes { label ...A }"
    response = await post(gw, document, gw.user())
    assert_graphql_error(response, 400, "INVALID_QUERY", "within itself")


@pytest.mark.parametrize(("links", "accepted"), [(49, True), (450, False)])  # 450 links: under the token limit
async def test_a_long_chain_of_fragments_is_refused_before_graphql_core_recurses_through_it(
        gw: Running, walks: list[int], links: int, accepted: bool) -> None:
    chain = " ".join(f"fragment F{i} on Nodes {{ ...F{i - 1} }}" for i in range(1, links + 1))
    document = f"{{ nodes {{ ...F{links} }} }} fragment F0 on Nodes {{ id }} " + chain
    response = await post(gw, document, gw.user())
    if accepted:
        assert response.status_code == 200 and response.json()["data"]["nodes"][0] == {"id": 1}
    else:
        assert_graphql_error(response, 400, "INVALID_QUERY", "spread inside one another")
    assert len(walks) <= document.count("{")  # each fragment of the chain walked once


@pytest.mark.parametrize("counts", [(10, 10, 4), (10, 4, 10), (5, 10, 10)])
async def test_fields_repeated_under_one_key_at_several_levels_are_judged_in_one_pass(
        gw: Running, counts: tuple[int, ...]) -> None:
    # graphql-core's overlapping-fields rule compared these pairwise (0.5-0.8 s of CPU each);
    # it is not among the rules run, and the one-pass check accepts what may merge
    assert limits.OverlappingFieldsCanBeMergedRule not in limits.RULES
    response = await post(gw, repeated(counts), gw.user())
    assert response.status_code == 200, response.text


async def test_fields_that_cannot_be_merged_are_still_refused(gw: Running) -> None:
    response = await post(gw, "{ nodes { id: label id } }", gw.user())
    assert_graphql_error(response, 400, "INVALID_QUERY", "'label' and 'id' are different fields")
    response = await post(gw, "{ nodes(limit: 1) { id } nodes(limit: 2) { id } }", gw.user())
    assert_graphql_error(response, 400, "INVALID_QUERY", "differing arguments")


@pytest.mark.parametrize("document", [
    "{ nodes { " + " ".join(["id"] * 2450) + " } }",
    "{ nodes { " + " ".join(["... on Nodes { id }"] * 700) + " } }",
    "{ nodes { " + " ".join(["...A"] * 2400) + " } } fragment A on Nodes { id }",
    "{ nodes { " + " ".join(f"...A{i}" for i in range(550)) + " } } "
    + " ".join(f"fragment A{i} on Nodes {{ id }}" for i in range(550)),
], ids=["repeated_field", "inline_fragments", "repeated_spread", "distinct_fragments"])
async def test_documents_at_the_token_limit_are_judged_in_one_walk(gw: Running, walks: list[int],
                                                                   document: str) -> None:
    response = await post(gw, document, gw.user())
    assert response.status_code in (200, 400), response.text
    assert len(walks) <= document.count("{")  # each selection set once
