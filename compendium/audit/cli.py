"""Audit a predictions table: every metric per group and per gap, with bootstrap CIs and p-values.

Example::

    compendium audit predictions.csv --task multiclass --attributes sex,age_group,sex+age_group \\
        --bootstrap 1000 --permutations 1000 --seed 0 --out audit.csv

Writes one tidy CSV (``metric, attribute, group, label, estimate, ci_low, ci_high, p_value,
p_adjusted, n, flag``) and prints a short summary.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``compendium audit``."""
    parser.add_argument("predictions", metavar="PREDICTIONS.csv", help="predictions table")
    parser.add_argument("--task", required=True, help="binary, multiclass or multilabel")
    parser.add_argument("--attributes", required=True,
                        help="comma-separated attribute columns; a+b audits an intersection")
    parser.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples for the intervals (default 1000; 0: none)")
    parser.add_argument("--permutations", type=int, default=1000, metavar="N",
                        help="permutations for the gap p-values (default 1000; 0: none)")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--threshold", default="auto",
                        help="auto, argmax, a number in [0, 1], youden, f1 or spec=0.9 "
                             "(the last three need --validation)")
    parser.add_argument("--validation", metavar="FILE",
                        help="validation predictions on which youden/f1/spec= thresholds are chosen")
    parser.add_argument("--pair", action="append", default=[], metavar="ATTR=A:B",
                        help="signed FPR difference A - B for a named pair (repeatable), "
                             "e.g. race=Black:White")
    parser.add_argument("--min-group-size", type=int, default=30, metavar="N",
                        help="flag groups smaller than this (default 30)")
    parser.add_argument("--correction", default="holm", choices=["holm", "bh", "none"],
                        help="multiple-comparison correction of the gap p-values")
    parser.add_argument("--ece-bins", type=int, default=10, metavar="M")
    parser.add_argument("--ece-binning", default="uniform", choices=["uniform", "quantile", "sample"])
    parser.add_argument("--out", metavar="FILE", help="write the tidy table here (default: stdout)")


def run(args: argparse.Namespace) -> int:
    """Run the audit; user mistakes raise :class:`~compendium.errors.CompendiumError`."""
    from ..atomic import atomic_write
    from ..errors import ConfigError
    from .predictions import TASKS, read_predictions
    from .report import audit, summary

    if args.task not in TASKS:
        raise ConfigError(f"unknown task {args.task!r} (choose from {', '.join(TASKS)})")
    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
    df = read_predictions(args.predictions)
    validation = read_predictions(args.validation) if args.validation else None
    table = audit(df, task=args.task, attributes=attributes, n_bootstrap=args.bootstrap,
                  n_permutations=args.permutations, seed=args.seed, threshold=args.threshold,
                  validation=validation, pairs=args.pair, min_group_size=args.min_group_size,
                  correction=None if args.correction == "none" else args.correction,
                  n_bins=args.ece_bins, binning=args.ece_binning,
                  progress=sys.stderr.isatty())
    if args.out:
        with atomic_write(args.out) as fh:
            table.to_csv(fh, index=False, float_format="%.6g", lineterminator="\n")
        dest = args.out
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n")
        dest = None
    text = summary(table)
    stream = sys.stdout if dest else sys.stderr
    print(f"audit of {args.predictions}: {len(df)} rows, task {args.task}, "
          f"{args.bootstrap} bootstrap resamples, {args.permutations} permutations", file=stream)
    print(text, file=stream)
    if dest:
        print(f"{len(table)} estimates written to {dest}", file=stream)
    return 0
