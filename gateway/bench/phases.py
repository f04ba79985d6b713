"""The HTTP phases of a run: the minimal endpoint, the gateway's rows, the soak, the 200-table catalog.

In:  a ``Bench`` holding what every phase shares (options, database, credentials, wrk).
Out: ``report.Row`` values per worker count, and the lines the report prints about
     memory, statement counts, the soak and the wide catalog (collected on the ``Bench``).

A row whose endpoint does not answer 2xx (GraphQL or embedding not built yet, a
500) is probed once before its load run and reported as ``n/a (status ...)``
instead of being measured: a benchmark of error pages would flatter nothing.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import orjson

from . import database, dataset, drive, procs, report, scenarios, wide
from .report import Row
from .scenarios import Auth, Context, Request

if TYPE_CHECKING:
    from .run import Options

MB = 1024 * 1024
SOAK_SAMPLE_S = 5.0
COUNT_RUNS = 30  # timed runs of the exact count and of the estimate (after 3 warm-up runs)


async def _timed_ms(conn: asyncpg.Connection, sql: str, args: tuple[object, ...], runs: int,
                    ) -> tuple[str, int]:
    """("median M ms, fastest F ms" of ``sql`` over ``runs`` round trips, its value). The fastest run
    is what the statement costs when nothing else wants the CPU; the median is what it cost here."""
    value = 0
    for _ in range(3):
        value = await conn.fetchval(sql, *args)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        value = await conn.fetchval(sql, *args)
        times.append((time.perf_counter() - started) * 1000)
    return f"median {statistics.median(times):.2f} ms, fastest {min(times):.2f} ms of {runs}", int(value)


def probe(server: procs.Server, req: Request, graphql: bool) -> tuple[str, str]:
    """('', '') when ``req`` succeeds; else (the table note, the start of the answer).

    GraphQL errors arrive with status 200, so a GraphQL answer is read for ``errors``.
    """
    status, body = procs.fetch(server.url, req)
    detail = body[:200].decode(errors="replace")
    if not 200 <= status < 300:
        return (f"n/a (status {status})" if status else "n/a (no response)"), detail
    if graphql:
        try:
            errors = orjson.loads(body).get("errors")
        except (orjson.JSONDecodeError, AttributeError):
            return "n/a (GraphQL answer is not a JSON object)", detail
        if errors:
            return f"n/a (GraphQL error: {str(errors[0].get('message', errors[0]))[:60]})", detail
    return "", ""


def ok(server: procs.Server, req: Request, graphql: bool) -> bool:
    return probe(server, req, graphql)[0] == ""


@dataclass
class Bench:
    opts: Options  # the run's bounds
    pg: database.Postgres  # the server
    conn: asyncpg.Connection  # owner connection to the bench database
    workdir: Path  # logs and scripts
    wrk: str | None  # wrk executable, None when it could not be installed
    env: dict[str, str]  # the gateway's environment (DATABASE_URL, secrets, access log off)
    notes: list[str]  # printed under "Notes"
    auths: tuple[Auth, ...]  # JWT and API key
    ctx: Context  # what scenarios need to build requests
    say: Callable[[str], None]
    memory_lines: list[str] = field(default_factory=list)
    soak_lines: list[str] = field(default_factory=list)
    statements: dict[str, float] = field(default_factory=dict)
    statements_note: str = "the gateway did not serve the rows"
    count_lines: list[str] = field(default_factory=list)
    claims: str = "{}"  # the user JWT's claims as JSON, for peers that take them without a JWT
    selected: tuple[scenarios.Scenario, ...] = scenarios.SCENARIOS  # the gateway rows this run measures

    @property
    def duration(self) -> float:
        return self.opts.duration

    def _wrk(self, server: procs.Server, requests: tuple[Request, ...], duration: float) -> drive.LoadResult:
        assert self.wrk is not None
        return drive.run_wrk(self.wrk, server.url, requests, duration=duration,
                             connections=self.opts.connections, threads=self.opts.threads,
                             workdir=self.workdir)

    def load(self, server: procs.Server, requests: tuple[Request, ...]) -> drive.LoadResult:
        """One load row of the run's duration against ``server``."""
        return self._wrk(server, requests, self.duration)

    # ------------------------------------------------------------------------ minimal endpoint

    def minimal_rows(self, workers: int) -> list[Row]:
        """The minimal endpoint's list, point read and insert: each the gateway row's work and nothing else."""
        rows = (("minimal Starlette+asyncpg list", "minimal", (scenarios.baseline_request(),)),
                ("minimal Starlette+asyncpg single row by id", "minimal_single", scenarios.baseline_single(self.ctx)),
                ("minimal Starlette+asyncpg insert 1 row", "minimal_insert", scenarios.baseline_insert(self.ctx)))
        if self.wrk is None:
            return [Row(name, workers, note="n/a (no wrk)", key=key) for name, key, _ in rows]
        port = procs.free_port()
        server = procs.start("minimal", procs.baseline_command(port, workers), {"BENCH_DSN": self.pg.dsn("bench")},
                             port, self.workdir)
        try:
            why = procs.wait_healthy(server, 30)
            if why:
                self.say(f"minimal endpoint {workers}w: {why}")
                return [Row(name, workers, note=f"n/a ({why.splitlines()[0][:80]})", key=key) for name, key, _ in rows]
            return [self._minimal_row(server, workers, *row) for row in rows]
        finally:
            procs.stop(server)

    def _minimal_row(self, server: procs.Server, workers: int, name: str, key: str,
                     requests: tuple[Request, ...]) -> Row:
        note = probe(server, requests[0], graphql=False)[0]
        if note:
            self.say(f"{name} {workers}w: {note}")
            return Row(name, workers, note=note, key=key)
        try:
            result = self.load(server, requests)
        except drive.LoadError as exc:
            self.say(f"{name} {workers}w: {exc}")
            return Row(name, workers, note="n/a (wrk failed)", key=key)
        self.say(f"{name} {workers}w: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                 f"p99 {result.p99_ms:.2f} ms")
        return Row(name, workers, result, key=key)

    # ------------------------------------------------------------------------ gateway

    def _start_gateway(self, workers: int, database_url: str, tag: str) -> tuple[procs.Server, str | None]:
        port = procs.free_port()
        env = {**self.env, "DATABASE_URL": database_url,
               "GATEWAY_DATA_DIR": str(self.workdir / f"gateway-data-{tag}-{workers}")}
        server = procs.start(f"gateway-{tag}", procs.gateway_command(port, workers), env, port, self.workdir)
        why = procs.wait_healthy(server, 90)
        if why:
            self.say(f"gateway ({tag}, {workers}w) did not start: {why}")
            self.notes.append(f"gateway serve (database {tag}, workers={workers}) did not start: "
                              f"{why.splitlines()[0][:300]}")
            procs.stop(server)
        return server, why

    async def gateway_rows(self, workers: int, soak: bool) -> list[Row]:
        self.say(f"== gateway, {workers} worker(s)")
        everything = [(s, a) for s in self.selected for a in self.auths]
        if self.wrk is None:
            return [Row(s.name, workers, note="n/a (no wrk)", key=s.key, auth=a.name) for s, a in everything]
        server, why = self._start_gateway(workers, self.env["DATABASE_URL"], "bench")
        if why:
            return [Row(s.name, workers, note="n/a (gateway did not start)", key=s.key, auth=a.name)
                    for s, a in everything]
        rows: list[Row] = []
        working: dict[str, tuple[Request, ...]] = {}  # scenario key -> JWT requests that probed fine
        try:
            with procs.RssSampler(server) as sampler:
                for scenario, auth in everything:
                    requests = scenario.requests(self.ctx, auth)
                    note, detail = probe(server, requests[0], graphql=scenario.key.startswith("graphql"))
                    result = None
                    if not note:
                        try:
                            result = self._wrk(server, requests, self.duration)
                        except drive.LoadError as exc:
                            note = "n/a (wrk failed)"
                            self.say(f"  {exc}")
                    if result is None:
                        self.say(f"{scenario.name} [{auth.name}] {workers}w: {note} {detail}".rstrip())
                        rows.append(Row(scenario.name, workers, note=note, key=scenario.key, auth=auth.name))
                        continue
                    if auth.name == report.JWT:
                        working[scenario.key] = requests
                    self.say(f"{scenario.name} [{auth.name}] {workers}w: {result.rps:,.0f} req/s, "
                             f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, errors {result.errors}")
                    rows.append(Row(scenario.name, workers, result, key=scenario.key, auth=auth.name))
                if not self.statements:
                    await self._count_statements(server, working)
                if soak:
                    self._soak(server, working, sampler)
            self._memory(f"{workers} worker(s), main dataset", sampler)
        finally:
            procs.stop(server)
        return rows

    async def _count_statements(self, server: procs.Server, working: dict[str, tuple[Request, ...]]) -> None:
        if not working:
            self.statements_note = "no gateway row answered 2xx"
            return
        for key, requests in working.items():
            per, distinct = await database.count_statements(
                self.pg, self.conn, lambda r=requests[0]: procs.fetch(server.url, r))  # type: ignore[misc]
            self.statements[key] = per
            for n, (sql, seen) in enumerate(distinct.items()):  # the SQL sent: the first thing to read when slow
                text = " ".join(sql.split())[:700 if n == 0 else 200]
                self.say(f"  {key} statement {n + 1} (x{seen} in {database.STATEMENT_PROBES} requests): {text}")
        self.say("data statements per request: " + ", ".join(f"{k} {v:.2f}" for k, v in self.statements.items()))
        if "graphql_relations" not in self.statements:
            self.statements_note = "GraphQL with relations did not answer 2xx"

    def _memory(self, label: str, sampler: procs.RssSampler) -> None:
        peaks = ", ".join(f"pid {pid}: {rss / MB:.1f} MB" for pid, rss in sorted(sampler.peaks.items()))
        self.memory_lines.append(f"{label}: {peaks or 'no worker processes found'}")
        self.say(f"peak RSS, {self.memory_lines[-1]}")

    def _soak(self, server: procs.Server, working: dict[str, tuple[Request, ...]],
              sampler: procs.RssSampler) -> None:
        mix = tuple(r for key in scenarios.SOAK_KEYS for r in working.get(key, ())[:5])
        seconds = self.opts.soak
        if not mix or seconds <= 0:
            self.soak_lines.append("skipped: " + ("no row answered 2xx" if not mix else "--soak 0"))
            return
        self.say(f"== soak: {seconds:.0f} s of mixed traffic ({len(mix)} requests cycled), RSS every 5 s")
        outcome: dict[str, object] = {}

        def load() -> None:
            try:
                outcome["result"] = self._wrk(server, mix, seconds)
            except drive.LoadError as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=load, daemon=True)
        started = time.monotonic()
        thread.start()
        series: dict[int, list[float]] = {}
        while True:
            elapsed = time.monotonic() - started
            sample = sampler.sample()
            for pid, rss in sample.items():
                series.setdefault(pid, []).append(rss / MB)
            line = f"t={elapsed:5.1f} s  " + "  ".join(f"pid {p}: {r / MB:7.1f} MB" for p, r in sorted(sample.items()))
            self.soak_lines.append(line)
            self.say(line)
            if not thread.is_alive():
                break
            thread.join(SOAK_SAMPLE_S)
        result = outcome.get("result")
        if isinstance(result, drive.LoadResult):
            self.soak_lines.append(f"soak traffic: {result.rps:,.0f} req/s, errors {result.errors}")
        else:
            self.soak_lines.append(f"soak traffic failed: {outcome.get('error')}")
        self.soak_lines.append(flatness(series))
        self.say(self.soak_lines[-1])

    async def count_cost(self, limit: int, runs: int = COUNT_RUNS) -> None:
        """What one exact count of ``limit`` matching rows costs the database (the most rows the
        default X-Total-Count counts), and what the estimate that replaces a larger count costs."""
        self.say(f"== one exact count at the exact-count limit ({limit:,} rows)")
        cut = await self.conn.fetchval(scenarios.COUNT_CUT_SQL, "published", limit)
        if cut is None:
            self.count_lines.append(f"fewer than {limit:,} published posts: no count measured")
            return
        count_time, counted = await _timed_ms(self.conn, scenarios.COUNT_SQL, ("published", cut), runs)
        self.count_lines.append(f"one exact count of {counted:,} matching posts (status + created_at, the "
                                f"index the list uses): {count_time}")
        try:
            estimate_time, estimate = await _timed_ms(self.conn, scenarios.ESTIMATE_SQL, (["published"],), runs)
        except asyncpg.PostgresError as exc:  # a bootstrap without auth.estimate_rows
            self.count_lines.append(f"estimate not measured: {exc}")
        else:
            self.count_lines.append(f"one planner estimate of the list's {estimate:,} matching posts "
                                    f"(auth.estimate_rows): {estimate_time}")
        for line in self.count_lines:
            self.say(line)

    async def settle(self) -> None:
        """Clean up after a phase's inserts now, so the next phase does not pay for them."""
        await self.conn.execute("VACUUM ANALYZE bench_posts")
        await self.conn.execute("CHECKPOINT")

    # ------------------------------------------------------------------------ 200 tables

    async def wide_catalog(self) -> wide.WideResult:
        self.say("== 200-table catalog")
        result = wide.WideResult()
        conn = await self.pg.connect("wide")
        try:
            await database.apply_bootstrap(conn)
            await conn.execute(wide.wide_schema_sql())
            await conn.execute(dataset.GRANTS_SQL)
            result.load_catalog_s, result.load_catalog_note = await wide.time_load_catalog(self.pg.dsn("wide"), conn)
            if self.wrk is None:
                result.note = "no wrk"
                return result
            t0 = time.perf_counter()
            server, why = self._start_gateway(1, self.pg.dsn("wide"), "wide")
            if why:
                result.note = "gateway did not start"
                return result
            result.startup_s = time.perf_counter() - t0
            try:
                with procs.RssSampler(server) as sampler:
                    await self._exercise_wide(server, conn, result)
                result.rss_mb = {pid: rss / MB for pid, rss in sampler.peaks.items()}
                self._memory("1 worker, 200-table catalog", sampler)
            finally:
                procs.stop(server)
        finally:
            await conn.close()
        for line in wide.summary(result):
            self.say(line)
        return result

    async def _exercise_wide(self, server: procs.Server, conn: asyncpg.Connection, result: wide.WideResult) -> None:
        key = self.auths[-1]  # the API key: no user rows are involved
        reads = tuple(Request("GET", f"{scenarios.REST}/{wide.table_name(i)}?limit=5", key.headers)
                      for i in range(1, 21))
        graphql = Request("POST", "/graphql", scenarios.JSON + key.headers,
                          orjson.dumps({"query": "{ wide_001(limit: 5) { id name } }"}).decode())
        if ok(server, reads[0], graphql=False):
            drive_seconds = min(self.duration, 5.0)
            try:
                self._wrk(server, reads, drive_seconds)
            except drive.LoadError as exc:
                self.say(f"  {exc}")
        ok(server, graphql, graphql=True)  # builds the GraphQL schema if it is built lazily
        await conn.execute("CREATE TABLE wide_extra (id bigint PRIMARY KEY, name text);"
                           "GRANT SELECT ON wide_extra TO anon, authenticated, project_admin")
        started = time.perf_counter()
        rest = Request("GET", f"{scenarios.REST}/wide_extra?limit=1", key.headers)
        gql = Request("POST", "/graphql", scenarios.JSON + key.headers,
                      orjson.dumps({"query": "{ wide_extra(limit: 1) { id } }"}).decode())
        for api, req, is_graphql in (("REST", rest, False), ("GraphQL", gql, True)):
            seen = await wide.wait_visible(lambda r=req, g=is_graphql: ok(server, r, g))  # type: ignore[misc]
            if seen is not None:
                result.reload_s[api] = time.perf_counter() - started

    def extras(self, wide_result: wide.WideResult) -> report.Extras:
        rss = max(wide_result.rss_mb.values()) if wide_result.rss_mb else None
        rebuild, source = None, ""
        if wide_result.reload_s:  # the whole thing: NOTIFY, debounce, catalog and schema, swap
            rebuild = max(wide_result.reload_s.values())
            source = f"DDL -> visible over {' and '.join(wide_result.reload_s)}, end to end incl. debounce"
        elif wide_result.load_catalog_s:
            rebuild = statistics.median(wide_result.load_catalog_s)
            source = "in-process load_catalog median; no reload was observed over HTTP"
        return report.Extras(
            connections=self.opts.connections,
            statements=dict(self.statements), statements_note=self.statements_note,
            wide_rss_mb=rss, wide_note=wide_result.note or "not measured",
            rebuild_s=rebuild, rebuild_source=source,
            rebuild_note=wide_result.load_catalog_note or wide_result.note or "not measured",
        )


def flatness(series: dict[int, list[float]], tolerance_mb: float = 5.0, tolerance_share: float = 0.05) -> str:
    """A verdict on RSS over the soak: growth from the first warm sample to the last, per worker."""
    parts = []
    flat = True
    for pid, values in sorted(series.items()):
        if len(values) < 2:
            continue
        base = values[1] if len(values) > 2 else values[0]  # the first sample is taken before load starts
        growth = values[-1] - base
        flat &= growth <= max(tolerance_mb, base * tolerance_share)
        parts.append(f"pid {pid} {base:.1f} -> {values[-1]:.1f} MB ({growth:+.1f})")
    if not parts:
        return "memory: too few samples to judge"
    return ("memory flat: " if flat else "memory GROWING: ") + "; ".join(parts)
