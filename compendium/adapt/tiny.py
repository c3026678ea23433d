"""A tiny, randomly initialised open_clip CLIP behind the encoder interface.

For tests, smoke runs and the mitigation demo: it satisfies the interface of
:mod:`compendium.encoders.base` (``preprocess``, ``encode_images``, ``encode_text``,
``has_text``, ``visual``, ``embed_dim``, ``entry``) without any download.  It is not a
registry entry; real and toy encoders come from :mod:`compendium.encoders`.
"""

from __future__ import annotations

import types

import numpy as np
import torch
from torch import nn


class TinyClipEncoder(nn.Module):
    """open_clip ``CLIP`` with a 2-layer ViT (32 px, patch 8) and a 2-layer text tower.

    Parameters
    ----------
    embed_dim : int
        Joint embedding size.
    seed : int
        Initialisation seed (an explicit generator; the global RNG is left as it was).
    """

    has_text = True

    def __init__(self, embed_dim: int = 32, image_size: int = 32, seed: int = 0) -> None:
        super().__init__()
        from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
        from open_clip.tokenizer import SimpleTokenizer

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.clip = CLIP(embed_dim=embed_dim,
                             vision_cfg=CLIPVisionCfg(layers=2, width=64, patch_size=8,
                                                      image_size=image_size, head_width=32),
                             text_cfg=CLIPTextCfg(context_length=32, vocab_size=49408,
                                                  width=64, heads=2, layers=2))
        self.tokenizer = SimpleTokenizer(context_length=32)
        self.embed_dim = embed_dim
        self.image_size = image_size
        self.entry = types.SimpleNamespace(
            name="tiny-open-clip", lora_targets=("attn", "mlp"),
            embed_dim=embed_dim)

    @property
    def visual(self) -> nn.Module:
        return self.clip.visual

    def preprocess(self, images) -> torch.Tensor:
        """uint8 (B, H, W) / (B, H, W, 3) or float arrays in [0, 1] -> (B, 3, S, S)."""
        x = torch.as_tensor(np.asarray(images))
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        x = x.float()
        if x.ndim == 3:
            x = x[:, None].expand(-1, 3, -1, -1)
        elif x.ndim == 4 and x.shape[-1] in (1, 3):
            x = x.permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
        x = torch.nn.functional.interpolate(x, size=(self.image_size, self.image_size),
                                            mode="bilinear", align_corners=False)
        return (x - 0.5) / 0.25

    def encode_images(self, x: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(x)

    def encode_text(self, texts) -> torch.Tensor:
        return self.clip.encode_text(self.tokenizer(list(texts)))
