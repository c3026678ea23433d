"""Label radiology reports with a registered labeller.

Examples::

    compendium labels reports.csv --labeller chexpert-rules --out labels.csv
    compendium labels reports.csv --labeller minilm-head --train labelled.csv --out labels.csv
    compendium labels mimic-cxr-reports/files --labeller hf-head \\
        --param model_path=/models/my-encoder --train labelled.csv --out labels.csv
    compendium labels --list

REPORTS is a CSV with an id column (study_id, report_id, sample_id or id) and a text column
(report or text), or a folder of .txt reports (MIMIC-CXR's layout).  A trained labeller
learns from --train (the same id column and label columns named as CheXpert's observations,
values 1, 0, -1 or empty; its ids must be reports of REPORTS) and then labels every report.
The output CSV (written atomically) holds the id and one column per observation in
CheXpert's codes (1 present, 0 absent, -1 uncertain, empty not mentioned).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reports", nargs="?", metavar="REPORTS",
                        help="CSV of reports (id and text columns) or a folder of .txt reports")
    parser.add_argument("--labeller", metavar="NAME", help="registered labeller (see --list)")
    parser.add_argument("--out", metavar="FILE", help="output CSV")
    parser.add_argument("--train", metavar="LABELS.csv",
                        help="labelled subset for a trainable labeller")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="labeller parameter (repeatable), e.g. model_path=/models/x")
    parser.add_argument("--id-column", default=None, help="id column of the CSVs")
    parser.add_argument("--text-column", default=None, help="text column of REPORTS")
    parser.add_argument("--list", action="store_true", help="list the labellers and exit")


def run(args: argparse.Namespace) -> int:
    from ..atomic import atomic_write, check_output
    from ..config import parse_assignment
    from ..errors import ConfigError, InputError
    from .base import create_labeller, describe_labellers
    from .io import read_label_csv, read_reports

    if args.list:
        for r in describe_labellers().itertuples():
            print(f"{r.labeller:16s} {'trained' if r.trainable else 'rules  '}  {r.description}")
        return 0
    for what, value in (("REPORTS", args.reports), ("--labeller", args.labeller),
                        ("--out", args.out)):
        if not value:
            raise ConfigError(f"labels: {what} is required (see compendium labels --help)")
    inputs = [p for p in (args.reports, args.train) if p]
    check_output(args.out, inputs=inputs)
    params = dict(parse_assignment(p) for p in args.param)
    labeller = create_labeller(args.labeller, **params)
    reports = read_reports(args.reports, id_column=args.id_column, text_column=args.text_column)
    if labeller.trainable:
        if not args.train:
            raise ConfigError(f"labeller {args.labeller!r} is trained: give --train LABELS.csv "
                              "(a labelled subset of the reports)")
        train = read_label_csv(args.train, id_column=args.id_column)
        text_of = dict(zip(reports["id"], reports["text"]))
        unknown = [i for i in train["id"] if i not in text_of]
        if unknown:
            raise InputError(f"--train: {len(unknown)} id(s) are not reports of "
                             f"{args.reports} (first: {unknown[0]!r})")
        labeller.fit([text_of[i] for i in train["id"]], train.drop(columns="id"))
    elif args.train:
        raise ConfigError(f"labeller {args.labeller!r} is rule-based: --train is not used")
    table = labeller.label(reports["text"].tolist())
    table.insert(0, "id", reports["id"].to_numpy())
    with atomic_write(args.out) as fh:
        table.to_csv(fh, index=False, float_format="%g", lineterminator="\n")
    print(f"{len(table)} reports labelled by {args.labeller} -> {args.out}", file=sys.stderr)
    return 0
