"""Write a sample of the synthetic world to a folder: PNG images (or .npy volumes/EHR) and
the cohort table as CSV.  Everything written is synthetic.

Example: ``compendium synthetic --n 16 --size 128 --knobs zero --out sample/``
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cohort", default="synthetic-cxr",
                        choices=["synthetic-cxr", "synthetic-ehr", "synthetic-inspect"])
    parser.add_argument("--n", type=int, default=16, help="rows to generate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128, help="image / volume side in pixels")
    parser.add_argument("--knobs", default="default", help="'default', 'zero' or a YAML file")
    parser.add_argument("--out", required=True, help="output folder (created)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from ..atomic import atomic_write
    from ..cohorts import build_cohort
    from ..config import load_yaml
    from ..errors import ConfigError
    from . import render_ehr, render_rows, render_volumes

    if args.n < 1 or args.size < 16:
        raise ConfigError("--n must be >= 1 and --size >= 16")
    knobs = args.knobs if args.knobs in ("default", "zero") else load_yaml(args.knobs)
    cohort = build_cohort(args.cohort, n=args.n, seed=args.seed, knobs=knobs)
    out = Path(args.out)
    with atomic_write(out / "cohort.csv") as fh:
        cohort.table.to_csv(fh, index=False, lineterminator="\n")
    if args.cohort == "synthetic-inspect":
        vols = render_volumes(cohort, None, args.size, max(8, args.size // 2))
        with atomic_write(out / "volumes_hu.npy", "wb") as fh:
            np.save(fh, vols)
    else:
        from PIL import Image

        (out / "images").mkdir(parents=True, exist_ok=True)
        for sid, img in zip(cohort.table["sample_id"], render_rows(cohort, None, args.size)):
            with atomic_write(out / "images" / f"{sid}.png", "wb") as fh:
                Image.fromarray(img).save(fh, format="PNG")
        if args.cohort == "synthetic-ehr":
            with atomic_write(out / "ehr.npy", "wb") as fh:
                np.save(fh, render_ehr(cohort))
    print(f"wrote {len(cohort.table)} synthetic rows of {args.cohort} to {out}")
    return 0
