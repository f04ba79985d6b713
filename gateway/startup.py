"""The start-up of ``gateway serve``: the checks made before the banner, each with its own failure.

In:  the resolved ``Settings`` (keys loaded, flags applied).
Out: a ``Startup`` holding the bound listening socket, the database URL that answered (the
     embedded PostgreSQL's when ``DATABASE_URL`` is unset) and what the banner says about it; or
     ``Failure(exit code, line)``: one line naming what failed, the value involved (passwords
     masked) and what to do, and an exit code of its own (``Exit``).

``STEPS`` runs in order; a new check (a server version, a role the database must have) is one
more row. No step prints: ``cli.serve`` prints the banner once the server answers, or the
failure line.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import IntEnum
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .settings import Settings

CONNECT_TIMEOUT = 10.0  # seconds for the first connection: a host that drops packets fails this fast


class Exit(IntEnum):
    """Exit statuses of the ``gateway`` command: one per kind of failure, so scripts can tell them apart."""

    OK = 0
    FAILED = 1  # an export, import or bulk upsert failed (its error body is on stderr)
    USAGE = 2  # a bad command line (argparse's own status)
    CONFIG = 3  # a setting or key is unusable (API_KEY, JWT_SECRET, keys.json, GATEWAY_PORT=x)
    NO_SERVER = 4  # no running gateway (or no secret) for a command that needs one
    PORT = 5  # the address cannot be listened on (in use, not this machine's)
    EMBEDDED = 6  # the embedded PostgreSQL did not start
    DATABASE_URL = 7  # DATABASE_URL is not a usable PostgreSQL URL
    DATABASE_UNREACHABLE = 8  # nothing answers at DATABASE_URL's host and port
    DATABASE_LOGIN = 9  # the database refused the user or password
    DATABASE_MISSING = 10  # the database named in DATABASE_URL does not exist
    DATABASE = 11  # any other database failure at start
    SERVER = 12  # the server stopped before it answered (the log above says why)
    UNEXPECTED = 70  # a bug: one line, the traceback with --log-level debug
    INTERRUPTED = 130  # Ctrl+C


class Failure(Exception):
    def __init__(self, code: Exit, line: str) -> None:
        super().__init__(line)
        self.code = code
        self.line = line


@dataclass
class Startup:
    settings: Settings
    sock: socket.socket | None = None  # bound, not yet listening: uvicorn listens on it
    embedded: Any = None  # embedded.EmbeddedPostgres when DATABASE_URL is unset
    database: str = ""  # the banner's "database" line
    extra: dict[str, Any] = field(default_factory=dict)  # what later steps hand on

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        if self.embedded is not None:
            self.embedded.stop()


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}"
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparseable URL>"


# --------------------------------------------------------------------------- steps


def listen(st: Startup) -> None:
    """Bind the address now, so a port in use fails here and not after the banner."""
    host, port = st.settings.host, st.settings.port
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, OverflowError) as exc:
        raise Failure(Exit.PORT, f"cannot listen on {where}: {exc}; "
                                 "check --host/GATEWAY_HOST and --port/GATEWAY_PORT") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise Failure(Exit.PORT, f"cannot listen on {where}: {reason.lower()}; stop the program using it "
                                 "or choose another port with --port (GATEWAY_PORT)") from exc
    sock.set_inheritable(True)  # worker processes serve on it
    st.sock = sock
    st.settings = replace(st.settings, port=sock.getsockname()[1])  # --port 0: the one the system chose


def database(st: Startup) -> None:
    """Start the embedded PostgreSQL when ``DATABASE_URL`` is unset."""
    if st.settings.database_url:
        st.database = mask(st.settings.database_url)
        return
    from . import embedded

    try:
        st.embedded = embedded.start(st.settings.data_dir)
    except Exception as exc:
        raise Failure(Exit.EMBEDDED, f"the embedded PostgreSQL in {st.settings.data_dir} did not start: "
                                     f"{_oneline(exc)}; check the directory's permissions and free space, "
                                     "or set DATABASE_URL") from exc
    st.settings = replace(st.settings, database_url=st.embedded.url)
    st.database = f"embedded PostgreSQL in {st.embedded.pgdata}"


def database_answers(st: Startup) -> None:
    """Log in once as ``DATABASE_URL`` and run ``SELECT 1``: a wrong URL, host or password fails
    here, in one line. (The login role and a replica are checked by the application's start.)"""
    if st.settings.database_url:
        asyncio.run(_check("DATABASE_URL", st.settings.database_url, embedded=st.embedded is not None))


async def _check(name: str, url: str, embedded: bool) -> None:
    import asyncpg

    shown = f"the embedded PostgreSQL ({url})" if embedded else f"{name} {mask(url)}"
    if not embedded and urlsplit(url).scheme not in ("postgres", "postgresql"):
        raise Failure(Exit.DATABASE_URL, f"{shown} is not a PostgreSQL URL; "
                                         "use postgresql://user:password@host:5432/database")
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except Exception as exc:
        code, advice = _database_failure(exc)
        raise Failure(code, f"{shown}: {_oneline(exc)}; {advice}") from exc


def _database_failure(exc: Exception) -> tuple[Exit, str]:
    """(exit code, what to do) for a failed first connection; a table by SQLSTATE, then by kind."""
    import asyncpg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    for prefix, code, advice in DATABASE_FAILURES:
        if prefix and sqlstate.startswith(prefix):
            return code, advice
    if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
        return Exit.DATABASE_URL, "fix the URL: postgresql://user:password@host:5432/database"
    if isinstance(exc, OSError | TimeoutError | asyncio.TimeoutError):
        return (Exit.DATABASE_UNREACHABLE,
                "check that PostgreSQL runs there and that the URL's host and port are right")
    return Exit.DATABASE, "check the server's log; --log-level debug shows the traceback"


# (SQLSTATE prefix, exit code, what to do)
DATABASE_FAILURES: tuple[tuple[str, Exit, str], ...] = (
    ("28", Exit.DATABASE_LOGIN, "check the user name and password in the URL"),
    ("3D000", Exit.DATABASE_MISSING, "create the database or fix its name in the URL"),
    ("57P03", Exit.DATABASE_UNREACHABLE, "the server is starting or shutting down; try again shortly"),
    ("53300", Exit.DATABASE, "the server has no free connections; raise max_connections or close some"),
)


def _oneline(exc: BaseException | str) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


@dataclass(frozen=True)
class Step:
    name: str  # what the step checks, for the debug log
    run: Callable[[Startup], None]  # raises Failure


STEPS: tuple[Step, ...] = (
    Step("listen", listen),
    Step("database", database),
    Step("database answers", database_answers),
)


def run(settings: Settings, steps: tuple[Step, ...] = STEPS) -> Startup:
    """Every step in order; on a failure what was started is stopped again and ``Failure`` raised."""
    st = Startup(settings)
    log = logging.getLogger("gateway.startup")
    try:
        for step in steps:
            log.debug("start-up: %s", step.name)
            step.run(st)
    except BaseException:
        st.close()
        raise
    return st


# --------------------------------------------------------------------------- uvicorn's logging


class NoTraceback(logging.Filter):
    """uvicorn's records as one line each: a traceback (in ``exc_info`` or pasted into the message,
    as Starlette does for a failed lifespan) becomes its final exception line.

    With ``keep=False`` (one worker: the failure is reported by ``cli.serve`` in its own line)
    error records are dropped after being remembered in ``LAST_ERROR``.
    """

    def __init__(self, keep: bool = True) -> None:
        super().__init__()
        self.keep = keep

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage().strip()} ({type(exc).__name__}: {_oneline(exc)})"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        message = record.getMessage()
        if "Traceback (most recent call last)" in message:
            record.msg, record.args = last_exception(message), ()
        if record.levelno >= logging.ERROR:
            if message.startswith("Application startup failed"):
                return self.keep  # says nothing the previous record did not
            LAST_ERROR[:] = [record.getMessage()]
            return self.keep
        return True


LAST_ERROR: list[str] = []  # the last error uvicorn logged in this process, as one line


def last_exception(text: str) -> str:
    """The exception a pasted traceback ends with, on one line."""
    lines = text.strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  ") or line.startswith("Traceback")]
    tail = lines[frames[-1] + 1:] if frames else lines
    return _oneline(" ".join(line.strip() for line in tail if line.strip()))


def uvicorn_log_config(level: str, keep_errors: bool = True) -> dict[str, Any]:
    """uvicorn's logging configuration. Below debug: exceptions are one line, not a traceback."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    debug = level.lower() == "debug"
    if not debug:
        config.setdefault("filters", {})["no_traceback"] = {"()": "gateway.startup.NoTraceback", "keep": keep_errors}
        for handler in config["handlers"].values():
            handler.setdefault("filters", []).append("no_traceback")
    return config


def uvicorn_log_level(level: str) -> str:
    """uvicorn's own level: its start-up notes only with debug (the banner says the server is up)."""
    return "debug" if level.lower() == "debug" else max(level.lower(), "warning", key=_rank)


def _rank(level: str) -> int:
    return int(logging.getLevelName(level.upper()))
