"""The uniform :class:`Encoder` interface and the preprocessing that travels with an entry.

Every family (open_clip, transformers SigLIP / DINOv2, torchvision / timm backbones, the
MedCLIP / GLoRIA dual encoders, the embeddings-file adapters) is wrapped in an
:class:`Encoder` with the same four members: ``preprocess``, ``encode_images``,
``encode_text`` (where the model has text) and ``embed_dim``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, InputError
from .base import ModelEntry, Preprocess

log = logging.getLogger(__name__)

#: Lung window (level, width) in Hounsfield units, the default for CT slices (Paper B).
LUNG_WINDOW = (-600.0, 1500.0)


class Preprocessor:
    """Turn images into the normalised tensor an encoder expects (picklable for workers).

    Accepts a uint8 or float array/tensor shaped (H, W), (B, H, W), (B, H, W, C) or
    (B, C, H, W), or a list of such images / PIL images.  uint8 is scaled to [0, 1];
    float input is taken as already in [0, 1] unless ``hu=True``, in which case it is
    Hounsfield units windowed with the entry's ``hu_window`` (default :data:`LUNG_WINDOW`).
    Grey images are repeated to ``channels``; the shorter side is resized to ``resize`` (or
    straight to ``size``), centre-cropped to ``size``, then normalised with mean/std.

    >>> p = Preprocessor(Preprocess(size=8, mean=(0.5,) * 3, std=(0.5,) * 3))
    >>> tuple(p(np.zeros((2, 16, 16), dtype=np.uint8)).shape)
    (2, 3, 8, 8)
    """

    def __init__(self, spec: Preprocess) -> None:
        self.spec = spec

    def __call__(self, images: Any, *, hu: bool = False) -> torch.Tensor:
        x = self._to_tensor(images)
        spec = self.spec
        if hu:
            level, width = spec.hu_window or LUNG_WINDOW
            x = ((x - (level - width / 2)) / width).clamp(0.0, 1.0)
        if x.shape[1] == 1 and spec.channels > 1:
            x = x.expand(-1, spec.channels, -1, -1)
        elif x.shape[1] == 3 and spec.channels == 1:
            x = x.mean(dim=1, keepdim=True)
        x = self._resize_crop(x)
        mean = torch.tensor(spec.mean[: x.shape[1]], dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(spec.std[: x.shape[1]], dtype=x.dtype).view(1, -1, 1, 1)
        return ((x - mean) / std).contiguous()

    # -- helpers
    @staticmethod
    def _to_tensor(images: Any) -> torch.Tensor:
        if isinstance(images, (list, tuple)):
            parts = [Preprocessor._one(im) for im in images]
            shapes = {tuple(p.shape[1:]) for p in parts}
            if len(shapes) > 1:
                raise InputError(f"images in one batch differ in shape: {sorted(shapes)}")
            return torch.cat(parts)
        return Preprocessor._one(images, batched=True)

    @staticmethod
    def _one(im: Any, batched: bool = False) -> torch.Tensor:
        if hasattr(im, "mode") and hasattr(im, "size") and not isinstance(im, np.ndarray):
            im = np.asarray(im)  # PIL image
        if not isinstance(im, torch.Tensor):
            a = np.asarray(im)
            t = torch.from_numpy(a if a.flags.writeable else a.copy())
        else:
            t = im
        if t.dtype == torch.uint8:
            t = t.float() / 255.0
        elif not t.is_floating_point():
            raise InputError(f"images must be uint8 or float, got {t.dtype}")
        t = t.float()
        if t.ndim == 2:
            t = t[None, None]
        elif t.ndim == 3:
            if batched and t.shape[-1] not in (1, 3):
                t = t[:, None]                      # (B, H, W)
            elif t.shape[-1] in (1, 3) and t.shape[0] not in (1, 3):
                t = t.permute(2, 0, 1)[None]        # (H, W, C)
            else:
                t = t[None]                         # (C, H, W)
        elif t.ndim == 4:
            if t.shape[-1] in (1, 3) and t.shape[1] not in (1, 3):
                t = t.permute(0, 3, 1, 2)           # (B, H, W, C)
        else:
            raise InputError(f"cannot read an image batch of shape {tuple(t.shape)}")
        return t

    def _resize_crop(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        h, w = x.shape[-2:]
        target = spec.resize or spec.size
        mode = spec.interpolation
        kw: dict[str, Any] = {"antialias": True, "align_corners": False} if mode != "nearest" else {}
        if (h, w) != (target, target) or h != w:
            scale = target / min(h, w)
            nh, nw = max(target, round(h * scale)), max(target, round(w * scale))
            if (nh, nw) != (h, w):
                x = F.interpolate(x, size=(nh, nw), mode=mode, **kw)
        h, w = x.shape[-2:]
        if (h, w) != (spec.size, spec.size):
            top, left = (h - spec.size) // 2, (w - spec.size) // 2
            x = x[..., top: top + spec.size, left: left + spec.size]
        return x


class Encoder(nn.Module):
    """Common wrapper: ``preprocess``, ``encode_images``, ``encode_text``, ``embed_dim``.

    Subclasses implement :meth:`_image_features` (and :meth:`_text_features` when the model
    has a text tower) and set ``visual`` to the image tower module (what LoRA wraps).
    """

    def __init__(self, entry: ModelEntry, *, embed_dim: int | None = None,
                 tokenizer: Callable[[Sequence[str]], Any] | None = None) -> None:
        super().__init__()
        self.entry = entry
        self.embed_dim = int(embed_dim if embed_dim is not None else entry.embed_dim)
        self.preprocessor = Preprocessor(entry.preprocess)
        self.tokenizer = tokenizer
        self.weights_id = "random-init"  # set by builders to a fingerprint of the weights

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def has_text(self) -> bool:
        return self.entry.has_text

    @property
    def zero_shot_scale(self) -> float:
        """The factor of the image-text cosine in zero-shot logits: the model's own learned
        scale where it carries one, else CLIP's cap of 100."""
        return 100.0

    def preprocess(self, images: Any, *, hu: bool = False) -> torch.Tensor:
        """Images (see :class:`Preprocessor`) -> normalised float tensor (B, C, H, W)."""
        return self.preprocessor(images, hu=hu)

    def encode_images(self, x: torch.Tensor, *, normalize: bool = False) -> torch.Tensor:
        """Preprocessed tensor (B, C, H, W) -> embeddings (B, embed_dim)."""
        feats = self._image_features(x)
        return F.normalize(feats, dim=-1) if normalize else feats

    def encode_text(self, texts: Sequence[str], *, normalize: bool = False) -> torch.Tensor:
        """List of strings -> embeddings (B, embed_dim), for models with a text tower."""
        if not self.has_text:
            raise ConfigError(f"model {self.name!r} has no text encoder")
        if isinstance(texts, str):
            texts = [texts]
        if self.tokenizer is None:
            raise ConfigError(f"model {self.name!r} was built without a tokenizer "
                              "(pass tokenizer_path= or a tokenizer)")
        feats = self._text_features(list(texts))
        return F.normalize(feats, dim=-1) if normalize else feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_images(x)

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _text_features(self, texts: list[str]) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Run an HF-style tokenizer and move its tensors to the model's device."""
        enc = self.tokenizer(texts, padding="max_length" if self._pad_max else True,
                             truncation=True, max_length=self._max_len, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()
                if k in ("input_ids", "attention_mask", "token_type_ids")}

    _pad_max = False
    _max_len = 77


def pool_tokens(hidden: torch.Tensor, how: str, *, mask: torch.Tensor | None = None,
                pooled: torch.Tensor | None = None) -> torch.Tensor:
    """Reduce token-level outputs (B, T, D) to (B, D).

    ``how``: ``"cls"`` (first token), ``"mean"`` (mean over tokens, the mask respected,
    Paper D's choice for token outputs), ``"mean-patch"`` (mean over all but the first
    token), ``"pooler"`` (the model's own pooled output).
    """
    if how == "cls":
        return hidden[:, 0]
    if how == "pooler":
        if pooled is None:
            raise ConfigError("token_pooling='pooler' but the model returns no pooled output")
        return pooled
    if how == "mean":
        if mask is None:
            return hidden.mean(dim=1)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
    if how == "mean-patch":
        return hidden[:, 1:].mean(dim=1)
    raise ConfigError(f"unknown token pooling {how!r} (allowed: cls, mean, mean-patch, pooler)")


# ----------------------------------------------------------------------------- families


class OpenClipEncoder(Encoder):
    """An ``open_clip`` CLIP / CustomTextCLIP model (CLIP ViT-B/16, BiomedCLIP, toys)."""

    def __init__(self, entry: ModelEntry, model: nn.Module, tokenizer: Any,
                 embed_dim: int | None = None) -> None:
        super().__init__(entry, embed_dim=embed_dim, tokenizer=tokenizer)
        self.model = model
        self.visual = model.visual

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        ids = self.tokenizer(texts)
        if isinstance(ids, dict):
            ids = ids["input_ids"]
        return self.model.encode_text(ids.to(self.device))

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale

    @property
    def zero_shot_scale(self) -> float:
        """exp(logit_scale), capped at 100 as CLIP's training caps it."""
        return float(self.model.logit_scale.detach().exp().clamp(max=100.0))


class SiglipEncoder(Encoder):
    """A transformers ``SiglipModel`` (MedSigLIP)."""

    _pad_max = True
    _max_len = 64

    def __init__(self, entry: ModelEntry, model: nn.Module, tokenizer: Any = None) -> None:
        super().__init__(entry, embed_dim=model.config.vision_config.hidden_size,
                         tokenizer=tokenizer)
        self.model = model
        self.visual = model.vision_model
        self._max_len = min(64, model.config.text_config.max_position_embeddings)

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.get_image_features(pixel_values=x)
        return out if isinstance(out, torch.Tensor) else out.pooler_output

    @property
    def zero_shot_scale(self) -> float:
        """exp(logit_scale) of the SigLIP model."""
        return float(self.model.logit_scale.detach().exp())

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        tok = self._tokens(texts)
        tok.pop("token_type_ids", None)
        tok.pop("attention_mask", None)  # SigLIP was trained on max-length padding, no mask
        out = self.model.get_text_features(**tok)
        return out if isinstance(out, torch.Tensor) else out.pooler_output


class BackboneEncoder(Encoder):
    """An image-only backbone: transformers DINOv2, timm ViT, torchvision ResNet-50."""

    def __init__(self, entry: ModelEntry, backbone: nn.Module, *, kind: str,
                 embed_dim: int, pooling: str | None = None) -> None:
        super().__init__(entry, embed_dim=embed_dim)
        self.backbone = backbone
        self.visual = backbone
        self.kind = kind
        self.pooling = pooling or entry.token_pooling

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "hf":
            out = self.backbone(pixel_values=x)
            return pool_tokens(out.last_hidden_state, self.pooling,
                               pooled=getattr(out, "pooler_output", None))
        if self.kind == "timm":
            tokens = self.backbone.forward_features(x)
            if self.pooling == "cls":
                return self.backbone.forward_head(tokens, pre_logits=True)
            return pool_tokens(tokens, self.pooling)
        return self.backbone(x)  # torchvision with fc = Identity


class _Tower(nn.Module):
    """``model`` + ``projection_head``: the naming of MedCLIP's released checkpoints."""

    def __init__(self, model: nn.Module, projection_head: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.projection_head = projection_head


class _VisionTower(_Tower):
    """The image tower as a module of its own: ``forward(images)`` gives the projected image
    features, so that LoRA and fine-tuning can adapt it (``encoder.visual``)."""

    def __init__(self, model: nn.Module, projection_head: nn.Module, *, kind: str) -> None:
        super().__init__(model, projection_head)
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = (self.model(pixel_values=x).pooler_output if self.kind == "swin"
                 else self.model(x))
        return self.projection_head(feats)


class DualEncoder(Encoder):
    """Image backbone + BERT text tower + projections (MedCLIP ViT/RN50, GLoRIA).

    ``vision_kind``: ``"swin"`` (transformers SwinModel, pooled output) or ``"resnet"``
    (torchvision ResNet-50 with ``fc = Identity``).  ``text_pooling``: ``"medclip"`` (mean
    of tokens of the first, second and last hidden layers, then mean over those layers, as
    MedCLIP's text model does) or ``"last4-cls"`` (GLoRIA-style: the CLS token of the sum of
    the last four layers).
    """

    _pad_max = False

    def __init__(self, entry: ModelEntry, vision: nn.Module, vision_proj: nn.Module,
                 text: nn.Module | None, text_proj: nn.Module | None, *, vision_kind: str,
                 text_pooling: str, tokenizer: Any = None, max_len: int = 77) -> None:
        super().__init__(entry, tokenizer=tokenizer)
        self.vision_model = _VisionTower(vision, vision_proj, kind=vision_kind)
        self.text_model = _Tower(text, text_proj) if text is not None else None
        self.visual = self.vision_model
        self.vision_kind = vision_kind
        self.text_pooling = text_pooling
        self._max_len = max_len

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.vision_model(x)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        tok = self._tokens(texts)
        out = self.text_model.model(**tok, output_hidden_states=True)
        hs = out.hidden_states
        if self.text_pooling == "medclip":
            stack = torch.stack([hs[1], hs[2], hs[-1]])           # (3, B, T, D)
            emb = stack.permute(1, 0, 2, 3).mean(2).mean(1)        # tokens, then layers
        else:
            emb = torch.stack(hs[-4:]).sum(0)[:, 0]
        return self.text_model.projection_head(emb)


class EmbeddingsFileEncoder(Encoder):
    """Adapter for models whose official release is not a PyTorch module.

    MedImageInsight and CXR Foundation (ELIXR) are run with the vendor's own tool; this
    adapter reads what that tool wrote: an ``.npz`` file with ``sample_id`` (n,) strings and
    ``embeddings`` (n, D) or token features (n, T, D), mean-pooled over T (Paper D).
    """

    def __init__(self, entry: ModelEntry, path: Any, *, pooling: str = "mean") -> None:
        super().__init__(entry)
        from .weights import read_embeddings_file

        ids, emb = read_embeddings_file(path, entry=entry)
        if emb.ndim == 3:
            emb = pool_tokens(torch.from_numpy(emb), pooling).numpy()
        if emb.shape[1] != entry.embed_dim:
            raise InputError(f"{entry.name}: {path} holds {emb.shape[1]}-d embeddings, "
                             f"the model's are {entry.embed_dim}-d")
        self.sample_ids = ids
        self.table = emb.astype(np.float32)
        self._row = {s: i for i, s in enumerate(ids)}
        self.visual = nn.Identity()
        import hashlib

        self.weights_id = "file:" + hashlib.sha256(self.table.tobytes()).hexdigest()[:16]

    def encode_samples(self, sample_ids: Sequence[str]) -> np.ndarray:
        """Embeddings of the given samples, in the given order."""
        missing = [s for s in sample_ids if s not in self._row]
        if missing:
            raise InputError(f"{self.name}: {len(missing)} sample(s) not in the embeddings "
                             f"file, e.g. {missing[0]!r}")
        return self.table[[self._row[s] for s in sample_ids]]

    def _image_features(self, x: torch.Tensor) -> torch.Tensor:
        raise ConfigError(f"{self.name} is read from embeddings its vendor's tool produced; "
                          "use encode_samples(sample_ids), not encode_images")
