"""Fine-tuning an image encoder with a linear head on a multi-label task, selected by the
validation macro AUROC (Paper E, section 4.3).

:func:`finetune_multilabel` appends a linear classifier to the encoder and trains both with
binary cross-entropy (eq. 9) for every learning rate of a grid; the validation macro AUROC
is computed every ``eval_every`` epochs, training stops after ``patience`` evaluations
without a higher one, and the weights of the best evaluation are kept.  The learning rate
whose best validation AUROC is highest wins.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Spec
from ..errors import ConfigError

log = logging.getLogger(__name__)


def macro_auroc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Mean AUROC over the labels that have both classes (NaN targets ignored); NaN if none.

    >>> macro_auroc(np.array([[0, 1], [1, 1], [0, 0]]), np.array([[.1, .9], [.8, .2], [.3, .1]]))
    0.75
    """
    from sklearn.metrics import roc_auc_score

    y, s = np.asarray(y_true, float), np.asarray(y_score, float)
    vals = []
    for j in range(y.shape[1]):
        known = ~np.isnan(y[:, j])
        yj = y[known, j]
        if yj.min(initial=1) == 0 and yj.max(initial=0) == 1:
            vals.append(roc_auc_score(yj, s[known, j]))
    return float(np.mean(vals)) if vals else float("nan")


@dataclasses.dataclass(frozen=True)
class FinetuneSpec(Spec):
    """Paper E's fine-tuning: learning-rate grid, up to ``max_epochs`` epochs in batches of
    ``batch_size``, validation macro AUROC every ``eval_every`` epochs, early stopping after
    ``patience`` evaluations without improvement, best-validation weights.  ``device``:
    where the model trains (``"cpu"``, ``"cuda"``); images may be tensors or
    :class:`~compendium.imaging.dataset.StreamedImages` (read and preprocessed per batch)."""

    lrs: list[float] = dataclasses.field(default_factory=lambda: [1e-2, 1e-3, 1e-5])
    max_epochs: int = 200
    batch_size: int = 64
    eval_every: int = 5
    patience: int = 3
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise ConfigError(f"lrs must be positive numbers, got {self.lrs}")
        if self.max_epochs < 1 or self.batch_size < 1 or self.eval_every < 1 or self.patience < 1:
            raise ConfigError("max_epochs, batch_size, eval_every and patience must be >= 1")


@dataclasses.dataclass
class FinetuneResult:
    """The selected model (encoder + linear head), its learning rate and the grid."""

    model: nn.Module
    lr: float
    val_auroc: float
    selection: pd.DataFrame


@torch.no_grad()
def predict_multilabel(model: nn.Module, x: torch.Tensor, *, batch_size: int = 256
                       ) -> np.ndarray:
    """Sigmoid scores (n, L) of ``model`` (eval mode, on the model's device); ``x`` a tensor
    or streamed images, read ``batch_size`` rows at a time."""
    model.eval()
    dev = next(model.parameters()).device
    out = [torch.sigmoid(model(x[s:s + batch_size].to(dev)).float()).cpu()
           for s in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


def _train_one(backbone: nn.Module, in_dim: int, n_labels: int, lr: float,
               train: tuple[torch.Tensor, torch.Tensor], val: tuple[torch.Tensor, np.ndarray],
               spec: FinetuneSpec, augment) -> tuple[nn.Module, dict]:
    torch.manual_seed(spec.seed)
    model = nn.Sequential(copy.deepcopy(backbone), nn.Linear(in_dim, n_labels))
    for p in model.parameters():
        p.requires_grad_(True)
    dev = torch.device(spec.device)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(int(spec.seed))
    x, y = train
    known = ~torch.isnan(y)
    y0 = torch.nan_to_num(y)
    best, best_state, best_epoch, bad, epoch = -np.inf, None, 0, 0, 0
    for epoch in range(1, spec.max_epochs + 1):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for s in range(0, len(x), spec.batch_size):
            idx = order[s:s + spec.batch_size]
            if len(idx) < 2:
                continue
            xb = x[idx] if augment is None else augment(x[idx], gen)
            logits = model(xb.to(dev))
            kb = known[idx].to(dev)
            per = F.binary_cross_entropy_with_logits(logits, y0[idx].to(dev), reduction="none")
            loss = (per * kb).sum() / kb.sum().clamp(min=1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch % spec.eval_every == 0 or epoch == spec.max_epochs:
            auc = macro_auroc(val[1], predict_multilabel(model, val[0]))
            if np.isfinite(auc) and auc > best:
                best, best_epoch, bad = auc, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
                if bad >= spec.patience:
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, {"lr": lr, "best_val_auroc": float(best) if np.isfinite(best) else np.nan,
                   "best_epoch": best_epoch, "epochs_run": epoch}


def finetune_multilabel(backbone: nn.Module, in_dim: int,
                        train: tuple[torch.Tensor, np.ndarray],
                        val: tuple[torch.Tensor, np.ndarray], spec: FinetuneSpec, *,
                        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None
                        = None) -> FinetuneResult:
    """Fine-tune a copy of ``backbone`` (-> (B, in_dim)) + a linear head for every learning
    rate of ``spec.lrs``; keep the one with the highest validation macro AUROC.

    ``train`` / ``val``: (images tensor, label matrix (n, L) with NaN for unknown).  The
    backbone passed in is not modified.  Deterministic for a given ``spec.seed`` (torch's
    global generator is restored afterwards).
    """
    ytr = torch.as_tensor(np.asarray(train[1], dtype=np.float32))
    yva = np.asarray(val[1], dtype=float)
    if ytr.ndim != 2 or yva.ndim != 2 or ytr.shape[1] != yva.shape[1]:
        raise ConfigError("train and val labels must be (n, L) matrices with the same L")
    rows, models = [], []
    with torch.random.fork_rng(devices=[]):
        for lr in spec.lrs:
            model, row = _train_one(backbone, in_dim, ytr.shape[1], float(lr),
                                    (train[0], ytr), (val[0], yva), spec, augment)
            rows.append(row)
            models.append(model)
    table = pd.DataFrame(rows)
    scores = table["best_val_auroc"].fillna(-np.inf).to_numpy()
    best = int(np.argmax(scores))
    table["selected"] = np.arange(len(table)) == best
    return FinetuneResult(models[best], float(table["lr"].iat[best]),
                          float(table["best_val_auroc"].iat[best]), table)




def paired_macro_auroc_difference(y_true: np.ndarray, score_a: np.ndarray, score_b: np.ndarray,
                                  *, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
                                  ) -> tuple[float, float, float]:
    """Macro AUROC of ``score_a`` minus that of ``score_b`` on the same rows, with a paired
    percentile bootstrap interval (rows resampled together; resamples where a label loses
    one of its classes compute the macro over the remaining labels)."""
    y = np.asarray(y_true, float)
    diff = macro_auroc(y, score_a) - macro_auroc(y, score_b)
    if n_bootstrap <= 0:
        return float(diff), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = np.empty(n_bootstrap)
    for i in range(n_bootstrap):
        idx = rng.integers(0, len(y), len(y))
        boots[i] = macro_auroc(y[idx], score_a[idx]) - macro_auroc(y[idx], score_b[idx])
    boots = boots[np.isfinite(boots)]
    a = (1 - level) / 2
    lo, hi = (np.quantile(boots, [a, 1 - a]) if len(boots) else (np.nan, np.nan))
    return float(diff), float(lo), float(hi)


__all__ = ["FinetuneResult", "FinetuneSpec", "finetune_multilabel", "macro_auroc",
           "paired_macro_auroc_difference", "predict_multilabel"]
