"""Rehearse a paper's ``full`` profile end to end on miniature data in the real formats.

Writes, under ``--out``, a miniature dataset in each on-disk layout the paper's ``full``
profile reads (pixels from the synthetic world, real public metadata rows where we have
them) and the weights it reads (in the Hugging Face cache layout or at params paths), then
runs the paper's notebook with ``--profile full`` through the normal runner, with only the
budget parameters shrunk (``OUT/params.yaml`` lists every one), publishing to
``OUT/results/`` (never the project's ``results/``), and checks that no output holds a
per-patient row.  ``OUT/rehearsal.json`` records what was covered and skipped.

Example::

    compendium rehearse paper_d --out /tmp/rehearse-d
    compendium rehearse paper_c --out /scratch/rehearse-c --device cuda   # on a GPU machine
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paper", metavar="PAPER", help="paper notebook: paper_a ... paper_e")
    parser.add_argument("--out", default=None,
                        help="folder of the rehearsal (default: a new temporary folder)")
    parser.add_argument("--device", default="cpu",
                        help="where torch runs: cpu (default), cuda, cuda:N, mps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the miniature data")
    parser.add_argument("--check-only", action="store_true",
                        help="write the data and weights, run the preflight and load every "
                             "encoder with its real loader; do not run the notebook")
    parser.add_argument("--update-chapter", action="store_true",
                        help="afterwards, rewrite the paper's block of what the rehearsal "
                             "covers and skips in book/guide/rerun.md from its rehearsal.json")


def run(args: argparse.Namespace) -> int:
    import tempfile

    from ..errors import ConfigError
    from .core import papers, rehearse

    if args.paper not in papers():
        raise ConfigError(f"rehearse: no rehearsal for {args.paper!r} (available: "
                          f"{', '.join(papers())})")
    out = args.out or tempfile.mkdtemp(prefix=f"compendium-rehearse-{args.paper}-")
    summary = rehearse(args.paper, out, device=args.device, seed=args.seed, progress=True,
                       check_only=args.check_only)
    if args.update_chapter:
        from ..runner import project_root
        from .docs import CHAPTER, update_chapter

        print(f"updated {update_chapter(summary, project_root() / CHAPTER)}")
    if args.check_only:
        print(f"rehearsal of {args.paper}: inputs written in {out}; preflight passed and every "
              "encoder loaded by its real loader (notebook not run: --check-only)")
        return 0
    if summary["refused"]:
        print(f"rehearsal of {args.paper}: inputs written and checked in {out}; the run "
              f"refused as expected: {summary['refused']}")
        for line in summary["skips"]:
            print(f"  skipped: {line}")
        return 0
    print(f"rehearsal of {args.paper} (full profile) passed in "
          f"{summary['prepare_seconds'] + summary['run_seconds']:.0f} s: results in "
          f"{summary['output_dir']}; no per-patient rows in the outputs "
          f"({summary['identifiers_checked']} identifiers checked)")
    for line in summary["skips"]:
        print(f"  skipped: {line}")
    return 0
