"""Spec of ``notebooks/paper_a.ipynb``: Paper A, CLIP-like models on NIH 6x200."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook

_METHODS = ("zero-shot", "linear", "mlp", "lora", "finetune")
_TRAINED = ("linear", "mlp", "lora", "finetune")
_COHORTS = ("nih-6x200", "nih-6x200-synthetic")


@register_notebook(
    "paper_a", title="Paper A: fairness of CLIP-like models on NIH 6x200",
    description="Zero-shot, linear probe, MLP, LoRA and full fine-tuning of CLIP-like encoders "
                "on NIH 6x200 (real NIH rows); accuracy, class-wise F1, Var_F1, group F1, F1 "
                "gap, EqOdds and ECE gap with bootstrap intervals and permutation p-values.")
@dataclass(frozen=True)
class PaperASpec(NotebookSpec):
    """Parameters of Paper A (``full``: the paper's models and settings on the user's NIH
    images; ``demo``/``smoke``: toy stand-ins on the real NIH 6x200 rows with synthetic
    pixels)."""

    #: nih-6x200 (the user's NIH images under data_root) or nih-6x200-synthetic
    cohort: str = "nih-6x200-synthetic"
    #: the NIH ChestX-ray14 folder (full profile)
    data_root: str = ""
    #: synthetic pixels: world seed and bias knobs ("default", "zero")
    world_seed: int = 0
    knobs: str = "default"
    #: encoders (registry names), and for a toy the paper model it stands in for
    models: list[str] = field(default_factory=lambda: ["toy-clip-resnet", "toy-clip-vit",
                                                       "toy-clip-vit-skewed"])
    stand_in_for: dict[str, str] = field(default_factory=dict)
    #: model -> the backbone fine-tuned in its place (Paper A: CLIP -> ImageNet ViT-B/16)
    finetune_backbone: dict[str, str] = field(default_factory=dict)
    #: model -> local weights file/folder (else the Hugging Face cache is searched)
    weights: dict[str, str] = field(default_factory=dict)
    #: False: random-init encoders (smoke: exercises the wiring only)
    pretrained: bool = True
    methods: list[str] = field(default_factory=lambda: list(_METHODS))
    #: zero-shot: prompt families (empty: all three) and draws of the random families
    prompt_families: list[str] = field(default_factory=list)
    n_draws: int = 10
    #: probes (LP, MLP) and adaptation (LoRA, FT): epochs, early stopping, batch, LR grids
    epochs: int = 150
    adapt_epochs: int = 150
    patience: int | None = None
    batch_size: int = 64
    learning_rates: dict[str, list[float]] = field(default_factory=lambda: {
        "linear": [1e-3, 1e-2], "mlp": [1e-3, 1e-2], "lora": [1e-4, 1e-3],
        "finetune": [1e-5, 1e-4]})
    lora_rank: int = 8
    device: str = "auto"
    #: torch CPU threads (0: torch's default; 1 is fastest for the toy encoders)
    threads: int = 0
    #: statistics
    n_bootstrap: int = 1000
    n_permutations: int = 10000
    correction: str = "holm"
    #: null simulation of gaps at n = 240 test images: accuracies and simulations
    null_accuracies: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.494, 0.596, 0.7])
    null_sims: int = 2000

    def check(self) -> None:
        from ..adapt.prompts import list_prompt_families
        from ..audit.stats import CORRECTIONS
        from ..encoders import get_entry

        if self.cohort not in _COHORTS:
            raise ConfigError(f"cohort {self.cohort!r} (allowed: {', '.join(_COHORTS)})")
        if self.knobs not in ("default", "zero"):
            raise ConfigError(f"knobs {self.knobs!r} (allowed: default, zero)")
        if not self.models:
            raise ConfigError("models is empty")
        for name in [*self.models, *self.finetune_backbone.values(), *self.weights]:
            get_entry(name)
        for name in [*self.stand_in_for, *self.finetune_backbone]:
            if name not in self.models:
                raise ConfigError(f"{name!r} is not one of models ({', '.join(self.models)})")
        bad = [m for m in self.methods if m not in _METHODS]
        if bad or not self.methods:
            raise ConfigError(f"unknown method {bad[0] if bad else '(none)'!r} "
                              f"(allowed: {', '.join(_METHODS)})")
        fams = list_prompt_families()
        for f in self.prompt_families:
            if f not in fams:
                raise ConfigError(f"unknown prompt family {f!r} (allowed: {', '.join(fams)})")
        for m in self.methods:
            if m in _TRAINED and not self.learning_rates.get(m):
                raise ConfigError(f"learning_rates needs a list for {m!r}")
        for m, grid in self.learning_rates.items():
            if m not in _TRAINED:
                raise ConfigError(f"learning_rates key {m!r} (allowed: {', '.join(_TRAINED)})")
            if any(v <= 0 for v in grid):
                raise ConfigError(f"learning_rates[{m}] must be > 0")
        for key in ("n_draws", "epochs", "adapt_epochs", "batch_size", "lora_rank", "null_sims"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or null, got {self.patience}")
        if self.threads < 0:
            raise ConfigError(f"threads must be >= 0, got {self.threads}")
        if self.n_bootstrap < 0 or self.n_permutations < 0:
            raise ConfigError("n_bootstrap and n_permutations must be >= 0")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction {self.correction!r} (allowed: {', '.join(CORRECTIONS)})")
        if any(not 1 / 6 <= a <= 1 for a in self.null_accuracies):
            raise ConfigError("null_accuracies must lie in [1/6, 1] (six classes)")
