"""The ``gateway`` command.

In:  the command line (argparse) and the environment (through ``settings.load``).
Out: ``serve`` runs the checks of ``startup.STEPS`` (port, database), then the HTTP server
     (uvicorn) on the socket they bound and, without ``DATABASE_URL``, the embedded PostgreSQL
     around it; once ``/health`` answers it prints the banner and records itself for the other
     commands (``running``). ``token`` prints a JWT signed with the running server's secret;
     ``export``, ``import`` and ``bulk-upsert`` run the admin endpoints' code (``admincli``) on
     its database. Each subcommand is one row of ``COMMANDS``; a failure is one line on stderr
     and an ``Exit`` status.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import traceback
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from . import admincli, keys, running, startup
from . import settings as settings_module
from .auth import anon_key, sign_token
from .identity import ROLES
from .settings import Settings
from .startup import Exit, Failure

APP_FACTORY = "gateway.app:create_app_from_env"
REST_PATH = "/api/database/records/{table}"
GRAPHQL_PATH = "/graphql"
DASHBOARD_PATH = "/dashboard"

# Settings that ``serve`` resolves and hands to its uvicorn workers through the environment:
# the workers build their Settings with settings.load() and must see the same database and keys.
WORKER_ENV_FIELDS = ("database_url", "jwt_secret", "api_key", "authenticator_password", "data_dir", "host", "port",
                     "workers", "log_level", "graphql_extensions")
LOG_LEVELS = ("debug", "info", "warning", "error")
HEALTH_POLL = 0.1  # seconds between start-up's /health probes


@dataclass(frozen=True)
class Command:
    name: str  # the subcommand
    help: str  # one line for `gateway --help`
    arguments: Callable[[argparse.ArgumentParser], None]  # adds the subcommand's flags
    run: Callable[[argparse.Namespace], int]  # does the work; the return value is the exit status


def resolved_settings(**overrides: object) -> Settings:
    """Environment settings plus command-line overrides, with the keys loaded or generated."""
    try:
        settings = settings_module.load().with_overrides(**overrides)
        return keys.ensure_keys(settings)
    except ValueError as exc:  # bad configuration (a short JWT_SECRET, API_KEY=nope, a damaged keys file)
        raise Failure(Exit.CONFIG, str(exc)) from exc
    except OSError as exc:  # the data dir cannot be created or written
        raise Failure(Exit.CONFIG, f"cannot keep the keys in {settings.data_dir}: {exc.strerror or exc}; "
                                   "check GATEWAY_DATA_DIR and its permissions") from exc


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that make ``settings.load()`` in a worker return ``settings``."""
    by_field = {s.field: s for s in settings_module.SETTINGS}
    env = {}
    for field in WORKER_ENV_FIELDS:
        value = getattr(settings, field)
        if value is not None:
            env[by_field[field].env] = str(value)
    return env


def base_url(settings: Settings) -> str:
    host = f"[{settings.host}]" if ":" in settings.host else settings.host  # IPv6 literal
    return f"http://{host}:{settings.port}"


def banner(settings: Settings, database: str) -> str:
    assert settings.jwt_secret is not None
    base = base_url(settings)
    return "\n".join((
        f"gateway listening on {base}",
        f"  REST      {base}{REST_PATH}",
        f"  GraphQL   {base}{GRAPHQL_PATH}",
        f"  dashboard {base}{DASHBOARD_PATH}",
        f"  database  {database}",
        f"  anon key  {anon_key(settings.jwt_secret)}",
        f"  API key   {settings.api_key}",
    ))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _health_url(sock: socket.socket) -> str:
    """Where this process itself reaches the server: a wildcard address is asked on loopback."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/health"


def announce_when_ready(st: startup.Startup, stopped: threading.Event, ready: threading.Event) -> None:
    """Wait for ``/health`` to answer 200, then print the banner and write the state file."""
    assert st.sock is not None
    url = _health_url(st.sock)
    while not stopped.is_set():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    break
        except (OSError, ValueError):
            pass
        stopped.wait(HEALTH_POLL)
    else:
        return
    data_dir = Path(st.settings.data_dir).expanduser().resolve()
    database = running.EMBEDDED if st.embedded is not None else startup.mask(st.settings.database_url or "")
    running.write(st.settings, running.Server(base_url(st.settings), data_dir, database))
    ready.set()
    print(banner(st.settings, st.database), flush=True)


def uvicorn_config(settings: Settings) -> Any:
    """The ``uvicorn.Config`` that serves the app with ``settings`` (host, workers, logging,
    WebSocket compression)."""
    import uvicorn

    return uvicorn.Config(APP_FACTORY, factory=True, host=settings.host, port=settings.port,
                          workers=settings.workers, loop="uvloop", http="httptools",
                          ws_per_message_deflate=settings.ws_compression,
                          access_log=False,  # the app writes its own JSON access log
                          log_level=startup.uvicorn_log_level(settings.log_level),
                          log_config=startup.uvicorn_log_config(settings.log_level, keep_errors=settings.workers > 1))


def _uvicorn(st: startup.Startup) -> None:
    """Serve on the socket start-up bound (uvicorn.run without its own bind)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = st.settings
    config = uvicorn_config(settings)
    server = uvicorn.Server(config)
    assert st.sock is not None
    if settings.workers > 1:
        if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn before 0.36
            Multiprocess(config, target=server.run, sockets=[st.sock]).run()  # type: ignore[call-arg]
        else:
            Multiprocess(config, sockets=[st.sock]).run()
    else:
        server.run(sockets=[st.sock])


def serve(args: argparse.Namespace) -> int:
    # SIGTERM behaves like Ctrl+C: uvicorn shuts down gracefully and re-raises the signal it
    # caught once it is done; with this handler that ends in KeyboardInterrupt (which uvicorn
    # absorbs) instead of killing the process before the embedded PostgreSQL is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = resolved_settings(host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
                                 graphql_extensions=args.graphql_extensions)
    metrics_dir: str | None = None
    st = startup.run(settings)
    stopped, ready = threading.Event(), threading.Event()
    interrupted = False
    try:
        os.environ.update(worker_environment(st.settings))
        if st.settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # several workers: /metrics adds up every worker's figures from files in this folder
            metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        threading.Thread(target=announce_when_ready, args=(st, stopped, ready), daemon=True).start()
        _uvicorn(st)
    except KeyboardInterrupt:
        interrupted = True
    except SystemExit:  # uvicorn's own exit when the application's start-up failed
        pass
    finally:
        stopped.set()
        running.remove(st.settings)
        st.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if not ready.is_set() and not interrupted:
        reason = startup.LAST_ERROR[-1] if startup.LAST_ERROR else "the lines above say why"
        raise Failure(Exit.SERVER, f"the server stopped before it answered: {reason}; "
                                   "--log-level debug shows the details")
    return Exit.OK


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (GATEWAY_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 7130)")
    p.add_argument("--workers", type=int, help="worker processes (GATEWAY_WORKERS, default 1)")
    p.add_argument("--graphql-extensions", metavar="MODULE",
                   help="module whose Strawberry Query/Mutation/Subscription are merged (GATEWAY_GRAPHQL_EXTENSIONS)")
    p.add_argument("--log-level", choices=LOG_LEVELS,
                   help="log level (GATEWAY_LOG_LEVEL, default info); debug also prints tracebacks")


def jwt_secret(args: argparse.Namespace) -> str:
    """JWT_SECRET, else the secret in the running server's data dir; never a new one."""
    try:
        settings = settings_module.load()
    except ValueError as exc:
        raise Failure(Exit.CONFIG, str(exc)) from exc
    if settings.jwt_secret:
        if len(settings.jwt_secret) < keys.MIN_SECRET_LENGTH:
            raise Failure(Exit.CONFIG, f"JWT_SECRET must be at least {keys.MIN_SECRET_LENGTH} characters long")
        return settings.jwt_secret
    server = find_server(args, settings)
    path = server.data_dir / keys.KEYS_FILE
    try:
        secret = json.loads(path.read_text(encoding="utf-8")).get("jwt_secret")
    except FileNotFoundError:
        secret = None
    except (OSError, ValueError, AttributeError) as exc:
        raise Failure(Exit.CONFIG, f"{path} is not a readable keys file: {exc}") from exc
    if not isinstance(secret, str) or len(secret) < keys.MIN_SECRET_LENGTH:
        raise Failure(Exit.NO_SERVER, f"no JWT secret: JWT_SECRET is unset and {path} holds none; "
                                      "start `gateway serve` once, or set JWT_SECRET")
    return secret


def token(args: argparse.Namespace) -> int:
    secret = jwt_secret(args)
    claims: dict[str, object] = {"sub": args.sub, "role": args.role}
    if args.email is not None:
        claims["email"] = args.email
    print(sign_token(secret, claims, args.ttl or None))
    return Exit.OK


def _token_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=ROLES, default="authenticated", help="the role claim")
    p.add_argument("--sub", required=True, help="the subject claim (a user id, usually a uuid)")
    p.add_argument("--email", help="the email claim")
    p.add_argument("--ttl", type=int, default=3600,
                   help="seconds until the token expires (default 3600; 0 for no expiry, which the server "
                        "refuses for users and admins unless GATEWAY_JWT_ALLOW_NO_EXP=true)")
    server_arguments(p)


def server_arguments(p: argparse.ArgumentParser) -> None:
    """--url/--data-dir: which running gateway a command talks to (default: the only one running)."""
    p.add_argument("--url", help="the running gateway to use (GATEWAY_URL), e.g. http://127.0.0.1:7130")
    p.add_argument("--data-dir", help="the data directory of the gateway to use (GATEWAY_DATA_DIR)")


def find_server(args: argparse.Namespace, settings: Settings) -> running.Server:
    """The server named by the flags or the environment, else the only one running; ``Failure`` otherwise."""
    try:
        return running.for_command(args, settings)
    except running.NotFound as exc:
        raise Failure(Exit.NO_SERVER, str(exc)) from exc


def _with_server(arguments: Callable[[argparse.ArgumentParser], None]) -> Callable[[argparse.ArgumentParser], None]:
    def both(p: argparse.ArgumentParser) -> None:
        arguments(p)
        server_arguments(p)
    return both


COMMANDS: tuple[Command, ...] = (
    Command("serve", "run the HTTP server (and the embedded PostgreSQL without DATABASE_URL)",
            _serve_arguments, serve),
    Command("token", "print a signed JWT for a role and subject", _token_arguments, token),
    # The admin endpoints' command-line forms (gateway.admincli): the same code, with a progress bar.
    Command("export", "write a SQL (or JSON) export of tables to stdout",
            _with_server(admincli.export_arguments), admincli.export),
    Command("import", "run a SQL file (an export) in one transaction",
            _with_server(admincli.import_arguments), admincli.import_),
    Command("bulk-upsert", "insert or update a table's rows from a CSV or JSON file",
            _with_server(admincli.bulk_upsert_arguments), admincli.bulk_upsert),
)


def parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gateway", description="The InsForge Database API and a GraphQL API over PostgreSQL.")
    top.add_argument("--version", action="version", version=f"gateway {version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(run=command.run)
    return top


def version() -> str:
    try:
        return importlib.metadata.version("gateway")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; a failure is one line on stderr and its ``Exit`` status (a traceback only
    with ``--log-level debug`` or ``GATEWAY_LOG_LEVEL=debug``)."""
    args = parser().parse_args(argv)
    try:
        status: int = args.run(args)
        return status
    except Failure as failure:
        if failure.__cause__ is not None and _debugging(args):
            traceback.print_exception(failure.__cause__)
        sys.stderr.write(f"gateway: {failure.line}\n")
        return int(failure.code)
    except KeyboardInterrupt:
        return int(Exit.INTERRUPTED)
    except Exception as exc:
        if _debugging(args):
            raise
        sys.stderr.write(f"gateway: unexpected error: {type(exc).__name__}: {exc} "
                         "(--log-level debug prints the traceback)\n")
        return int(Exit.UNEXPECTED)


def _debugging(args: argparse.Namespace) -> bool:
    if getattr(args, "log_level", None) == "debug":
        return True
    try:
        return settings_module.load().log_level.lower() == "debug"
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
