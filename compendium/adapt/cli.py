"""``compendium adapt``: adaptation and mitigation helpers.

``compendium adapt demo [--probe linear] [--seed 0] [--n 3000]`` trains a probe on synthetic
embeddings with an injected group disparity (all numbers synthetic), once per mitigation,
and prints AUROC, per-group TPR, the underdiagnosis-rate gap and the attribute read-out.
``compendium adapt list`` lists probes, prompt families and mitigations.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import SEED_MAX, cli_number

    sub = parser.add_subparsers(dest="adapt_command", required=True)
    demo = sub.add_parser("demo", help="mitigations on synthetic embeddings with a known gap")
    demo.add_argument("--probe", default="linear", help="probe name (see 'adapt list')")
    demo.add_argument("--seed", type=cli_number(int, lo=0, hi=SEED_MAX), default=0)
    demo.add_argument("--n", type=cli_number(int, lo=300, hi=10_000_000), default=3000,
                      help="number of synthetic samples (>= 300: two groups, a minority)")
    demo.add_argument("--epochs", type=cli_number(int, lo=1, hi=100_000), default=60,
                      help="epochs of torch probes")
    demo.add_argument("--csv", default="", help="also write the table to this CSV file")
    sub.add_parser("list", help="probes, prompt families and mitigations")


def run(args: argparse.Namespace) -> int:
    if args.adapt_command == "list":
        from .mitigation import MITIGATIONS
        from .probes import list_probes
        from .prompts import list_prompt_families

        print("probes:          " + ", ".join(list_probes()))  # noqa: T201
        print("prompt families: " + ", ".join(list_prompt_families()))  # noqa: T201
        print("mitigations:     " + ", ".join(MITIGATIONS))  # noqa: T201
        return 0
    from ..errors import ConfigError
    from .demo import mitigation_demo
    from .probes import list_probes

    if args.probe not in list_probes():
        raise ConfigError(f"unknown probe {args.probe!r} (allowed: {', '.join(list_probes())})")
    params = {"max_epochs": args.epochs} if args.probe not in ("logreg", "lightgbm") else {}
    if args.probe in ("logreg", "lightgbm"):
        raise ConfigError("the demo compares all mitigations, adversarial debiasing included; "
                          "use a torch probe (linear, mlp, mlp-...)")
    if args.csv:
        from ..atomic import check_output

        check_output(args.csv, option="--csv")
    table = mitigation_demo(probe=args.probe, seed=args.seed, n=args.n, params=params)
    print("Synthetic data with an injected disparity (not real patients).")  # noqa: T201
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))  # noqa: T201
    if args.csv:
        from ..atomic import atomic_write

        with atomic_write(args.csv) as fh:
            table.to_csv(fh, index=False, float_format="%.6g", lineterminator="\n")
    return 0
