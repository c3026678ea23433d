"""Model weights: where they are looked for, and how to fetch them.

``compendium weights where NAME``   where NAME's weights are looked for (and if found)
``compendium weights fetch NAME``   download them into the Hugging Face cache (needs internet;
                                    ``--dry-run`` only prints what would be fetched)
``compendium weights table``        the models reference table (markdown)
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("fetch", help="download a model's weights (machine with internet)")
    p.add_argument("name", help="model name (see `compendium list models`)")
    p.add_argument("--dry-run", action="store_true", help="print what would be fetched")
    p = sub.add_parser("where", help="where a model's weights are looked for")
    p.add_argument("name")
    p.add_argument("--weights-path", default=None, help="a local file or folder to check")
    sub.add_parser("table", help="print the models reference table (markdown)")


def run(args: argparse.Namespace) -> int:
    from .base import get_entry

    if args.action == "table":
        from .table import models_markdown

        print(models_markdown())
        return 0
    entry = get_entry(args.name)
    if args.action == "fetch":
        from .weights import fetch, hf_cache_location

        repos = fetch(entry, dry_run=args.dry_run)
        verb = "would fetch" if args.dry_run else "fetched"
        for repo in repos:
            print(f"{verb} {repo} into {hf_cache_location()}")
        if not entry.hub_id:
            print(f"weights of {entry.name}: {entry.access}")
        return 0
    from .weights import find_weights, hf_cache_location

    print(f"{entry.name}: {entry.weights}")
    if entry.kind == "toy":
        print("pretrained locally on the synthetic world on first use (cache: toy-encoders)")
        return 0
    if entry.kind == "embeddings-file" or entry.weights == "random-init":
        print(entry.access)
        return 0
    path = find_weights(entry, args.weights_path)  # raises MissingWeightsError (exit 2)
    print(f"found: {path}")
    return 0
