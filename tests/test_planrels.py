"""Relationship resolution without a database: PostgREST's matching table over a small catalog.

A self-referencing ``nodes`` table, ``posts`` with two FKs to ``people``, a ``tags`` junction
(``post_tags``), a view ``people_v`` over ``people`` and a computed relationship
``latest(people) RETURNS SETOF posts ROWS 1``.
"""

from __future__ import annotations

import pytest

from gateway.catalog import Catalog, Column, ForeignKey, Function, FunctionArg, Table
from gateway.errors import GatewayError
from gateway.plan.rels import find_relationship


def cols(*names: str) -> tuple[Column, ...]:
    return tuple(Column(n, "integer", "int4", "int", position=i + 1) for i, n in enumerate(names))


def fk(name: str, columns: tuple[str, ...], table: str, ref: tuple[str, ...] = ("id",)) -> ForeignKey:
    return ForeignKey(name, columns, "public", table, ref)


TABLES = {t.key: t for t in (
    Table("public", "nodes", "table", cols("id", "parent_id"), ("id",),
          foreign_keys=(fk("nodes_parent_fkey", ("parent_id",), "nodes"),)),
    Table("public", "people", "table", cols("id"), ("id",)),
    Table("public", "posts", "table", cols("id", "author_id", "editor_id"), ("id",), foreign_keys=(
        fk("posts_author_fkey", ("author_id",), "people"), fk("posts_editor_fkey", ("editor_id",), "people"))),
    Table("public", "tags", "table", cols("id"), ("id",)),
    Table("public", "post_tags", "table", cols("post_id", "tag_id"), ("post_id", "tag_id"), foreign_keys=(
        fk("post_tags_post_fkey", ("post_id",), "posts"), fk("post_tags_tag_fkey", ("tag_id",), "tags"))),
    Table("public", "people_v", "view", cols("id"), column_sources=(("id", "public", "people", "id"),)),
)}
LATEST = Function("public", "latest", 1, (FunctionArg("", "people", "people", "other"),), "SETOF posts", True,
                  "composite", "posts", return_table=("public", "posts"), rows=1, row_argument=("public", "people"))
CATALOG = Catalog(("public",), TABLES, {("public", "latest"): (LATEST,)})


@pytest.mark.parametrize(("parent", "name", "hint", "target", "cardinality", "constraint"), [
    ("nodes", "nodes", None, "nodes", "o2m", "nodes_parent_fkey"),  # children
    ("nodes", "parent_id", None, "nodes", "m2o", "nodes_parent_fkey"),  # parent
    ("nodes", "nodes_parent_fkey", None, "nodes", "m2o", "nodes_parent_fkey"),
    ("nodes", "nodes", "parent_id", "nodes", "o2m", "nodes_parent_fkey"),
    ("nodes", "nodes", "nodes_parent_fkey", "nodes", "o2m", "nodes_parent_fkey"),
    ("posts", "people", "posts_author_fkey", "people", "m2o", "posts_author_fkey"),
    ("posts", "people", "editor_id", "people", "m2o", "posts_editor_fkey"),
    ("posts", "author_id", None, "people", "m2o", "posts_author_fkey"),
    ("people", "posts_editor_fkey", None, "posts", "o2m", "posts_editor_fkey"),
    ("people", "posts", "author_id", "posts", "o2m", "posts_author_fkey"),
    ("posts", "tags", None, "tags", "m2m", "post_tags_tag_fkey"),
    ("posts", "tags", "post_tags", "tags", "m2m", "post_tags_tag_fkey"),
    ("posts", "people_v", "posts_author_fkey", "people_v", "m2o", "posts_author_fkey"),
    ("people_v", "posts", "editor_id", "posts", "o2m", "posts_editor_fkey"),
    ("people", "latest", None, "posts", "m2o", "latest"),  # ROWS 1: to-one
])
def test_names_and_hints_pick_one_relationship(parent: str, name: str, hint: str | None, target: str,
                                               cardinality: str, constraint: str) -> None:
    rel = find_relationship(CATALOG, TABLES[("public", parent)], name, hint)
    assert (rel.target[1], rel.cardinality, rel.constraint) == (target, cardinality, constraint)


@pytest.mark.parametrize(("parent", "name", "hint", "status", "code"), [
    ("posts", "people", None, 300, "PGRST201"),  # two FKs
    ("people", "posts", None, 300, "PGRST201"),
    ("posts", "people", "nope", 400, "PGRST200"),
    ("nodes", "nodes", "id", 400, "PGRST200"),  # a self hint names the FK's own column
    ("posts", "people_v", None, 300, "PGRST201"),  # a view over people shows both FKs' target
    ("posts", "posts_author_fkey", "x", 400, "PGRST200"),  # with a hint the name must be a table
    ("tags", "people", None, 400, "PGRST200"),
])
def test_no_or_several_relationships_are_refused(parent: str, name: str, hint: str | None, status: int,
                                                 code: str) -> None:
    with pytest.raises(GatewayError) as err:
        find_relationship(CATALOG, TABLES[("public", parent)], name, hint)
    assert (err.value.status, err.value.code) == (status, code)
