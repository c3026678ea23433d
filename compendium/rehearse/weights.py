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
    return save_safetensors(loaded_module(enc), Path(path))


def loaded_module(enc: Any) -> Any:
    """The module an encoder's builder loads a checkpoint into."""
    from ..encoders.encoder import BackboneEncoder, DualEncoder, OpenClipEncoder

    if isinstance(enc, OpenClipEncoder):
        return enc.model
    if isinstance(enc, BackboneEncoder):
        return enc.backbone
    if isinstance(enc, DualEncoder):
        return enc
    raise TypeError(f"no checkpoint layout known for {type(enc).__name__}")


def siglip_repo(hf_home: Path, repo_id: str, *, size: int, embed_dim: int,
                seed: int = 0) -> Path:
    """A tiny random ``SiglipModel`` (one layer per tower, hidden ``embed_dim``) saved by
    ``save_pretrained`` into the cache as ``repo_id``."""
    import torch
    from transformers import SiglipConfig, SiglipModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiglipModel(SiglipConfig(
            text_config=dict(vocab_size=256, bos_token_id=0, pad_token_id=1, eos_token_id=2,
                             hidden_size=embed_dim, intermediate_size=64,
                             num_hidden_layers=1, num_attention_heads=4,
                             max_position_embeddings=64, projection_size=embed_dim),
            vision_config=dict(hidden_size=embed_dim, intermediate_size=64,
                               num_hidden_layers=1, num_attention_heads=4, image_size=size,
                               patch_size=14)))
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return hf_snapshot(hf_home, repo_id, Path(tmp))


#: Words of the tokenizers the rehearsal writes (the prompts' and reports' usual words).
WORDS = ("no", "finding", "findings", "normal", "chest", "x", "ray", "xray", "radiograph", "of",
         "a", "an", "the", "with", "without", "there", "is", "are", "photo", "image", "lung",
         "lungs", "heart", "atelectasis", "cardiomegaly", "consolidation", "edema", "effusion",
         "pleural", "pneumonia", "pneumothorax", "opacity", "enlarged", "small", "large",
         "left", "right", "bilateral", "mild", "moderate", "severe", "evidence", "signs",
         "shows", "showing", "patient", "clear", "acute", "disease", "and", "or", "in", "on")


def bert_tokenizer_repo(hf_home: Path, repo_id: str) -> Path:
    """A WordPiece tokenizer (BertTokenizerFast: ``vocab.txt``, ``tokenizer.json``,
    ``tokenizer_config.json``) as the snapshot of ``repo_id``: the special tokens, the
    letters and :data:`WORDS` (a real vocabulary is ~30k WordPieces; these ids fit it)."""
    import string

    from transformers import BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase,
             *string.digits, *".,;:-()/", *(f"##{c}" for c in string.ascii_lowercase), *WORDS]
    vocab = list(dict.fromkeys(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "v.txt").write_text("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(vocab_file=str(Path(tmp) / "v.txt"), do_lower_case=True)
        out = Path(tmp) / "repo"
        tok.save_pretrained(str(out))
        return hf_snapshot(hf_home, repo_id, out)


def timm_repo(hf_home: Path, repo_id: str, name: str, architecture: str, *,
              seed: int = 0) -> Path:
    """A timm hub repository: ``config.json`` (architecture) and ``model.safetensors`` with
    the registry's architecture of ``name`` at full size (random)."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        full_size_checkpoint(name, Path(tmp) / "model.safetensors", seed=seed)
        (Path(tmp) / "config.json").write_text(json.dumps(
            {"architecture": architecture, "num_classes": 0}))
        return hf_snapshot(hf_home, repo_id, Path(tmp))


def open_clip_repo(hf_home: Path, repo_id: str, name: str, model_cfg: dict, *,
                   seed: int = 0) -> Path:
    """An open_clip hub repository: ``open_clip_config.json`` and
    ``open_clip_model.safetensors`` (the registry's architecture of ``name``, full size)."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        full_size_checkpoint(name, Path(tmp) / "open_clip_model.safetensors", seed=seed)
        (Path(tmp) / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
        return hf_snapshot(hf_home, repo_id, Path(tmp))


def torch_checkpoint(name: str, path: Path, *, seed: int = 0) -> Path:
    """The registry's architecture of ``name`` at full size (random) as a ``torch.save``
    state dict (what the MedCLIP / EVA-X / BarlowTwins releases ship), read back by the
    loader with ``weights_only=True``."""
    import torch

    from ..encoders import load_encoder

    enc = load_encoder(name, pretrained=False, seed=seed, progress=False)
    module = loaded_module(enc)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.detach().clone() for k, v in module.state_dict().items()}, path)
    return path
