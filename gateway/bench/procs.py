"""HTTP servers under test as subprocesses: start, wait for health, probe, measure memory, stop.

In:  a command line and its environment (the gateway's ``gateway serve``, uvicorn
     running the minimal endpoint, or a peer), all bound to 127.0.0.1.
Out: a ``Server`` handle (URL, process, log tail), probe results, and resident memory
     per worker sampled with psutil (``RssSampler``).

Each server runs in its own session so that stopping it (SIGTERM, then SIGKILL after
a grace period) reaches exactly the processes it started, uvicorn's workers included.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from .scenarios import Request

HOST = "127.0.0.1"
MB = 1024 * 1024


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def gateway_command(port: int, workers: int) -> list[str]:
    """``gateway serve ...``; without the console script installed, the same entry point via Python."""
    args = ["serve", "--host", HOST, "--port", str(port), "--workers", str(workers)]
    exe = shutil.which("gateway")
    if exe:
        return [exe, *args]
    return [sys.executable, "-c", "import sys; from gateway.cli import main; sys.exit(main())", *args]


def baseline_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "gateway.bench.baseline:app", "--host", HOST, "--port", str(port),
            "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning"]


@dataclass
class Server:
    name: str  # for messages
    url: str  # http://127.0.0.1:port
    process: subprocess.Popen[bytes]  # the parent process we started
    log: Path  # its stdout and stderr

    def log_tail(self, lines: int = 8) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def workers(self) -> list[psutil.Process]:
        """The processes serving requests: uvicorn's worker children, or the parent when it has none."""
        try:
            parent = psutil.Process(self.process.pid)
            children = [c for c in parent.children(recursive=True)
                        if "resource_tracker" not in " ".join(_cmdline(c))]
        except psutil.Error:
            return []
        return children or [parent]


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return []


def start(name: str, command: Sequence[str], env: Mapping[str, str], port: int, workdir: Path) -> Server:
    log = workdir / f"{name.replace(' ', '_')}-{port}.log"
    repo_root = str(Path(__file__).resolve().parents[2])
    full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
        p for p in (repo_root, os.environ.get("PYTHONPATH", "")) if p)}
    with log.open("wb") as out:
        process = subprocess.Popen(list(command), env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True, cwd=workdir)
    return Server(name, f"http://{HOST}:{port}", process, log)


HEALTH = Request("GET", "/health")


def wait_healthy(server: Server, timeout: float, ready: Request = HEALTH) -> str | None:
    """None once ``ready`` (default ``GET /health``) answers 200; otherwise why not (exited, or timed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            return f"exited with code {code}: {server.log_tail(3)}"
        status, _ = fetch(server.url, ready, timeout=2)
        if status == 200:
            return None
        time.sleep(0.2)
    return f"{ready.method} {ready.path[:40]} not 200 within {timeout:.0f} s: {server.log_tail(3)}"


def fetch(base: str, req: Request, timeout: float = 10) -> tuple[int, bytes]:
    """One request; (status, body), status 0 when the connection failed."""
    data = None if req.body is None else req.body.encode()
    request = urllib.request.Request(base + req.path, data=data, method=req.method, headers=dict(req.headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (OSError, ValueError) as exc:
        return 0, str(exc).encode()


def stop(server: Server, grace: float = 15) -> None:
    """SIGTERM to the server's session, SIGKILL to what is left after ``grace`` seconds."""
    try:
        started = psutil.Process(server.process.pid).children(recursive=True)
    except psutil.Error:
        started = []
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGTERM)
        try:
            server.process.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(5)
    # workers that outlived their parent: psutil checks the start time, so a reused pid is never hit
    for child in started:
        with contextlib.suppress(psutil.Error):
            child.kill()


@dataclass
class RssSampler:
    """Samples the RSS of a server's workers in a background thread; keeps each pid's peak."""

    server: Server
    interval: float = 0.5  # seconds between samples
    peaks: dict[int, int] = field(default_factory=dict)  # pid -> highest RSS seen, bytes
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> dict[int, int]:
        now: dict[int, int] = {}
        for proc in self.server.workers():
            with contextlib.suppress(psutil.Error):
                now[proc.pid] = proc.memory_info().rss
        for pid, rss in now.items():
            self.peaks[pid] = max(self.peaks.get(pid, 0), rss)
        return now

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self.sample()
