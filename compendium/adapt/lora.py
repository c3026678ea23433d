"""LoRA on the image encoder through peft (Paper A: low-rank updates to all layers).

Targets are chosen by listing ``named_modules()``: a target pattern matches a module whose
name equals it or ends with ``"." + pattern``; a matched container (``"attn"``, ``"mlp"``)
stands for every linear layer inside it.  The default patterns come from the registry
entry's ``lora_targets``; without an entry, every linear layer under an ``attn`` /
``attention`` / ``mlp`` module is targeted.

``torch.nn.MultiheadAttention`` (open_clip's ViTs) keeps its query/key/value projection in a
fused parameter and never calls ``out_proj.forward``, so LoRA cannot hook onto it; peft's
own wrapper merges and un-merges the adapter around every forward pass, which lets the
"frozen" base weights drift by rounding error.  :func:`split_attention` therefore first
replaces each such module, in the copy being adapted, by :class:`SplitAttention` with
separate ``q_proj``/``k_proj``/``v_proj``/``out_proj`` linear layers holding the same
weights (same outputs up to floating-point rounding), so adapters wrap plain linear layers
and the base weights stay bit-identical.
"""

from __future__ import annotations

import copy as _copy
import dataclasses
import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Spec
from ..errors import ConfigError

log = logging.getLogger(__name__)

#: Module types peft's LoRA can wrap.
SUPPORTED = (nn.Linear, nn.MultiheadAttention, nn.Conv2d, nn.Embedding)


@dataclasses.dataclass(frozen=True)
class LoraSpec(Spec):
    """LoRA hyper-parameters.

    ``targets`` empty: the registry entry's ``lora_targets``; ``split_mha``: replace
    ``nn.MultiheadAttention`` by :class:`SplitAttention` before wrapping (see module doc).
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = dataclasses.field(default_factory=list)
    split_mha: bool = True

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ConfigError(f"LoRA rank r must be >= 1, got {self.r}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern)


class SplitAttention(nn.Module):
    """``nn.MultiheadAttention`` with separate q/k/v/out linear layers (same weights).

    Supports what vision towers use: ``need_weights=False``, ``attn_mask`` (bool: ``True``
    masks out, or additive float), ``key_padding_mask``, ``batch_first`` either way.
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        if not mha._qkv_same_embed_dim or mha.bias_k is not None or mha.add_zero_attn:
            raise ConfigError("only plain self-attention MultiheadAttention can be split")
        e = mha.embed_dim
        self.embed_dim, self.num_heads = e, mha.num_heads
        self.batch_first, self.dropout = mha.batch_first, mha.dropout
        bias = mha.in_proj_bias is not None
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(e, e, bias=bias) for _ in range(3))
        self.out_proj = nn.Linear(e, e, bias=mha.out_proj.bias is not None)
        w = mha.in_proj_weight.detach()
        with torch.no_grad():
            for i, lin in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                lin.weight.copy_(w[i * e:(i + 1) * e])
                if bias:
                    lin.bias.copy_(mha.in_proj_bias.detach()[i * e:(i + 1) * e])
            self.out_proj.weight.copy_(mha.out_proj.weight.detach())
            if self.out_proj.bias is not None:
                self.out_proj.bias.copy_(mha.out_proj.bias.detach())
        for p in self.parameters():
            p.requires_grad_(mha.in_proj_weight.requires_grad)

    def forward(self, query, key=None, value=None, key_padding_mask=None,
                need_weights: bool = False, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False):
        if need_weights:
            raise NotImplementedError("SplitAttention does not return attention weights")
        key = query if key is None else key
        value = key if value is None else value
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        b, lq, e = query.shape
        ls = key.shape[1]
        h = self.num_heads

        def heads(t, n):
            return t.reshape(b, n, h, e // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(query), lq), heads(self.k_proj(key), ls), \
            heads(self.v_proj(value), ls)
        mask = None
        if attn_mask is not None:
            mask = (torch.zeros_like(attn_mask, dtype=q.dtype).masked_fill(attn_mask, float("-inf"))
                    if attn_mask.dtype == torch.bool else attn_mask.to(q.dtype))
            if mask.ndim == 3:
                mask = mask.reshape(b, h, lq, ls)
        if key_padding_mask is not None:
            kpm = key_padding_mask
            kpm = (torch.zeros_like(kpm, dtype=q.dtype).masked_fill(kpm, float("-inf"))
                   if kpm.dtype == torch.bool else kpm.to(q.dtype))
            kpm = kpm[:, None, None, :]
            mask = kpm if mask is None else mask + kpm
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal and mask is None)
        out = self.out_proj(out.transpose(1, 2).reshape(b, lq, e))
        if not self.batch_first:
            out = out.transpose(0, 1)
        return out, None


def split_attention(module: nn.Module) -> int:
    """Replace every ``nn.MultiheadAttention`` in ``module`` by :class:`SplitAttention`
    (in place); returns how many were replaced."""
    n = 0
    for name, child in list(module.named_modules()):
        for cname, sub in list(child.named_children()):
            if isinstance(sub, nn.MultiheadAttention):
                setattr(child, cname, SplitAttention(sub))
                n += 1
    return n


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern)


def default_targets(module: nn.Module) -> list[str]:
    """Linear layers under attention and MLP modules (names containing ``attn``,
    ``attention`` or ``mlp``), plus any un-split ``nn.MultiheadAttention``."""
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

    A pattern matching a container selects the supported layers inside it.  Raises
    :class:`ConfigError` when a pattern matches nothing, naming a few candidates.
    """
    if not patterns:
        names = default_targets(module)
        if not names:
            raise ConfigError("no attention or MLP layer found for LoRA; pass targets")
        return names
    modules = dict(module.named_modules())
    names: list[str] = []
    for pat in patterns:
        hit = []
        for n, m in modules.items():
            if not n or not _matches(n, pat):
                continue
            if isinstance(m, SUPPORTED):
                hit.append(n)
            else:
                hit.extend(c for c, cm in modules.items()
                           if c.startswith(n + ".") and isinstance(cm, nn.Linear))
        if not hit:
            cands = [n for n, m in modules.items() if isinstance(m, SUPPORTED)][:6]
            raise ConfigError(f"LoRA target {pat!r} matches no linear/attention layer "
                              f"(e.g. {', '.join(cands)})")
        names.extend(h for h in hit if h not in names)
    # a layer inside a wrapped MultiheadAttention is handled by the wrapper
    mha = [n for n in names if isinstance(modules[n], nn.MultiheadAttention)]
    names = [n for n in names if not any(n.startswith(p + ".") for p in mha)]
    all_mha = [n for n, m in modules.items() if isinstance(m, nn.MultiheadAttention)]
    for n in names:
        if any(n.startswith(p + ".") for p in all_mha):
            raise ConfigError(f"LoRA target {n!r} is inside nn.MultiheadAttention, which never "
                              "calls it: the adapter would be ignored; keep split_mha=true or "
                              "target the attention module itself")
    return names


def apply_lora(visual: nn.Module, spec: LoraSpec | None = None, *, entry=None,
               copy: bool = True, seed: int = 0) -> nn.Module:
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
    seed : int
        Seeds the adapters' initialisation (the global RNG is restored afterwards).
    """
    from peft import LoraConfig, get_peft_model

    spec = spec or LoraSpec()
    patterns = list(spec.targets) or list(getattr(entry, "lora_targets", ()) or ())
    module = _copy.deepcopy(visual) if copy else visual
    if spec.split_mha:
        split_attention(module)
    targets = lora_target_modules(module, patterns)
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
                        target_modules=targets)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        wrapped = get_peft_model(module, config)
    n_train = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    n_all = sum(p.numel() for p in wrapped.parameters())
    log.info("LoRA r=%d on %d modules: %d of %d parameters trainable", spec.r, len(targets),
             n_train, n_all)
    return wrapped
