"""The GraphQL front end: a schema generated from the live catalog, served at ``/graphql``.

Modules, in the order a request meets them: ``view`` (HTTP, GraphiQL), ``limits`` (document
cache, depth/alias/token/cost limits), ``resolve`` (one transaction per operation, the fast
path), ``translate`` (selections -> request model), ``schema`` (catalog -> schema, built on
every catalog swap), ``names`` (naming contract and mangling), ``scalars``, ``admin``.
"""
