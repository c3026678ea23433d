"""Training throughput of LoRA vs full fine-tuning of a ViT image tower (images/s).

Random-initialised weights, synthetic images: no download.  On a GPU::

    python benchmarks/bench_train.py --model ViT-B-16 --device cuda --batch-size 64 --steps 30

On a CPU the default is a tiny ViT at 32 px.  Prints images/s for both methods, their ratio
and the number of trainable parameters; it measures the same loop as
``compendium.adapt.training.fit`` (AdamW, cosine schedule, bf16 autocast on CUDA).
"""

from __future__ import annotations

import argparse
import time
import types

import torch


def build_encoder(model: str, image_size: int):
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    if model == "tiny":
        clip = CLIP(embed_dim=32, vision_cfg=CLIPVisionCfg(layers=2, width=64, patch_size=8,
                                                           image_size=image_size, head_width=32),
                    text_cfg=CLIPTextCfg(context_length=32, vocab_size=49408, width=64,
                                         heads=2, layers=2))
    else:
        clip = open_clip.create_model(model, pretrained=None)
    dim = clip.visual.output_dim
    return types.SimpleNamespace(visual=clip.visual, embed_dim=dim,
                                 entry=types.SimpleNamespace(lora_targets=("attn", "mlp")))


def bench(encoder, method: str, args) -> tuple[float, int]:
    from compendium.adapt.finetune import build_image_classifier
    from compendium.adapt.training import DictDataset, TrainSpec, fit, make_loader

    g = torch.Generator().manual_seed(0)
    n = args.batch_size * args.steps
    x = torch.randn(n, 3, args.image_size, args.image_size, generator=g)
    y = torch.randint(0, 6, (n,), generator=g)
    loaders = {"train": make_loader(DictDataset(x, y), batch_size=args.batch_size),
               "val": make_loader(DictDataset(x[: args.batch_size], y[: args.batch_size]),
                                  batch_size=args.batch_size, shuffle=False)}
    model = build_image_classifier(encoder, 6, method=method)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    spec = TrainSpec(epochs=1, lr=1e-4, device=args.device, progress=False)
    # warm-up epoch (kernel selection, allocator), then the timed epoch
    fit(model, {"train": [next(iter(loaders["train"]))], "val": loaders["val"]}, spec)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    fit(model, loaders, spec)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t), n_train


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="'tiny' or an open_clip model name")
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args()
    if args.image_size is None:
        args.image_size = 32 if args.model == "tiny" else 224
    encoder = build_encoder(args.model, args.image_size)
    res = {m: bench(encoder, m, args) for m in ("lora", "finetune")}
    for m, (ips, n_train) in res.items():
        print(f"{m:<9} {ips:10.1f} images/s   trainable parameters {n_train:,}")
    print(f"LoRA / full fine-tuning throughput ratio: {res['lora'][0] / res['finetune'][0]:.2f}")


if __name__ == "__main__":
    main()
