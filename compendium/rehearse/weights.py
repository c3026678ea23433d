"""Weights of the real architectures, written where and how a user's would be.

``hf_snapshot`` writes a model repository into a Hugging Face cache in the hub's own layout
(``models--ORG--NAME/{blobs,refs/main,snapshots/COMMIT}``, snapshot files linked to their
blobs), which :func:`compendium.encoders.weights.find_weights` finds with
``snapshot_download(local_files_only=True)`` exactly as it finds a fetched model.  Weights
are random (seeded): tiny where the architecture's own config travels with the weights
and the loader reads it as the library does (transformers' ``config.json``: RAD-DINO,
DINOv2, MedSigLIP; open_clip's ``open_clip_config.json``: CLIP, BiomedCLIP, with
BiomedBERT's ``config.json``; timm's ``config.json`` with ``model_args``: the ImageNet
ViT-B/16), full size where the release is a bare state dict of an architecture fixed in the
authors' code (torchvision's ResNet-50 / DenseNet-121, MedCLIP's Swin-T, EVA-X).  A tiny
config keeps the registry's embedding size, image size and preprocessing.  Checkpoints
are safetensors, or ``torch.save`` files where the release ships those.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: The commit hash the rehearsal's snapshots carry (any 40 hex digits do).
COMMIT = "0" * 39 + "1"


#: Checkpoints this process has written: (format, model, seed) -> path.  Writing the same
#: one again links (or copies) that file instead of building the model again: the same
#: bytes, as the seed fixes them (a test session's rehearsals share GLoRIA and MedCLIP).
_WRITTEN: dict[tuple, Path] = {}


def _arch_key(name: str) -> str:
    """What besides the name decides a checkpoint's architecture: the configs of the
    entry's companion repositories in the cache (BioClinicalBERT's config.json)."""
    from ..encoders import get_entry
    from ..encoders.models import _cached_repo_config

    return json.dumps([_cached_repo_config(r) for r in get_entry(name).hub_extra],
                      sort_keys=True)


def _written_once(key: tuple, path: Path, write: Any) -> Path:
    path = Path(path)
    key = (*key, _arch_key(key[1]))
    old = _WRITTEN.get(key)
    if old is not None and old != path and old.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        try:
            os.link(old, path)
        except OSError:
            shutil.copyfile(old, path)
        return path
    write(path)
    _WRITTEN[key] = path
    return path


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


def dinov2_repo(hf_home: Path, repo_id: str, *, size: int, patch: int = 14,
                seed: int = 0) -> Path:
    """A tiny random ``Dinov2Model`` (hidden 768, one layer, ``patch`` px patches: 14 as
    released, larger for fewer tokens at a large input size) saved by ``save_pretrained``
    (config.json + model.safetensors) into the cache as ``repo_id``."""
    import torch
    from transformers import Dinov2Config, Dinov2Model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Dinov2Model(Dinov2Config(hidden_size=768, num_hidden_layers=1,
                                         num_attention_heads=12, mlp_ratio=1,
                                         image_size=size, patch_size=patch))
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

    def write(p: Path) -> None:
        enc = load_encoder(name, pretrained=False, seed=seed, progress=False)
        save_safetensors(loaded_module(enc), p)

    return _written_once(("safetensors", name, seed), Path(path), write)


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
                patch: int = 14, seed: int = 0) -> Path:
    """A tiny random ``SiglipModel`` (one layer per tower, hidden ``embed_dim``, ``patch`` px
    patches) saved by ``save_pretrained`` into the cache as ``repo_id``."""
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
                               patch_size=patch)))
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


def rehearsal_vocab() -> list[str]:
    """The WordPieces of the rehearsal's tokenizers: special tokens, letters, digits,
    punctuation and :data:`WORDS`."""
    import string

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *string.ascii_lowercase,
             *string.digits, *".,;:-()/", *(f"##{c}" for c in string.ascii_lowercase), *WORDS]
    return list(dict.fromkeys(vocab))


def bert_tokenizer_repo(hf_home: Path, repo_id: str, *, config: dict | None = None) -> Path:
    """A WordPiece tokenizer (BertTokenizerFast: ``vocab.txt``, ``tokenizer.json``,
    ``tokenizer_config.json``) as the snapshot of ``repo_id``: the special tokens, the
    letters and :data:`WORDS` (a real vocabulary is ~30k WordPieces; these ids fit it).
    ``config``: the model's ``config.json`` written beside it (as the hub repo holds)."""
    from transformers import BertTokenizerFast

    vocab = rehearsal_vocab()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "v.txt").write_text("\n".join(vocab) + "\n")
        tok = BertTokenizerFast(vocab_file=str(Path(tmp) / "v.txt"), do_lower_case=True)
        out = Path(tmp) / "repo"
        tok.save_pretrained(str(out))
        if config is not None:
            import json

            (out / "config.json").write_text(json.dumps(config))
        return hf_snapshot(hf_home, repo_id, out)


#: timm ``model_args`` of the rehearsal's tiny ViT-B/16: one block, a narrow MLP (the
#: embedding size, patch size and input size stay ViT-B/16's).
TINY_VIT_ARGS = {"depth": 1, "mlp_ratio": 0.25}


#: BertConfig of the rehearsal's tiny BioClinicalBERT text towers (GLoRIA, MedCLIP): two
#: layers, hidden 32; the vocabulary is the rehearsal tokenizer's.
TINY_BERT = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
             "intermediate_size": 37, "max_position_embeddings": 512}


def clinical_bert_repo(hf_home: Path) -> Path:
    """``emilyalsentzer/Bio_ClinicalBERT`` as GLoRIA's and MedCLIP's text towers read it: the
    rehearsal's tokenizer and a tiny ``config.json`` (:data:`TINY_BERT`)."""
    from transformers import BertConfig

    cfg = BertConfig(vocab_size=len(rehearsal_vocab()), **TINY_BERT).to_dict()
    return bert_tokenizer_repo(hf_home, "emilyalsentzer/Bio_ClinicalBERT", config=cfg)


def timm_repo(hf_home: Path, repo_id: str, name: str, architecture: str, *,
              seed: int = 0, model_args: dict | None = None) -> Path:
    """A timm hub repository: ``config.json`` (``architecture`` and, when given,
    ``model_args``, which timm passes to the architecture) and ``model.safetensors``:
    random weights of that architecture (full size without ``model_args``)."""
    import json

    import timm
    import torch

    from ..encoders import get_entry

    with tempfile.TemporaryDirectory() as tmp:
        if model_args:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = timm.create_model(architecture, pretrained=False, num_classes=0,
                                          img_size=get_entry(name).preprocess.size,
                                          **model_args)
            save_safetensors(model, Path(tmp) / "model.safetensors")
        else:
            full_size_checkpoint(name, Path(tmp) / "model.safetensors", seed=seed)
        (Path(tmp) / "config.json").write_text(json.dumps(
            {"architecture": architecture, "num_classes": 0,
             **({"model_args": model_args} if model_args else {})}))
        return hf_snapshot(hf_home, repo_id, Path(tmp))


def tiny_open_clip_cfg(name: str) -> dict:
    """The ``model_cfg`` of the rehearsal's tiny CLIP / BiomedCLIP: the registry's tiny
    configs (CLIP: one block per tower, narrow; BiomedCLIP: timm's ViT-Ti/16 image tower)
    with the real embedding size and input size."""
    import json

    import open_clip

    from ..encoders.models import _bundled_config

    if name == "biomedclip":
        cfg = json.loads(json.dumps(_bundled_config("biomedclip.json")["model_cfg"]))
        cfg["vision_cfg"]["timm_model_name"] = "vit_tiny_patch16_224"
        return cfg
    cfg = json.loads(json.dumps(open_clip.get_model_config("ViT-B-16")))
    cfg["vision_cfg"].update(layers=1, width=64, head_width=32)
    cfg["text_cfg"].update(layers=1, width=32, heads=2)
    return {**cfg, "quick_gelu": True}


def open_clip_repo(hf_home: Path, repo_id: str, name: str, model_cfg: dict, *,
                   seed: int = 0, tiny: bool = False) -> Path:
    """An open_clip hub repository: ``open_clip_config.json`` and
    ``open_clip_model.safetensors`` (the registry's architecture of ``name``: full size, or
    with ``tiny`` the loader's tiny config, :func:`tiny_open_clip_cfg`, written as the
    repository's config).  BiomedCLIP's tiny text tower is a small ``BertConfig``: its
    ``config.json`` goes into the text repository (``text_cfg.hf_model_name``), beside
    the tokenizer, where open_clip reads it."""
    import json

    import torch

    from ..encoders.base import create_model

    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            model_cfg = tiny_open_clip_cfg(name)
            tok = None
            if name == "biomedclip":
                from ..encoders.models import hf_tokenizer

                text_repo = model_cfg["text_cfg"]["hf_model_name"]
                tok = hf_tokenizer(repo=text_repo)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                enc = create_model(name, tiny=True, pretrained=False, tokenizer=tok)
            save_safetensors(enc.model, Path(tmp) / "open_clip_model.safetensors")
            if name == "biomedclip":
                bert = enc.model.text.transformer.config.to_dict()
                bert_tokenizer_repo(hf_home, text_repo, config=bert)
        else:
            full_size_checkpoint(name, Path(tmp) / "open_clip_model.safetensors", seed=seed)
        (Path(tmp) / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg}))
        return hf_snapshot(hf_home, repo_id, Path(tmp))


def torch_checkpoint(name: str, path: Path, *, seed: int = 0) -> Path:
    """The registry's architecture of ``name`` at full size (random) as a ``torch.save``
    state dict (what the MedCLIP / EVA-X / BarlowTwins releases ship), read back by the
    loader with ``weights_only=True``."""
    import torch

    from ..encoders import load_encoder

    def write(p: Path) -> None:
        module = loaded_module(load_encoder(name, pretrained=False, seed=seed, progress=False))
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().clone() for k, v in module.state_dict().items()}, p)

    return _written_once(("torch", name, seed), Path(path), write)
