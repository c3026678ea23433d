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
from typing import Any, Callable, Literal, Mapping, Sequence

from ..errors import ConfigError
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
    resize: int | None = None       # shorter side resized to this before the centre crop
                                    # to ``size`` (None: resized straight to ``size``)

    def describe(self) -> str:
        """Short human-readable form, e.g. ``224 px bicubic, mean (0.5,) std (0.5,)``."""
        r = f"resize {self.resize} + crop {self.size}" if self.resize else f"{self.size} px"
        mean = ", ".join(f"{m:.3g}" for m in dict.fromkeys(self.mean))
        std = ", ".join(f"{s:.3g}" for s in dict.fromkeys(self.std))
        hu = f", HU window L{self.hu_window[0]:g}/W{self.hu_window[1]:g}" if self.hu_window else ""
        return f"{r} {self.interpolation}, mean ({mean}) std ({std}){hu}"


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
    text_encoder: str = ""          # e.g. "BioClinicalBERT (BertModel)"; "" when image-only
    tokenizer: str = ""             # e.g. "open_clip SimpleTokenizer (BPE, 77 tokens)"
    hub_id: str = ""                # Hugging Face repo holding the weights ("" if none)
    hub_extra: tuple[str, ...] = () # further repos needed offline (e.g. a text tokenizer)
    gated: bool = False             # the hub repo needs accepted terms and a token
    token_pooling: str = "cls"      # how token-level outputs become one vector
    kind: Literal["module", "embeddings-file", "toy"] = "module"


MODELS: Registry[ModelEntry] = Registry("model")


def register_model(entry: ModelEntry) -> ModelEntry:
    MODELS.add(entry.name, entry, replace=True)
    return entry


def list_models() -> list[str]:
    return load_entries().names()


def load_entries() -> Registry[ModelEntry]:
    """Import the modules that register entries (light: no torch at import)."""
    from . import models, toy, toy_ct  # noqa: F401  (registration side effect)

    return MODELS


def get_entry(name: str) -> ModelEntry:
    """The entry registered as ``name`` (unknown names raise :class:`ConfigError`)."""
    return load_entries().get(name)


def create_model(name: str, /, **kwargs: Any) -> Any:
    """Build the :class:`~compendium.encoders.encoder.Encoder` registered as ``name``.

    Keyword arguments go to the entry's builder: ``weights_path`` (a local file or folder),
    ``tiny`` (the real architecture from a tiny random-init config, for tests),
    ``pretrained`` (False: full-size random init), ``device``, ``trust_remote_code``.
    """
    entry = get_entry(name)
    if entry.builder is None:  # pragma: no cover - every registered entry has one
        raise ConfigError(f"model {name!r} has no builder")
    return entry.builder(entry, **kwargs)


def load_encoder(name: str, *, pretrained: bool = True, weights: Any = None,
                 device: str = "cpu", seed: int = 0, progress: bool = True) -> Any:
    """Build encoder ``name`` the same way for every registry entry.

    Parameters
    ----------
    name : str
        Registry name (real model, vendor-embeddings adapter or toy).
    pretrained : bool
        False: random initialisation (a toy skips its synthetic pretraining; a real model is
        built at full size from its architecture config, no weights read).
    weights : path, optional
        Local weights file or folder (for a vendor adapter: its embeddings ``.npz``); else the
        Hugging Face cache is searched (a toy pretrains once and caches itself).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``... (:func:`compendium.runtime.resolve_device`).
    seed : int
        Seeds any random initialisation, without touching torch's global generator.
    progress : bool
        Progress bars for work done while building (a toy's first pretraining).
    """
    import torch

    from ..runtime import resolve_device

    dev = str(resolve_device(device))
    kwargs: dict[str, Any] = {"pretrained": bool(pretrained), "device": dev, "progress": progress}
    if weights:
        kwargs["weights_path"] = weights
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return create_model(name, **kwargs)


def stand_in(name: str, overrides: Mapping[str, str] | None = None) -> str:
    """The toy encoder that stands in for model ``name`` in the synthetic world.

    The registry's ``demo_standin`` unless ``overrides`` (a notebook's ``stand_ins``
    parameter: model -> toy) names another; a toy stands in for itself.
    """
    entry = get_entry(name)
    chosen = dict(overrides or {}).get(name, entry.demo_standin or name)
    if get_entry(chosen).kind != "toy":
        raise ConfigError(f"stand-in of {name!r} must be a toy encoder, got {chosen!r} "
                          f"(toys: {', '.join(n for n, e in MODELS.items() if e.kind == 'toy')})")
    return chosen


def describe_models() -> list[str]:
    """One line per registered model (for ``compendium list models``)."""
    load_entries()
    return [f"{e.name:<26} {e.family:<22} dim={e.embed_dim:<5} {e.description}"
            for _, e in MODELS.items()]


Texts = Sequence[str]
