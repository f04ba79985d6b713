"""The GraphQL HTTP endpoint: ``/graphql`` (POST JSON, GET with a query string, GraphiQL).

In:  an HTTP request: ``POST`` with ``{query, variables, operationName}`` (or an
     ``application/graphql`` body), ``GET ?query=...&variables=...`` for queries, or a
     browser's ``GET`` without ``query`` (GraphiQL, its assets served from
     ``/graphql/static/`` out of the package: nothing comes from a CDN).
Out: ``{"data": ..., "errors": [...]}``. Every error carries the REST error model in
     ``extensions`` (``error``, ``statusCode``, ``nextActions``, ``code``; ``details``
     and ``hint`` when present); Python exceptions become ``INTERNAL_ERROR`` without
     their text.

Statuses: 200 once the operation ran (field errors included); for a document that does
not parse or validate or for bad variables, 400 — or 200 when the client accepts only
``application/json`` (``media.py`` negotiates the type); the credential's 401/403; 405 for a
mutation sent with GET; 400 for a POST body that is neither JSON nor GraphQL.

Operations the fast path does not answer run through ``execution.py`` (graphql-core, or
Strawberry when the extensions module declares schema extensions); WebSocket is ``ws.py``.

The schema comes from ``current_schema(gw, role)``: the caller's role's schema the app
stored next to the current catalog (``gw.graphql_schema``, one per role), or built here once
for a catalog that has none yet. The credential is checked before the body is read, so
nobody without one makes the gateway parse or judge a document.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
)
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from .. import errors
from ..auth import anon_key
from ..errors import GatewayError
from ..identity import Identity
from ..rest.routes import read_body
from . import execution
from .media import DEFAULT, Media, body_type, negotiate
from .operations import PersistedQueries
from .resolve import Operation, Skipped, fast_response
from .schema import CatalogSchema, build_schema

log = logging.getLogger("gateway.graphql")

JSON = "application/json; charset=utf-8"
STATIC = Path(__file__).parent / "static"
ASSETS = frozenset(p.name for p in STATIC.iterdir() if p.is_file()) if STATIC.is_dir() else frozenset()


def current_schema(gw: Any, role: str = "project_admin") -> CatalogSchema:
    """``role``'s schema of the current catalog; built (and kept on ``gw``) when the app has none for it."""
    catalog = gw.catalogs.get()
    stored: dict[str, CatalogSchema] | None = getattr(gw, "graphql_schema", None)
    if not stored or next(iter(stored.values())).catalog is not catalog:
        stored = gw.graphql_schema = {}
    if role not in stored:
        stored[role] = build_schema(catalog, gw.settings, role)
    return stored[role]


# --------------------------------------------------------------------------- errors


def gateway_error(err: GraphQLError, default: GatewayError) -> GatewayError | None:
    """The GatewayError behind a GraphQL error (``default`` for graphql-core's own); None: drop it."""
    original = err.original_error
    if isinstance(original, Skipped):
        return None
    if isinstance(original, GatewayError):
        return original
    if original is not None and not isinstance(original, GraphQLError):
        log.error("GraphQL resolver failed", exc_info=original)
        return errors.internal()
    return GatewayError(default.status, default.error, err.message, next_actions=default.next_actions)


def extensions(exc: GatewayError) -> dict[str, Any]:
    return {k: v for k, v in exc.body("graphql").items() if k != "message" and v is not None}


def error_entries(found: list[GraphQLError], default: GatewayError) -> list[dict[str, Any]]:
    out = []
    for err in found:
        exc = gateway_error(err, default)
        if exc is None:
            continue
        entry: dict[str, Any] = {"message": exc.message}
        if err.locations:
            entry["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
        if err.path:
            entry["path"] = list(err.path)
        entry["extensions"] = extensions(exc)
        out.append(entry)
    return out


INVALID_DOCUMENT = GatewayError(400, "INVALID_QUERY", "invalid document",
                                next_actions="Check the document against the schema (introspection or GraphiQL)")
BAD_VARIABLES = GatewayError(400, "VALIDATION_ERROR", "invalid variables",
                             next_actions="Send variable values of the types the operation declares")
FIELD_FAILURE = errors.internal()


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None, media: Media = DEFAULT) -> Response:
    return Response(orjson.dumps(body, default=str), status, headers=headers, media_type=media.content_type)


def failure(exc: GatewayError, media: Media = DEFAULT) -> Response:
    return _json({"errors": [{"message": exc.message, "extensions": extensions(exc)}]}, exc.status, exc.headers,
                 media)


# --------------------------------------------------------------------------- request


@dataclass(frozen=True)
class Params:
    """What the client sent, from the JSON body or the query string."""

    query: str  # the GraphQL document (a persisted query's, when the request named it by hash)
    variables: dict[str, Any] | None  # raw variable values (graphql-core coerces them)
    operation_name: str | None  # which operation of the document to run


def _params(raw: Any, persisted: PersistedQueries, from_query: bool = False) -> Params:
    if not isinstance(raw, dict):
        raise errors.invalid_query("The request body must be a JSON object with a 'query'")
    query, variables, name = raw.get("query"), raw.get("variables"), raw.get("operationName")
    extensions = raw.get("extensions")
    if from_query and isinstance(extensions, str) and extensions.strip():  # GET: JSON text
        try:
            extensions = orjson.loads(extensions)
        except orjson.JSONDecodeError:
            raise errors.invalid_query("'extensions' is not valid JSON") from None
    if extensions not in (None, "") and not isinstance(extensions, dict):
        raise errors.invalid_query("'extensions' must be an object")
    if isinstance(variables, str) and variables.strip():
        try:
            variables = orjson.loads(variables)
        except orjson.JSONDecodeError:
            raise errors.invalid_query("'variables' is not valid JSON") from None
    query = persisted.resolve(query if isinstance(query, str) else None, extensions or None)
    if not isinstance(query, str) or not query.strip():
        raise errors.invalid_query("Provide a GraphQL document in 'query'")
    if variables in ("", None):
        variables = None
    if variables is not None and not isinstance(variables, dict):
        raise errors.invalid_query("'variables' must be an object")
    if name is not None and not isinstance(name, str):
        raise errors.invalid_query("'operationName' must be a string")
    return Params(query, variables, name or None)


async def read_params(request: Request, gw: Any) -> list[Params] | Params:
    """The operation the request carries, or the operations of a batch (a JSON array body)."""
    if request.method == "GET":
        return _params(dict(request.query_params), gw.persisted, from_query=True)
    kind = body_type(request.headers.get("content-type"))
    if kind is None:
        raise errors.invalid_query("Send the request as application/json (or application/graphql)",
                                   hint="Set the Content-Type header")
    body = await read_body(request, gw.settings.max_body_bytes)
    if kind == "graphql":
        return Params(body.decode("utf-8", "replace"), None, None)
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise errors.invalid_query("The request body is not valid JSON") from None
    if not isinstance(raw, list):
        return _params(raw, gw.persisted)
    if not raw or len(raw) > gw.settings.graphql_max_batch:
        raise errors.invalid_query(f"A batch holds 1 to {gw.settings.graphql_max_batch} operations, got {len(raw)}",
                                   hint="Send fewer operations per request (GATEWAY_GRAPHQL_MAX_BATCH)")
    return [_params(item, gw.persisted) for item in raw]


def choose_operation(document: DocumentNode, name: str | None, method: str) -> OperationDefinitionNode:
    operation = get_operation_ast(document, name)
    if operation is None:
        raise errors.invalid_query(f"Unknown operation named '{name}'" if name else
                                   "Provide 'operationName': the document has several operations")
    if operation.operation == OperationType.SUBSCRIPTION:
        raise errors.invalid_query("Subscriptions are not supported")
    if operation.operation == OperationType.MUTATION and method == "GET":
        raise GatewayError(405, "METHOD_NOT_ALLOWED", "Mutations must be sent with POST", code="PGRST117")
    return operation


# --------------------------------------------------------------------------- execution


async def run_operation(gw: Any, schema: CatalogSchema, identity: Identity, document: DocumentNode,
                        operation: OperationDefinitionNode, params: Params, method: str,
                        media: Media = DEFAULT) -> Response:
    """Fast path for queries when it applies, else graphql-core; one transaction either way."""
    is_query = operation.operation == OperationType.QUERY
    if is_query:
        fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
        op = Operation(gw, identity, schema.catalog, schema.settings, read_only=True, method=method)
        body = None
        try:
            body = await fast_response(op, schema.schema, operation, fragments, params.variables, schema.steps)
        finally:
            await op.finish(commit=body is not None)
        if body is not None:
            return Response(body, media_type=media.content_type)
    op = Operation(gw, identity, schema.catalog, schema.settings, read_only=is_query, method=method)
    try:
        result = await execution.execute(schema.schema, document, params.query, op, params.variables,
                                         params.operation_name)
    except BaseException:
        await op.finish(commit=False)
        raise
    assert isinstance(result, ExecutionResult)
    try:
        await op.finish(commit=not result.errors)
    except GatewayError as exc:  # COMMIT failed (deferred constraint, serialization): nothing was written
        result = ExecutionResult(None, [GraphQLError(exc.message, original_error=exc)])
    if result.data is None and result.errors and all(not e.path for e in result.errors):
        return _json({"errors": error_entries(result.errors, BAD_VARIABLES)}, media.request_error_status,
                     media=media)  # never ran
    out: dict[str, Any] = {"data": result.data}
    if result.errors:
        entries = error_entries(result.errors, FIELD_FAILURE)
        if entries:
            out["errors"] = entries
    if result.extensions:  # from the extensions module's Strawberry schema extensions (tracing...)
        out["extensions"] = result.extensions
    return _json(out, media=media)


async def graphql_endpoint(request: Request) -> Response:
    gw = request.app.state.gateway
    if request.method == "GET" and "query" not in request.query_params and "extensions" not in request.query_params:
        return graphiql(request)  # a persisted query by hash comes with extensions alone
    media = negotiate(request.headers.get("accept"))
    try:
        # the credential first: nobody without one makes the gateway read, parse or judge a document
        identity = await gw.auth.identify(request.headers)
        params = await read_params(request, gw)
    except GatewayError as exc:
        return failure(exc, media)
    if isinstance(params, Params):
        return await answer(gw, identity, params, request.method, media)
    # a batch: each operation on its own, in its own transaction, answered in order in one array
    parts = [await answer(gw, identity, p, request.method, media) for p in params]
    return Response(b"[" + b",".join(bytes(p.body) for p in parts) + b"]", media_type=media.content_type)


async def answer(gw: Any, identity: Identity, params: Params, method: str, media: Media) -> Response:
    """One operation: allow-list, document, operation, then ``run_operation``."""
    try:
        gw.allow_list.check(params.query, identity)
        await gw.schemas()  # a reload may be building them
        schema = current_schema(gw, identity.role)
        document, problems = schema.documents.get(params.query)
        if document is None:
            return _json({"errors": error_entries(problems, INVALID_DOCUMENT)}, media.request_error_status,
                         media=media)
        operation = choose_operation(document, params.operation_name, method)
    except GatewayError as exc:
        return failure(exc, media)
    return await run_operation(gw, schema, identity, document, operation, params, method, media)


# --------------------------------------------------------------------------- GraphiQL

GRAPHIQL_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL</title>
<link rel="stylesheet" href="{static}/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
<script src="{static}/react.production.min.js"></script>
<script src="{static}/react-dom.production.min.js"></script>
<script src="{static}/graphiql.min.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({{ url: {endpoint} }});
  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {{
      fetcher: fetcher,
      shouldPersistHeaders: true,
      defaultHeaders: JSON.stringify({{ Authorization: "Bearer " + {anon_key} }}, null, 2),
      defaultQuery: {default_query},
      defaultEditorToolsVisibility: "headers",
    }}));
</script>
</body>
</html>
"""


DEFAULT_QUERY = """# Requests below run as anon: the Headers tab holds the anon key the server printed at start.
#
# To act as a signed-in user, replace it in Headers with a user token:
#   {"Authorization": "Bearer <JWT>"}      (gateway token --role authenticated --sub <uuid>)
# or, for admin access, the API key:
#   {"X-API-Key": "ik_..."}
# The schema (Docs, top left) follows the credential; RLS decides which rows come back.

{ __typename }
"""


def graphiql(request: Request) -> Response:
    """GraphiQL for browsers; everything else that GETs without a query learns what to send.

    The page starts with the anon key (public by design: start-up prints it), so the schema and
    the docs explorer load on first open; the default query explains how to switch credentials.
    """
    if "text/html" not in request.headers.get("accept", ""):
        return failure(errors.invalid_query("Provide a GraphQL document in the 'query' parameter"))
    base = request.scope.get("root_path", "") + request.url.path.rstrip("/")
    secret = request.app.state.gateway.settings.jwt_secret
    page = GRAPHIQL_PAGE.format(static=base + "/static", endpoint=_script_json(base),
                                anon_key=_script_json(anon_key(secret)), default_query=_script_json(DEFAULT_QUERY))
    return HTMLResponse(page)


def _script_json(value: str) -> str:
    """A JavaScript string literal safe inside a <script> element."""
    return orjson.dumps(value).decode().replace("<", "\\u003c")


async def static_asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS:
        return failure(GatewayError(404, "NOT_FOUND", f"No asset named '{name}'"))
    return FileResponse(STATIC / name, headers={"Cache-Control": "public, max-age=86400"})


ROUTES = [
    Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
    Route("/graphql/static/{name}", static_asset, methods=["GET"]),
]
