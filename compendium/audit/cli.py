"""Audit a predictions table: every metric per group and per gap, with bootstrap CIs and p-values.

Example::

    compendium audit predictions.csv --task multiclass --attributes sex,age_group,sex+age_group \\
        --bootstrap 1000 --permutations 1000 --seed 0 --out audit.csv

Writes one tidy CSV (``metric, attribute, group, label, estimate, ci_low, ci_high, p_value,
p_adjusted, n, flag, p_floor, kind``) and prints a short summary.  The readings of ambiguous
definitions (``--eqodds``, ``--gap-macro``, ``--var-ddof``, ``--ece-bins``,
``--ece-binning``, ``--ece-confidence``) are stated in the book's metric glossary.
"""

from __future__ import annotations

import argparse
import logging
import sys

log = logging.getLogger(__name__)


def _max_permutations(text: str):
    if text.strip().lower() in ("auto", "none"):
        return text.strip().lower()
    from ..config import cli_number

    return cli_number(int, lo=0, hi=10_000_000)(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``compendium audit``."""
    from ..config import SEED_MAX, cli_number

    parser.add_argument("predictions", metavar="PREDICTIONS.csv", help="predictions table")
    parser.add_argument("--task", required=True, help="binary, multiclass or multilabel")
    parser.add_argument("--attributes", required=True,
                        help="comma-separated attribute columns; a+b audits an intersection")
    parser.add_argument("--bootstrap", type=cli_number(int, lo=0, hi=10_000_000), default=1000,
                        metavar="N",
                        help="bootstrap resamples for the intervals (default 1000; 0: none)")
    parser.add_argument("--permutations", type=cli_number(int, lo=0, hi=10_000_000),
                        default=1000, metavar="N",
                        help="permutations for the gap p-values (default 1000; 0: none); "
                             "the first round when --max-permutations is larger")
    parser.add_argument("--max-permutations", type=_max_permutations, default="auto",
                        metavar="N|auto|none",
                        help="sequential permutations: go on (doubling) for the attributes whose "
                             "gaps could still be significant, up to N; auto (default): enough "
                             "that every family can reach alpha / 10; none: exactly --permutations")
    parser.add_argument("--family", default="attribute_metric",
                        choices=["attribute_metric", "attribute", "table"],
                        help="multiple-comparison family (default: one attribute x one metric)")
    parser.add_argument("--alpha", type=cli_number(float, lo=0, hi=1, lo_open=True, hi_open=True),
                        default=0.05, help="significance level of the floor warning (0.05)")
    parser.add_argument("--seed", type=cli_number(int, lo=0, hi=SEED_MAX), default=0, metavar="S")
    parser.add_argument("--threshold", default="auto",
                        help="auto, argmax, a number in [0, 1] (positive when score >= t), "
                             "youden, f1 or spec=0.9 (the last three need --validation)")
    parser.add_argument("--validation", metavar="FILE",
                        help="validation predictions on which youden/f1/spec= thresholds are chosen")
    parser.add_argument("--pair", action="append", default=[], metavar="ATTR=A:B",
                        help="signed FPR difference A - B for a named pair (repeatable), "
                             "e.g. race=Black:White")
    parser.add_argument("--min-group-size", type=cli_number(int, lo=0, hi=10**12), default=30,
                        metavar="N", help="flag groups smaller than this (default 30)")
    parser.add_argument("--correction", default="holm", choices=["holm", "bh", "bonferroni", "none"],
                        help="multiple-comparison correction of the gap p-values")
    parser.add_argument("--ece-bins", type=cli_number(int, lo=1, hi=10_000), default=10,
                        metavar="M", help="ECE bins (default 10)")
    parser.add_argument("--ece-binning", default="uniform", choices=["uniform", "quantile", "sample"])
    parser.add_argument("--ece-confidence", default="positive", choices=["positive", "predicted"],
                        help="binary/multi-label ECE confidence: positive-class probability "
                             "(default, FairMedFM/MEDFAIR) or max(p, 1-p) of the prediction")
    parser.add_argument("--eqodds", default="mean", choices=["mean", "max"],
                        help="EqOdds per class: mean (default) or max of the TPR and FPR gaps")
    parser.add_argument("--gap-macro", default="mean_of_gaps",
                        choices=["mean_of_gaps", "gap_of_macro"],
                        help="macro gap: mean of per-class gaps (default) or gap of macro values")
    parser.add_argument("--var-ddof", type=int, default=0, choices=[0, 1],
                        help="Var_F1 denominator: C - ddof (default 0, population variance)")
    parser.add_argument("--out", metavar="FILE", help="write the tidy table here (default: stdout)")
    parser.add_argument("--jobs", type=cli_number(int, lo=1, hi=256), default=None, metavar="N",
                        help="threads drawing and evaluating resamples and permutations (the "
                             "results do not depend on it; default: the cores this process "
                             "may use)")


def run(args: argparse.Namespace) -> int:
    """Run the audit; user mistakes raise :class:`~compendium.errors.CompendiumError`."""
    from ..atomic import atomic_write, check_output
    from ..errors import ConfigError
    from .predictions import TASKS, read_predictions
    from .report import audit, summary
    from ..runtime import available_cpus
    from .thresholds import parse_policy

    if args.task not in TASKS:
        raise ConfigError(f"unknown task {args.task!r} (choose from {', '.join(TASKS)})")
    parse_policy(args.threshold)
    if args.out:  # before any work: a wrong --out must not cost the whole audit
        check_output(args.out, inputs=[p for p in (args.predictions, args.validation) if p])
    attributes = [a.strip() for a in args.attributes.split(",") if a.strip()]
    df = read_predictions(args.predictions)
    validation = read_predictions(args.validation) if args.validation else None
    max_perm = {"auto": "auto", "none": None}.get(args.max_permutations, args.max_permutations)
    table = audit(df, task=args.task, attributes=attributes, n_bootstrap=args.bootstrap,
                  n_permutations=args.permutations, seed=args.seed, threshold=args.threshold,
                  validation=validation, pairs=args.pair, min_group_size=args.min_group_size,
                  correction=None if args.correction == "none" else args.correction,
                  n_bins=args.ece_bins, binning=args.ece_binning, confidence=args.ece_confidence,
                  eqodds=args.eqodds, gap_macro=args.gap_macro, var_ddof=args.var_ddof,
                  family=args.family, max_permutations=max_perm, alpha=args.alpha,
                  progress=sys.stderr.isatty(),
                  n_jobs=args.jobs or available_cpus())
    if args.out:
        with atomic_write(args.out) as fh:
            table.to_csv(fh, index=False, float_format="%.6g", lineterminator="\n")
        dest = args.out
    else:
        table.to_csv(sys.stdout, index=False, float_format="%.6g", lineterminator="\n")
        dest = None
    text = summary(table)
    stream = sys.stdout if dest else sys.stderr
    drawn = table.attrs.get("permutations") or {}
    perms = (f"{min(drawn.values())}-{max(drawn.values())}" if drawn and
             min(drawn.values()) != max(drawn.values()) else str(args.permutations))
    print(f"audit of {args.predictions}: {len(df)} rows, task {args.task}, "
          f"{args.bootstrap} bootstrap resamples, {perms} permutations per attribute, "
          f"family {args.family}", file=stream)
    print(text, file=stream)
    if dest:
        print(f"{len(table)} estimates written to {dest}", file=stream)
    return 0
