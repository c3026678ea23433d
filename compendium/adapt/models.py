"""The classifier module shared by probes, LoRA and full fine-tuning.

``Classifier(backbone, in_features, n_outputs, hidden=...)`` computes
``z = body(backbone(x))`` (``body``: optional hidden layers) and ``logits = head(z)``;
with ``adversary_alpha > 0`` a gradient-reversal adversary predicts the protected
attribute from ``z`` (``adv_logits``).  ``forward`` returns a dict with ``logits``,
``features`` (``z``) and, with an adversary, ``adv_logits``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .mitigation import init_linear_, make_adversary


def mlp_body(in_features: int, hidden: Sequence[int], *, dropout: float = 0.0,
             batch_norm: bool = False) -> tuple[nn.Module, int]:
    """``[Linear -> (BatchNorm) -> ReLU -> (Dropout)] x len(hidden)``; returns (module, width)."""
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        layers.append(nn.Linear(width, int(h)))
        if batch_norm:
            layers.append(nn.BatchNorm1d(int(h)))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = int(h)
    return (nn.Sequential(*layers) if layers else nn.Identity()), width


class Classifier(nn.Module):
    """Backbone (frozen, LoRA-wrapped or trainable) + optional hidden layers + linear head.

    Parameters
    ----------
    backbone : nn.Module or None
        Maps inputs to ``(B, in_features)`` (e.g. an image tower); ``None`` for embeddings.
    in_features : int
    n_outputs : int
        Classes (multiclass), labels (multilabel) or 1 (binary).
    hidden : sequence of int
        Widths of hidden layers between backbone and head.
    adversary_alpha : float
        Gradient-reversal strength; ``0`` means no adversary.
    n_groups : int
        Number of values of the protected attribute (adversary output size).
    seed : int
        Initialisation of the new layers (explicit generator; global RNG untouched).
    """

    def __init__(self, backbone: nn.Module | None, in_features: int, n_outputs: int, *,
                 hidden: Sequence[int] = (), dropout: float = 0.0, batch_norm: bool = False,
                 adversary_alpha: float = 0.0, n_groups: int = 2, adversary_hidden: int = 64,
                 seed: int = 0) -> None:
        super().__init__()
        self.backbone = backbone if backbone is not None else nn.Identity()
        self.body, width = mlp_body(in_features, hidden, dropout=dropout,
                                    batch_norm=batch_norm)
        self.head = nn.Linear(width, n_outputs)
        init_linear_(self.body, seed)
        init_linear_(self.head, seed + 1)
        self.adversary = None
        if adversary_alpha > 0:
            self.adversary = make_adversary(width, n_groups, hidden=adversary_hidden,
                                            alpha=adversary_alpha, seed=seed + 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.backbone(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.features(x)
        out = {"logits": self.head(z), "features": z}
        if self.adversary is not None:
            out["adv_logits"] = self.adversary(z)
        return out
