"""The ``gateway`` command.

In:  the command line (argparse) and the environment (through ``settings.load``).
Out: ``serve`` runs the HTTP server (uvicorn) and, without ``DATABASE_URL``, the embedded
     PostgreSQL around it; ``token`` prints a signed JWT; ``export``, ``import`` and
     ``bulk-upsert`` run the admin endpoints' code (``admincli``). Each subcommand is one row of
     ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from types import FrameType

from . import admincli, keys
from . import settings as settings_module
from .auth import anon_key, sign_token
from .identity import ROLES
from .settings import Settings

APP_FACTORY = "gateway.app:create_app_from_env"
REST_PATH = "/api/database/records/{table}"
GRAPHQL_PATH = "/graphql"

# Settings that ``serve`` resolves and hands to its uvicorn workers through the environment:
# the workers build their Settings with settings.load() and must see the same database and keys.
WORKER_ENV_FIELDS = ("database_url", "jwt_secret", "api_key", "authenticator_password", "data_dir", "host", "port",
                     "workers")


@dataclass(frozen=True)
class Command:
    name: str  # the subcommand
    help: str  # one line for `gateway --help`
    arguments: Callable[[argparse.ArgumentParser], None]  # adds the subcommand's flags
    run: Callable[[argparse.Namespace], int]  # does the work; the return value is the exit status


def resolved_settings(**overrides: object) -> Settings:
    """Environment settings plus command-line overrides, with the keys loaded or generated."""
    try:
        return keys.ensure_keys(settings_module.load().with_overrides(**overrides))
    except ValueError as exc:  # bad configuration (a short JWT_SECRET, a damaged keys file)
        raise SystemExit(f"gateway: {exc}") from exc


def worker_environment(settings: Settings) -> dict[str, str]:
    """The environment variables that make ``settings.load()`` in a worker return ``settings``."""
    by_field = {s.field: s for s in settings_module.SETTINGS}
    env = {}
    for field in WORKER_ENV_FIELDS:
        value = getattr(settings, field)
        if value is not None:
            env[by_field[field].env] = str(value)
    return env


def banner(settings: Settings, database: str) -> str:
    assert settings.jwt_secret is not None
    host = f"[{settings.host}]" if ":" in settings.host else settings.host  # IPv6 literal
    base = f"http://{host}:{settings.port}"
    return "\n".join((
        f"gateway listening on {base}",
        f"  REST      {base}{REST_PATH}",
        f"  GraphQL   {base}{GRAPHQL_PATH}",
        f"  database  {database}",
        f"  anon key  {anon_key(settings.jwt_secret)}",
        f"  API key   {settings.api_key}",
    ))


def _require_supported_server(dsn: str) -> None:
    """Exit with one line when DATABASE_URL's server is older than the gateway supports."""
    import asyncio

    from . import pgversion

    try:
        asyncio.run(pgversion.require_supported_url(dsn))
    except pgversion.UnsupportedServer as exc:
        raise SystemExit(f"gateway: {exc}") from exc


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def serve(args: argparse.Namespace) -> int:
    # SIGTERM behaves like Ctrl+C: uvicorn shuts down gracefully and re-raises the signal it
    # caught once it is done; with this handler that ends in KeyboardInterrupt (which uvicorn
    # absorbs) instead of killing the process before the embedded PostgreSQL is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    settings = resolved_settings(host=args.host, port=args.port, workers=args.workers)
    embedded = None
    metrics_dir: str | None = None
    try:
        if settings.database_url:
            database = "DATABASE_URL"
            _require_supported_server(settings.database_url)
        else:
            from . import embedded as embedded_module

            try:
                embedded = embedded_module.start(settings.data_dir)
            except embedded_module.IncompatibleDataDir as exc:
                raise SystemExit(f"gateway: {exc}") from exc
            settings = replace(settings, database_url=embedded.url)
            database = f"embedded PostgreSQL in {embedded.pgdata}"
        os.environ.update(worker_environment(settings))
        if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # several workers: /metrics adds up every worker's figures from files in this folder
            metrics_dir = tempfile.mkdtemp(prefix="gateway-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        print(banner(settings, database), flush=True)

        import uvicorn

        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            loop="uvloop",
            http="httptools",
            access_log=False,  # the app writes its own JSON access log
            log_level=settings.log_level,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="address to listen on (GATEWAY_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to listen on (GATEWAY_PORT, default 7130)")
    p.add_argument("--workers", type=int, help="worker processes (GATEWAY_WORKERS, default 1)")


def token(args: argparse.Namespace) -> int:
    settings = resolved_settings()
    assert settings.jwt_secret is not None
    claims: dict[str, object] = {"sub": args.sub, "role": args.role}
    if args.email is not None:
        claims["email"] = args.email
    print(sign_token(settings.jwt_secret, claims, args.ttl or None))
    return 0


def _token_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--role", choices=ROLES, default="authenticated", help="the role claim")
    p.add_argument("--sub", required=True, help="the subject claim (a user id, usually a uuid)")
    p.add_argument("--email", help="the email claim")
    p.add_argument("--ttl", type=int, default=3600,
                   help="seconds until the token expires (default 3600; 0 for no expiry)")


COMMANDS: tuple[Command, ...] = (
    Command("serve", "run the HTTP server (and the embedded PostgreSQL without DATABASE_URL)",
            _serve_arguments, serve),
    Command("token", "print a signed JWT for a role and subject", _token_arguments, token),
    # The admin endpoints' command-line forms (gateway.admincli): the same code, with a progress bar.
    Command("export", "write a SQL (or JSON) export of tables to stdout",
            admincli.export_arguments, admincli.export),
    Command("import", "run a SQL file (an export) in one transaction",
            admincli.import_arguments, admincli.import_),
    Command("bulk-upsert", "insert or update a table's rows from a CSV or JSON file",
            admincli.bulk_upsert_arguments, admincli.bulk_upsert),
)


def parser(commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="gateway", description="The InsForge Database API and a GraphQL API over PostgreSQL.")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.arguments(p)
        p.set_defaults(run=command.run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
