"""Build a registered cohort and write its table: ``compendium cohort NAME [--root PATH]``.

Prints the builder's report and a composition summary; with ``--out FILE`` the cohort
table is written there as CSV, atomically.  Builder options go through
``--option key=value`` (the value is read as YAML, e.g. ``--option drop_missing=true``).
See ``compendium list cohorts`` for the names.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="cohort name (see `compendium list cohorts`)")
    parser.add_argument("--root", metavar="PATH", help="the dataset's folder")
    from ..config import SEED_MAX, cli_number

    parser.add_argument("--seed", type=cli_number(int, lo=0, hi=SEED_MAX), default=0,
                        help="seed of sampling and splits")
    parser.add_argument("--out", metavar="FILE", help="write the cohort table as CSV here")
    parser.add_argument("--option", dest="options", action="append", default=[],
                        metavar="KEY=VALUE", help="a builder option (repeatable)")


def run(args: argparse.Namespace) -> int:
    import inspect

    from ..atomic import atomic_write
    from ..config import parse_assignment
    from ..errors import ConfigError
    from ._common import composition_summary
    from .base import load_builders

    entry = load_builders().get(args.name)
    if args.out:
        from ..atomic import check_output

        check_output(args.out, inputs=[args.root] if args.root else [])
    options = dict(parse_assignment(o) for o in args.options)
    params = inspect.signature(entry.builder).parameters
    unknown = sorted(k for k in options if k not in params or k in ("root", "seed"))
    if unknown:
        allowed = ", ".join(k for k in params if k not in ("root", "seed"))
        raise ConfigError(f"cohort {args.name}: unknown option {unknown[0]!r} (allowed: {allowed})")
    if isinstance(options.get("views"), list):
        options["views"] = tuple(options["views"])
    cohort = entry.builder(root=args.root, seed=args.seed, **options)
    print(f"cohort {cohort.name} (source: {cohort.source}, task: {cohort.task}, "
          f"labels: {', '.join(cohort.labels)})")
    if cohort.report:
        print(cohort.report)
    print(composition_summary(cohort.table))
    if args.out:
        with atomic_write(args.out) as fh:
            cohort.table.to_csv(fh, index=False, lineterminator="\n")
        print(f"wrote {len(cohort.table)} rows to {args.out}")
    return 0
