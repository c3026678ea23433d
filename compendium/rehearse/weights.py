"""Weights of the real architectures, written where and how a user's would be.

``hf_snapshot`` writes a model repository into a Hugging Face cache in the hub's own layout
(``models--ORG--NAME/{blobs,refs/main,snapshots/COMMIT}``, snapshot files linked to their
blobs), which :func:`compendium.encoders.weights.find_weights` finds with
``snapshot_download(local_files_only=True)`` exactly as it finds a fetched model.  Weights
are random (seeded): tiny where the architecture's own config travels with the weights
(transformers' ``config.json``: RAD-DINO, DINOv2, MedSigLIP), full size where the loader
builds a fixed architecture (torchvision, timm, open_clip, the dual encoders).  Every file
is safetensors.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: The commit hash the rehearsal's snapshots carry (any 40 hex digits do).
COMMIT = "0" * 39 + "1"


def hf_snapshot(hf_home: Path, repo_id: str, folder: Path) -> Path:
    """Copy the files of ``folder`` into ``hf_home/hub`` as the snapshot of ``repo_id``."""
    repo = Path(hf_home) / "hub" / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for f in sorted(Path(folder).rglob("*")):
        if not f.is_file():
            continue
        h = hashlib.sha256(f.read_bytes()).hexdigest()
        blob = repo / "blobs" / h
        if not blob.exists():
            shutil.copyfile(f, blob)
        link = snap / f.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.exists() or link.is_symlink():
            link.unlink()
        os.symlink(os.path.relpath(blob, link.parent), link)
    return snap


def save_safetensors(module: Any, path: Path, *, metadata: dict[str, str] | None = None) -> Path:
    """A module's state dict as one safetensors file (shared tensors copied apart)."""
    from safetensors.torch import save_file

    sd = {k: v.detach().contiguous().clone() for k, v in module.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(path), metadata=metadata or {"format": "pt"})
    return path


def dinov2_repo(hf_home: Path, repo_id: str, *, size: int, seed: int = 0) -> Path:
    """A tiny random ``Dinov2Model`` (hidden 768, one layer) saved by ``save_pretrained``
    (config.json + model.safetensors) into the cache as ``repo_id``."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=1,
                                         num_attention_heads=12, mlp_ratio=1,
                                         image_size=size, patch_size=14))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return hf_snapshot(hf_home, repo_id, Path(tmp))


def torchvision_densenet121(path: Path, *, seed: int = 0) -> Path:
    """Full-size DenseNet-121 (torchvision's architecture and key names, ImageNet classifier
    kept as in the released checkpoints), random, as ``model.safetensors`` in ``path``."""
    import torch
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = torchvision.models.densenet121(weights=None)
    return save_safetensors(model, Path(path) / "model.safetensors")


def full_size_checkpoint(name: str, path: Path, *, seed: int = 0) -> Path:
    """The registry's architecture of ``name`` at full size, random (seeded), saved as the
    safetensors file ``path``: the module the loader reads a checkpoint into (the open_clip
    model, the timm / torchvision backbone, or the whole dual encoder), with its key names."""
    from ..encoders import load_encoder

    enc = load_encoder(name, pretrained=False, seed=seed, progress=False)
    module = getattr(enc, "model", None) or getattr(enc, "backbone", None) or enc
    return save_safetensors(module, Path(path))


def siglip_repo(hf_home: Path, repo_id: str, *, size: int, embed_dim: int,
                seed: int = 0) -> Path:
    """A tiny random ``SiglipModel`` (one layer per tower, hidden ``embed_dim``) saved by
    ``save_pretrained`` into the cache as ``repo_id``."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiglipModel(SiglipConfig(
            text_config=dict(vocab_size=256, hidden_size=embed_dim, intermediate_size=64,
                             num_hidden_layers=1, num_attention_heads=4,
                             max_position_embeddings=64, projection_size=embed_dim),
            vision_config=dict(hidden_size=embed_dim, intermediate_size=64,
                               num_hidden_layers=1, num_attention_heads=4, image_size=size,
                               patch_size=14)))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return hf_snapshot(hf_home, repo_id, Path(tmp))
