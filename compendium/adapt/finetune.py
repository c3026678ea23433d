"""LoRA and full fine-tuning of the image encoder with a linear head, and mitigations.

:func:`build_image_classifier` puts a linear head (and optionally a gradient-reversal
adversary) on ``encoder.visual``: wrapped by LoRA (``method="lora"``: only adapters and head
train) or fully trainable (``method="finetune"``).  :func:`run_adaptation` trains it with the
shared loop :func:`~compendium.adapt.training.fit` under a mitigation and returns the
predictions table of the test split and the history.
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import logging
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import ConfigError
from .lora import LoraSpec, apply_lora
from .mitigation import (MITIGATIONS, GroupBalancedSampler, importance_weights, pd_safe,
                         select_alpha)
from .models import Classifier
from .predictions import Task, attribute_columns, labels_from_rows, predictions_table
from .training import (DictDataset, History, TrainSpec, fit, make_loader, predict_scores)

log = logging.getLogger(__name__)

Method = Literal["lora", "finetune"]


class VisualBackbone(nn.Module):
    """Calls the image tower and returns a (B, D) tensor (pooled output / CLS token)."""

    def __init__(self, visual: nn.Module) -> None:
        super().__init__()
        self.visual = visual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.visual(x)
        if not torch.is_tensor(out):
            for key in ("image_embeds", "pooler_output", "last_hidden_state"):
                val = getattr(out, key, None)
                if val is not None:
                    out = val
                    break
            else:
                out = out[0]
        if out.ndim == 3:
            out = out[:, 0]
        elif out.ndim == 4:
            out = out.mean(dim=(2, 3))
        return out


def prepare_finetune(visual: nn.Module, *, copy: bool = True) -> nn.Module:
    """The image tower with every parameter trainable (a deep copy by default)."""
    module = _copy.deepcopy(visual) if copy else visual
    for p in module.parameters():
        p.requires_grad_(True)
    return module


def build_image_classifier(encoder, n_outputs: int, *, method: Method = "lora",
                           lora: LoraSpec | None = None, adversary_alpha: float = 0.0,
                           n_groups: int = 2, in_features: int | None = None,
                           seed: int = 0) -> Classifier:
    """Image tower (LoRA-wrapped or trainable copy) + linear head (+ adversary)."""
    visual = getattr(encoder, "visual", None)
    if not isinstance(visual, nn.Module):
        raise ConfigError("the encoder has no image tower (.visual) to adapt")
    if method == "lora":
        tower = apply_lora(visual, lora, entry=getattr(encoder, "entry", None), seed=seed)
    elif method == "finetune":
        tower = prepare_finetune(visual)
    else:
        raise ConfigError(f"unknown adaptation method {method!r} (allowed: lora, finetune)")
    backbone = VisualBackbone(tower)
    if in_features is None:
        in_features = _output_dim(encoder, backbone)
    return Classifier(backbone, in_features, n_outputs, adversary_alpha=adversary_alpha,
                      n_groups=n_groups, seed=seed)


def _output_dim(encoder, backbone: VisualBackbone) -> int:
    """Width of the tower's output: a dry forward pass at the entry's input size, or
    ``encoder.embed_dim`` when the entry does not describe its preprocessing."""
    pre = getattr(getattr(encoder, "entry", None), "preprocess", None)
    if pre is None or not hasattr(pre, "size"):
        return int(getattr(encoder, "embed_dim"))
    x = torch.zeros(2, int(getattr(pre, "channels", 3)), int(pre.size), int(pre.size))
    was = backbone.training
    backbone.eval()
    try:
        with torch.no_grad():
            return int(backbone(x).shape[-1])
    finally:
        backbone.train(was)


def _infer_dim(encoder, x: torch.Tensor) -> int:
    with torch.no_grad():
        was = encoder.visual.training
        encoder.visual.eval()
        d = VisualBackbone(encoder.visual)(x[:2].float()).shape[-1]
        encoder.visual.train(was)
    return int(d)


def run_adaptation(encoder, data: dict[str, tuple[torch.Tensor, pd.DataFrame]],
                   classes: Sequence[str], task: Task, spec: TrainSpec, *,
                   method: Method = "lora", lora: LoraSpec | None = None,
                   mitigation: str = "none", attribute: str | None = None,
                   alpha: float | None = None, alphas: Sequence[float] = (0.5, 1.0, 2.0),
                   batch_size: int = 64, seed: int = 0,
                   num_workers: int = 0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Adapt ``encoder.visual`` (LoRA or full fine-tuning) with a linear head.

    Parameters
    ----------
    encoder : Encoder
        Has ``.visual`` and ``embed_dim`` (and ``entry.lora_targets`` for LoRA defaults).
    data : dict
        ``{"train"|"val"|"test": (images, rows)}``: preprocessed image tensors (N, C, H, W),
        or :class:`~compendium.imaging.dataset.StreamedImages` (read from the pixel cache
        and preprocessed per batch: memory holds batches, not the split), and their cohort
        rows.
    classes, task : label columns and task (see :func:`predictions_table`).
    spec : TrainSpec
        Training parameters (``spec.task`` is overridden by ``task``).
    mitigation : {"none", "importance_weighting", "resampling", "adversarial"}
    attribute : str
        Protected attribute column (for every mitigation but ``"none"``).
    alpha : float, optional
        Adversary strength (``None``: chosen among ``alphas`` on the validation split; each
        candidate is a full training run).
    num_workers : int
        DataLoader worker processes that read and preprocess batches (0: the main process).

    Returns
    -------
    table : DataFrame
        Predictions table of the test split.
    info : dict
        ``history`` (:class:`History`), ``alpha``, ``alpha_selection``, ``model``.
    """
    if mitigation not in MITIGATIONS:
        raise ConfigError(f"unknown mitigation {mitigation!r} (allowed: {', '.join(MITIGATIONS)})")
    for split in ("train", "val", "test"):
        if split not in data:
            raise ConfigError(f"run_adaptation needs a {split!r} split")
    spec = dataclasses.replace(spec, task=task)
    (xtr, rtr), (xva, rva), (xte, rte) = data["train"], data["val"], data["test"]
    ytr, yva = labels_from_rows(rtr, classes, task), labels_from_rows(rva, classes, task)
    n_out = 1 if task == "binary" else len(classes)
    weight = group = None
    sampler = None
    n_groups = 2
    if mitigation != "none":
        if attribute is None or attribute not in rtr.columns:
            raise ConfigError(f"mitigation {mitigation!r} needs an attribute column "
                              f"(got {attribute!r})")
        if task == "multilabel" and mitigation != "adversarial":
            raise ConfigError(f"{mitigation} needs a binary or multiclass task")
        gtr = np.asarray(pd_safe(rtr[attribute].tolist()), dtype=str)
        if mitigation == "importance_weighting":
            weight = importance_weights(gtr, ytr)
        elif mitigation == "resampling":
            sampler = GroupBalancedSampler(gtr, ytr, seed=seed)
        else:
            levels, group = np.unique(gtr, return_inverse=True)
            n_groups = max(2, len(levels))
    ytr_t = ytr.astype(np.float32) if task != "multiclass" else ytr
    yva_t = yva.astype(np.float32) if task != "multiclass" else yva
    train_ds = DictDataset(xtr, ytr_t, weight=weight, group=group)
    loaders = {"train": make_loader(train_ds, batch_size=batch_size, seed=seed, sampler=sampler,
                                    num_workers=num_workers),
               "val": make_loader(DictDataset(xva, yva_t), batch_size=batch_size,
                                  shuffle=False, num_workers=num_workers)}
    in_features = _infer_dim(encoder, torch.as_tensor(xtr[:2]))

    def train(a: float, run_dir: str) -> tuple[Classifier, History]:
        model = build_image_classifier(encoder, n_out, method=method, lora=lora,
                                       adversary_alpha=a, n_groups=n_groups,
                                       in_features=in_features, seed=seed)
        hist = fit(model, loaders, dataclasses.replace(spec, run_dir=run_dir))
        return model, hist

    info: dict[str, Any] = {"alpha": None, "alpha_selection": []}
    if mitigation == "adversarial":
        if alpha is None:
            gva = rva[attribute].tolist()

            def fit_predict(a: float):
                sub = str(Path(spec.run_dir) / f"alpha-{a:g}") if spec.run_dir else ""
                model, _ = train(a, sub)
                s = predict_scores(model, loaders["val"], task, device=spec.device,
                                   amp=spec.amp)
                return _hard(s, task), s

            alpha, info["alpha_selection"] = select_alpha(fit_predict, yva, gva, alphas=alphas)
        info["alpha"] = float(alpha)
    a = float(alpha) if mitigation == "adversarial" else 0.0
    run_dir = str(Path(spec.run_dir) / "final") if spec.run_dir else ""
    model, history = train(a, run_dir)
    test_loader = make_loader(DictDataset(xte, np.zeros(len(xte), dtype=np.int64)),
                              batch_size=batch_size, shuffle=False, num_workers=num_workers)
    scores = predict_scores(model, test_loader, task, device=spec.device, amp=spec.amp)
    info["history"], info["model"] = history, model
    return predictions_table(rte, scores, classes, task,
                             attributes=attribute_columns(rte, attribute)), info


def _hard(scores: np.ndarray, task: str) -> np.ndarray:
    if task == "multiclass":
        return scores.argmax(1)
    return (scores >= 0.5).astype(int)
