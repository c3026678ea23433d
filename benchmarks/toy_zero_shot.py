"""Pretrain each toy encoder (or reuse the cache) and report its zero-shot accuracy on the
synthetic NIH 6x200 task (chance = 1/6) and its pretraining time.  Synthetic data only.

    python benchmarks/toy_zero_shot.py [toy-clip-vit toy-clip-resnet toy-clip-vit-skewed]
"""

from __future__ import annotations

import json
import sys
import time

from compendium.encoders import create_model
from compendium.paths import cache_dir
from compendium.encoders.toy import TOYS, zero_shot_accuracy


def main() -> None:
    for name in sys.argv[1:] or list(TOYS):
        t = time.perf_counter()
        enc = create_model(name, progress=False)
        built = time.perf_counter() - t
        folder = cache_dir("toy-encoders") / enc.weights_id.split(":", 1)[1]
        meta = json.loads((folder / "meta.json").read_text())
        meta = {"pretrain_s": meta["seconds"], "n_pairs": meta["n_pairs"],
                "loss_first_last": [round(meta["loss"][0], 3), round(meta["loss"][-1], 3)]}
        acc = zero_shot_accuracy(enc)
        print(json.dumps({"model": name, "build_or_pretrain_s": round(built, 1),
                          "zero_shot_nih6x200_accuracy": round(acc, 3), "chance": round(1 / 6, 3),
                          **meta}), flush=True)


if __name__ == "__main__":
    main()
