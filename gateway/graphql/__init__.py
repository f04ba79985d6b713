"""The GraphQL front end: a schema generated from the live catalog, served at ``/graphql``.

Modules, in the order a request meets them: ``view`` (HTTP, GraphiQL), ``limits`` (document
cache, depth/alias/token/cost limits), ``resolve`` (one transaction per operation, the fast
path), ``translate`` (selections -> request model), ``schema`` (catalog -> schema, built on
every catalog swap), ``names`` (naming contract and mangling), ``scalars``, ``admin``.

Served as a Strawberry schema: ``merge`` (generated schema + the user's ``extend`` module,
per role schema), ``sbcompat`` (every Strawberry internal used), ``execution`` (graphql-core or
Strawberry for what the fast path does not answer), ``media`` (GraphQL-over-HTTP types),
``ws`` (WebSocket through Strawberry's ASGI integration), ``subscriptions`` and ``feed``
(change streams and live queries over ``NOTIFY gateway_changes``).
"""
