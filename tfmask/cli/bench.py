"""``tfmask bench``: measure every stage side by side with its baseline.

Runs the benchmark sections (conversion, input pipeline, training step,
inference), each in a fresh process, writes ``bench/results.json`` and prints
a Markdown table; ``--readme docs/benchmarks.md`` also replaces the table in
that file. Benchmarks never fail on a missed target: the table says ``no``.
Examples::

    tfmask bench --readme docs/benchmarks.md
    tfmask bench --sections conversion,inference --quick --output /tmp/bench.json
"""

from __future__ import annotations

import argparse

from tfmask.bench.common import SECTIONS


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks: bench/results.json and a table",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", default=",".join(SECTIONS), metavar="NAME,...",
                   help="comma-separated subset of: %(default)s")
    p.add_argument("--output", default="bench/results.json", metavar="JSON",
                   help="results file (default: %(default)s)")
    p.add_argument("--work-dir", default="bench/work", metavar="DIR",
                   help="synthesized data, records, models and exports (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="small sizes and few repeats: checks that every section runs (minutes), "
                   "figures are not representative")
    p.add_argument("--readme", metavar="FILE.md",
                   help="replace the table between <!-- bench:start --> and <!-- bench:end -->")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.bench.run import format_table, run_bench, update_readme

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    results = run_bench(args.output, args.work_dir, sections, quick=args.quick)
    table = format_table(results)
    print(table)
    print(f"wrote {args.output}")
    if args.readme:
        update_readme(args.readme, table)
        print(f"updated the benchmark table in {args.readme}")
    failed = [s["name"] for s in results["sections"] if "error" in s]
    return 1 if failed else 0
