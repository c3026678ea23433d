"""Small image towers for the synthetic world (demo / smoke): a ResNet-like CNN and a tiny
EVA-style ViT (timm's ``Eva``: rotary position embeddings, SwiGLU MLP), both on one
grey channel.  They are architectures only (random init); what they learn comes from the
pretraining recipes that use them (:mod:`compendium.adapt.alignment`)."""

from __future__ import annotations

from itertools import pairwise

from torch import nn


class SmallCNN(nn.Module):
    """A ResNet-stem-like CNN: four stride-2 stages of (conv 3x3, BatchNorm, ReLU), global
    average pooling; output ``(B, 8 width)``.  (One convolution per stage keeps a demo's
    dozens of fine-tuning runs within minutes on two CPU cores.)"""

    def __init__(self, width: int = 8, in_chans: int = 1) -> None:
        super().__init__()
        chans = [in_chans, width, 2 * width, 4 * width, 8 * width]
        self.stages = nn.Sequential(*(
            nn.Sequential(nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())
            for a, b in pairwise(chans)))
        self.out_dim = chans[-1]

    def forward(self, x):
        return self.stages(x).mean(dim=(2, 3))


class TinyEva(nn.Module):
    """timm's ``Eva`` (EVA-02 / EVA-X blocks) at toy size: mean-pooled tokens, ``(B, dim)``."""

    def __init__(self, img_size: int = 32, patch_size: int = 8, dim: int = 32, depth: int = 2,
                 heads: int = 2, in_chans: int = 1) -> None:
        super().__init__()
        from timm.models.eva import Eva

        g = img_size // patch_size
        self.vit = Eva(img_size=img_size, patch_size=patch_size, in_chans=in_chans,
                       num_classes=0, embed_dim=dim, depth=depth, num_heads=heads,
                       mlp_ratio=4 * 2 / 3, swiglu_mlp=True, use_rot_pos_emb=True,
                       ref_feat_shape=(g, g), global_pool="avg")
        self.out_dim = dim

    def forward(self, x):
        return self.vit(x)


__all__ = ["SmallCNN", "TinyEva"]
