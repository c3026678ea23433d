"""Write a sample of the synthetic world to a folder: PNG images (or .npy volumes/EHR) and
the cohort table as CSV.  Everything written is synthetic.

Example: ``compendium synthetic --n 16 --size 128 --knobs zero --out sample/``
"""

from __future__ import annotations

import argparse


#: Rows rendered and written at a time (bounds the memory whatever --n).
CHUNK_ROWS = 256
#: A folder written by this command carries this marker; only such a folder is replaced.
MARKER = ".compendium-synthetic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..config import SEED_MAX, cli_number

    parser.add_argument("--cohort", default="synthetic-cxr",
                        choices=["synthetic-cxr", "synthetic-ehr", "synthetic-inspect"])
    parser.add_argument("--n", type=cli_number(int, lo=1, hi=10_000_000), default=16,
                        help="rows to generate")
    parser.add_argument("--seed", type=cli_number(int, lo=0, hi=SEED_MAX), default=0)
    parser.add_argument("--size", type=cli_number(int, lo=16, hi=2048), default=128,
                        help="image / volume side in pixels")
    parser.add_argument("--knobs", default="default", help="'default', 'zero' or a YAML file")
    parser.add_argument("--out", required=True,
                        help="output folder (created; a previous sample there is replaced "
                             "as a whole, a folder holding anything else is refused)")


def run(args: argparse.Namespace) -> int:
    import shutil

    import numpy as np

    from ..atomic import check_output, partial_dir, replace_dir, sweep_partials
    from ..cohorts import build_cohort
    from ..config import load_yaml
    from ..errors import ConfigError
    from . import render_ehr, render_rows, render_volumes

    out = check_output(args.out, directory=True)
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ConfigError(f"--out {out} exists and holds other files: give a new or empty "
                          "folder (a folder written by `compendium synthetic` is replaced)")
    knobs = args.knobs if args.knobs in ("default", "zero") else load_yaml(args.knobs)
    cohort = build_cohort(args.cohort, n=args.n, seed=args.seed, knobs=knobs)
    sweep_partials(out.parent, out.name)
    work = partial_dir(out.parent, out.name)
    try:
        (work / MARKER).write_text(f"compendium synthetic --cohort {args.cohort} --n {args.n} "
                                   f"--seed {args.seed} --size {args.size}\n", encoding="utf-8")
        cohort.table.to_csv(work / "cohort.csv", index=False, lineterminator="\n")
        n = len(cohort.table)
        chunks = [np.arange(i, min(i + CHUNK_ROWS, n)) for i in range(0, n, CHUNK_ROWS)]
        if args.cohort == "synthetic-inspect":
            depth = max(8, args.size // 2)
            vols = np.lib.format.open_memmap(work / "volumes_hu.npy", mode="w+",
                                             dtype=np.float32,
                                             shape=(n, depth, args.size, args.size))
            for idx in chunks:
                vols[idx] = render_volumes(cohort, idx, args.size, depth)
            vols.flush()
            del vols
        else:
            from PIL import Image

            (work / "images").mkdir()
            ids = cohort.table["sample_id"].to_numpy()
            for idx in chunks:
                for sid, img in zip(ids[idx], render_rows(cohort, idx, args.size)):
                    Image.fromarray(img).save(work / "images" / f"{sid}.png", format="PNG")
            if args.cohort == "synthetic-ehr":
                first = render_ehr(cohort, chunks[0])
                ehr = np.lib.format.open_memmap(work / "ehr.npy", mode="w+", dtype=first.dtype,
                                                shape=(n, *first.shape[1:]))
                ehr[chunks[0]] = first
                for idx in chunks[1:]:
                    ehr[idx] = render_ehr(cohort, idx)
                ehr.flush()
                del ehr
        replace_dir(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    print(f"wrote {n} synthetic rows of {args.cohort} to {out}")
    return 0
