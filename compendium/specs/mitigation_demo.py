"""Spec of ``notebooks/mitigation_demo.ipynb``: mitigations on a known, injected disparity."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook

_MITIGATIONS = ("none", "importance_weighting", "resampling", "adversarial")
_TORCH_PROBES = ("linear", "mlp", "mlp-256-128", "mlp-512-256", "mlp-512-256-128")


@register_notebook(
    "mitigation_demo", title="Mitigations on a known disparity",
    description="A probe trained on synthetic embeddings in which a minority group shows the "
                "finding differently, with importance weighting, group resampling and "
                "adversarial debiasing (Paper B's mitigations); all numbers synthetic.")
@dataclass(frozen=True)
class MitigationDemoSpec(NotebookSpec):
    """Parameters of the mitigation demo (synthetic in every profile: nothing to download)."""

    SYNTHETIC_ONLY = True

    #: the probe trained on the embeddings: linear or mlp[-H1[-H2...]] (a torch probe)
    probe: str = "linear"
    #: synthetic embeddings drawn (train, validation and test together)
    n_samples: int = ranged(3000, lo=300, hi=10_000_000)
    #: training epochs of every probe
    epochs: int = ranged(60, lo=1, hi=100_000)
    #: mitigations compared: none (the unmitigated reference, required),
    #: importance_weighting, resampling, adversarial
    mitigations: list[str] = ranged(default_factory=lambda: list(_MITIGATIONS), min_items=1)

    def check(self) -> None:
        if self.probe not in _TORCH_PROBES:
            raise ConfigError(f"probe {self.probe!r} cannot carry an adversary "
                              f"(allowed: {', '.join(_TORCH_PROBES)})")
        bad = [m for m in self.mitigations if m not in _MITIGATIONS]
        if bad:
            raise ConfigError(f"unknown mitigation {bad[0]!r} (allowed: {', '.join(_MITIGATIONS)})")
        if "none" not in self.mitigations:
            raise ConfigError("mitigations must include 'none' (the unmitigated reference)")
        if self.n_samples < 300:
            raise ConfigError(f"n_samples must be >= 300, got {self.n_samples}")
