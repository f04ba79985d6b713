"""GraphQL over HTTP conformance: the npm ``graphql-http`` server audits against a live gateway.

In:  ``tests/graphql_http/audit.mjs`` run by ``node``, with ``graphql-http`` installed by ``npm``
     into a temporary folder once per session, against ``/graphql`` of a live gateway (the
     audits' requests carry the anon key, as a browser client's would).
Out: every audit (MUST and SHOULD alike) passes.

Skipped, with the reason, only when ``node``/``npm`` are missing or the install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from liveserver import LiveServer, live_server

AUDIT = Path(__file__).parent / "graphql_http" / "audit.mjs"
PACKAGE = {"name": "gateway-graphql-http-audit", "private": True, "type": "module",
           "dependencies": {"graphql-http": "^1.22.4", "graphql": "^16.9.0"}}


@pytest.fixture(scope="session")
def audit_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with graphql-http installed by npm (once per session)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run the graphql-http audits (not found on PATH)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 18:
        pytest.skip(f"graphql-http's audits need node 18 or newer (global fetch); found {version}")
    folder = tmp_path_factory.mktemp("graphql-http")
    (folder / "package.json").write_text(json.dumps(PACKAGE))
    shutil.copy(AUDIT, folder / AUDIT.name)
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install graphql-http did not finish within 10 minutes")
    if done.returncode != 0:
        pytest.skip(f"npm install graphql-http failed: {done.stderr.strip()[-500:]}")
    return folder


@pytest.fixture(scope="module")
def live(pg_url: str) -> Iterator[LiveServer]:
    with live_server(pg_url, ("public",)) as server:
        yield server


def test_every_graphql_over_http_audit_passes(audit_dir: Path, live: LiveServer) -> None:
    done = subprocess.run(["node", AUDIT.name, f"{live.url}/graphql", f"Bearer {live.anon_key}"], cwd=audit_dir,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) > 30  # the whole suite ran
    failed = [f"{r['name']}: {r['reason']}" for r in results if r["status"] != "ok"]
    assert failed == [], "\n".join(failed)
