"""The login requests arrive through: the authenticator role, its URL, and the start-up check.

In:  ``Settings``: ``database_url`` (the bootstrap role: a superuser, or an owner that may create
     roles) and either ``authenticator_url`` (a login role the operator made) or
     ``authenticator_password`` (the gateway manages ``gateway_authenticator`` itself).
Out: ``prepare(settings)`` applies the bootstrap as the ``DATABASE_URL`` role, makes sure the
     login role exists with that password, checks that it cannot escalate, and returns the URL
     the request pool, the catalog reflection and the reload listener log in with. A login that
     is missing or unsafe raises ``LoginError``: one line saying what is wrong and the SQL that
     mends it.

This is PostgREST's authenticator model. The login role is not a superuser, is NOINHERIT and is
granted only ``anon``, ``authenticated`` and ``project_admin``: every request switches to one of
them, and a ``RESET ROLE`` (or anything else that returns to the session user) lands on a role
that holds no privilege of its own. PostgreSQL lets a session switch to any role its session
user can reach through memberships, so the check walks every membership chain from the login
role and refuses superusers, role and database creators, replication, BYPASSRLS (except
``project_admin``'s) and the predefined roles that reach the server's files and programs.

The password never travels in the clear to the server: the bootstrap is handed a SCRAM-SHA-256
verifier, computed here, as PostgreSQL itself stores passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import asyncpg

from . import bootstrap
from .settings import Settings

DEFAULT_NAME = "gateway_authenticator"
REQUEST_ROLES = ("anon", "authenticated", "project_admin")
# Predefined roles that reach the server's files or programs, every row, or other sessions.
DANGEROUS_ROLES = frozenset({
    "pg_execute_server_program", "pg_read_server_files", "pg_write_server_files", "pg_read_all_data",
    "pg_write_all_data", "pg_signal_backend", "pg_create_subscription", "pg_checkpoint", "pg_maintain",
})
SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations
_VERIFIER = re.compile(r"SCRAM-SHA-256\$\d+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")

# Every role the session user can switch to (itself included), with the attributes that matter.
REACH_SQL = """
WITH RECURSIVE reach(oid) AS (
  SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user
  UNION
  SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN reach r ON m.member = r.oid
)
SELECT g.rolname, g.rolname = session_user AS is_login, g.rolsuper, g.rolinherit, g.rolcreaterole,
       g.rolcreatedb, g.rolreplication, g.rolbypassrls,
       EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
               WHERE m.roleid = g.oid
                 AND m.member = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = session_user)) AS direct
FROM reach JOIN pg_catalog.pg_roles g ON g.oid = reach.oid
ORDER BY g.rolname
"""


class LoginError(Exception):
    """The login role is missing or unsafe; ``str()`` is one line for the operator."""


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def user_of(url: str) -> str | None:
    """The user a ``postgresql://`` URL logs in as (the netloc's, else a ``user=`` parameter)."""
    parts = urlsplit(url)
    if parts.username:
        return unquote(parts.username)
    return dict(parse_qsl(parts.query)).get("user")


def with_login(url: str, user: str, password: str) -> str:
    """``url`` logging in as ``user`` with ``password``; host, port, database and options kept.

    Works for TCP URLs (``postgresql://owner:pw@db:5432/app``) and unix-socket ones
    (``postgresql://postgres@/postgres?host=/run/pg``); ``user=``/``password=`` query parameters,
    which libpq also reads, are replaced as well.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in ("user", "password")]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="/")))


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802/7677).

    PostgreSQL accepts a verifier in ``CREATE/ALTER ROLE ... PASSWORD`` and stores it as given,
    so the password itself never reaches the server, its logs or ``pg_stat_statements``.
    """
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def problems(roles: Iterable[Mapping[str, Any]]) -> list[str]:
    """What is unsafe or missing, from ``REACH_SQL``'s rows (pure, so it is tested without a server)."""
    found: list[str] = []
    rows = list(roles)
    for row in rows:
        name = row["rolname"]
        powers = [label for key, label in (("rolsuper", "a superuser"), ("rolcreaterole", "CREATEROLE"),
                                           ("rolcreatedb", "CREATEDB"), ("rolreplication", "REPLICATION"))
                  if row[key]]
        if row["rolbypassrls"] and name != "project_admin":
            powers.append("BYPASSRLS")
        if row["is_login"]:
            if row["rolinherit"]:
                powers.append("INHERIT (it must be NOINHERIT)")
            found += [f"it is {p}" for p in powers]
        else:
            found += [f"it can become {name}, which is {p}" for p in powers]
            if name in DANGEROUS_ROLES:
                found.append(f"it can become {name}, which reaches the server's files, programs or every row")
    granted = {row["rolname"] for row in rows if row["direct"]}
    found += [f"it is not granted {role}" for role in REQUEST_ROLES if role not in granted]
    return found


async def check(conn: asyncpg.Connection) -> None:
    """Refuse (``LoginError``) a login role that could escalate or cannot switch to the request roles."""
    rows = await conn.fetch(REACH_SQL)
    found = problems(rows)
    if found:
        login = next((r["rolname"] for r in rows if r["is_login"]), "?")
        raise LoginError(
            f"the login role {login} cannot serve requests safely: {'; '.join(found)}. "
            f"As a superuser: ALTER ROLE {quote_ident(login)} NOSUPERUSER NOINHERIT NOCREATEROLE NOCREATEDB "
            f"NOREPLICATION NOBYPASSRLS; GRANT anon, authenticated, project_admin TO {quote_ident(login)}; "
            "and REVOKE any other role from it")


def _target(settings: Settings) -> tuple[str, str, str | None]:
    """(login URL, login role, password verifier or None when the operator manages the role)."""
    if settings.authenticator_url:
        name = user_of(settings.authenticator_url)
        if not name:
            raise LoginError("GATEWAY_AUTHENTICATOR_URL names no user to log in as")
        return settings.authenticator_url, name, None
    if not settings.database_url:
        raise LoginError("DATABASE_URL is not set")
    if not settings.authenticator_password:
        raise LoginError("no password for the login role: set GATEWAY_AUTHENTICATOR_PASSWORD or a data dir")
    password = settings.authenticator_password
    return with_login(settings.database_url, DEFAULT_NAME, password), DEFAULT_NAME, scram_verifier(password)


def replica_url(settings: Settings) -> str | None:
    """The login URL for ``READ_REPLICA_URL``: the managed login role at the replica's address (roles
    replicate from the primary), or the URL as given when the operator manages the login role."""
    if not settings.read_replica_url:
        return None
    if settings.authenticator_url or not settings.authenticator_password:
        return settings.read_replica_url
    return with_login(settings.read_replica_url, DEFAULT_NAME, settings.authenticator_password)


async def _connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(url, server_settings={"application_name": "gateway"})


async def prepare(settings: Settings) -> str:
    """Bootstrap as the ``DATABASE_URL`` role, then return the checked login URL (see the module doc)."""
    url, name, verifier = _target(settings)
    assert settings.database_url is not None
    owner = await _connect(settings.database_url)
    try:
        try:
            await bootstrap.apply(owner, authenticator=name, verifier=verifier)
        except asyncpg.PostgresError as exc:
            hint = getattr(exc, "hint", None)
            raise LoginError(f"{exc}" + (f" ({hint})" if hint else "")) from exc
        try:
            conn = await _connect(url)
        except asyncpg.InvalidPasswordError:
            if verifier is None:
                raise
            # another data dir made the role first (or the password was rotated): ours wins, since
            # this process is the one told which password to use
            assert _VERIFIER.fullmatch(verifier)
            try:
                await owner.execute(f"ALTER ROLE {quote_ident(name)} PASSWORD '{verifier}'")
            except asyncpg.PostgresError as exc:
                raise LoginError(f"the login role {name} has another password and the DATABASE_URL role "
                                 f"cannot change it ({exc}); set GATEWAY_AUTHENTICATOR_PASSWORD to its "
                                 "password") from exc
            conn = await _connect(url)
        try:
            await check(conn)
        finally:
            await conn.close()
    finally:
        await owner.close()
    return url
