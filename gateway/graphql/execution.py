"""Executing a validated HTTP operation that the fast path did not answer.

In:  the served (merged) ``GraphQLSchema``, the document the view parsed and validated (from
     its per-schema cache), the query text, the context (``resolve.Operation``) and variables.
Out: graphql-core's ``ExecutionResult`` (data, errors, extensions).

Which engine runs it, measured per request (``python -m gateway.bench.graphql``):

- no Strawberry schema extensions configured: graphql-core's ``execute`` on the cached
  document. Strawberry's own ``execute`` would add its extension runner around the same work
  for nothing;
- the extensions module declares schema extensions (``MaskErrors``, tracing, ...):
  ``strawberry.Schema.execute``, so they run; it is handed the cached document
  (``sbcompat.prepared``) so it neither parses nor validates again.

Strawberry field resolvers run the same under both (they only need
``GraphQLSchema._strawberry_schema``, which ``merge.py`` sets).
"""

from __future__ import annotations

import inspect
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLSchema
from graphql import execute as graphql_execute

from . import sbcompat


async def execute(schema: GraphQLSchema, document: DocumentNode, query: str, context: Any,
                  variables: dict[str, Any] | None, operation_name: str | None) -> ExecutionResult:
    strawberry_schema = sbcompat.strawberry_of(schema)
    if strawberry_schema is None or not strawberry_schema.extensions:
        result = graphql_execute(schema, document, context_value=context, variable_values=variables,
                                 operation_name=operation_name)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, ExecutionResult)
        return result
    with sbcompat.prepared(document):
        done = await strawberry_schema.execute(query, variables, context, operation_name=operation_name)
    return ExecutionResult(done.data, done.errors, done.extensions or None)
