"""The uniform encoder interface and the model registry.

Every model of the papers, and every toy stand-in, is an :class:`Encoder`: a
``torch.nn.Module`` wrapper with

* ``preprocess(images)``: uint8/float arrays or PIL images -> float tensor (B, 3, H, W)
  with the entry's size, mean/std and interpolation (or HU window for CT slices);
* ``encode_images(x)``: preprocessed tensor -> (B, embed_dim) embedding;
* ``encode_text(texts)``: list of strings -> (B, embed_dim), only where ``has_text``;
* ``visual``: the image tower ``nn.Module`` (what LoRA wraps and fine-tuning trains);
* ``embed_dim``, ``entry`` (the :class:`ModelEntry` it was built from).

Entries are registered with :func:`register_model`; ``create_model(name, ...)`` builds one.
Nothing here downloads anything.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal, Sequence

from ..registry import Registry


@dataclasses.dataclass(frozen=True)
class Preprocess:
    """Preprocessing that travels with a weights entry."""

    size: int = 224
    mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)
    interpolation: Literal["bicubic", "bilinear", "nearest"] = "bicubic"
    channels: int = 3
    hu_window: tuple[float, float] | None = None  # (level, width) for CT slices


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """What the registry knows about one model."""

    name: str
    family: str                     # "open_clip", "transformers-siglip", "torchvision", ...
    description: str
    weights: str                    # hub id, local file name, or "synthetic-pretraining"
    preprocess: Preprocess
    embed_dim: int
    has_text: bool
    lora_targets: tuple[str, ...]
    paper: str = ""                 # which paper(s) use it
    licence: str = ""
    access: str = ""                # how a user obtains the weights
    demo_standin: str = ""          # toy encoder that stands in for it in the demo
    builder: Callable[..., Any] | None = None   # (entry, weights_path=None, tiny=False, ...) -> Encoder


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(entry: ModelEntry) -> ModelEntry:
    MODELS.add(entry.name, entry, replace=True)
    return entry


def list_models() -> list[str]:
    return MODELS.names()


def describe_models() -> list[str]:
    """One line per registered model (for ``compendium list models``)."""
    return [f"{e.name:<24} {e.family:<22} dim={e.embed_dim:<5} {e.description}"
            for _, e in MODELS.items()]


Texts = Sequence[str]
