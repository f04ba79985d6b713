"""The commands that talk to a running ``gateway serve``, run as a user would: from another
directory than the server's, as subprocesses, against a real server on its own embedded
PostgreSQL. Also the README's shell examples, run one after the other against a fresh server.

Every test gives the commands a state directory of its own (``GATEWAY_STATE_DIR``), so servers
other tests start are never found.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.auth import anon_key
from gateway.startup import Exit

KEY_ENV = ("DATABASE_URL", "READ_REPLICA_URL", "JWT_SECRET", "API_KEY", "GATEWAY_DATA_DIR", "GATEWAY_HOST",
           "GATEWAY_PORT", "GATEWAY_WORKERS", "GATEWAY_LOG_LEVEL", "GATEWAY_URL", "GATEWAY_STATE_DIR")
README = Path(__file__).resolve().parent.parent / "README.md"
START_DEADLINE = 180  # seconds for a first start (initdb included); a bound, not a measurement
BIN = Path(sys.executable).parent  # the venv's `gateway` and `python`


def _dir(prefix: str) -> Path:
    # not tmp_path: as root the embedded postgres runs as another user, who must reach the directory
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def environment(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["GATEWAY_STATE_DIR"] = str(state)
    env.update(extra)
    return env


@dataclass
class Server:
    url: str
    home: Path  # the directory `gateway serve` runs in (its data dir is home/.gateway)
    state: Path
    proc: subprocess.Popen[bytes]
    banner: list[str]

    @property
    def keys(self) -> dict[str, str]:
        loaded: dict[str, str] = json.loads((self.home / ".gateway" / "keys.json").read_text())
        return loaded

    def run(self, *argv: str, cwd: Path, stdin: str | None = None,
            **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "gateway"), *argv], cwd=cwd, env=environment(self.state, **extra),
                              input=stdin, capture_output=True, text=True, timeout=120)


@contextlib.contextmanager
def running_server() -> Iterator[Server]:
    """``gateway serve`` in a fresh directory; stopped with SIGTERM afterwards."""
    home, state = _dir("gateway-home-"), _dir("gateway-state-")
    port = _free_port()
    proc = subprocess.Popen([str(BIN / "gateway"), "serve", "--port", str(port)], cwd=home,
                            env=environment(state), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        banner = _read_banner(proc)
        yield Server(f"http://127.0.0.1:{port}", home, state, proc, banner)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert not list(state.glob("server-*.json"))  # the state file goes with the server
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)


def _read_banner(proc: subprocess.Popen[bytes]) -> list[str]:
    """The six banner lines (read from the pipe's descriptor: a buffered reader and select disagree)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    deadline = time.monotonic() + START_DEADLINE
    seen = b""
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 1)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"gateway serve exited with {proc.poll()} before its banner"
            seen += chunk
            lines = seen.decode().splitlines()
            if len(lines) >= 6:
                return lines[:6]
        assert proc.poll() is None, f"gateway serve exited with {proc.returncode}"
    raise AssertionError("no banner from gateway serve")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server() as s:
        yield s


@pytest.fixture
def elsewhere() -> Iterator[Path]:
    """A directory that is not the server's and has no .gateway of its own."""
    path = _dir("gateway-elsewhere-")
    yield path
    assert not (path / ".gateway").exists()  # nothing was created where the command ran
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- the state file


def test_the_banner_comes_once_the_server_answers_and_the_state_file_records_it(server: Server) -> None:
    assert server.banner[0] == f"gateway listening on {server.url}"
    assert httpx.get(f"{server.url}/health").status_code == 200
    [path] = server.state.glob("server-*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    recorded = json.loads(path.read_text())
    assert recorded == {"url": server.url, "dataDir": str((server.home / ".gateway").resolve()),
                        "pid": server.proc.pid, "database": "embedded"}


# --------------------------------------------------------------------------- from another directory


def test_a_token_made_in_another_directory_is_accepted_by_the_running_server(server: Server, elsewhere: Path) -> None:
    done = server.run("token", "--sub", "123e4567-e89b-12d3-a456-426614174000", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    r = httpx.get(f"{server.url}/api/database/openapi.json", headers={"Authorization": f"Bearer {done.stdout.strip()}"})
    assert r.status_code == 200, r.text


def test_import_and_export_in_another_directory_work_on_the_running_servers_database(
        server: Server, elsewhere: Path) -> None:
    (elsewhere / "seed.sql").write_text("CREATE TABLE cli_far (id int PRIMARY KEY, note text);\n"
                                        "INSERT INTO cli_far VALUES (1, 'from afar');\n")
    imported = server.run("import", "seed.sql", cwd=elsewhere)
    assert imported.returncode == 0, imported.stderr
    assert imported.stderr == ""  # piped: no progress bar

    exported = server.run("export", "--tables", "cli_far", cwd=elsewhere)
    assert exported.returncode == 0, exported.stderr
    assert "'from afar'" in exported.stdout and exported.stderr == ""

    r = httpx.get(f"{server.url}/api/database/records/cli_far", headers={"X-API-Key": server.keys["api_key"]})
    assert r.status_code == 200 and r.json() == [{"id": 1, "note": "from afar"}]  # the server reloaded


def test_the_server_is_chosen_by_url_or_data_dir_and_an_unknown_url_is_one_line(
        server: Server, elsewhere: Path) -> None:
    assert server.run("export", "--no-data", "--url", server.url, cwd=elsewhere).returncode == 0
    by_dir = server.run("token", "--sub", "x", "--data-dir", str(server.home / ".gateway"), cwd=elsewhere)
    assert by_dir.returncode == 0, by_dir.stderr
    other = "http://127.0.0.1:1"
    for env in ({"GATEWAY_URL": other}, {}):
        argv = ("export", "--url", other) if not env else ("export",)
        done = server.run(*argv, cwd=elsewhere, **env)
        assert done.returncode == Exit.NO_SERVER and done.stdout == ""
        assert done.stderr.count("\n") == 1 and other in done.stderr and "Traceback" not in done.stderr


def test_a_long_command_on_a_terminal_shows_its_rate_and_time_left(server: Server, elsewhere: Path) -> None:
    rows = "".join(f"{i},row {i}\n" for i in range(3000))
    (elsewhere / "many.csv").write_text("id,note\n" + rows)
    create = elsewhere / "table.sql"
    create.write_text("CREATE TABLE cli_many (id int PRIMARY KEY, note text);\n")
    assert server.run("import", str(create), cwd=elsewhere).returncode == 0
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a 120-column terminal
    try:
        proc = subprocess.run([str(BIN / "gateway"), "bulk-upsert", "--table", "cli_many", "many.csv"],
                              cwd=elsewhere, env=environment(server.state), stdout=subprocess.PIPE,
                              stderr=secondary, text=True, timeout=120)
        os.close(secondary)
        drawn = b""
        while select.select([primary], [], [], 0.5)[0]:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(primary)
    assert proc.returncode == 0 and json.loads(proc.stdout)["rowsAffected"] == 3000
    bar = drawn.decode(errors="replace")
    assert "3000/3000" in bar and "row/s" in bar and "<" in bar  # count, rate, time left


# --------------------------------------------------------------------------- no server


@pytest.mark.parametrize("argv", [("token", "--sub", "x"), ("export",), ("import", "dump.sql"),
                                  ("bulk-upsert", "--table", "t", "t.csv")])
def test_without_a_running_server_each_command_fails_in_one_line_and_creates_nothing(
        elsewhere: Path, argv: tuple[str, ...]) -> None:
    state = _dir("gateway-nostate-")
    try:
        done = subprocess.run([str(BIN / "gateway"), *argv], cwd=elsewhere, env=environment(state),
                              capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    assert done.returncode == Exit.NO_SERVER and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no running gateway found" in done.stderr
    assert str(state) in done.stderr  # where it looked


def test_token_with_a_data_dir_holding_no_secret_says_where_it_looked_and_writes_nothing(elsewhere: Path) -> None:
    empty = elsewhere / "empty"
    done = subprocess.run([str(BIN / "gateway"), "token", "--sub", "x", "--data-dir", str(empty)], cwd=elsewhere,
                          env=environment(elsewhere / "state"), capture_output=True, text=True, timeout=60)
    assert done.returncode == Exit.NO_SERVER and str(empty / "keys.json") in done.stderr
    assert not empty.exists()


# --------------------------------------------------------------------------- the README


@dataclass(frozen=True)
class Block:
    line: int  # where the block starts in README.md
    text: str


# Shell blocks the test does not run, each with the reason (matched on the block's first line).
NOT_RUN = {
    "pip install -e . && gateway serve": "installing and starting the server: the test starts it itself",
    "pip install -e '.[test]' && pytest": "the test suite itself",
    "pip install -e '.[bench]'": "the benchmark runs for minutes and starts its own servers",
    "python -m gateway.bench.transfer": "the benchmark runs for minutes and starts its own servers",
    "export POSTGRES_PASSWORD=$(openssl rand -hex 16)": "Docker: no Docker engine here",
}


def readme_blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [Block(text[:m.start()].count("\n") + 1, m.group(1))
            for m in re.finditer(r"^```sh\n(.*?)^```$", text, flags=re.S | re.M)]


def test_every_readme_shell_block_is_run_or_skipped_for_a_stated_reason() -> None:
    firsts = [b.text.splitlines()[0] for b in readme_blocks()]
    skipped = [f for f in firsts if any(f.startswith(k) for k in NOT_RUN)]
    assert len(skipped) == len(NOT_RUN)  # each reason still matches a block
    assert len(firsts) - len(skipped) >= 8  # the API, RPC, GraphQL and command-line examples


def test_the_readme_examples_run_in_order_against_a_fresh_server() -> None:
    blocks = [b for b in readme_blocks() if not any(b.text.splitlines()[0].startswith(k) for k in NOT_RUN)]
    with running_server() as server:
        port = server.url.rsplit(":", 1)[1]
        script = ["set -euo pipefail",
                  # every request must succeed: a 4xx or 5xx fails the block, with the body shown
                  'curl() { command curl --silent --show-error --fail-with-body "$@"; echo; }']
        for number, block in enumerate(blocks):
            script += [f"echo '>>> block {number} (README.md line {block.line})' >&2",
                       block.text.replace("127.0.0.1:7130", f"127.0.0.1:{port}")]
        script.append("echo '>>> all blocks done' >&2")
        done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=server.home, env=environment(server.state),
                              capture_output=True, text=True, timeout=300)
        started = re.findall(r">>> block \d+ \(README.md line \d+\)", done.stderr)
        assert done.returncode == 0 and ">>> all blocks done" in done.stderr, (
            f"{started[-1] if started else 'before the first block'} failed:\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-3000:]}")
        # the examples' writes arrived: the CSV row got the column default, the JSON record its value
        api = {"X-API-Key": server.keys["api_key"]}
        rows = httpx.get(f"{server.url}/api/database/records/posts?select=title,views&order=title",
                         headers=api).json()
        assert {"title": "From CSV", "views": 0} in rows and {"title": "Pinned", "views": 7} in rows
        assert anon_key(server.keys["jwt_secret"]) in "\n".join(server.banner)


def test_a_state_file_left_by_a_process_that_is_gone_or_is_no_gateway_is_ignored_and_removed(elsewhere: Path) -> None:
    state = _dir("gateway-stale-")
    try:
        sleeper = subprocess.Popen(["sleep", "30"])  # alive, but not a gateway (a reused pid)
        try:
            for pid in (sleeper.pid, 2**22 + 1):
                (state / f"server-{pid}.json").write_text(json.dumps(
                    {"url": "http://127.0.0.1:9", "dataDir": str(elsewhere), "pid": pid, "database": "embedded"}))
            done = subprocess.run([str(BIN / "gateway"), "export"], cwd=elsewhere, env=environment(state),
                                  capture_output=True, text=True, timeout=60)
        finally:
            sleeper.kill()
            sleeper.wait()
        assert done.returncode == Exit.NO_SERVER and "no running gateway found" in done.stderr
        assert not list(state.glob("server-*.json"))
    finally:
        shutil.rmtree(state, ignore_errors=True)
