"""Toy CLIP-style encoders pretrained on the synthetic world (``demo`` / ``smoke`` profiles).

Each toy is a real ``open_clip.CLIP`` built from a small custom config (a ViT tower, a
ModifiedResNet tower), trained contrastively (symmetric InfoNCE) on synthetic image-report
pairs from :func:`compendium.synthetic.pretraining_pairs`.  One ViT is trained on a
demographically skewed corpus so the demo shows real differences between encoders.

Training is deterministic on CPU (seeded ``torch.Generator``, single thread order fixed) and
cached: weights go to ``cache_dir("toy-encoders")/<key>/`` with ``key`` a hash of (config,
pretraining data spec, seed, :data:`TOY_CODE_VERSION`); they are never committed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, InputError
from .base import ModelEntry, Preprocess, register_model

log = logging.getLogger(__name__)

#: Bump when the training code changes what it produces (invalidates cached toys).
#: 2: pretraining runs on one torch thread (the weights no longer depend on the core count).
TOY_CODE_VERSION = "2"
TOY_SIZE = 64
TOY_PREPROCESS = Preprocess(size=TOY_SIZE, mean=(0.5,) * 3, std=(0.25,) * 3,
                            interpolation="bilinear")
_TEXT = {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}
#: The six diseases of Paper A's NIH 6x200 task.
NIH6 = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Pneumothorax")
#: Zero-shot prompt templates (averaged per class), in the style of the reports.
ZS_TEMPLATES = ("{}.", "there is {}.", "findings consistent with {}.")


@dataclasses.dataclass(frozen=True)
class ToySpec:
    """Architecture and pretraining recipe of one toy encoder."""

    vision_cfg: dict[str, Any]
    embed_dim: int = 64
    text_cfg: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(_TEXT))
    n_pairs: int = 2400
    epochs: int = 8
    batch_size: int = 64
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    skew: dict[str, Any] | None = None   # passed to pretraining_pairs(skew=...)

    def model_cfg(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim, "vision_cfg": dict(self.vision_cfg),
                "text_cfg": dict(self.text_cfg)}


#: ViT tower: mean-pooled patch tokens (a CLS token at this size starts out constant across
#: images and the contrastive loss collapses; average pooling does not).
_VIT = {"image_size": TOY_SIZE, "patch_size": 16, "width": 64, "layers": 2, "head_width": 32,
        "mlp_ratio": 2.0, "pool_type": "avg"}

TOYS: dict[str, ToySpec] = {
    "toy-clip-vit": ToySpec(vision_cfg=_VIT, epochs=6),
    "toy-clip-resnet": ToySpec(vision_cfg={"image_size": TOY_SIZE, "layers": [1, 1, 1, 1],
                                           "width": 8}),
    # Same ViT, pretrained on a corpus where women are rare (10 %).
    "toy-clip-vit-skewed": ToySpec(
        vision_cfg=_VIT, epochs=6,
        skew={"sex": {"M": 0.9, "F": 0.1}}),
    # The ViT pretrained for longer (14 epochs) on the sex-skewed corpus (women 10 %).
    "toy-clip-vit-long-skewed": ToySpec(vision_cfg=_VIT, epochs=14,
                                        skew={"sex": {"M": 0.9, "F": 0.1}}),
    # A narrower ResNet (half the width): a weaker model of the same family.
    "toy-clip-resnet-narrow": ToySpec(vision_cfg={"image_size": TOY_SIZE,
                                                  "layers": [1, 1, 1, 1], "width": 4}),
    # The ResNet pretrained on the sex-skewed corpus (women 10 %).
    "toy-clip-resnet-skewed": ToySpec(vision_cfg={"image_size": TOY_SIZE,
                                                  "layers": [1, 1, 1, 1], "width": 8},
                                      skew={"sex": {"M": 0.9, "F": 0.1}}),
}


def toy_key(name: str, *, seed: int = 0, spec: ToySpec | None = None) -> str:
    """Content hash of (config, pretraining data spec, seed, code version)."""
    spec = spec or TOYS[name]
    payload = {"name": name, "spec": dataclasses.asdict(spec), "seed": int(seed),
               "code": TOY_CODE_VERSION, "preprocess": dataclasses.asdict(TOY_PREPROCESS),
               "data": _data_version()}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _data_version() -> str:
    try:
        from .. import synthetic  # type: ignore[attr-defined]
    except ImportError:
        return "synthetic-missing"
    return str(getattr(synthetic, "__version__", getattr(synthetic, "VERSION", "0")))


def new_toy_model(name: str) -> Any:
    """A randomly initialised ``open_clip.CLIP`` with the toy's config."""
    import open_clip

    return open_clip.CLIP(**TOYS[name].model_cfg())


def toy_tokenizer(name: str, spec: ToySpec | None = None) -> Any:
    from open_clip.tokenizer import SimpleTokenizer

    spec = spec or TOYS[name]
    return SimpleTokenizer(context_length=spec.text_cfg["context_length"])


# ----------------------------------------------------------------------------- training


def clip_loss(img: Any, txt: Any, logit_scale: Any, same: Any = None) -> Any:
    """Symmetric InfoNCE over a batch of normalised image and text embeddings.

    ``same`` (B, B) bool marks pairs whose reports are identical: those are positives too
    (soft targets spread over them), so that the many identical normal reports of a
    synthetic corpus are not pushed apart.  ``None``: the usual one-hot CLIP targets.
    """
    import torch
    import torch.nn.functional as F

    logits = logit_scale.exp().clamp(max=100) * img @ txt.t()
    if same is None:
        target = torch.arange(len(img), device=img.device)
        return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))
    soft = same.float() / same.float().sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, soft) + F.cross_entropy(logits.t(), soft))


def pretrain_clip(model: Any, tokenizer: Any, images: Any, texts: Sequence[str], *,
                  epochs: int, batch_size: int, lr: float, weight_decay: float = 0.05,
                  seed: int = 0, progress: bool = True,
                  compact_vocab: bool = True) -> list[float]:
    """Train ``model`` contrastively on (image, text) pairs; returns the loss per epoch.

    ``images`` are uint8 (n, H, W) at the toy size; ``texts`` the matching reports.
    Deterministic for a given seed on CPU.  ``compact_vocab`` trains only the token rows
    the texts use (:class:`_CompactVocab`; the same weights, faster); ``False`` trains the
    whole table.
    """
    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from .encoder import Preprocessor

    if len(images) != len(texts):
        raise InputError(f"{len(images)} images but {len(texts)} texts")
    gen = torch.Generator().manual_seed(int(seed))
    pre = Preprocessor(TOY_PREPROCESS)
    x_all = pre(np.asarray(images))
    ids_all = tokenizer(list(texts))
    _, text_id = np.unique(np.asarray(list(texts), dtype=object).astype(str), return_inverse=True)
    text_id = torch.as_tensor(text_id)
    pooled_by_position = getattr(model, "text_pool_type", None) in ("argmax", "first", "last")
    vocab = _CompactVocab(model, ids_all) if compact_vocab and pooled_by_position else None
    if vocab is not None:
        ids_all = vocab.ids
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    n = len(texts)
    steps = epochs * max(1, n // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.15)
    model.train()
    bar = tqdm(total=steps, desc="toy pretraining", disable=not progress, leave=False)
    try:
        history = _epochs(model, opt, sched, bar, x_all, ids_all, text_id, gen, epochs,
                          batch_size, vocab)
    except BaseException:
        if vocab is not None:        # the caller's model keeps its full table
            model.token_embedding = vocab.full
        raise
    finally:
        bar.close()
    if vocab is not None:
        vocab.restore(weight_decay)
    model.eval()
    return history


def _epochs(model, opt, sched, bar, x_all, ids_all, text_id, gen, epochs: int,
            batch_size: int, vocab) -> list[float]:
    import numpy as np
    import torch

    n = len(text_id)
    history: list[float] = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        losses = []
        for b in range(n // batch_size):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            x = x_all[idx]
            # light augmentation: random shifts of up to 4 px (seeded)
            dx, dy = torch.randint(-4, 5, (2,), generator=gen).tolist()
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
            img = model.encode_image(x, normalize=True)
            txt = model.encode_text(ids_all[idx], normalize=True)
            tid = text_id[idx]
            loss = clip_loss(img, txt, model.logit_scale, tid[:, None] == tid[None, :])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if vocab is not None:
                vocab.record(opt)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.update(1)
        history.append(float(np.mean(losses)))
    return history


class _CompactVocab:
    """Train only the token-embedding rows the corpus uses; the result is bit for bit the same.

    The text tower's token embedding (49,408 x 64) is 3.2 of a toy's 3.4 M parameters, but a
    synthetic corpus uses a few hundred tokens.  A row no text uses gets a zero gradient every
    step, so AdamW leaves its moments at zero and changes it only by the decoupled weight decay
    ``p *= 1 - lr * wd``; its Adam update is ``-step * 0 / eps``, which adds ``-0.0`` and
    leaves ``p`` unchanged bit for bit.  So we train an embedding of the used rows (ids mapped
    in order, which keeps the end-of-text token the largest id for the argmax pooling) and
    replay, at the end, the same per-step decay multiplications on the unused rows, in the
    same order: the weights are identical to training the full table (tested), in 35 % less
    time per step for the ViT toy and 17 % less for the ResNet toy (measured on one thread:
    AdamW's passes and the dense embedding gradient over 3.2 M entries are what is saved).
    """

    def __init__(self, model: Any, ids: Any):
        import torch

        self.model = model
        self.full = model.token_embedding
        self.used = torch.unique(ids)
        remap = torch.full((self.full.num_embeddings,), -1, dtype=ids.dtype)
        remap[self.used] = torch.arange(len(self.used), dtype=ids.dtype)
        self.ids = remap[ids]
        compact = torch.nn.Embedding(len(self.used), self.full.embedding_dim,
                                     dtype=self.full.weight.dtype)
        with torch.no_grad():
            compact.weight.copy_(self.full.weight[self.used])
        model.token_embedding = compact
        self.lrs: list[float] = []

    def record(self, opt: Any) -> None:
        self.lrs.append(opt.param_groups[0]["lr"])

    def restore(self, weight_decay: float) -> None:
        import torch

        w = self.full.weight
        with torch.no_grad():
            unused = torch.ones(len(w), dtype=torch.bool)
            unused[self.used] = False
            rest = w[unused]
            for lr in self.lrs:           # AdamW's decoupled decay, step by step
                rest.mul_(1 - lr * weight_decay)
            w[unused] = rest
            w[self.used] = self.model.token_embedding.weight
        self.model.token_embedding = self.full


def synthetic_pairs(name: str, *, seed: int, n_pairs: int | None = None) -> tuple[Any, list[str]]:
    """Image-report pairs for a toy from the synthetic world (labelled synthetic)."""
    try:
        from ..synthetic import pretraining_pairs  # type: ignore[attr-defined]
    except ImportError as exc:
        raise ConfigError("toy pretraining needs compendium.synthetic (the synthetic world); "
                          f"it is not importable here ({exc})") from None
    from ..synthetic import render_rows  # type: ignore[attr-defined]

    spec = TOYS[name]
    cohort = pretraining_pairs(n_pairs or spec.n_pairs, seed=seed, knobs=None, skew=spec.skew)
    images = render_rows(cohort, None, TOY_SIZE)
    return images, [impression(r) for r in cohort.table["report"].astype(str)]


def impression(report: str) -> str:
    """The IMPRESSION section of a report (the whole report if it has none), lower-case."""
    head, sep, tail = report.partition("IMPRESSION:")
    return (tail if sep else head).strip().lower()


def pretrain_toy(name: str, *, seed: int = 0, progress: bool = True,
                 pairs: tuple[Any, Sequence[str]] | None = None,
                 spec: ToySpec | None = None) -> Path:
    """Pretrain toy ``name`` (or reuse the cached result); return its weights folder.

    The folder holds ``model.safetensors`` and ``meta.json`` (spec, seed, loss history,
    seconds); it appears atomically, so an interrupted run leaves nothing behind.
    """
    from ..paths import cache_dir

    if name not in TOYS:
        raise ConfigError(f"unknown toy encoder {name!r} (allowed: {', '.join(TOYS)})")
    spec = spec or TOYS[name]
    key = toy_key(name, seed=seed, spec=spec) if pairs is None else "custom-" + _pairs_hash(
        name, pairs, seed, spec)
    root = cache_dir("toy-encoders")
    out = root / f"{name}-{key}"
    if _cached(out):
        return out
    from filelock import FileLock

    # one pretraining per toy at a time: a second process (notebooks of the book run in
    # parallel) waits for the first's weights instead of training the same toy again
    with FileLock(str(root / f".{name}-{key}.lock")):
        if _cached(out):
            return out
        return _pretrain(name, spec, seed, pairs, root, out, progress)


def _cached(out: Path) -> bool:
    return (out / "model.safetensors").is_file() and (out / "meta.json").is_file()


def _pretrain(name: str, spec: ToySpec, seed: int, pairs, root: Path, out: Path,
              progress: bool) -> Path:
    import torch
    from safetensors.torch import save_file

    from ..atomic import replace_dir, write_json

    if pairs is None:
        pairs = synthetic_pairs(name, seed=seed, n_pairs=spec.n_pairs)
    images, texts = pairs
    import open_clip

    with torch.random.fork_rng(devices=[]):  # seeded init without touching the global state
        torch.manual_seed(int(seed))
        model = open_clip.CLIP(**spec.model_cfg())
    from ..runtime import torch_threads

    t0 = time.perf_counter()
    # One thread: the same weights on every machine (float reductions depend on the thread
    # count), and many times faster than oversubscribed threads on a busy CPU.
    with torch_threads(1):
        history = pretrain_clip(model, toy_tokenizer(name, spec), images, texts,
                                epochs=spec.epochs, batch_size=spec.batch_size, lr=spec.lr,
                                weight_decay=spec.weight_decay, seed=seed, progress=progress)
    seconds = time.perf_counter() - t0
    from ..atomic import make_temp_dir

    tmp = make_temp_dir(root, f".{name}-")
    sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(sd, str(tmp / "model.safetensors"))
    write_json(tmp / "meta.json", {"name": name, "seed": seed, "spec": dataclasses.asdict(spec),
                                   "loss": history, "seconds": round(seconds, 1),
                                   "n_pairs": len(texts), "code": TOY_CODE_VERSION,
                                   "data": "synthetic"})
    log.info("pretrained %s in %.0f s (loss %.3f -> %.3f)", name, seconds, history[0],
             history[-1])
    return replace_dir(tmp, out)


def _pairs_hash(name: str, pairs: Any, seed: int, spec: ToySpec) -> str:
    import numpy as np

    h = hashlib.sha256(json.dumps([name, seed, dataclasses.asdict(spec), TOY_CODE_VERSION],
                                  sort_keys=True, default=str).encode())
    h.update(np.ascontiguousarray(np.asarray(pairs[0])).tobytes())
    h.update("\n".join(pairs[1]).encode())
    return h.hexdigest()[:20]


# ----------------------------------------------------------------------------- builder


def build_toy(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
              pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
              tokenizer: Any = None, tokenizer_path: Any = None, seed: int = 0,
              progress: bool = True) -> Any:
    """A toy encoder: pretrained (cached, trained on first use) or random-init (``tiny``)."""
    import torch  # noqa: F401

    from .encoder import OpenClipEncoder
    from .weights import fingerprint, load_into, load_state_dict

    model = new_toy_model(entry.name)
    enc = OpenClipEncoder(entry, model, tokenizer or toy_tokenizer(entry.name),
                          embed_dim=TOYS[entry.name].embed_dim)
    wid = "tiny-random" if tiny else "random-init"
    if pretrained and not tiny:
        path = Path(weights_path) if weights_path is not None else pretrain_toy(
            entry.name, seed=seed, progress=progress)
        if not path.exists():
            from .weights import missing_weights

            raise missing_weights(entry, [f"weights_path={path}"])
        load_into(model, load_state_dict(path), name=entry.name)
        wid = f"toy:{path.name}" if path.is_dir() else fingerprint(path)
    enc.weights_id = wid
    return enc.to(device).eval()


# ----------------------------------------------------------------------------- zero-shot


def zero_shot_scores(encoder: Any, images: Any, classnames: Sequence[str], *,
                     templates: Sequence[str] = ("chest x-ray showing {}.",),
                     batch_size: int = 128) -> Any:
    """Class scores (n, n_classes): cosine of each image to each class's mean prompt."""
    import numpy as np
    import torch

    with torch.inference_mode():
        cls = []
        for c in classnames:
            t = encoder.encode_text([tpl.format(c) for tpl in templates], normalize=True)
            cls.append(torch.nn.functional.normalize(t.mean(0), dim=-1))
        w = torch.stack(cls)
        out = []
        for i in range(0, len(images), batch_size):
            x = encoder.preprocess(np.asarray(images[i:i + batch_size]))
            out.append(encoder.encode_images(x.to(encoder.device), normalize=True) @ w.t())
    return torch.cat(out).cpu().numpy()


def nih6_task(*, seed: int = 1, n_per_class: int = 200, size: int = TOY_SIZE,
              pool: int = 12000) -> tuple[Any, Any, Any]:
    """The synthetic NIH 6x200 task: single-finding images of the six diseases.

    Draws a ``synthetic-cxr`` cohort (``pool`` rows, a seed distinct from pretraining),
    keeps rows whose only true finding is one of :data:`NIH6`, and takes ``n_per_class`` of
    each.  Returns (images uint8 (n, size, size), labels int (n,), table).  Synthetic data.
    """
    import numpy as np

    from ..synthetic import FINDINGS, render_rows, synthetic_cxr  # type: ignore[attr-defined]

    c = synthetic_cxr(n=pool, seed=seed)
    t = c.table
    truth = np.nan_to_num(t[[f"true_{f}" for f in FINDINGS]].to_numpy(float))
    single = truth.sum(1) == 1
    rng = np.random.default_rng(seed)
    pos, lab = [], []
    for k, d in enumerate(NIH6):
        rows = np.flatnonzero(single & (truth[:, FINDINGS.index(d)] == 1))
        if len(rows) < n_per_class:
            raise InputError(f"only {len(rows)} single-label {d} rows in a pool of {pool}")
        pick = np.sort(rng.choice(rows, n_per_class, replace=False))
        pos.extend(pick.tolist())
        lab.extend([k] * n_per_class)
    pos_arr = np.asarray(pos)
    return render_rows(c, pos_arr, size), np.asarray(lab), t.iloc[pos_arr].reset_index(drop=True)


def zero_shot_accuracy(encoder: Any, *, seed: int = 1, n_per_class: int = 200) -> float:
    """Zero-shot accuracy on the synthetic NIH 6x200 task (chance = 1/6)."""
    images, labels, _ = nih6_task(seed=seed, n_per_class=n_per_class,
                                  size=encoder.entry.preprocess.size)
    scores = zero_shot_scores(encoder, images, [d.lower() for d in NIH6],
                              templates=ZS_TEMPLATES)
    return float((scores.argmax(1) == labels).mean())


for _name, _desc in (("toy-clip-vit", "toy CLIP, ViT tower (synthetic pretraining)"),
                     ("toy-clip-resnet", "toy CLIP, ResNet tower (synthetic pretraining)"),
                     ("toy-clip-vit-skewed",
                      "toy CLIP, ViT tower, pretrained on a demographically skewed corpus"),
                     ("toy-clip-vit-long-skewed",
                      "toy CLIP, ViT tower pretrained for longer on a demographically skewed "
                      "corpus"),
                     ("toy-clip-resnet-narrow",
                      "toy CLIP, ResNet tower of half the width (synthetic pretraining)"),
                     ("toy-clip-resnet-skewed",
                      "toy CLIP, ResNet tower, pretrained on a demographically skewed corpus")):
    register_model(ModelEntry(
        name=_name, family="open_clip-toy", kind="toy", description=_desc,
        weights="synthetic-pretraining", preprocess=TOY_PREPROCESS,
        embed_dim=TOYS[_name].embed_dim, has_text=True,
        text_encoder="CLIP text transformer (2 layers, width 64)",
        tokenizer=f"open_clip SimpleTokenizer, {_TEXT['context_length']} tokens",
        lora_targets=("conv1", "conv2", "conv3", "c_proj") if "resnet" in _name
        else ("out_proj", "c_fc", "c_proj"), paper="demo", licence="MIT (this package)",
        access="built locally: pretrained on the synthetic world on first use (cached)",
        demo_standin=_name, builder=build_toy))
