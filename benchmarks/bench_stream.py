"""Peak memory of end-to-end training: images streamed from the pixel cache vs held in memory.

A synthetic cohort of ``--n`` rows is rendered once into the memory-mapped uint8 cache at
``--size`` px (224: the supervised CNN's input).  Then, each in its own process (so that each
peak is its own), one epoch of :func:`compendium.adapt.finetune.run_adaptation` trains a small
convolutional tower with a linear head:

* ``memory``: what Paper C did before streaming: every split's pixels boolean-indexed out
  of the cache and preprocessed whole (float32, 3 channels) before training;
* ``streamed``: :class:`compendium.imaging.dataset.StreamedImages`: each batch read from the
  cache and preprocessed when the loader asks for it.

Both must give the same test scores (checked before any number is printed).  Printed: each
mode's peak resident set size (``resource.getrusage``: pages of the memory-mapped cache that
were read count too, as the kernel maps them), wall and CPU seconds, their ratios, and the
load average (the machine is shared).

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_stream.py [--n 3000] [--size 224] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time


def _cohort(n: int, seed: int = 0):
    from compendium.cohorts.splits import patient_split
    from compendium.synthetic import synthetic_cxr

    c = synthetic_cxr(n=n, seed=seed, demographics="parametric", name="bench-stream")
    c.table["split"] = patient_split(c.table, (0.7, 0.15, 0.15), seed=seed)["split"].to_numpy()
    return c


def _encoder(size: int):
    import torch
    from torch import nn

    from compendium.encoders.base import Preprocess
    from compendium.encoders.encoder import Preprocessor

    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.visual = nn.Sequential(nn.Conv2d(3, 8, 8, stride=8), nn.ReLU(),
                                        nn.Conv2d(8, 16, 4, stride=4), nn.ReLU(),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.preprocessor = Preprocessor(Preprocess(size=size, mean=(0.5,) * 3,
                                                        std=(0.25,) * 3))
            self.embed_dim = 16

        def preprocess(self, x):
            return self.preprocessor(x)

    return Small()


def run_mode(mode: str, n: int, size: int, batch_size: int, cache: str) -> dict:
    import numpy as np

    os.environ["COMPENDIUM_CACHE"] = cache
    from compendium.adapt.finetune import run_adaptation
    from compendium.adapt.training import TrainSpec
    from compendium.imaging.cache import cached_pixels
    from compendium.imaging.dataset import StreamedImages

    c = _cohort(n)
    enc = _encoder(size)
    t = c.table.assign(y=c.table["Effusion"].fillna(0).astype(int))
    split = t["split"].to_numpy()
    ev = np.isin(split, ("val", "test"))
    masks = {"train": split == "train", "val": split == "val", "test": ev}
    w0, c0 = time.perf_counter(), time.process_time()
    mm = cached_pixels(c, size, progress=False)
    if mode == "memory":
        img = np.asarray(mm)
        data = {k: (enc.preprocess(img[m]), t[m]) for k, m in masks.items()}
    else:
        store = StreamedImages(mm, transform=enc.preprocessor)
        data = {k: (store.subset(m), t[m]) for k, m in masks.items()}
    spec = TrainSpec(task="binary", epochs=1, lr=1e-3, device="cpu", progress=False,
                     threads=1)
    table, _ = run_adaptation(enc, data, ["y"], "binary", spec, method="finetune",
                              batch_size=batch_size, seed=0)
    return {"mode": mode, "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "scores": table["y_score"].round(12).tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--mode", choices=["memory", "streamed"], help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.mode:
        print(json.dumps(run_mode(a.mode, a.n, a.size, a.batch_size, a.cache)))
        return
    with tempfile.TemporaryDirectory() as cache:
        os.environ["COMPENDIUM_CACHE"] = cache
        from compendium.imaging.cache import cached_pixels

        t0 = time.perf_counter()
        cached_pixels(_cohort(a.n), a.size, progress=False)     # rendered once, for both
        print(f"cache: {a.n} rows at {a.size} px rendered in {time.perf_counter() - t0:.0f} s;"
              f" load {os.getloadavg()[0]:.2f}")
        res = {}
        for mode in ("memory", "streamed"):
            out = subprocess.run([sys.executable, __file__, "--mode", mode, "--n", str(a.n),
                                  "--size", str(a.size), "--batch-size", str(a.batch_size),
                                  "--cache", cache], check=True, capture_output=True, text=True)
            res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    if res["memory"]["scores"] != res["streamed"]["scores"]:
        raise SystemExit("streamed and in-memory training gave different test scores")
    for mode, r in res.items():
        print(f"{mode:9s} peak RSS {r['peak_rss_mb']:8.0f} MB  wall {r['wall_s']:6.1f} s  "
              f"CPU {r['cpu_s']:6.1f} s")
    m, s = res["memory"], res["streamed"]
    print(f"streamed / memory: peak RSS {s['peak_rss_mb'] / m['peak_rss_mb']:.3f}, wall "
          f"{s['wall_s'] / m['wall_s']:.2f}, CPU {s['cpu_s'] / m['cpu_s']:.2f}; same test scores;"
          f" load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
