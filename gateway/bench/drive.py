"""Load generators: wrk for HTTP, pgbench for the database ceiling.

In:  the requests a row sends (``scenarios.Request``), a target URL or a database,
     and the bounds of the run (duration, connections, threads).
Out: ``LoadResult`` — requests per second, p50/p99 latency and error counts —
     parsed from the tools' output by pure functions (``parse_wrk``, ``parse_pgbench``).

Every wrk run uses a generated Lua script: ``init`` pre-formats the row's requests
(method, path, headers, body) once per thread, ``request`` cycles through them, and
``done`` prints one ``wrk-json:`` line with exact percentiles and the error counts,
so nothing is scraped from wrk's human-readable summary.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

from .scenarios import Request

WRK_MARK = "wrk-json:"


@dataclass(frozen=True)
class LoadResult:
    rps: float  # completed requests (or transactions) per second
    p50_ms: float | None  # median latency; None when the tool did not measure it
    p99_ms: float | None  # 99th percentile latency
    errors: int  # non-2xx/3xx responses plus socket errors (wrk) or failed transactions (pgbench)
    requests: int  # completed requests in the run


class LoadError(Exception):
    """A load tool failed to run or printed nothing parseable."""


# ----------------------------------------------------------------------------------- wrk

def _lua_string(value: str) -> str:
    """A double-quoted Lua string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


LUA_DONE = f"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{WRK_MARK} {{"requests": %d, "duration_us": %d, "status": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "timeout": %d, "p50_us": %.1f, "p99_us": %.1f}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def lua_script(requests: Sequence[Request]) -> str:
    """A wrk script that cycles through ``requests`` and reports in one JSON line."""
    if not requests:
        raise ValueError("a wrk script needs at least one request")
    specs = []
    for r in requests:
        headers = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in r.headers)
        body = "nil" if r.body is None else _lua_string(r.body)
        specs.append(f"  {{{_lua_string(r.method)}, {_lua_string(r.path)}, {{{headers}}}, {body}}},")
    return "\n".join([
        "local specs = {", *specs, "}",
        "local reqs = {}",
        "local n, i = 0, 0",
        "-- formatted in init: wrk sets the Host header just before calling it",
        "function init(args)",
        "  for k, s in ipairs(specs) do reqs[k] = wrk.format(s[1], s[2], s[3], s[4]) end",
        "  n = #reqs",
        "end",
        "function request()",
        "  i = i % n + 1",
        "  return reqs[i]",
        "end",
        LUA_DONE,
    ])


def parse_wrk(output: str) -> LoadResult:
    """The ``wrk-json:`` line of a run's output -> LoadResult."""
    for line in output.splitlines():
        if line.startswith(WRK_MARK):
            data = orjson.loads(line[len(WRK_MARK):])
            seconds = max(data["duration_us"], 1) / 1e6
            errors = sum(data[k] for k in ("status", "connect", "read", "write", "timeout"))
            return LoadResult(rps=data["requests"] / seconds, p50_ms=data["p50_us"] / 1000,
                              p99_ms=data["p99_us"] / 1000, errors=errors, requests=data["requests"])
    raise LoadError("wrk printed no result line:\n" + output[-2000:])


def _apt(say: Callable[[str], None], *args: str) -> bool:
    """Run one apt-get command, echoing it and the tail of its output; True on success."""
    command = ["apt-get", *args]
    say("  $ " + " ".join(command))
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        say(f"  failed: {exc}")
        return False
    for line in (done.stdout + done.stderr).strip().splitlines()[-4:]:
        say("  | " + line)
    return done.returncode == 0


def ensure_wrk(say: Callable[[str], None]) -> str | None:
    """Path of wrk, installing the Debian package when it is missing; None when that fails."""
    if shutil.which("wrk") is None:
        say("wrk is not installed: installing the Debian package")
        # a fresh container may have empty package lists: update once, then retry
        if not _apt(say, "install", "-y", "wrk") and _apt(say, "update"):
            _apt(say, "install", "-y", "wrk")
    return shutil.which("wrk")


def run_wrk(wrk: str, url: str, requests: Sequence[Request], *, duration: float, connections: int,
            threads: int, workdir: Path) -> LoadResult:
    """One bounded wrk run against ``url`` (scheme://host:port)."""
    script = workdir / f"wrk-{os.getpid()}-{id(requests)}.lua"
    script.write_text(lua_script(requests))
    command = [wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{max(1, round(duration))}s",
               "--timeout", "5s", "-s", str(script), url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LoadError(f"wrk did not finish within {duration + 30:.0f} s") from exc
    finally:
        script.unlink(missing_ok=True)
    return parse_wrk(done.stdout + "\n" + done.stderr)


# ------------------------------------------------------------------------------- pgbench

def parse_pgbench(output: str) -> tuple[float, int, int]:
    """(tps, processed transactions, failed transactions) from pgbench's summary."""
    tps = re.search(r"^tps = ([0-9.]+) \(without initial connection time\)", output, re.M)
    processed = re.search(r"^number of transactions actually processed: (\d+)", output, re.M)
    failed = re.search(r"^number of failed transactions: (\d+)", output, re.M)
    if tps is None or processed is None:
        raise LoadError("pgbench printed no summary:\n" + output[-2000:])
    return float(tps.group(1)), int(processed.group(1)), int(failed.group(1)) if failed else 0


def latency_percentiles(log_lines: Iterable[str]) -> tuple[float | None, float | None]:
    """(p50, p99) in ms from pgbench ``-l`` lines (``client tx latency_us script epoch epoch_us``)."""
    latencies = sorted(int(parts[2]) for parts in (line.split() for line in log_lines) if len(parts) >= 3)
    if not latencies:
        return None, None

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1000

    return pick(0.50), pick(0.99)


def pgbench_path(candidates: Sequence[Path]) -> str | None:
    for directory in candidates:
        exe = directory / "pgbench"
        if exe.exists():
            return str(exe)
    return shutil.which("pgbench")


def run_pgbench(pgbench: str, script: str, *, host: str, dbname: str, user: str, duration: float,
                clients: int, threads: int) -> LoadResult:
    """One bounded pgbench run of a custom script (-M prepared), percentiles from a sampled log."""
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        path = Path(tmp) / "script.sql"
        path.write_text(script)
        command = [pgbench, "-n", "-M", "prepared", "-c", str(clients), "-j", str(min(threads, clients)),
                   "-T", str(max(1, round(duration))), "-f", str(path), "-l", "--sampling-rate", "0.2",
                   "-h", host, "-U", user, dbname]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60,
                                  check=False, cwd=tmp)
        except subprocess.TimeoutExpired as exc:
            raise LoadError(f"pgbench did not finish within {duration + 60:.0f} s") from exc
        tps, processed, failed = parse_pgbench(done.stdout + "\n" + done.stderr)
        lines: list[str] = []
        for log in Path(tmp).glob("pgbench_log.*"):
            lines.extend(log.read_text().splitlines())
    p50, p99 = latency_percentiles(lines)
    return LoadResult(rps=tps, p50_ms=p50, p99_ms=p99, errors=failed, requests=processed)
