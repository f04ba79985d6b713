"""The peers, run beside the gateway on the same database: PostGraphile 5 and PostgREST.

In:  a ``phases.Bench`` (database, wrk, the user's JWT and claims) and the dataset context.
Out: ``report.Row`` values — PostGraphile 5's GraphQL list (key ``postgraphile_list``), PostgREST's
     point read and list (``postgrest_single``, ``postgrest_list``) — or a row saying
     ``n/a (reason)`` when a peer cannot be installed, found or started.

PostGraphile 5 is installed at run time with npm into a cache directory (``BENCH_CACHE``, default
``~/.cache/gateway-bench``), with Node 22 from the npm package ``node@22`` when the system Node is
older than PostGraphile needs; nothing is assumed installed by hand. It runs as one Node process,
every request as the role ``authenticated`` with the benchmark user's claims in
``request.jwt.claims`` (fixed ``pgSettings``), which is what the gateway sets for the same JWT; it
verifies no JWT, so its rows carry less per-request work than the gateway's, not more.

PostgREST ships in no registry this machine reaches, so its rows run when a ``postgrest`` binary
is on PATH or named by ``BENCH_POSTGREST``, with the gateway's JWT secret and the same token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import drive, procs, scenarios
from .report import Row

if TYPE_CHECKING:
    from .phases import Bench

POSTGRAPHILE = "postgraphile@^5"
NODE_MAJOR = 22  # PostGraphile 5's engines field: node >= 22
NODE_PACKAGE = f"node@{NODE_MAJOR}"
NPM_TIMEOUT_S = 600
START_TIMEOUT_S = 60
POSTGREST_ENV = "BENCH_POSTGREST"
POSTGRAPHILE_NAME = "PostGraphile 5 GraphQL list (role authenticated)"
POSTGREST_SINGLE_NAME = "PostgREST single row by id [JWT]"
POSTGREST_LIST_NAME = "PostgREST list, Prefer: count=planned [JWT]"

# Static: everything that changes per run comes from the environment, so one file serves every run.
# It lives beside node_modules because an ES module resolves its imports from where it is.
POSTGRAPHILE_CONFIG = """\
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { makePgService } from "postgraphile/adaptors/pg";

const claims = process.env.BENCH_CLAIMS;

export default {
  extends: [PostGraphileAmberPreset],
  pgServices: [
    makePgService({
      connectionString: process.env.BENCH_DSN,
      schemas: ["public"],
      // the gateway's settings for the benchmark user's JWT, fixed
      pgSettings: () => ({ role: "authenticated", "request.jwt.claims": claims }),
      poolConfig: { max: 10 },
    }),
  ],
  grafserv: { host: "127.0.0.1", port: Number(process.env.BENCH_PORT), graphiql: false, watch: false },
  grafast: { explain: false },
};
"""


def cache_dir() -> Path:
    return Path(os.environ.get("BENCH_CACHE") or Path.home() / ".cache" / "gateway-bench")


def node_major(node: str | None) -> int | None:
    """The major version of a Node executable (``v20.1.0`` -> 20), None when it does not run."""
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_node_version(done.stdout)


def parse_node_version(text: str) -> int | None:
    head = text.strip().lstrip("v").split(".")[0]
    return int(head) if head.isdigit() else None


def _installed_version(root: Path, package: str) -> str | None:
    try:
        return str(json.loads((root / "node_modules" / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def npm_reason(output: str) -> str:
    """The first lines of npm's error output (its code and message; the tail is only log paths)."""
    lines = [line.removeprefix("npm error").strip() for line in output.strip().splitlines()]
    return " | ".join(line for line in lines if line)[:200] or "no output"


def ensure_postgraphile(say: Callable[[str], None]) -> tuple[list[str] | None, str]:
    """(the command that runs PostGraphile's CLI, its version and Node's) — or (None, why not).

    Installs ``postgraphile@^5`` (and ``node@22`` when the system Node is older) with npm into
    ``cache_dir()/postgraphile5`` unless a usable install is already there.
    """
    root = cache_dir() / "postgraphile5"
    system_node = shutil.which("node")
    need_node = (node_major(system_node) or 0) < NODE_MAJOR
    bundled_node = root / "node_modules" / ".bin" / "node"
    version = _installed_version(root, "postgraphile")
    ready = version is not None and version.startswith("5.") and (
        not need_node or (node_major(str(bundled_node)) or 0) >= NODE_MAJOR)
    if not ready:
        npm = shutil.which("npm")
        if npm is None:
            return None, "npm not found"
        packages = [POSTGRAPHILE, *([NODE_PACKAGE] if need_node else [])]
        say(f"installing {' '.join(packages)} with npm into {root}")
        root.mkdir(parents=True, exist_ok=True)
        (root / "package.json").write_text('{"private": true, "description": "benchmark peer"}\n')
        try:
            # one retry: an unreachable registry should become an n/a row in seconds, not minutes
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error",
                                   "--fetch-retries=1", *packages],
                                  cwd=root, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return None, f"npm install did not finish within {NPM_TIMEOUT_S} s"
        except OSError as exc:
            return None, f"npm did not run: {exc}"
        if done.returncode != 0:
            return None, f"npm install failed: {npm_reason(done.stderr or done.stdout)}"
        version = _installed_version(root, "postgraphile")
        if version is None:
            return None, "npm install left no postgraphile package"
    node = str(bundled_node) if need_node else system_node
    major = node_major(node)
    if node is None or major is None or major < NODE_MAJOR:
        return None, f"no Node >= {NODE_MAJOR} (found {major or 'none'})"
    (root / "bench.config.mjs").write_text(POSTGRAPHILE_CONFIG)
    cli = root / "node_modules" / "postgraphile" / "dist" / "cli-run.js"
    return [node, str(cli), "-C", str(root / "bench.config.mjs")], f"postgraphile {version}, Node {major}"


def _serve(bench: Bench, name: str, command: list[str], env: dict[str, str], port: int,
           ready: scenarios.Request, graphql: bool) -> tuple[procs.Server | None, str]:
    """A started peer that answers ``ready`` with 2xx (and, for GraphQL, no errors); or (None, why)."""
    from .phases import probe  # phases imports the report; imported here to keep this module's import light

    server = procs.start(name, command, env, port, bench.workdir)
    why = procs.wait_healthy(server, START_TIMEOUT_S, ready)
    if why is None:
        note, detail = probe(server, ready, graphql)
        why = f"{note.removeprefix('n/a (').removesuffix(')')}: {detail}" if note else None
    if why is not None:
        procs.stop(server)
        return None, why
    return server, ""


def _load(bench: Bench, server: procs.Server, name: str, key: str, requests: tuple[scenarios.Request, ...],
          auth: str = "") -> Row:
    try:
        result = bench.load(server, requests)
    except drive.LoadError as exc:
        bench.say(f"{name}: {exc}")
        return Row(name, 1, note="n/a (wrk failed)", key=key, auth=auth)
    bench.say(f"{name}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
              f"errors {result.errors}")
    return Row(name, 1, result, key=key, auth=auth)


def postgraphile_rows(bench: Bench) -> list[Row]:
    """PostGraphile 5's GraphQL list (the gateway's ``graphql_list``), checked to return 10 rows first."""
    key = "postgraphile_list"
    if bench.wrk is None:
        return [Row(POSTGRAPHILE_NAME, 1, note="n/a (no wrk)", key=key)]
    command, how = ensure_postgraphile(bench.say)
    if command is None:
        bench.say(f"PostGraphile 5: n/a ({how})")
        return [Row(POSTGRAPHILE_NAME, 1, note=f"n/a ({how})", key=key)]
    bench.say(f"PostGraphile 5: {how}")
    port = procs.free_port()
    env = {"BENCH_DSN": bench.pg.dsn("bench"), "BENCH_PORT": str(port), "BENCH_CLAIMS": bench.claims,
           "NODE_ENV": "production", "GRAPHILE_ENV": "production"}
    request = scenarios.postgraphile_list()
    server, why = _serve(bench, "postgraphile", command, env, port, request, graphql=True)
    if server is None:
        bench.say(f"PostGraphile 5 did not serve the list: {why}")
        return [Row(POSTGRAPHILE_NAME, 1, note=f"n/a (did not serve the list: {why[:80]})", key=key)]
    try:
        rows = count_nodes(procs.fetch(server.url, request)[1])
        if rows != 10:
            return [Row(POSTGRAPHILE_NAME, 1, note=f"n/a (the list returned {rows} rows, not 10)", key=key)]
        bench.notes.append(f"PostGraphile 5: {how}, one Node process, amber preset, every request as role "
                           "authenticated with the user's claims (fixed pgSettings, no JWT verified); "
                           f"query: {scenarios.POSTGRAPHILE_LIST}")
        return [_load(bench, server, POSTGRAPHILE_NAME, key, (request,))]
    finally:
        procs.stop(server)


def count_nodes(body: bytes) -> int | None:
    """How many list rows a PostGraphile answer carries (``data.allPosts.nodes``); None when unreadable."""
    try:
        nodes = json.loads(body)["data"]["allPosts"]["nodes"]
    except (ValueError, KeyError, TypeError):
        return None
    return len(nodes) if isinstance(nodes, list) else None


def postgrest_binary() -> tuple[str | None, str]:
    """(the PostgREST executable, '') or (None, why there is none)."""
    named = os.environ.get(POSTGREST_ENV)
    if named:
        path = shutil.which(named) or (named if os.access(named, os.X_OK) else None)
        return (path, "") if path else (None, f"{POSTGREST_ENV}={named} is not executable")
    found = shutil.which("postgrest")
    if found:
        return found, ""
    return None, (f"no PostgREST binary: none on PATH and {POSTGREST_ENV} unset; "
                  "no registry this machine reaches ships one")


def _version(exe: str) -> str:
    try:
        done = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "version unknown"
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else "version unknown"


def postgrest_rows(bench: Bench) -> list[Row]:
    """PostgREST's point read (the same ids as ``rest_single``) and list, with the user's JWT."""
    jwt = bench.auths[0]
    names = ((POSTGREST_SINGLE_NAME, "postgrest_single"), (POSTGREST_LIST_NAME, "postgrest_list"))

    def unavailable(why: str) -> list[Row]:
        bench.say(f"PostgREST: n/a ({why})")
        return [Row(name, 1, note=f"n/a ({why})", key=key) for name, key in names]

    if bench.wrk is None:
        return unavailable("no wrk")
    exe, why = postgrest_binary()
    if exe is None:
        return unavailable(why)
    port = procs.free_port()
    env = {"PGRST_DB_URI": bench.pg.dsn("bench"), "PGRST_DB_SCHEMAS": "public", "PGRST_DB_ANON_ROLE": "anon",
           "PGRST_JWT_SECRET": bench.env["JWT_SECRET"], "PGRST_SERVER_HOST": procs.HOST,
           "PGRST_SERVER_PORT": str(port), "PGRST_DB_POOL": "10", "PGRST_LOG_LEVEL": "crit"}
    single = scenarios.postgrest_single(bench.ctx, jwt)
    server, why = _serve(bench, "postgrest", [exe], env, port, single[0], graphql=False)
    if server is None:
        return unavailable(f"PostgREST did not serve a point read: {why[:80]}")
    bench.notes.append(f"PostgREST: {exe} ({_version(exe)}), one process, the same JWT secret and token "
                       "as the gateway")
    try:
        return [_load(bench, server, POSTGREST_SINGLE_NAME, "postgrest_single", single),
                _load(bench, server, POSTGREST_LIST_NAME, "postgrest_list", (scenarios.postgrest_list(jwt),))]
    finally:
        procs.stop(server)
