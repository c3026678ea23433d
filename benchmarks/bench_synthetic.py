"""Benchmark: synthetic chest-X-ray generation vs decoding the same images as PNG files.

Usage::

    python benchmarks/bench_synthetic.py [--n 2000] [--size 128]

Prints images/s of ``render_rows`` (parameters + pixels, cohort table built beforehand), the
images/s of decoding the same number of 8-bit PNGs from a temporary folder with PIL, and
their ratio (> 1: generating is faster than reading from disk).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from compendium.synthetic import render_rows, synthetic_cxr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    cohort = synthetic_cxr(n=args.n, seed=0)
    render_rows(cohort, range(min(64, args.n)), args.size)          # warm caches
    gen, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        imgs = render_rows(cohort, range(args.n), args.size)
        gen.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, im in enumerate(imgs):
            p = Path(tmp) / f"{i:06d}.png"
            Image.fromarray(im).save(p)
            paths.append(p)
        dec = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            out = np.stack([np.asarray(Image.open(p).convert("L")) for p in paths])
            dec.append(time.perf_counter() - t0)
        assert np.array_equal(out, imgs)
    g, d = args.n / min(gen), args.n / min(dec)
    print(f"generate {args.n} images at {args.size}x{args.size}: {g:8.0f} images/s "
          f"(best of {args.repeats})")
    print(f"generate, per CPU-second of this process:   {args.n / min(cpu):8.0f} images/s "
          "(less sensitive to other load on the machine)")
    print(f"decode   {args.n} PNGs     at {args.size}x{args.size}: {d:8.0f} images/s")
    print(f"ratio generate / decode: {g / d:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
