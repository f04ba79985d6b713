"""Catalog rebuild with per-role schemas: ``python -m gateway.bench.roles``.

In:  nothing (``--tables N``, default 200; ``--repeat R``, default 5).
Out: printed figures, one run on a throwaway PostgreSQL: the median wall and CPU seconds of
     reflection (privileges included), of building the three role schemas (what a reload
     does), and of one unfiltered schema for comparison. The tables are the wide benchmark's
     (9 columns and a foreign key each), granted as the API grants them: anon SELECT,
     authenticated CRUD, project_admin everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..graphql.roles import build_schemas
from ..graphql.schema import build_schema
from ..reflect import load_catalog
from ..settings import Settings
from . import database
from .wide import wide_schema_sql

GRANTS = """
GRANT SELECT ON ALL TABLES IN SCHEMA public TO anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO authenticated, project_admin;
"""


def timed(repeat: int, run: Callable[[], Any]) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``repeat`` calls."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.roles", description=__doc__)
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-roles-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # the embedded server may run as another OS user
        pg = database.start(workdir, ("roles",))
        try:
            async def prepare() -> None:
                conn = await pg.connect("roles")
                try:
                    await database.apply_bootstrap(conn)
                    await conn.execute(wide_schema_sql(opts.tables) + GRANTS)
                finally:
                    await conn.close()

            asyncio.run(prepare())
            dsn, settings = pg.dsn("roles"), Settings()
            catalog = asyncio.run(load_catalog(dsn, ("public",)))
            figures = {
                "reflection (privileges included)": timed(opts.repeat, lambda: asyncio.run(
                    load_catalog(dsn, ("public",)))),
                "three role schemas": timed(opts.repeat, lambda: build_schemas(catalog, settings)),
                "one unfiltered schema": timed(opts.repeat, lambda: build_schema(catalog, settings)),
            }
            print(f"{len(catalog.tables)} tables, median of {opts.repeat}:")
            for name, (wall, cpu) in figures.items():
                print(f"  {name:34s} wall {wall:.3f} s  cpu {cpu:.3f} s")
            total = figures["reflection (privileges included)"][0] + figures["three role schemas"][0]
            print(f"  {'rebuild (reflection + 3 schemas)':34s} wall {total:.3f} s")
        finally:
            with contextlib.suppress(Exception):
                pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
