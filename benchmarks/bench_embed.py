"""Pipeline efficiency of embedding extraction.

efficiency = (images/s of end-to-end extraction from a pre-resized uint8 image cache: a
memory-mapped .npy read by DataLoader workers, preprocessed, encoded, written to the
embedding cache) / (images/s of the bare model forward on preprocessed tensors already on
the device).  1.0 means the pipeline costs nothing beyond the model.

CPU, here:      python benchmarks/bench_embed.py --model toy-clip-vit --n 1024
GPU, later:     python benchmarks/bench_embed.py --device cuda --model vit-b-16-random \
                    --size 224 --bf16 --n 4096 --batch-size 256 --num-workers 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from compendium.encoders import create_model
from compendium.encoders.cache import extract_embeddings


def bare_forward(enc, x: torch.Tensor, *, batch_size: int, device: torch.device,
                 bf16: bool) -> float:
    """Images/s of the model alone on preprocessed tensors already on the device."""
    x = x.to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        enc.encode_images(x[:batch_size])  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, len(x), batch_size):
            enc.encode_images(x[i:i + batch_size])
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(x) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="toy-clip-vit")
    ap.add_argument("--n", type=int, default=1024, help="images")
    ap.add_argument("--size", type=int, default=None,
                    help="side of the cached images (default: the model's input size)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--chunk-size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    # randomly initialised weights: the benchmark measures the pipeline, not the model
    enc = create_model(args.model, pretrained=False, device=args.device)
    if device.type == "cuda":
        enc = enc.to(memory_format=torch.channels_last)
    size = args.size or enc.entry.preprocess.size
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "images.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(args.n, size, size))
        for i in range(0, args.n, 1024):
            mm[i:i + 1024] = rng.integers(0, 256, (min(1024, args.n - i), size, size), np.uint8)
        mm.flush()
        del mm
        images = np.load(path, mmap_mode="r")
        x = enc.preprocess(np.asarray(images))
        bare = max(bare_forward(enc, x, batch_size=args.batch_size, device=device,
                                bf16=args.bf16) for _ in range(args.repeats))
        e2e = []
        for r in range(args.repeats):
            root = Path(tmp) / f"cache{r}"
            t = time.perf_counter()
            out = extract_embeddings(enc, images, rows=[f"img{i}" for i in range(args.n)],
                                     chunk_size=args.chunk_size, batch_size=args.batch_size,
                                     num_workers=args.num_workers, device=args.device,
                                     bf16=args.bf16, root=root, progress=False)
            if device.type == "cuda":
                torch.cuda.synchronize()
            e2e.append(args.n / (time.perf_counter() - t))
            assert out.array.shape == (args.n, enc.embed_dim)
    best = max(e2e)
    print(json.dumps({"model": args.model, "device": args.device, "bf16": args.bf16,
                      "n": args.n, "size": size, "batch_size": args.batch_size,
                      "num_workers": args.num_workers, "threads": torch.get_num_threads(),
                      "bare_forward_img_per_s": round(bare, 1),
                      "end_to_end_img_per_s": round(best, 1),
                      "pipeline_efficiency": round(best / bare, 3)}))


if __name__ == "__main__":
    main()
