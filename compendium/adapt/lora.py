"""LoRA on the image encoder through peft (Paper A: low-rank updates to all layers).

Targets are chosen by listing ``named_modules()``: a target pattern matches a module whose
name equals it or ends with ``"." + pattern``.  The default patterns come from the registry
entry's ``lora_targets``; without an entry, every attention (``nn.MultiheadAttention`` or a
linear layer under an ``attn``/``attention`` module) and MLP linear layer is targeted.
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import logging
from typing import Sequence

from torch import nn

from ..config import Spec
from ..errors import ConfigError

log = logging.getLogger(__name__)

#: Module types peft's LoRA can wrap.
SUPPORTED = (nn.Linear, nn.MultiheadAttention, nn.Conv2d, nn.Embedding)


@dataclasses.dataclass(frozen=True)
class LoraSpec(Spec):
    """LoRA hyper-parameters (``targets`` empty: the registry entry's ``lora_targets``)."""

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"LoRA rank r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern)


def default_targets(module: nn.Module) -> list[str]:
    """Attention and MLP layers of ``module`` (whole ``MultiheadAttention`` modules; linear
    layers inside them are covered by the wrapper and not listed again)."""
    names: list[str] = []
    mha = [n for n, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for n, m in module.named_modules():
        if isinstance(m, nn.MultiheadAttention):
            names.append(n)
        elif isinstance(m, nn.Linear) and not any(n.startswith(p + ".") for p in mha):
            if any(k in p for p in n.lower().split(".") for k in ("attn", "attention", "mlp")):
                names.append(n)
    return names


def lora_target_modules(module: nn.Module, patterns: Sequence[str] | None = None) -> list[str]:
    """Full module names selected by ``patterns`` (suffix match) among supported layers.

    Raises :class:`ConfigError` when a pattern matches nothing, naming a few candidates.
    """
    if not patterns:
        names = default_targets(module)
        if not names:
            raise ConfigError("no attention or MLP layer found for LoRA; pass targets")
        return names
    modules = dict(module.named_modules())
    names: list[str] = []
    for pat in patterns:
        hit = [n for n, m in modules.items() if n and _matches(n, pat) and isinstance(m, SUPPORTED)]
        if not hit:
            cands = [n for n, m in modules.items() if isinstance(m, SUPPORTED)][:6]
            raise ConfigError(f"LoRA target {pat!r} matches no linear/attention layer "
                              f"(e.g. {', '.join(cands)})")
        names.extend(h for h in hit if h not in names)
    # a layer inside a wrapped MultiheadAttention is handled by the wrapper
    mha = [n for n in names if isinstance(modules[n], nn.MultiheadAttention)]
    return [n for n in names if not any(n.startswith(p + ".") for p in mha)]


def apply_lora(visual: nn.Module, spec: LoraSpec | None = None, *, entry=None,
               copy: bool = True) -> nn.Module:
    """Wrap an image tower with LoRA adapters; only adapter parameters stay trainable.

    Parameters
    ----------
    visual : nn.Module
        The image encoder (``encoder.visual``).
    spec : LoraSpec
        Rank, alpha, dropout, targets (empty: ``entry.lora_targets`` or the defaults).
    entry : ModelEntry, optional
        Registry entry giving the default targets.
    copy : bool
        Wrap a deep copy, leaving the encoder itself untouched (default).
    """
    from peft import LoraConfig, get_peft_model

    spec = spec or LoraSpec()
    patterns = list(spec.targets) or list(getattr(entry, "lora_targets", ()) or ())
    module = _copy.deepcopy(visual) if copy else visual
    targets = lora_target_modules(module, patterns)
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=targets)
    wrapped = get_peft_model(module, config)
    n_train = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in wrapped.parameters())
    log.info("LoRA r=%d on %d modules: %d of %d parameters trainable", spec.r, len(targets),
             n_train, n_all)
    return wrapped
