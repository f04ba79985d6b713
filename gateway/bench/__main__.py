"""Command line of the benchmark: ``python -m gateway.bench``.

In:  ``--duration S`` (per row, default 10; 3 with ``--quick``), ``--connections N``
     (default 32), ``--threads T`` (wrk threads, default 2), ``--soak S`` (default 60;
     10 with ``--quick``), ``--workers 1,2``, ``--out FILE`` (default bench-results.md),
     ``--only a,b`` (some parts and gateway rows: ``run.PARTS`` and scenario keys).
Out: the report on stdout and in ``--out``; exit status 0 when the run completed.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .run import PARTS, Options, run, unknown_selectors


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, help="seconds per load row (default 10, --quick 3)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads / pgbench jobs (default 2)")
    parser.add_argument("--soak", type=float, help="seconds of soak at the end (default 60, --quick 10)")
    parser.add_argument("--workers", default="1,2", help="gateway worker counts, comma-separated (default 1,2)")
    parser.add_argument("--quick", action="store_true", help="3 s per row and a 10 s soak")
    parser.add_argument("--out", type=Path, default=Path("bench-results.md"), help="Markdown report file")
    parser.add_argument("--only", default="",
                        help="comma-separated parts and gateway rows to run, e.g. rest_single,graphql_list,minimal,"
                             f"peers (parts: {', '.join(PARTS)}; rows: scenario keys; default everything)")
    args = parser.parse_args(argv)
    only = frozenset(name.strip() for name in args.only.split(",") if name.strip())
    if unknown := unknown_selectors(only):
        parser.error(f"--only: unknown {', '.join(unknown)}")
    quick = args.quick
    return Options(
        duration=args.duration if args.duration is not None else (3.0 if quick else 10.0),
        connections=args.connections,
        threads=args.threads,
        soak=args.soak if args.soak is not None else (10.0 if quick else 60.0),
        workers=tuple(int(w) for w in args.workers.split(",") if w.strip()),
        out=args.out,
        only=only,
    )


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
