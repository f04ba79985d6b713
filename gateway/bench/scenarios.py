"""What each benchmark row sends: one table of HTTP requests per row.

In:  the credentials of a run (``Auth``) and the dataset ``Spec``.
Out: ``Scenario`` rows, each expanding to the HTTP requests that wrk cycles
     through (``Scenario.requests``), plus the SQL both baselines run.

The REST list, the baselines' SQL and the GraphQL list ask for the same ten rows,
so their req/s compare like for like; the baselines and the GraphQL list count nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from .dataset import Spec

REST = "/api/database/records"
LIST_COLUMNS = "id,title,status,created_at,author_id"
LIST_QUERY = f"select={LIST_COLUMNS}&status=eq.published&order=created_at.desc&limit=10"

# The REST list as one statement returning PostgreSQL's JSON text: the ceiling of both baselines.
LIST_SQL = (
    "select coalesce(json_agg(t), '[]') from (select id, title, status, created_at, author_id "
    "from posts where status = $1 order by created_at desc limit 10) t"
)
LIST_SQL_LITERAL = LIST_SQL.replace("$1", "'published'")  # pgbench scripts take no parameters here

# The point read as the gateway answers it (every column, a one-element JSON array), for the minimal endpoint.
SINGLE_SQL = "select coalesce(json_agg(t), '[]') from (select * from posts where id = $1) t"
# The insert of one row with its representation: the JSON array of the request body in, the stored row out.
INSERT_SQL = (
    "with i as (insert into bench_posts (title, content, status, author_id) "
    "select title, content, status, author_id from json_populate_recordset(null::bench_posts, $1::json) "
    "returning *) select coalesce(json_agg(i), '[]') from i"
)

# One exact count of the published posts newest first, cut at a created_at found so that exactly
# $2 rows match: what an exact X-Total-Count of that many rows costs the database.
COUNT_CUT_SQL = ("select created_at from posts where status = $1 order by created_at desc "
                 "offset $2::bigint - 1 limit 1")
COUNT_SQL = "select count(*) from posts where status = $1 and created_at >= $2"
# The estimate the default list takes instead, as the gateway asks for it.
ESTIMATE_SQL = ("select auth.estimate_rows('SELECT 1 FROM public.posts AS t0 WHERE t0.\"status\" = "
                "CAST($1[1] AS text)', $1::text[])")

GRAPHQL_LIST = (
    '{ posts(filter: {status: {eq: "published"}}, orderBy: [{created_at: DESC}], limit: 10) '
    "{ id title status created_at author_id } }"
)
GRAPHQL_RELATIONS = (
    '{ posts(filter: {status: {eq: "published"}}, orderBy: [{created_at: DESC}], limit: 10) '
    "{ id title author { id email } comments(limit: 3) { id body } } }"
)

# the same ten posts' shape, kept when their author's email matches (an EXISTS on users per post)
GRAPHQL_RELATION_FILTER = (
    '{ posts(filter: {status: {eq: "published"}, author: {email: {like: "%@%"}}}, '
    "orderBy: [{created_at: DESC}], limit: 10) { id title status created_at author_id } }"
)
# the first keyset page of the same list, with its end cursor
GRAPHQL_CONNECTION = (
    '{ posts_connection(filter: {status: {eq: "published"}}, orderBy: [{created_at: DESC}], first: 10) '
    "{ nodes { id title status created_at author_id } pageInfo { hasNextPage endCursor } } }"
)

# the published posts' count and date range: one aggregate statement over 80k rows
GRAPHQL_AGGREGATE = (
    '{ posts_aggregate(filter: {status: {eq: "published"}}) { count min { created_at } max { created_at } } }'
)

SINGLE_ROW_IDS = 200  # distinct ids the single-row scenario cycles through


@dataclass(frozen=True)
class Request:
    method: str  # HTTP method
    path: str  # path and query string
    headers: tuple[tuple[str, str], ...] = ()  # besides the credential
    body: str | None = None  # request body text


@dataclass(frozen=True)
class Auth:
    name: str  # how the row is labelled ("JWT", "API key")
    headers: tuple[tuple[str, str], ...]  # the credential header(s)


@dataclass(frozen=True)
class Context:
    spec: Spec  # the dataset, for id ranges
    user_id: str  # the signed-in user's id (author_id of inserted rows)


@dataclass(frozen=True)
class Scenario:
    key: str  # stable identifier, used by the targets
    name: str  # label in the table
    build: Callable[[Context], tuple[Request, ...]]  # the requests wrk cycles through

    def requests(self, ctx: Context, auth: Auth) -> tuple[Request, ...]:
        return tuple(Request(r.method, r.path, r.headers + auth.headers, r.body) for r in self.build(ctx))


JSON = (("Content-Type", "application/json"),)


def _graphql(query: str) -> Request:
    return Request("POST", "/graphql", JSON, orjson.dumps({"query": query}).decode())


def _rest_list(_: Context) -> tuple[Request, ...]:
    # the default call: X-Total-Count exact when the planner expects few rows, else its estimate
    # (the benchmark's 80k published posts are far above the exact-count limit)
    return (Request("GET", f"{REST}/posts?{LIST_QUERY}"),)


def _rest_list_exact(_: Context) -> tuple[Request, ...]:
    # every matching row counted, as every records read did before estimates
    return (Request("GET", f"{REST}/posts?{LIST_QUERY}", (("Prefer", "count=exact"),)),)


def _rest_list_planned(_: Context) -> tuple[Request, ...]:
    # the same list with the planner's estimate behind X-Total-Count instead of counting every
    # matching row: the same work as the baselines' statement, which counts nothing
    return (Request("GET", f"{REST}/posts?{LIST_QUERY}", (("Prefer", "count=planned"),)),)


def single_ids(spec: Spec) -> list[int]:
    """The post ids every point-read row cycles through, spread over the table so the row is not
    always the same cached page."""
    step = max(1, spec.posts // SINGLE_ROW_IDS)
    return [1 + i * step for i in range(SINGLE_ROW_IDS)]


def _rest_single(ctx: Context) -> tuple[Request, ...]:
    return tuple(Request("GET", f"{REST}/posts?id=eq.{n}") for n in single_ids(ctx.spec))


def insert_body(ctx: Context) -> str:
    """The one-row JSON array every insert row sends."""
    row = {"title": "benchmark post", "content": "x" * 200, "status": "draft", "author_id": ctx.user_id}
    return orjson.dumps([row]).decode()


def _rest_insert(ctx: Context) -> tuple[Request, ...]:
    return (Request("POST", f"{REST}/bench_posts", (*JSON, ("Prefer", "return=representation")),
                    insert_body(ctx)),)


def _rest_embed(_: Context) -> tuple[Request, ...]:
    query = "select=id,title,author:users(id,email)&status=eq.published&order=created_at.desc&limit=10"
    return (Request("GET", f"{REST}/posts?{query}"),)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("rest_list", "REST list (default X-Total-Count)", _rest_list),
    Scenario("rest_list_planned", "REST list, Prefer: count=planned", _rest_list_planned),
    Scenario("rest_list_exact", "REST list, Prefer: count=exact", _rest_list_exact),
    Scenario("rest_single", "REST single row by id", _rest_single),
    Scenario("rest_embed", "REST list + to-one embed", _rest_embed),
    Scenario("graphql_list", "GraphQL list", lambda _: (_graphql(GRAPHQL_LIST),)),
    Scenario("graphql_relations", "GraphQL list + author + comments", lambda _: (_graphql(GRAPHQL_RELATIONS),)),
    Scenario("graphql_relation_filter", "GraphQL list filtered through author",
             lambda _: (_graphql(GRAPHQL_RELATION_FILTER),)),
    Scenario("graphql_connection", "GraphQL connection, first page", lambda _: (_graphql(GRAPHQL_CONNECTION),)),
    Scenario("graphql_aggregate", "GraphQL aggregate of the published posts",
             lambda _: (_graphql(GRAPHQL_AGGREGATE),)),
    # last: the rows it writes leave autovacuum work that would slow the read rows after it
    Scenario("rest_insert", "REST insert 1 row (return=representation)", _rest_insert),
)

# The soak mixes these, so every code path that could leak runs for the whole soak.
SOAK_KEYS = ("rest_list", "rest_list_planned", "rest_single", "rest_insert", "rest_embed", "graphql_list",
             "graphql_relations")


def baseline_request() -> Request:
    """The minimal endpoint's list (no credential: it has no auth)."""
    return Request("GET", "/posts")


def baseline_single(ctx: Context) -> tuple[Request, ...]:
    """The minimal endpoint's point read, cycling the same ids as the gateway's."""
    return tuple(Request("GET", f"/posts/{n}") for n in single_ids(ctx.spec))


def baseline_insert(ctx: Context) -> tuple[Request, ...]:
    """The minimal endpoint's insert of the same one-row body as the gateway's."""
    return (Request("POST", "/bench_posts", JSON, insert_body(ctx)),)


# PostGraphile 5 (amber preset) names the same list: the connection over posts with a condition, its
# order enum and camelCase columns; ``rowId`` is the primary key (``id`` is the global node id there).
POSTGRAPHILE_LIST = (
    '{ allPosts(condition: {status: "published"}, orderBy: CREATED_AT_DESC, first: 10) '
    "{ nodes { rowId title status createdAt authorId } } }"
)


def postgraphile_list() -> Request:
    return _graphql(POSTGRAPHILE_LIST)


def postgrest_single(ctx: Context, auth: Auth) -> tuple[Request, ...]:
    """PostgREST's point read: its own path for the same table and ids, with the same credential."""
    return tuple(Request("GET", f"/posts?id=eq.{n}", auth.headers) for n in single_ids(ctx.spec))


def postgrest_list(auth: Auth) -> Request:
    """PostgREST's list with the planner's estimate, the gateway's ``count=planned`` row."""
    return Request("GET", f"/posts?{LIST_QUERY}", (("Prefer", "count=planned"), *auth.headers))


def pgbench_scripts(claims_json: str) -> dict[str, str]:
    """pgbench custom scripts: the bare statement, and the transaction shape PostgREST sends."""
    claims = claims_json.replace("'", "''")
    return {
        "json_agg": LIST_SQL_LITERAL + ";\n",
        "tx4": (
            "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;\n"
            f"SELECT set_config('role', 'authenticated', true), set_config('request.jwt.claims', '{claims}', true);\n"
            f"{LIST_SQL_LITERAL};\n"
            "COMMIT;\n"
        ),
    }
