"""Configuration: the only module that reads the environment.

In:  environment variables (and CLI overrides passed in by ``cli.py``).
Out: one frozen ``Settings`` value that is passed explicitly to every component.

Every setting is one row of ``SETTINGS``: (field, env var, default, parser, help).
The README's configuration table is generated from the same rows
(``python -m gateway.settings``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any


def _str(v: str) -> str:
    return v


def _int(v: str) -> int:
    return int(v)


def _float(v: str) -> float:
    return float(v)


def _bool(v: str) -> bool:
    return v.strip().lower() in {"1", "true", "yes", "on"}


COUNT_MODES = ("auto", "exact")


def _count_mode(v: str) -> str:
    mode = v.strip().lower()
    if mode not in COUNT_MODES:
        raise ValueError(f"GATEWAY_COUNT must be one of {', '.join(COUNT_MODES)}, got {v!r}")
    return mode


def _list(v: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in v.split(",") if p.strip())


@dataclass(frozen=True)
class Setting:
    field: str  # attribute on Settings
    env: str  # environment variable
    default: Any  # value when the variable is unset
    parse: Callable[[str], Any]
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("database_url", "DATABASE_URL", None, _str,
            "PostgreSQL URL (postgresql://user:pass@host/db) of the role that applies the bootstrap (a superuser, "
            "or an owner that may create roles); requests never use it. Unset: an embedded PostgreSQL."),
    Setting("authenticator_url", "GATEWAY_AUTHENTICATOR_URL", None, _str,
            "URL requests log in with: a non-superuser NOINHERIT role granted only anon, authenticated and "
            "project_admin. Unset: gateway_authenticator on DATABASE_URL's server, created by the gateway."),
    Setting("authenticator_password", "GATEWAY_AUTHENTICATOR_PASSWORD", None, _str,
            "Password of gateway_authenticator (replicas must share it). Unset: generated once and kept in "
            "the data dir."),
    Setting("read_replica_url", "READ_REPLICA_URL", None, _str,
            "Optional PostgreSQL URL for GET/HEAD requests (a streaming replica)."),
    Setting("data_dir", "GATEWAY_DATA_DIR", "./.gateway", _str,
            "Where the embedded PostgreSQL and the generated secrets live."),
    Setting("url", "GATEWAY_URL", None, _str,
            "The running gateway that `token`, `export`, `import` and `bulk-upsert` talk to (`--url`)."),
    Setting("state_dir", "GATEWAY_STATE_DIR", "~/.local/state/gateway", _str,
            "Where `gateway serve` records its URL and data dir while it runs, for the other commands."),
    Setting("host", "GATEWAY_HOST", "127.0.0.1", _str, "Address to listen on."),
    Setting("port", "GATEWAY_PORT", 7130, _int, "Port to listen on."),
    Setting("workers", "GATEWAY_WORKERS", 1, _int, "Worker processes (uvicorn)."),
    Setting("jwt_secret", "JWT_SECRET", None, _str,
            "HS256 secret (>= 32 chars). Unset: generated once and kept in the data dir."),
    Setting("jwks", "JWT_JWKS", None, _str,
            "Optional JWKS (a file path or an http(s) URL) for RS256/ES256 tokens, selected by kid."),
    Setting("jwt_audience", "JWT_AUDIENCE", None, _str, "When set, tokens carrying `aud` must match it."),
    Setting("jwt_allow_no_exp", "GATEWAY_JWT_ALLOW_NO_EXP", False, _bool,
            "Accept user and admin tokens without `exp` (never expiring). Anon-role tokens are always accepted."),
    Setting("api_key", "API_KEY", None, _str,
            "Admin API key: ik_ and 32+ random characters (else start-up is refused). Unset: generated "
            "once and kept in the data dir."),
    Setting("schemas", "GATEWAY_SCHEMAS", ("public",), _list,
            "Exposed schemas, comma-separated; the first is the default."),
    Setting("pool_min", "GATEWAY_POOL_MIN", 2, _int, "Minimum pooled connections per worker."),
    Setting("pool_max", "GATEWAY_POOL_MAX", 10, _int, "Maximum pooled connections per worker."),
    Setting("pool_timeout", "GATEWAY_POOL_TIMEOUT", 5.0, _float,
            "Seconds to wait for a pooled connection before answering 503."),
    Setting("statement_timeout_ms", "GATEWAY_STATEMENT_TIMEOUT_MS", 30000, _int,
            "Per-request statement_timeout in milliseconds."),
    Setting("max_body_bytes", "GATEWAY_MAX_BODY_BYTES", 10 * 1024 * 1024, _int,
            "Largest JSON request body, in bytes (413 beyond)."),
    Setting("max_upload_bytes", "GATEWAY_MAX_UPLOAD_BYTES", 50 * 1024 * 1024, _int,
            "Largest multipart upload (import, bulk upsert), in bytes."),
    Setting("max_headers", "GATEWAY_MAX_HEADERS", 100, _int, "Most header fields in a request (431 beyond)."),
    Setting("max_header_bytes", "GATEWAY_MAX_HEADER_BYTES", 32768, _int,
            "Largest total size of a request's headers, in bytes (431 beyond)."),
    Setting("max_target_bytes", "GATEWAY_MAX_TARGET_BYTES", 16384, _int,
            "Longest path plus query string, in bytes (414 beyond)."),
    Setting("max_rows", "GATEWAY_MAX_ROWS", 1000, _int, "Largest `limit` a read may ask for."),
    Setting("default_limit", "GATEWAY_DEFAULT_LIMIT", 100, _int, "Rows per read when `limit` is absent."),
    Setting("count", "GATEWAY_COUNT", "auto", _count_mode,
            "X-Total-Count without `Prefer: count`: `auto` (exact when cheap, else the planner's estimate) "
            "or `exact` (always count)."),
    Setting("exact_count_limit", "GATEWAY_EXACT_COUNT_LIMIT", 10000, _int,
            "`auto` counts exactly when the planner expects at most this many matching rows."),
    Setting("cors_origins", "GATEWAY_CORS_ORIGINS", ("*",), _list,
            "Allowed browser origins, comma-separated (* for any)."),
    Setting("reload_debounce_ms", "GATEWAY_RELOAD_DEBOUNCE_MS", 100, _int,
            "Debounce for catalog reloads after DDL notifications."),
    Setting("graphql_max_depth", "GATEWAY_GRAPHQL_MAX_DEPTH", 10, _int, "Deepest GraphQL selection."),
    Setting("graphql_max_batch", "GATEWAY_GRAPHQL_MAX_BATCH", 10, _int,
            "Most operations in one batched GraphQL request (a JSON array body)."),
    Setting("graphql_allowlist", "GATEWAY_GRAPHQL_ALLOWLIST", None, _str,
            "A JSON file of the GraphQL documents non-admin callers may run (array, or object of documents)."),
    Setting("graphql_max_aliases", "GATEWAY_GRAPHQL_MAX_ALIASES", 30, _int, "Most aliases in a document."),
    Setting("graphql_max_fields", "GATEWAY_GRAPHQL_MAX_FIELDS", 2000, _int,
            "Most field selections in a GraphQL document once its fragments are expanded."),
    Setting("graphql_max_tokens", "GATEWAY_GRAPHQL_MAX_TOKENS", 4000, _int,
            "Most tokens in a document (at 4000 the worst document is judged in about 45 ms of CPU)."),
    Setting("graphql_max_cost", "GATEWAY_GRAPHQL_MAX_COST", 50000, _int,
            "Largest estimated row count (product of list limits) a query may ask for."),
    Setting("graphql_max_affected", "GATEWAY_GRAPHQL_MAX_AFFECTED", 1000, _int,
            "Most rows a GraphQL update_*/delete_* may change for non-admin callers unless atMost says otherwise."),
    Setting("graphql_extensions", "GATEWAY_GRAPHQL_EXTENSIONS", None, _str,
            "Python module (package.module) whose Strawberry Query/Mutation/Subscription fields are merged "
            "into the GraphQL schema."),
    Setting("graphql_ws_max_operations", "GATEWAY_GRAPHQL_WS_MAX_OPERATIONS", 100, _int,
            "Most operations (subscriptions) running at once on one GraphQL WebSocket connection."),
    Setting("graphql_max_subscriptions", "GATEWAY_GRAPHQL_MAX_SUBSCRIPTIONS", 10000, _int,
            "Most change streams and live queries open at once per gateway process."),
    Setting("graphql_subscription_buffer", "GATEWAY_GRAPHQL_SUBSCRIPTION_BUFFER", 1000, _int,
            "Events that may wait for one subscriber; one more disconnects it (slow consumer)."),
    Setting("ws_compression", "GATEWAY_WS_COMPRESSION", False, _bool,
            "Accept WebSocket per-message compression (permessage-deflate) when a client asks for it: "
            "about 43 kB more memory per connection and 2.5 us of CPU per message; worth it for large "
            "live-query results on slow links."),
    Setting("graphql_live_debounce_ms", "GATEWAY_GRAPHQL_LIVE_DEBOUNCE_MS", 50, _int,
            "How long a live query waits after a change before it re-runs (a burst costs one re-run)."),
    Setting("aggregates", "GATEWAY_AGGREGATES", True, _bool,
            "Serve aggregates in `select` (`count()`, `amount.sum()`); false: 400 PGRST123."),
    Setting("plan_roles", "GATEWAY_PLAN_ROLES", ("project_admin",), _list,
            "Roles that may ask for `Accept: application/vnd.pgrst.plan+json` (EXPLAIN of the request)."),
    Setting("log_level", "GATEWAY_LOG_LEVEL", "info", _str, "Log level (debug, info, warning, error)."),
    Setting("access_log", "GATEWAY_ACCESS_LOG", True, _bool, "Write a JSON access log line per request."),
)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    authenticator_url: str | None = None
    authenticator_password: str | None = None
    read_replica_url: str | None = None
    data_dir: str = "./.gateway"
    url: str | None = None
    state_dir: str = "~/.local/state/gateway"
    host: str = "127.0.0.1"
    port: int = 7130
    workers: int = 1
    jwt_secret: str | None = None
    jwks: str | None = None
    jwt_audience: str | None = None
    jwt_allow_no_exp: bool = False
    api_key: str | None = None
    schemas: tuple[str, ...] = ("public",)
    pool_min: int = 2
    pool_max: int = 10
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 30000
    max_body_bytes: int = 10 * 1024 * 1024
    max_upload_bytes: int = 50 * 1024 * 1024
    max_headers: int = 100
    max_header_bytes: int = 32768
    max_target_bytes: int = 16384
    max_rows: int = 1000
    default_limit: int = 100
    count: str = "auto"
    exact_count_limit: int = 10000
    cors_origins: tuple[str, ...] = ("*",)
    reload_debounce_ms: int = 100
    graphql_max_depth: int = 10
    graphql_max_batch: int = 10
    graphql_allowlist: str | None = None
    graphql_max_aliases: int = 30
    graphql_max_tokens: int = 4000
    graphql_max_fields: int = 2000
    graphql_max_cost: int = 50000
    graphql_max_affected: int = 1000
    graphql_extensions: str | None = None
    graphql_ws_max_operations: int = 100
    graphql_max_subscriptions: int = 10000
    graphql_subscription_buffer: int = 1000
    ws_compression: bool = False
    graphql_live_debounce_ms: int = 50
    aggregates: bool = True
    plan_roles: tuple[str, ...] = ("project_admin",)
    log_level: str = "info"
    access_log: bool = True

    @property
    def default_schema(self) -> str:
        return self.schemas[0]

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with the non-None ``changes`` applied (CLI flags)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every row of ``SETTINGS`` from ``environ`` (default: ``os.environ``)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for s in SETTINGS:
        raw = env.get(s.env)
        values[s.field] = s.default if raw in (None, "") else s.parse(raw)
    return Settings(**values)


def is_set(field: str, environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment sets ``field`` (a default is not a choice the user made)."""
    env = os.environ if environ is None else environ
    return bool(env.get(next(s.env for s in SETTINGS if s.field == field)))


def markdown_table() -> str:
    """The README's configuration table."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = ",".join(s.default) if isinstance(s.default, tuple) else s.default
        rows.append(f"| `{s.env}` | {'—' if default is None else f'`{default}`'} | {s.help} |")
    return "\n".join(rows)


assert {f.name for f in fields(Settings)} == {s.field for s in SETTINGS}, "SETTINGS and Settings differ"

if __name__ == "__main__":
    print(markdown_table())
