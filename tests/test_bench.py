"""The benchmark's pure parts: dataset generation, tool output parsing, the report. No load runs here."""

from __future__ import annotations

import itertools

import pytest

from gateway.bench import dataset, drive, report, scenarios, wide
from gateway.bench.database import data_statements
from gateway.bench.drive import LoadResult
from gateway.bench.phases import flatness
from gateway.bench.report import Extras, Row

SMALL = dataset.Spec(users=50, posts=200, comments=500, seed=3)
GENERATORS = (dataset.user_rows, dataset.post_rows, dataset.comment_rows)


@pytest.mark.parametrize("generate", GENERATORS, ids=lambda g: g.__name__)
def test_the_same_spec_generates_the_same_rows(generate):
    assert list(generate(SMALL)) == list(generate(SMALL))


@pytest.mark.parametrize("generate", GENERATORS, ids=lambda g: g.__name__)
def test_another_seed_generates_other_rows(generate):
    other = dataset.Spec(users=50, posts=200, comments=500, seed=4)
    assert list(itertools.islice(generate(SMALL), 20)) != list(itertools.islice(generate(other), 20))


@pytest.mark.parametrize(("generate", "count"), [
    (dataset.user_rows, SMALL.users), (dataset.post_rows, SMALL.posts), (dataset.comment_rows, SMALL.comments),
])
def test_each_table_gets_the_row_count_of_the_spec(generate, count):
    assert sum(1 for _ in generate(SMALL)) == count


def test_posts_have_the_content_length_a_status_and_an_existing_author():
    users = {row[0] for row in dataset.user_rows(SMALL)}
    posts = list(dataset.post_rows(SMALL))
    assert {len(p[2]) for p in posts} == {SMALL.content_bytes}
    assert {p[3] for p in posts} == set(dataset.STATUSES)
    assert {p[5] for p in posts} <= users


def test_comments_point_at_existing_posts_and_users():
    users = {row[0] for row in dataset.user_rows(SMALL)}
    comments = list(dataset.comment_rows(SMALL))
    assert {c[1] for c in comments} <= set(range(1, SMALL.posts + 1))
    assert {c[2] for c in comments} <= users


WRK_OUTPUT = """Running 3s test @ http://127.0.0.1:4000
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.10ms    1.20ms  30.00ms   90.00%
  9000 requests in 3.00s, 9.00MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   3000.00
wrk-json: {"requests": 9000, "duration_us": 3000000, "status": 3, "connect": 0, "read": 1, "write": 0, \
"timeout": 2, "p50_us": 3950.0, "p99_us": 9120.5}
"""


def test_wrk_output_is_read_from_the_json_line():
    result = drive.parse_wrk(WRK_OUTPUT)
    assert result == LoadResult(rps=3000.0, p50_ms=3.95, p99_ms=9.1205, errors=6, requests=9000)


def test_wrk_output_without_the_json_line_is_an_error():
    with pytest.raises(drive.LoadError):
        drive.parse_wrk("unable to connect to 127.0.0.1:4000 Connection refused")


def test_the_lua_script_formats_every_request_with_escaped_strings():
    body = '[{"title": "a \\"quoted\\" title"}]'
    script = drive.lua_script([
        scenarios.Request("GET", "/a?x=1", (("Authorization", "Bearer t"),)),
        scenarios.Request("POST", "/b", (("Content-Type", "application/json"),), body),
    ])
    assert '{"GET", "/a?x=1", {["Authorization"] = "Bearer t"}, nil},' in script
    assert '"[{\\"title\\": \\"a \\\\\\"quoted\\\\\\" title\\"}]"' in script
    assert "function done(summary, latency, requests)" in script


PGBENCH_OUTPUT = """pgbench (16.2)
transaction type: script.sql
number of clients: 32
number of threads: 2
number of transactions actually processed: 61234
number of failed transactions: 5 (0.008%)
latency average = 1.567 ms
tps = 20411.333333 (without initial connection time)
"""


def test_pgbench_summary_gives_tps_processed_and_failed():
    assert drive.parse_pgbench(PGBENCH_OUTPUT) == (20411.333333, 61234, 5)


def test_pgbench_latency_percentiles_come_from_the_transaction_log():
    lines = [f"0 {i} {latency} 0 1700000000 0" for i, latency in enumerate(range(1000, 101000, 1000))]
    assert drive.latency_percentiles(lines) == (51.0, 100.0)


def _result(rps: float, p50: float = 2.0, p99: float = 5.0, errors: int = 0) -> LoadResult:
    return LoadResult(rps=rps, p50_ms=p50, p99_ms=p99, errors=errors, requests=int(rps))


ROWS = [
    Row("pgbench json_agg", None, _result(20000), key="pgbench"),
    Row("minimal", 1, _result(4000), key="minimal"),
    Row("REST list", 1, _result(3200), key="rest_list_planned", auth=report.JWT),
    Row("GraphQL list", 1, note="n/a (status 404)", key="graphql_list", auth=report.JWT),
    Row("REST insert", 1, _result(1000, p50=3.0, p99=12.0), key="rest_insert", auth=report.JWT),
    Row("REST list, default count", 1, _result(2800), key="rest_list", auth=report.JWT),
]


def test_the_table_gives_ratios_to_pgbench_and_to_the_minimal_endpoint_with_the_same_workers():
    cells = report.table_cells(ROWS)
    assert cells[0] == report.HEADER
    assert cells[2] == ("minimal", "1", "4,000", "2.00", "5.00", "0", "0.20x", "1.00x", "—")
    assert cells[3] == ("REST list [JWT]", "1", "3,200", "2.00", "5.00", "0", "0.16x", "0.80x", "—")
    assert cells[1][-1] == "—"  # pgbench has no worker count, so no minimal endpoint to compare with


def test_a_row_without_a_result_shows_its_note():
    cells = report.table_cells(ROWS)
    assert cells[4][:3] == ("GraphQL list [JWT]", "1", "n/a (status 404)")
    text = report.render_text(cells)
    assert "GraphQL list [JWT]" in text and "n/a (status 404)" in text


def test_markdown_has_a_header_separator_and_a_line_per_row():
    markdown = report.render_markdown(report.table_cells(ROWS)).splitlines()
    assert markdown[0].startswith("| row | workers | req/s")
    assert markdown[1] == "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    assert len(markdown) == 2 + len(ROWS)


@pytest.mark.parametrize(("target", "measured", "met"), [
    ("REST list, count=planned [JWT] >= 0.75 x minimal endpoint, same workers", "1w 0.80x", True),
    ("REST list, default X-Total-Count [JWT] >= 0.6 x the same page with no total (GraphQL list), same workers",
     "1w n/a", None),  # the GraphQL row failed in this run: nothing to judge against
    ("GraphQL list [JWT] >= 0.6 x the minimal endpoint's list, same workers", "1w n/a", None),
    ("Insert 1 row, return=representation [JWT] >= 0.6 x the point read [JWT], same workers", "1w n/a", None),
    ("p99 <= 3 x p50 at 32 connections (every gateway row)",
     "worst 4.0x: REST insert [JWT] 1w at 32 conns", False),
    ("GraphQL with relations: one statement per root field (no N+1)", "1.00 data statements per request", True),
    ("Prefer: count=planned stays one round trip (list and estimate in one statement)",
     "rest_list_planned not measured", None),
    ("Point read by primary key [JWT] >= 1.5 x PostgREST's (1 worker)", "peer not run", None),
    ("RSS < 150 MB per worker with a 200-table catalog", "not measured", None),
])
def test_targets_are_judged_from_the_same_run(target, measured, met):
    extras = Extras(statements={"graphql_relations": 1.0})
    verdict = next(v for v in report.evaluate(ROWS, extras) if v.target == target)
    assert verdict.measured.startswith(measured)
    assert verdict.met is met


LOG = """2024-01-01 00:00:00.000 UTC [10] app=gateway LOG:  statement: BEGIN; SELECT set_config('role', 'x', true)
2024-01-01 00:00:00.001 UTC [10] app=gateway LOG:  execute __asyncpg_stmt_1__: SELECT coalesce(json_agg(t), '[]') FROM t
2024-01-01 00:00:00.001 UTC [10] app=gateway DETAIL:  parameters: $1 = 'published'
2024-01-01 00:00:00.002 UTC [10] app=gateway LOG:  statement: COMMIT
2024-01-01 00:00:00.003 UTC [11] app=bench LOG:  statement: SELECT 1
2024-01-01 00:00:00.004 UTC [10] app=gateway LOG:  execute <unnamed>: SELECT *
	FROM users WHERE id = $1
"""


def test_only_the_gateways_data_statements_are_counted():
    assert data_statements(LOG) == [
        "SELECT coalesce(json_agg(t), '[]') FROM t", "SELECT *\n\tFROM users WHERE id = $1",
    ]


def test_memory_is_flat_when_it_grows_less_than_the_tolerance():
    assert flatness({1: [50.0, 80.0, 81.0, 82.0]}).startswith("memory flat")
    assert flatness({1: [50.0, 80.0, 95.0, 110.0]}).startswith("memory GROWING")


def test_the_wide_schema_has_the_requested_tables_each_linked_to_the_previous():
    sql = wide.wide_schema_sql(5)
    assert sql.count("CREATE TABLE") == 5
    assert sql.count("REFERENCES") == 4
    assert "CREATE TABLE wide_005" in sql


def test_the_default_list_and_the_exact_count_run_the_same_page():
    rows = {s.key: s.build(scenarios.Context(SMALL, "u"))[0] for s in scenarios.SCENARIOS}
    default, exact, planned = rows["rest_list"], rows["rest_list_exact"], rows["rest_list_planned"]
    assert default.path == exact.path == planned.path
    assert (default.headers, exact.headers) == ((), (("Prefer", "count=exact"),))


def test_the_default_list_is_judged_against_the_same_page_with_no_total_and_shown_beside_the_others():
    rows = [Row("minimal", 1, _result(4000), key="minimal"),
            Row("default", 1, _result(2000), key="rest_list", auth=report.JWT),
            Row("GraphQL", 1, _result(2500), key="graphql_list", auth=report.JWT),
            Row("exact", 1, _result(250), key="rest_list_exact", auth=report.JWT)]
    verdict = next(v for v in report.evaluate(rows, Extras()) if v.target.startswith("REST list, default"))
    assert verdict.measured == "1w 0.80x; x minimal endpoint: 1w 0.50x; x count=exact: 1w 8.00x"
    assert verdict.met is True


PEER_ROWS = [
    Row("minimal list", 1, _result(4000), key="minimal"),
    Row("minimal single", 1, _result(5000), key="minimal_single"),
    Row("minimal insert", 1, _result(2000), key="minimal_insert"),
    Row("PostGraphile 5", 1, _result(800), key="postgraphile_list"),
    Row("PostgREST single", 1, note="n/a (no PostgREST binary: none on PATH)", key="postgrest_single"),
    Row("single", 1, _result(4000), key="rest_single", auth=report.JWT),
    Row("single", 1, _result(4500), key="rest_single", auth=report.API_KEY),
    Row("GraphQL", 1, _result(2000), key="graphql_list", auth=report.JWT),
    Row("insert", 1, _result(2000), key="rest_insert", auth=report.JWT),
    Row("minimal single", 2, _result(7000), key="minimal_single"),
    Row("single", 2, _result(6000), key="rest_single", auth=report.JWT),
]


def _verdict(rows: list[Row], start: str, extras: Extras | None = None) -> report.Verdict:
    return next(v for v in report.evaluate(rows, extras or Extras()) if v.target.startswith(start))


def test_the_point_read_is_judged_against_the_minimal_endpoints_point_read_at_each_worker_count():
    verdict = _verdict(PEER_ROWS, "Point read by primary key [JWT] >= 0.75 x the minimal")
    assert (verdict.measured, verdict.met) == ("1w 0.80x, 2w 0.86x", True)


def test_a_peer_that_could_not_run_makes_its_target_na_with_the_peers_reason():
    verdict = _verdict(PEER_ROWS, "Point read by primary key [JWT] >= 1.5 x PostgREST")
    assert (verdict.measured, verdict.met) == ("n/a (no PostgREST binary: none on PATH)", None)
    assert verdict.label == "n/a"


def test_the_graphql_list_is_judged_against_postgraphile_at_one_worker():
    verdict = _verdict(PEER_ROWS, "GraphQL list [JWT] >= 1.5 x PostGraphile")
    assert (verdict.measured, verdict.met) == ("1w 2.50x (2,000 vs 800 req/s)", True)


def test_a_peer_row_below_the_bar_misses_the_target():
    rows = [*PEER_ROWS[:3], Row("PostgREST single", 1, _result(3000), key="postgrest_single"), *PEER_ROWS[5:]]
    verdict = _verdict(rows, "Point read by primary key [JWT] >= 1.5 x PostgREST")
    assert (verdict.measured, verdict.met) == ("1w 1.33x (4,000 vs 3,000 req/s)", False)


def test_the_insert_is_judged_against_the_gateways_point_read_with_the_minimal_insert_beside_it():
    verdict = _verdict(PEER_ROWS, "Insert 1 row")
    assert (verdict.measured, verdict.met) == ("1w 0.50x; x minimal endpoint: 1w 1.00x", False)


def test_worker_scaling_is_judged_on_the_point_read_with_the_minimal_endpoints_scaling_beside_it():
    verdict = _verdict(PEER_ROWS, "Point read [JWT]: 2 workers")
    assert verdict.measured == "2w / 1w = 1.50x; minimal endpoint 1.40x on this machine"
    assert verdict.met is False
    one_worker = [r for r in PEER_ROWS if r.workers != 2]
    assert _verdict(one_worker, "Point read [JWT]: 2 workers").met is None


def test_planned_counts_are_judged_on_their_data_statements_per_request():
    one = _verdict(PEER_ROWS, "Prefer: count=planned", Extras(statements={"rest_list_planned": 1.0}))
    two = _verdict(PEER_ROWS, "Prefer: count=planned", Extras(statements={"rest_list_planned": 2.0}))
    assert (one.met, two.met) == (True, False)


def test_rows_are_compared_with_the_minimal_endpoint_doing_the_same_work_and_jwt_rows_with_their_peer():
    cells = {(c[0], c[1]): c for c in report.table_cells(PEER_ROWS)}
    assert cells[("single [JWT]", "1")][-2:] == ("0.80x", "—")  # PostgREST did not run
    assert cells[("single [API key]", "1")][-2:] == ("0.90x", "—")
    assert cells[("GraphQL [JWT]", "1")][-2:] == ("0.50x", "2.50x")
    assert cells[("insert [JWT]", "1")][-2:] == ("1.00x", "—")
    assert cells[("PostGraphile 5", "1")][-2:] == ("0.20x", "—")


def test_the_minimal_endpoint_and_the_peers_cycle_the_gateways_point_read_ids():
    ctx = scenarios.Context(SMALL, "u")
    jwt = scenarios.Auth(report.JWT, (("Authorization", "Bearer t"),))
    single = next(s for s in scenarios.SCENARIOS if s.key == "rest_single")
    gateway = [r.path.rsplit(".", 1)[1] for r in single.build(ctx)]
    minimal = [r.path.rsplit("/", 1)[1] for r in scenarios.baseline_single(ctx)]
    postgrest = [r.path.rsplit(".", 1)[1] for r in scenarios.postgrest_single(ctx, jwt)]
    assert gateway == minimal == postgrest
    assert len(set(gateway)) == min(scenarios.SINGLE_ROW_IDS, SMALL.posts)


def test_the_minimal_insert_sends_the_gateways_body():
    ctx = scenarios.Context(SMALL, "u")
    gateway = next(s for s in scenarios.SCENARIOS if s.key == "rest_insert").build(ctx)[0]
    assert scenarios.baseline_insert(ctx)[0].body == gateway.body


@pytest.mark.parametrize(("only", "parts", "keys"), [
    ("", {"pgbench", "minimal", "postgraphile", "postgrest", "soak", "wide", "count"}, "all"),
    ("peers", {"postgraphile", "postgrest"}, set()),
    ("rest_single,graphql_list,minimal", {"minimal"}, {"rest_single", "graphql_list"}),
    ("gateway,postgrest", {"postgrest"}, "all"),
])
def test_only_selects_parts_and_gateway_rows(only, parts, keys):
    from gateway.bench.__main__ import parse_args
    from gateway.bench.run import PARTS

    opts = parse_args(["--only", only] if only else [])
    assert {p for p in PARTS if p != "peers" and p != "gateway" and opts.wants(p)} == parts
    chosen = {s.key for s in opts.scenarios()}
    assert chosen == ({s.key for s in scenarios.SCENARIOS} if keys == "all" else keys)


def test_only_refuses_names_it_does_not_know():
    from gateway.bench.__main__ import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--only", "rest_single,nope"])


@pytest.mark.parametrize(("text", "major"), [("v20.20.2\n", 20), ("v22.23.3", 22), ("", None), ("node", None)])
def test_the_node_major_version_is_read_from_its_version_line(text, major):
    from gateway.bench.peers import parse_node_version

    assert parse_node_version(text) == major


def test_a_postgraphile_answer_is_counted_by_its_nodes():
    from gateway.bench.peers import count_nodes

    assert count_nodes(b'{"data": {"allPosts": {"nodes": [{"rowId": "1"}, {"rowId": "2"}]}}}') == 2
    assert count_nodes(b'{"errors": [{"message": "no"}]}') is None
    assert count_nodes(b"not json") is None


def test_an_npm_failure_is_told_by_its_first_error_lines():
    from gateway.bench.peers import npm_reason

    output = "npm error code ECONNREFUSED\nnpm error syscall connect\nnpm error\nnpm error A complete log ..."
    assert npm_reason(output).startswith("code ECONNREFUSED | syscall connect | A complete log")
    assert npm_reason("") == "no output"
