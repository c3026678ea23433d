"""Cross-modal alignment of a pretrained image encoder with a second modality (EHR, text).

MedCAM (Paper E, section 3.3) aligns the embedding of a chest X-ray with that of the
patient's EHR time series; the image encoder leaves the alignment adapted
(:math:`\\tilde f_{CXR}`) and is then fine-tuned.  This module holds the losses, the EHR
encoder, the two-tower model and the training loop, for MedCAM and for the contrastive
baselines it is compared with (ConVIRT, VICReg, ALIGN, Barlow Twins):

========================  ============================================================
:func:`global_infonce`    eqs. 3-5: symmetric InfoNCE over a batch, cosine similarity / tau
:func:`local_topk_loss`   eqs. 6a-7: the top-k EHR time steps of each image (by attention),
                          each aligned against the image's other steps (6a) and against
                          the other images of the batch (6b)
:func:`medcam_loss`       eq. 8: global + local (either can be switched off: the ablation)
:func:`convirt_loss`      Zhang et al. 2022: lambda-weighted bidirectional InfoNCE
:func:`vicreg_loss`       Bardes et al.: invariance + variance + covariance terms
:func:`align_loss`        Jia et al. 2021: symmetric InfoNCE with a learned temperature
:func:`barlow_twins_loss` Zbontar et al. 2021: cross-correlation to identity (image-only SSL)
========================  ============================================================

Every loss takes embeddings (not normalised; they are L2-normalised where the loss uses
cosine similarity) and returns a scalar tensor.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..config import Spec
from ..errors import ConfigError

log = logging.getLogger(__name__)

Objective = Literal["medcam", "convirt", "vicreg", "align"]
OBJECTIVES = ("medcam", "convirt", "vicreg", "align")
Attention = Literal["similarity", "learned"]


# ----------------------------------------------------------------------------- losses


def cosine_logits(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """``sim(a_i, b_j) / tau`` for all pairs: (Na, Nb); ``sim`` is cosine similarity."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T / tau


def global_infonce(z_cxr: torch.Tensor, z_ehr: torch.Tensor, tau: float) -> torch.Tensor:
    """Eqs. 3-5: ``0.5 (L_CXR->EHR + L_EHR->CXR)``.

    .. math::
        L_{CXR\\to EHR} = -\\frac1B\\sum_i \\log \\frac{\\exp(s(z^c_i, z^e_i)/\\tau)}
        {\\sum_j \\exp(s(z^c_i, z^e_j)/\\tau)}

    and the same with the roles exchanged; pair ``i`` (row ``i`` of both) is the positive.

    >>> z = torch.eye(3)
    >>> round(float(global_infonce(z, z, 1.0)), 4)   # log(1 + 2 / e)
    0.5514
    """
    logits = cosine_logits(z_cxr, z_ehr, tau)
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def attention_weights(z_cxr: torch.Tensor, z_steps: torch.Tensor, *,
                      query: nn.Module | None = None, key: nn.Module | None = None,
                      mask: torch.Tensor | None = None) -> torch.Tensor:
    """A (B, t): softmax over the EHR time steps of each image's attention to them.

    Scaled dot product of the image embedding (the query) with each time step's embedding
    (the keys), after the optional ``query`` / ``key`` projections; ``mask`` (B, t) False
    marks padded steps (never attended).
    """
    q = query(z_cxr) if query is not None else z_cxr
    k = key(z_steps) if key is not None else z_steps
    scores = torch.einsum("bd,btd->bt", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=1)


def topk_steps(attn: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, min(k, t)) of the ``k`` time steps with the highest attention per row
    (ties broken towards the earlier step)."""
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    k = min(int(k), attn.shape[1])
    # stable: sort descending by attention, earlier index first among equals
    order = torch.sort(attn, dim=1, descending=True, stable=True).indices
    return order[:, :k]


def local_topk_loss(z_cxr: torch.Tensor, z_steps: torch.Tensor, attn: torch.Tensor, k: int,
                    tau: float, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eqs. 6a, 6b and 7: the local alignment loss.

    Parameters
    ----------
    z_cxr : (B, d) global image embeddings
    z_steps : (B, t, d) embeddings of every EHR time step of each patient
    attn : (B, t) attention of each image to its patient's time steps (only its ranking is
        used: the top-k selection is not differentiable)
    k, tau : number of selected steps per image; temperature
    mask : (B, t) bool, optional
        False marks padding (absent words of a report): never in a denominator; a selected
        padded step (fewer than ``k`` real ones) is left out of the mean

    Notes
    -----
    6a: for image ``b`` and a selected step ``j``, softmax over the ``t`` steps of the same
    patient, ``-log exp(s(c_b, e_{b,j})/tau) / sum_j' exp(s(c_b, e_{b,j'})/tau)``.
    6b: for the selected step ``e_{b,j}``, softmax over the ``B`` images of the batch, with
    image ``b`` the positive.  Both are averaged over the ``B k`` selected pairs; eq. 7 is
    their mean.
    """
    B = z_steps.shape[0]
    idx = topk_steps(attn, k)                                   # (B, k)
    c = F.normalize(z_cxr, dim=-1)
    e = F.normalize(z_steps, dim=-1)
    own = torch.einsum("bd,btd->bt", c, e) / tau                # (B, t)
    valid = torch.ones_like(idx, dtype=torch.bool)
    if mask is not None:
        own = own.masked_fill(~mask, float("-inf"))
        valid = mask.gather(1, idx)
    w = valid.float() / valid.float().sum().clamp(min=1)
    logp_a = own.log_softmax(dim=1).gather(1, idx)
    l_a = -(torch.where(valid, logp_a, torch.zeros_like(logp_a)) * w).sum()
    rows = torch.arange(B, device=z_steps.device)[:, None].expand_as(idx)
    chosen = e[rows, idx]                                       # (B, k, d)
    cross = torch.einsum("bkd,cd->bkc", chosen, c) / tau         # (B, k, B)
    logp_b = cross.log_softmax(dim=2).gather(2, rows[:, :, None])[:, :, 0]   # positive: b
    l_b = -(torch.where(valid, logp_b, torch.zeros_like(logp_b)) * w).sum()
    return 0.5 * (l_a + l_b)


def medcam_loss(z_cxr: torch.Tensor, z_ehr: torch.Tensor, z_steps: torch.Tensor,
                attn: torch.Tensor, *, k: int, tau: float, use_global: bool = True,
                use_local: bool = True, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 8: ``L_global + L_local`` (the ablation drops either)."""
    if not (use_global or use_local):
        raise ConfigError("medcam_loss needs the global or the local term (or both)")
    loss = z_cxr.new_zeros(())
    if use_global:
        loss = loss + global_infonce(z_cxr, z_ehr, tau)
    if use_local:
        loss = loss + local_topk_loss(z_cxr, z_steps, attn, k, tau, mask)
    return loss


def convirt_loss(z_img: torch.Tensor, z_other: torch.Tensor, *, tau: float = 0.1,
                 lam: float = 0.75) -> torch.Tensor:
    """ConVIRT: ``lam L_img->other + (1 - lam) L_other->img`` (InfoNCE, cosine / tau)."""
    logits = cosine_logits(z_img, z_other, tau)
    target = torch.arange(len(logits), device=logits.device)
    return lam * F.cross_entropy(logits, target) + (1 - lam) * F.cross_entropy(logits.T, target)


def vicreg_loss(za: torch.Tensor, zb: torch.Tensor, *, sim_coeff: float = 25.0,
                std_coeff: float = 25.0, cov_coeff: float = 1.0) -> torch.Tensor:
    """VICReg: mean squared distance + hinge on each dimension's std (target 1) + squared
    off-diagonal covariances / d, for both branches."""
    inv = F.mse_loss(za, zb)
    za, zb = za - za.mean(0), zb - zb.mean(0)
    std = lambda z: torch.sqrt(z.var(dim=0) + 1e-4)
    var = 0.5 * (F.relu(1 - std(za)).mean() + F.relu(1 - std(zb)).mean())
    n, d = za.shape

    def off(z):
        cov = (z.T @ z) / max(n - 1, 1)
        return (cov.pow(2).sum() - cov.diagonal().pow(2).sum()) / d

    return sim_coeff * inv + std_coeff * var + cov_coeff * (off(za) + off(zb))


def align_loss(z_img: torch.Tensor, z_other: torch.Tensor, log_inv_tau: torch.Tensor
               ) -> torch.Tensor:
    """ALIGN: symmetric InfoNCE with a learned temperature ``exp(-log_inv_tau)``."""
    scale = log_inv_tau.exp().clamp(max=100.0)
    logits = F.normalize(z_img, dim=-1) @ F.normalize(z_other, dim=-1).T * scale
    target = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def barlow_twins_loss(za: torch.Tensor, zb: torch.Tensor, *, lambd: float = 5e-3
                      ) -> torch.Tensor:
    """Barlow Twins: ``sum_i (1 - C_ii)^2 + lambd sum_{i != j} C_ij^2`` with ``C`` the
    cross-correlation of the batch-standardised embeddings of two views."""
    n = za.shape[0]
    za = (za - za.mean(0)) / (za.std(0, unbiased=False) + 1e-5)   # BatchNorm's standardisation
    zb = (zb - zb.mean(0)) / (zb.std(0, unbiased=False) + 1e-5)
    c = za.T @ zb / n
    on = (1 - c.diagonal()).pow(2).sum()
    off = c.pow(2).sum() - c.diagonal().pow(2).sum()
    return on + lambd * off


def soft_target_loss(z_img: torch.Tensor, z_other: torch.Tensor, labels: torch.Tensor, *,
                     tau: float = 0.1) -> torch.Tensor:
    """MedCLIP's semantic matching loss: soft targets from the cosine similarity of the
    two sides' label vectors (so that two studies with the same findings are not
    negatives), cross-entropy in both directions."""
    logits = cosine_logits(z_img, z_other, tau)
    lab = F.normalize(labels.float() + 1e-6, dim=-1)
    target = (lab @ lab.T / tau).softmax(dim=1)
    return 0.5 * (-(target * logits.log_softmax(1)).sum(1).mean()
                  - (target.T * logits.T.log_softmax(1)).sum(1).mean())


# ----------------------------------------------------------------------------- modules


class EHREncoder(nn.Module):
    """f_EHR: an LSTM over the (t, d) time series (Paper E: an LSTM, after MedFuse).

    ``forward(x)`` returns ``(global, steps)``: the last hidden state (the fully encoded
    sequence) (B, hidden) and every step's output (B, t, hidden).
    """

    def __init__(self, n_features: int = 76, hidden: int = 64, layers: int = 1,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        steps, (h, _) = self.lstm(x.float())
        return h[-1], steps


class BagOfWordsEncoder(nn.Module):
    """A text tower for the synthetic reports: bag-of-words counts -> MLP (global), and
    one embedding per word present (the 'steps', for word-level local alignment)."""

    def __init__(self, vocab_size: int, hidden: int = 64) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.hidden = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        present = (x > 0).float()                                          # (B, V)
        steps = present[:, :, None] * self.words.weight[None]              # (B, V, h)
        pooled = steps.sum(1) / present.sum(1, keepdim=True).clamp(min=1)
        return self.mlp(pooled), steps, present > 0


class ResidualAdapter(nn.Module):
    """``x + up(relu(down(x)))`` on a backbone's output (up initialised at zero)."""

    def __init__(self, dim: int, bottleneck: int = 32) -> None:
        super().__init__()
        self.down, self.up = nn.Linear(dim, bottleneck), nn.Linear(bottleneck, dim)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.up(F.relu(self.down(x)))


class AlignmentModel(nn.Module):
    """Image backbone (-> (B, D)) and a second tower (-> (global, steps)), each projected
    to a shared ``dim``-dimensional space; ``forward`` returns ``z_img``, ``z_other``,
    ``z_steps`` and ``attn`` (the image's attention over the steps)."""

    def __init__(self, image: nn.Module, image_dim: int, other: nn.Module, other_dim: int, *,
                 dim: int = 64, attention: Attention = "similarity",
                 update: Literal["full", "adapter", "head"] = "full") -> None:
        super().__init__()
        if update not in ("full", "adapter", "head"):
            raise ConfigError(f"update must be full, adapter or head, got {update!r}")
        if attention not in ("similarity", "learned"):
            raise ConfigError(f"attention must be similarity or learned, got {attention!r}")
        self.image, self.other, self.update = image, other, update
        self.adapter = ResidualAdapter(image_dim) if update == "adapter" else None
        if update in ("adapter", "head"):
            for p in self.image.parameters():
                p.requires_grad_(False)
        self.proj_img = nn.Linear(image_dim, dim)
        self.proj_other = nn.Linear(other_dim, dim)
        self.query = self.key = None
        if attention == "learned":
            self.query, self.key = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.log_inv_tau = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def image_features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.image(x)
        return self.adapter(f) if self.adapter is not None else f

    def adapted_image_encoder(self) -> nn.Module:
        """f~_CXR: the backbone (and its adapter) that fine-tuning continues from."""
        return self.image if self.adapter is None else nn.Sequential(self.image, self.adapter)

    def forward(self, x_img: torch.Tensor, x_other: torch.Tensor) -> dict[str, torch.Tensor]:
        z_img = self.proj_img(self.image_features(x_img))
        g, steps, *rest = self.other(x_other)
        mask = rest[0] if rest else None
        z_other, z_steps = self.proj_other(g), self.proj_other(steps)
        attn = attention_weights(z_img, z_steps, query=self.query, key=self.key, mask=mask)
        return {"z_img": z_img, "z_other": z_other, "z_steps": z_steps, "attn": attn,
                **({"mask": mask} if mask is not None else {})}


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass(frozen=True)
class AlignSpec(Spec):
    """Parameters of :func:`train_alignment`.

    ``objective``: ``medcam`` (eq. 8, ``use_global`` / ``use_local`` for the ablation, top
    ``k`` steps, temperature ``tau``), ``convirt``, ``vicreg``, ``align``; ``labels_loss``
    (MedCLIP's soft targets) needs labels passed to the trainer; ``device``: where the
    model trains (images may be streamed: read and preprocessed per batch).
    """

    objective: Objective = "medcam"
    use_global: bool = True
    use_local: bool = True
    k: int = 10
    tau: float = 0.1
    epochs: int = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    seed: int = 0
    soft_targets: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"objective must be one of {', '.join(OBJECTIVES)}, got "
                              f"{self.objective!r}")
        if self.k < 1 or self.tau <= 0 or self.epochs < 1 or self.lr <= 0 or self.batch_size < 2:
            raise ConfigError("AlignSpec: k >= 1, tau > 0, epochs >= 1, lr > 0, batch_size >= 2")


def pair_loss(model: AlignmentModel, out: dict[str, torch.Tensor], spec: AlignSpec,
              labels: torch.Tensor | None = None) -> torch.Tensor:
    """The objective of ``spec`` on one batch's outputs of ``model``."""
    zi, zo = out["z_img"], out["z_other"]
    if spec.soft_targets:
        if labels is None:
            raise ConfigError("soft_targets needs labels")
        return soft_target_loss(zi, zo, labels, tau=spec.tau)
    if spec.objective == "medcam":
        return medcam_loss(zi, zo, out["z_steps"], out["attn"], k=spec.k, tau=spec.tau,
                           use_global=spec.use_global, use_local=spec.use_local,
                           mask=out.get("mask"))
    if spec.objective == "convirt":
        return convirt_loss(zi, zo, tau=spec.tau)
    if spec.objective == "vicreg":
        return vicreg_loss(zi, zo)
    return align_loss(zi, zo, model.log_inv_tau)


def train_alignment(model: AlignmentModel, images: torch.Tensor, other: torch.Tensor,
                    spec: AlignSpec, *, labels: torch.Tensor | None = None,
                    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
                    ) -> list[float]:
    """Align ``model`` on row-paired ``images`` / ``other`` (AdamW, shuffled batches of
    ``spec.batch_size``, the last incomplete batch dropped when smaller than 2).

    Returns the mean training loss of every epoch.  Deterministic for a given seed (an
    explicit generator orders the batches; torch's global generator is left as it was).
    """
    if len(images) != len(other):
        raise ConfigError(f"images ({len(images)}) and the paired modality ({len(other)}) "
                          "must have the same rows")
    dev = torch.device(spec.device)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    gen = torch.Generator().manual_seed(int(spec.seed))
    n = len(images)
    history: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(spec.seed))
        for _ in range(spec.epochs):
            model.train()
            order = torch.randperm(n, generator=gen)
            tot, nb = 0.0, 0
            for s in range(0, n, spec.batch_size):
                idx = order[s:s + spec.batch_size]
                if len(idx) < 2:
                    continue
                xi = images[idx]
                if augment is not None:
                    xi = augment(xi, gen)
                out = model(xi.to(dev), other[idx].to(dev))
                loss = pair_loss(model, out, spec,
                                 None if labels is None else labels[idx].to(dev))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot += float(loss.detach())
                nb += 1
            history.append(tot / max(nb, 1))
    model.eval()
    return history


@torch.no_grad()
def evaluate_alignment(model: AlignmentModel, images: torch.Tensor, other: torch.Tensor,
                       spec: AlignSpec, *, batch_size: int | None = None) -> float:
    """Mean loss of ``spec``'s objective over consecutive batches (no shuffling)."""
    model.eval()
    bs = batch_size or spec.batch_size
    vals = []
    for s in range(0, len(images), bs):
        if len(images[s:s + bs]) < 2:
            continue
        out = model(images[s:s + bs], other[s:s + bs])
        vals.append(float(pair_loss(model, out, spec)))
    return float(np.mean(vals))


# ----------------------------------------------------------------------------- image-only SSL


def augment_views(x: torch.Tensor, gen: torch.Generator, *, max_shift: int = 3,
                  jitter: float = 0.2, noise: float = 0.05) -> torch.Tensor:
    """A random view of each image (B, C, H, W): shift by up to ``max_shift`` pixels
    (zero padding), horizontal flip with p 0.5, brightness/contrast jitter, Gaussian noise."""
    B, _, H, W = x.shape
    pad = F.pad(x, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (B,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (B,), generator=gen)
    rows = (dy[:, None] + torch.arange(H))[:, :, None]               # (B, H, 1)
    cols = (dx[:, None] + torch.arange(W))[:, None, :]               # (B, 1, W)
    out = pad[torch.arange(B)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)
    flip = torch.rand(B, generator=gen) < 0.5
    out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    a = 1 + jitter * (2 * torch.rand(B, 1, 1, 1, generator=gen) - 1)
    b = jitter * (2 * torch.rand(B, 1, 1, 1, generator=gen) - 1)
    return out * a + b + noise * torch.randn(out.shape, generator=gen)


def pretrain_barlow_twins(backbone: nn.Module, images: torch.Tensor, *, out_dim: int,
                          proj_dim: int = 128, epochs: int = 10, lr: float = 1e-3,
                          batch_size: int = 64, seed: int = 0) -> list[float]:
    """Self-supervised Barlow Twins pretraining of ``backbone`` (-> (B, out_dim)) on two
    :func:`augment_views` of each image; the projector is discarded.  Returns epoch losses."""
    gen = torch.Generator().manual_seed(int(seed))
    hist: list[float] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        proj = nn.Sequential(nn.Linear(out_dim, proj_dim), nn.BatchNorm1d(proj_dim), nn.ReLU(),
                             nn.Linear(proj_dim, proj_dim))
        params = list(backbone.parameters()) + list(proj.parameters())
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
        for _ in range(epochs):
            backbone.train()
            proj.train()
            order = torch.randperm(len(images), generator=gen)
            tot, nb = 0.0, 0
            for s in range(0, len(images), batch_size):
                idx = order[s:s + batch_size]
                if len(idx) < 4:
                    continue
                x = images[idx]
                za = proj(backbone(augment_views(x, gen)))
                zb = proj(backbone(augment_views(x, gen)))
                loss = barlow_twins_loss(za, zb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                tot, nb = tot + float(loss.detach()), nb + 1
            hist.append(tot / max(nb, 1))
    backbone.eval()
    return hist


def bag_of_words(texts: Sequence[str], vocabulary: Sequence[str] | None = None
                 ) -> tuple[torch.Tensor, list[str]]:
    """Binary bag-of-words (N, V) of lower-cased word tokens, with its vocabulary (sorted;
    built from ``texts`` unless given)."""
    import re

    toks = [set(re.findall(r"[a-z]+", t.lower())) for t in texts]
    vocab = sorted(set().union(*toks)) if vocabulary is None else list(vocabulary)
    pos = {w: i for i, w in enumerate(vocab)}
    x = torch.zeros(len(texts), len(vocab))
    for r, ws in enumerate(toks):
        for w in ws:
            if w in pos:
                x[r, pos[w]] = 1.0
    return x, vocab


__all__ = [
    "OBJECTIVES",
    "AlignSpec",
    "AlignmentModel",
    "BagOfWordsEncoder",
    "EHREncoder",
    "ResidualAdapter",
    "align_loss",
    "attention_weights",
    "augment_views",
    "bag_of_words",
    "barlow_twins_loss",
    "convirt_loss",
    "cosine_logits",
    "evaluate_alignment",
    "global_infonce",
    "local_topk_loss",
    "medcam_loss",
    "pair_loss",
    "pretrain_barlow_twins",
    "soft_target_loss",
    "topk_steps",
    "train_alignment",
    "vicreg_loss",
]
