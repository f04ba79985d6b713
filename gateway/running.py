"""The running gateway: the state file ``gateway serve`` writes, and how other commands find it.

In:  for ``serve``: its URL, data directory and database once it answers; for the commands that
     talk to a server (``token``, ``export``, ``import``, ``bulk-upsert``): their ``--url`` /
     ``--data-dir`` flags and ``GATEWAY_URL`` / ``GATEWAY_DATA_DIR`` (through ``settings``).
Out: ``<state dir>/server-<pid>.json`` (mode 0600: ``url``, ``dataDir``, ``pid``, ``database``),
     removed when ``serve`` exits; ``find`` returns the ``Server`` a command should use, or raises
     ``NotFound`` whose message is the one line the command prints before exiting non-zero.

The state directory is ``GATEWAY_STATE_DIR`` (default ``~/.local/state/gateway``): one place per
user, so a command run from any directory finds the server that user started. Files of processes
that are gone (a crash, a kill -9) are ignored and removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import settings as settings_module
from .settings import Settings

PREFIX = "server-"
EMBEDDED = "embedded"  # the ``database`` of a server running the embedded PostgreSQL


class NotFound(Exception):
    """No server (or no unambiguous one) to talk to; the message is the line to print."""


@dataclass(frozen=True)
class Server:
    url: str | None  # None: chosen by data directory with no server running there
    data_dir: Path  # absolute
    database: str  # EMBEDDED, or the server's DATABASE_URL with the password masked
    pid: int | None = None


def state_dir(settings: Settings) -> Path:
    return Path(settings.state_dir).expanduser()


def _path(settings: Settings, pid: int) -> Path:
    return state_dir(settings) / f"{PREFIX}{pid}.json"


def write(settings: Settings, server: Server) -> Path:
    """Record ``server`` (this process) atomically, readable by its owner only."""
    directory = state_dir(settings)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pid = server.pid or os.getpid()
    body = {"url": server.url, "dataDir": str(server.data_dir), "pid": pid, "database": server.database}
    fd, tmp = tempfile.mkstemp(prefix=".server-", dir=directory)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(body, f)
        path = _path(settings, pid)
        os.replace(tmp, path)
        return path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def remove(settings: Settings, pid: int | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        _path(settings, pid or os.getpid()).unlink()


def _alive(pid: object) -> bool:
    """Whether ``pid`` is still a ``gateway serve`` (a pid reused by another program is not)."""
    if not isinstance(pid, int):
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return "serve" in proc.cmdline()
    except psutil.AccessDenied:
        return True  # another user's process: leave the judgement to the file's owner
    except psutil.Error:
        return False


def servers(settings: Settings) -> list[Server]:
    """The servers whose state files name a live process; stale files are removed."""
    found = []
    for path in sorted(state_dir(settings).glob(f"{PREFIX}*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            server = Server(str(data["url"]), Path(data["dataDir"]), str(data["database"]), data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: leave it alone
        if _alive(server.pid):
            found.append(server)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    return found


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


def find(settings: Settings, url: str | None, data_dir: str | None) -> Server:
    """The server a command talks to: the one serving ``url``, else the one on ``data_dir``
    (which need not be running), else the only one running. Raises ``NotFound``."""
    running = servers(settings)
    where = f"looked in {state_dir(settings)}"
    if url:
        match = [s for s in running if s.url is not None and _same_url(s.url, url)]
        if not match:
            raise NotFound(f"no gateway started by this user is serving {url} ({where}); "
                           "start it with `gateway serve`, or pass --data-dir")
        return match[0]
    if data_dir:
        root = Path(data_dir).expanduser().resolve()
        on_it = [s for s in running if s.data_dir == root]
        return on_it[0] if on_it else Server(None, root, EMBEDDED)
    if len(running) == 1:
        return running[0]
    if running:
        urls = ", ".join(str(s.url) for s in running)
        raise NotFound(f"{len(running)} gateways are running ({urls}); pick one with --url")
    raise NotFound(f"no running gateway found ({where}); start one with `gateway serve`, "
                   "or pass --url or --data-dir")


def for_command(flags: object, settings: Settings) -> Server:
    """``find`` with a command's ``--url``/``--data-dir`` flags, then ``GATEWAY_URL`` and an explicitly
    set ``GATEWAY_DATA_DIR`` (the default ``./.gateway`` is not a choice: it depends on the directory)."""
    url = getattr(flags, "url", None) or settings.url
    data_dir = getattr(flags, "data_dir", None) or (
        settings.data_dir if settings_module.is_set("data_dir") else None)
    return find(settings, url, data_dir)
