"""The benchmark's report: one table of rows, the targets with met/missed, as text and Markdown.

In:  measured ``Row`` values (a load result or the reason there is none) and the
     other measurements (``Extras``: statements per request, memory, catalog rebuild, soak).
Out: cell grids (``table_cells``), rendered as aligned text (``render_text``) or
     Markdown (``render_markdown``), and ``Verdict`` values from ``evaluate``.

Pure: nothing here runs anything, so the formatting and the target arithmetic are tested alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .drive import LoadResult

JWT = "JWT"
API_KEY = "API key"
HEADER = ("row", "workers", "req/s", "p50 ms", "p99 ms", "errors", "x pgbench", "x minimal", "x peer")

# The minimal endpoint's row doing the same work as a row (default: its list, "minimal").
SAME_WORK = {"rest_single": "minimal_single", "postgrest_single": "minimal_single", "minimal_single": "minimal_single",
             "rest_insert": "minimal_insert", "minimal_insert": "minimal_insert"}
# The peer's row serving the same call as a gateway row.
PEER_OF = {"rest_single": "postgrest_single", "rest_list_planned": "postgrest_list",
           "graphql_list": "postgraphile_list"}
PEER_WORKERS = 1  # the peers run as one process: the gateway is judged against them at one worker


@dataclass(frozen=True)
class Row:
    name: str  # label shown in the table
    workers: int | None  # gateway/minimal worker processes; None for pgbench rows
    result: LoadResult | None = None  # None when the row could not run
    note: str = ""  # why there is no result ("n/a (status 404)")
    key: str = ""  # scenario key ("rest_list"), "minimal[_single|_insert]", a peer's, "pgbench[_tx]"
    auth: str = ""  # JWT or API key for gateway rows


@dataclass(frozen=True)
class Extras:
    connections: int = 32  # wrk/pgbench connections of the run
    statements: dict[str, float] = field(default_factory=dict)  # scenario key -> data statements per request
    statements_note: str = "not measured"  # why ``statements`` is empty
    wide_rss_mb: float | None = None  # peak RSS per worker with the 200-table catalog
    wide_note: str = "not measured"
    rebuild_s: float | None = None  # catalog + schema rebuild for 200 tables, seconds
    rebuild_note: str = "not measured"
    rebuild_source: str = ""  # how ``rebuild_s`` was measured


@dataclass(frozen=True)
class Verdict:
    target: str  # what is aimed at, in a line
    measured: str  # what this run saw
    met: bool | None  # None: could not be measured in this run

    @property
    def label(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]


def find(rows: Sequence[Row], key: str, workers: int | None = None, auth: str = "") -> Row | None:
    for row in rows:
        if row.key == key and row.workers == workers and row.auth == auth and row.result is not None:
            return row
    return None


def _rps(row: Row | None) -> float | None:
    return row.result.rps if row is not None and row.result is not None else None


def _ratio(a: float | None, b: float | None) -> str:
    return "—" if a is None or not b else f"{a / b:.2f}x"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def table_cells(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """Header plus one tuple of cells per row; ratios use the same run's pgbench row, the minimal
    endpoint's row doing the same work with the same workers, and the peer serving the same call."""
    pgbench = _rps(find(rows, "pgbench"))
    cells: list[tuple[str, ...]] = [HEADER]
    for row in rows:
        name = f"{row.name} [{row.auth}]" if row.auth else row.name
        workers = "—" if row.workers is None else str(row.workers)
        if row.result is None:
            cells.append((name, workers, row.note or "n/a", "", "", "", "", "", ""))
            continue
        r = row.result
        minimal = (_rps(find(rows, SAME_WORK.get(row.key, "minimal"), row.workers))
                   if row.workers is not None else None)
        # the peers serve the user's JWT role, so only the gateway's JWT rows do the same work
        peer = _rps(find(rows, PEER_OF[row.key], row.workers)) if row.key in PEER_OF and row.auth == JWT else None
        cells.append((name, workers, f"{r.rps:,.0f}", _ms(r.p50_ms), _ms(r.p99_ms), str(r.errors),
                      _ratio(r.rps, pgbench), _ratio(r.rps, minimal), _ratio(r.rps, peer)))
    return cells


def render_text(cells: Sequence[Sequence[str]]) -> str:
    """Aligned columns: names left, numbers right; a cell running past its row (a note) is not padded."""
    widths = [max(len(row[i]) for row in cells if not _is_note(row) or i == 0) for i in range(len(cells[0]))]
    lines = []
    for n, row in enumerate(cells):
        if _is_note(row):
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]}")
        else:
            parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(parts).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _is_note(row: Sequence[str]) -> bool:
    return row[0] != HEADER[0] and all(c == "" for c in row[3:])


def render_markdown(cells: Sequence[Sequence[str]]) -> str:
    aligns = ["---"] + ["---:"] * (len(cells[0]) - 1)
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in cells[1:]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- targets

def _per_workers(rows: Sequence[Row], key: str, base_key: str, threshold: float,
                 base_auth: str = JWT) -> tuple[str, bool | None]:
    """``key`` (JWT) over ``base_key`` at each worker count, all must reach ``threshold``."""
    worker_counts = sorted({r.workers for r in rows if r.key == key and r.workers is not None})
    seen: list[str] = []
    met: list[bool] = []
    for w in worker_counts:
        num, den = _rps(find(rows, key, w, JWT)), _rps(find(rows, base_key, w, base_auth))
        if num is None or not den:
            seen.append(f"{w}w n/a")
            continue
        seen.append(f"{w}w {num / den:.2f}x")
        met.append(num / den >= threshold)
    verdict = None if len(met) < len(worker_counts) or not met else all(met)
    return (", ".join(seen) or "no rows"), verdict


def _default_list(rows: Sequence[Row]) -> tuple[str, bool | None]:
    """The default list over the same page without any total — the gateway's GraphQL list, which
    computes none — judged; beside it, for context, over the minimal endpoint and ``count=exact``."""
    measured, met = _per_workers(rows, "rest_list", "graphql_list", 0.6)
    context = [f"{label}: {_per_workers(rows, 'rest_list', key, 0.0, base_auth='' if key == 'minimal' else JWT)[0]}"
               for key, label in (("minimal", "x minimal endpoint"), ("rest_list_exact", "x count=exact"))
               if any(r.key == key and r.result is not None for r in rows)]
    return "; ".join([measured, *context]), met


def _versus_peer(rows: Sequence[Row], key: str, peer_key: str, threshold: float) -> tuple[str, bool | None]:
    """The gateway's ``key`` row (JWT, one worker) over the peer's row; n/a with the peer's reason."""
    peer = next((r for r in rows if r.key == peer_key), None)
    if peer is None:
        return "peer not run", None
    if peer.result is None:
        return peer.note or "n/a (peer did not run)", None
    num = _rps(find(rows, key, PEER_WORKERS, JWT))
    if num is None:
        return f"gateway {PEER_WORKERS}w n/a", None
    ratio = num / peer.result.rps if peer.result.rps else 0.0
    return f"{PEER_WORKERS}w {ratio:.2f}x ({num:,.0f} vs {peer.result.rps:,.0f} req/s)", ratio >= threshold


def _scaling(rows: Sequence[Row], key: str, threshold: float) -> tuple[str, bool | None]:
    """The highest worker count's ``key`` (JWT) over one worker's; beside it the minimal endpoint's
    scaling of the same work, which shows how much headroom the machine had."""
    counts = sorted({r.workers for r in rows if r.key == key and r.workers is not None and r.result is not None})
    if len(counts) < 2 or counts[0] != 1:
        return "needs rows at 1 and more workers (--workers 1,2)", None
    top = counts[-1]
    one, many = _rps(find(rows, key, 1, JWT)), _rps(find(rows, key, top, JWT))
    if not one or many is None:
        return "needs rows at 1 and more workers (--workers 1,2)", None
    measured = f"{top}w / 1w = {many / one:.2f}x"
    base = SAME_WORK.get(key, "minimal")
    base_one, base_many = _rps(find(rows, base, 1)), _rps(find(rows, base, top))
    if base_one and base_many is not None:
        measured += f"; minimal endpoint {base_many / base_one:.2f}x on this machine"
    return measured, many / one >= threshold


def _same_work_context(rows: Sequence[Row], key: str) -> str:
    base = SAME_WORK.get(key, "minimal")
    return f"x minimal endpoint: {_per_workers(rows, key, base, 0.0, base_auth='')[0]}"


def _p99_spread(rows: Sequence[Row], extras: Extras) -> tuple[str, bool | None]:
    gateway = [r for r in rows if r.auth and r.result is not None and r.result.p50_ms and r.result.p99_ms]
    if not gateway:
        return "no gateway rows", None
    worst = max(gateway, key=lambda r: (r.result.p99_ms or 0) / (r.result.p50_ms or 1))  # type: ignore[union-attr]
    assert worst.result is not None and worst.result.p50_ms and worst.result.p99_ms
    spread = worst.result.p99_ms / worst.result.p50_ms
    where = f"worst {spread:.1f}x: {worst.name} [{worst.auth}] {worst.workers}w at {extras.connections} conns"
    return where, spread <= 3.0


def _statements(extras: Extras, key: str, what: str) -> tuple[str, bool | None]:
    per = extras.statements.get(key)
    if per is None:
        return extras.statements_note if not extras.statements else f"{key} not measured", None
    return f"{per:.2f} data statements per request ({what})", per <= 1.0 + 1e-9


def _below(value: float | None, limit: float, unit: str, note: str, source: str = "") -> tuple[str, bool | None]:
    if value is None:
        return note, None
    return f"{value:.2f} {unit}" + (f" ({source})" if source else ""), value < limit


def _with_context(result: tuple[str, bool | None], context: str) -> tuple[str, bool | None]:
    return f"{result[0]}; {context}", result[1]


TARGETS: tuple[tuple[str, Callable[[Sequence[Row], Extras], tuple[str, bool | None]]], ...] = (
    # the minimal endpoint runs the same statement on a pooled connection with no auth: the Python ceiling
    ("Point read by primary key [JWT] >= 0.75 x the minimal endpoint's point read, same workers",
     lambda rows, _: _per_workers(rows, "rest_single", "minimal_single", 0.75, base_auth="")),
    ("Point read by primary key [JWT] >= 1.5 x PostgREST's (1 worker)",
     lambda rows, _: _versus_peer(rows, "rest_single", "postgrest_single", 1.5)),
    ("GraphQL list [JWT] >= 0.6 x the minimal endpoint's list, same workers",
     lambda rows, _: _per_workers(rows, "graphql_list", "minimal", 0.6, base_auth="")),
    ("GraphQL list [JWT] >= 1.5 x PostGraphile 5's (1 worker)",
     lambda rows, _: _versus_peer(rows, "graphql_list", "postgraphile_list", 1.5)),
    ("Insert 1 row, return=representation [JWT] >= 0.6 x the point read [JWT], same workers",
     lambda rows, _: _with_context(_per_workers(rows, "rest_insert", "rest_single", 0.6),
                                   _same_work_context(rows, "rest_insert"))),
    ("p99 <= 3 x p50 at 32 connections (every gateway row)", _p99_spread),
    ("Point read [JWT]: 2 workers >= 1.6 x 1 worker", lambda rows, _: _scaling(rows, "rest_single", 1.6)),
    # the planned-count list is the one doing the baselines' work (they count nothing)
    ("REST list, count=planned [JWT] >= 0.75 x minimal endpoint, same workers",
     lambda rows, _: _per_workers(rows, "rest_list_planned", "minimal", 0.75, base_auth="")),
    ("REST list, default X-Total-Count [JWT] >= 0.6 x the same page with no total (GraphQL list), same workers",
     lambda rows, _: _default_list(rows)),
    ("Prefer: count=planned stays one round trip (list and estimate in one statement)",
     lambda _, e: _statements(e, "rest_list_planned", "REST list, count=planned")),
    ("GraphQL with relations: one statement per root field (no N+1)",
     lambda _, e: _statements(e, "graphql_relations", "1 root field")),
    ("RSS < 150 MB per worker with a 200-table catalog",
     lambda _, e: _below(e.wide_rss_mb, 150, "MB", e.wide_note)),
    ("Catalog + schema rebuild for 200 tables < 2 s",
     lambda _, e: _below(e.rebuild_s, 2.0, "s", e.rebuild_note, e.rebuild_source)),
)


def evaluate(rows: Sequence[Row], extras: Extras) -> list[Verdict]:
    verdicts = []
    for target, check in TARGETS:
        measured, met = check(rows, extras)
        verdicts.append(Verdict(target, measured, met))
    return verdicts


def render_verdicts(verdicts: Sequence[Verdict], markdown: bool = False) -> str:
    if markdown:
        lines = ["| target | measured | result |", "|---|---|---|"]
        lines += [f"| {v.target} | {v.measured.replace('|', '/')} | {v.label} |" for v in verdicts]
        return "\n".join(lines)
    width = max(len(v.target) for v in verdicts)
    return "\n".join(f"{v.label:>6}  {v.target:<{width}}  {v.measured}" for v in verdicts)
