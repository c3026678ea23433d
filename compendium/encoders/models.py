"""Registry entries for every model of the five papers, and their builders.

Importing this module registers the entries; it does not import torch (builders import
their libraries when called).  Every builder has the signature::

    builder(entry, *, weights_path=None, tiny=False, pretrained=True, device="cpu",
            trust_remote_code=False, tokenizer=None, tokenizer_path=None) -> Encoder

``tiny=True`` builds the real architecture (same library classes, same output size and
preprocessing) from a tiny random-init config: this is what the test suite runs offline.
``pretrained=False`` builds the full-size architecture with random weights.
"""

from __future__ import annotations

import json
import logging
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError
from .base import ModelEntry, Preprocess, register_model

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
#: MedCLIP's constants (IMG_MEAN / IMG_STD of its grey-scale pipeline).
MEDCLIP_MEAN = (0.5862785803043838,) * 3
MEDCLIP_STD = (0.27950088968644304,) * 3
#: RAD-DINO's image processor.
RAD_DINO_MEAN = (0.5307,) * 3
RAD_DINO_STD = (0.2583,) * 3
#: Lung window for CT slices (Paper B clips to a lung-relevant window).
LUNG = (-600.0, 1500.0)

VIT_TARGETS = ("qkv", "proj", "fc1", "fc2")                # timm ViT blocks
# q/k/v_proj exist once compendium.adapt.lora.split_attention has replaced open_clip's fused
# nn.MultiheadAttention (wrap_lora does this by default), so LoRA adapts q, k, v, out and MLP.
OPEN_CLIP_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj")         # open_clip transformer blocks
HF_ATTN_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2")  # SigLIP
DINO_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2")  # transformers 5 Dinov2
SWIN_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2")  # transformers 5 Swin
RESNET_TARGETS = ("conv1", "conv2", "conv3")               # torchvision Bottleneck convs


def _bundled_config(name: str) -> dict[str, Any]:
    text = resources.files("compendium.encoders").joinpath("configs", name).read_text("utf-8")
    return json.loads(text)


# ----------------------------------------------------------------------------- tokenizers


class HFTokenizerIds:
    """Wrap an HF tokenizer into open_clip's tokenizer call: texts -> LongTensor of ids."""

    def __init__(self, tok: Any, context_length: int) -> None:
        self.tok = tok
        self.context_length = context_length

    def __call__(self, texts: list[str]) -> Any:
        return self.tok(list(texts), padding="max_length", truncation=True,
                        max_length=self.context_length, return_tensors="pt")["input_ids"]


def hf_tokenizer(*, tokenizer: Any = None, tokenizer_path: Any = None, repo: str = "",
                 weights_dir: Path | None = None, trust_remote_code: bool = False) -> Any:
    """An HF tokenizer: given, from ``tokenizer_path`` (folder or WordPiece ``vocab.txt``),
    from the weights folder, or from ``repo`` in the Hugging Face cache (offline)."""
    if tokenizer is not None:
        return tokenizer
    from transformers import AutoTokenizer, BertTokenizerFast

    from .weights import hf_kwargs

    if tokenizer_path is not None:
        p = Path(tokenizer_path)
        if p.is_file():
            return BertTokenizerFast(vocab_file=str(p))
        return AutoTokenizer.from_pretrained(str(p), **hf_kwargs(trust_remote_code))
    if weights_dir is not None and weights_dir.is_dir() and any(
            (weights_dir / f).exists() for f in ("tokenizer.json", "tokenizer_config.json",
                                                 "vocab.txt", "tokenizer.model")):
        return AutoTokenizer.from_pretrained(str(weights_dir), **hf_kwargs(trust_remote_code))
    if repo:
        from huggingface_hub import snapshot_download

        try:
            from .weights import hf_cache_location

            path = snapshot_download(repo, local_files_only=True, cache_dir=hf_cache_location())
        except Exception:  # noqa: BLE001 - huggingface_hub raises several kinds here
            log.warning("tokenizer %s is not in the Hugging Face cache; encode_text needs "
                        "tokenizer_path= (or `compendium weights fetch`)", repo)
            return None
        return AutoTokenizer.from_pretrained(path, **hf_kwargs(trust_remote_code))
    return None


def _tiny_bert(vocab_size: int = 128, max_pos: int = 256):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=37, max_position_embeddings=max_pos)


def _vocab_size(tok: Any, default: int = 128) -> int:
    return len(tok) if tok is not None else default


def _want_weights(entry: ModelEntry, weights_path: Any, tiny: bool, pretrained: bool) -> Any:
    """The weights to load: always an explicit ``weights_path`` (also into a tiny build,
    e.g. a small checkpoint), else the entry's weights unless ``tiny`` / not ``pretrained``."""
    from .weights import find_weights

    if weights_path is not None or (pretrained and not tiny):
        return find_weights(entry, weights_path)
    return None


def _config_with_weights(path: Any, name: str) -> dict[str, Any] | None:
    """The architecture config a hub snapshot carries beside its weights (open_clip's
    ``open_clip_config.json``, timm's or transformers' ``config.json``), as the library
    itself reads it when it loads that repository; ``None`` when ``path`` is a bare
    checkpoint file or the folder holds no such file."""
    if path is None or not Path(path).is_dir() or not (Path(path) / name).is_file():
        return None
    try:
        return json.loads((Path(path) / name).read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{Path(path) / name}: not a readable JSON config ({exc})") from None


def _cached_repo_config(repo: str) -> dict[str, Any] | None:
    """``config.json`` of ``repo`` in the Hugging Face cache (offline), or ``None``: what
    open_clip's ``HFTextEncoder`` reads (``AutoConfig.from_pretrained``) for its text tower."""
    if not repo:
        return None
    from huggingface_hub import try_to_load_from_cache

    from .weights import hf_cache_location

    found = try_to_load_from_cache(repo, "config.json", cache_dir=hf_cache_location())
    return json.loads(Path(found).read_text("utf-8")) if isinstance(found, str) else None


def _check_dims(entry: ModelEntry, embed_dim: int, image_size: Any, where: str) -> None:
    """A config carried with the weights must keep the registry's output size and input
    size (the heads and the preprocessing are built from the registry)."""
    if int(embed_dim) != entry.embed_dim:
        raise InputError(f"{where}: embedding size {embed_dim}, but model {entry.name!r} "
                         f"gives {entry.embed_dim}")
    size = image_size[0] if isinstance(image_size, (list, tuple)) else image_size
    if size is not None and int(size) != entry.preprocess.size:
        raise InputError(f"{where}: image size {size}, but model {entry.name!r} is "
                         f"preprocessed to {entry.preprocess.size} px")


def _finish(enc: Any, device: str, weights_id: str) -> Any:
    enc.weights_id = weights_id
    return enc.to(device).eval()


# ----------------------------------------------------------------------------- builders


def build_open_clip(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                    pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                    tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """CLIP ViT-B/16 (OpenAI weights, QuickGELU) and BiomedCLIP, as open_clip models."""
    import open_clip
    from open_clip.hf_model import HFTextEncoder
    from open_clip.tokenizer import SimpleTokenizer

    from .encoder import OpenClipEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = _want_weights(entry, weights_path, tiny, pretrained)
    # a hub snapshot's open_clip_config.json decides the architecture, as open_clip's own
    # create_model('hf-hub:...') reads it; the package's copy otherwise
    carried = _config_with_weights(path, "open_clip_config.json")
    if carried is not None:
        _check_dims(entry, carried["model_cfg"]["embed_dim"],
                    carried["model_cfg"]["vision_cfg"].get("image_size"),
                    f"{path}/open_clip_config.json")
    if entry.name == "biomedclip":
        from transformers import BertConfig

        bundled = _bundled_config("biomedclip.json")
        cfg = json.loads(json.dumps((carried or bundled)["model_cfg"]))
        text_cfg = cfg.pop("text_cfg")
        if tiny:
            cfg["vision_cfg"]["timm_model_name"] = "vit_tiny_patch16_224"
        tok = hf_tokenizer(tokenizer=tokenizer, tokenizer_path=tokenizer_path,
                           repo=text_cfg["hf_tokenizer_name"] if not tiny else "",
                           trust_remote_code=trust_remote_code)
        # the text tower's BertConfig: its repository's config.json where the weights came
        # with their own config (open_clip reads it with AutoConfig), else the package's copy
        text_json = ((_cached_repo_config(text_cfg["hf_model_name"]) if carried else None)
                     or bundled["text_config"])
        bert = (_tiny_bert(_vocab_size(tok), text_cfg["context_length"]) if tiny
                else BertConfig(**{k: v for k, v in text_json.items()
                                   if k not in ("model_type", "architectures")}))
        # Build with a placeholder text tower, then put the HF text encoder in from a config
        # object (open_clip would otherwise ask the hub for the config).
        model = open_clip.CustomTextCLIP(
            embed_dim=cfg["embed_dim"], vision_cfg=cfg["vision_cfg"],
            text_cfg={"context_length": 8, "vocab_size": 8, "width": 8, "heads": 1, "layers": 1})
        text = HFTextEncoder(text_cfg["hf_model_name"], output_dim=cfg["embed_dim"], config=bert,
                             pooler_type=text_cfg["hf_pooler_type"],
                             proj_type=text_cfg["hf_proj_type"], pretrained=False)
        text.transformer.pooler = None  # cls_last_hidden_state pooler: BERT pooler unused
        model.text = text
        model.context_length = text_cfg["context_length"]
        model.vocab_size = bert.vocab_size
        tokenize = HFTokenizerIds(tok, text_cfg["context_length"]) if tok is not None else None
    else:
        cfg = carried["model_cfg"] if carried else open_clip.get_model_config("ViT-B-16")
        cfg = json.loads(json.dumps(cfg))
        if tiny:
            cfg["vision_cfg"].update(layers=1, width=64, head_width=32)
            cfg["text_cfg"].update(layers=1, width=32, heads=2)
        quick_gelu = cfg.pop("quick_gelu", True)  # OpenAI weights use QuickGELU
        model = open_clip.CLIP(**cfg, quick_gelu=quick_gelu)
        tokenize = tokenizer or SimpleTokenizer(context_length=cfg["text_cfg"]["context_length"])
    enc = OpenClipEncoder(entry, model, tokenize, embed_dim=cfg["embed_dim"])
    weights_id = "tiny-random" if tiny else "random-init"
    if path is not None:
        sd = load_state_dict(path)
        load_into(model, sd, name=entry.name,
                  allow_unexpected=("text.transformer.pooler", "text.transformer.embeddings.position_ids"))
        weights_id = fingerprint(path)
    return _finish(enc, device, weights_id)


def build_siglip(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                 pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                 tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """MedSigLIP-448 as a transformers ``SiglipModel``."""
    from transformers import SiglipConfig, SiglipModel

    from .encoder import SiglipEncoder
    from .weights import find_weights, fingerprint, hf_kwargs

    size = entry.preprocess.size
    if weights_path is not None or (pretrained and not tiny):
        path = find_weights(entry, weights_path)
        model = SiglipModel.from_pretrained(str(path), **hf_kwargs(trust_remote_code))
        tok = hf_tokenizer(tokenizer=tokenizer, tokenizer_path=tokenizer_path,
                           weights_dir=path, trust_remote_code=trust_remote_code)
        wid = fingerprint(path)
    elif tiny:
        tok = hf_tokenizer(tokenizer=tokenizer, tokenizer_path=tokenizer_path)
        cfg = SiglipConfig(
            text_config=dict(vocab_size=_vocab_size(tok), hidden_size=entry.embed_dim,
                             intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                             max_position_embeddings=64, projection_size=entry.embed_dim),
            vision_config=dict(hidden_size=entry.embed_dim, intermediate_size=64,
                               num_hidden_layers=1, num_attention_heads=4, image_size=size,
                               patch_size=14 if size % 14 == 0 else 16))
        model, wid = SiglipModel(cfg), "tiny-random"
    elif not pretrained:
        cfg = SiglipConfig(
            text_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                             num_attention_heads=16, vocab_size=256000, max_position_embeddings=64,
                             projection_size=1152),
            vision_config=dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                               num_attention_heads=16, image_size=size, patch_size=14))
        model, wid, tok = SiglipModel(cfg), "random-init", tokenizer
    return _finish(SiglipEncoder(entry, model, tok), device, wid)


def build_dinov2(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                 pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                 tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """RAD-DINO and DINOv2-base as transformers ``Dinov2Model`` (CLS token by default)."""
    from transformers import Dinov2Config, Dinov2Model

    from .encoder import BackboneEncoder
    from .weights import find_weights, fingerprint, hf_kwargs

    if weights_path is not None or (pretrained and not tiny):
        path = find_weights(entry, weights_path)
        model = Dinov2Model.from_pretrained(str(path), **hf_kwargs(trust_remote_code))
        wid = fingerprint(path)
    else:
        layers = 1 if tiny else 12
        cfg = Dinov2Config(hidden_size=entry.embed_dim, num_hidden_layers=layers,
                           num_attention_heads=12, mlp_ratio=1 if tiny else 4,
                           image_size=entry.preprocess.size, patch_size=14)
        model, wid = Dinov2Model(cfg), "tiny-random" if tiny else "random-init"
    enc = BackboneEncoder(entry, model, kind="hf", embed_dim=entry.embed_dim)
    return _finish(enc, device, wid)


def build_timm_vit(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                   pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                   tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """The ImageNet ViT-B/16 (Paper A) and a random-init ViT-B/16 (benchmarks), via timm."""
    import timm

    from .encoder import BackboneEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = (_want_weights(entry, weights_path, tiny, pretrained)
            if entry.weights != "random-init" or weights_path is not None else None)
    kw: dict[str, Any] = {"num_classes": 0, "img_size": entry.preprocess.size}
    if tiny:
        kw.update(depth=1, mlp_ratio=0.25)
    # a timm hub snapshot's config.json (architecture, model_args) decides the architecture,
    # as timm.create_model('hf-hub:...') reads it
    carried = _config_with_weights(path, "config.json") or {}
    arch = carried.get("architecture", "vit_base_patch16_224")
    kw.update({k: v for k, v in carried.get("model_args", {}).items()
               if k not in ("num_classes", "img_size")})
    model = timm.create_model(arch, pretrained=False, **kw)
    if carried:
        _check_dims(entry, model.num_features, None, f"{path}/config.json")
    wid = "tiny-random" if tiny else "random-init"
    if path is not None:
        load_into(model, load_state_dict(path), name=entry.name, allow_unexpected=("head.",))
        wid = fingerprint(path)
    return _finish(BackboneEncoder(entry, model, kind="timm", embed_dim=entry.embed_dim),
                   device, wid)


#: EVA-X (Yao et al. 2025, hustvl/EVA-X ``eva_x.py``): timm's ``Eva`` with these arguments.
EVA_X_ARCH = {
    "eva-x-tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "eva-x-small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
}


def eva_x_state_dict(sd: dict[str, Any], *, mim: bool | None = None) -> dict[str, Any]:
    """An EVA-X release checkpoint in timm ``Eva`` key names.

    Unwraps ``model_ema`` / ``model`` / ``module`` / ``state_dict``; drops the fixed rotary
    buffers; renames the EVA-02 SwiGLU and sub-LN keys (``mlp.w12``, ``mlp.w1``, ``mlp.w2``,
    ``mlp.w3``, ``mlp.ffn_ln``, ``attn.inner_attn_ln``) to timm's; for masked-image-modelling
    weights (a ``mask_token`` present) drops the mask token and the MIM head and moves the
    final ``norm`` to ``fc_norm``.
    """
    for key in ("model_ema", "model", "module", "state_dict"):
        if isinstance(sd.get(key), dict):
            sd = sd[key]
    if mim is None:
        mim = "mask_token" in sd
    ren = (("mlp.ffn_ln", "mlp.norm"), ("attn.inner_attn_ln", "attn.norm"),
           ("mlp.w12", "mlp.fc1"), ("mlp.w1", "mlp.fc1_g"), ("mlp.w2", "mlp.fc1_x"),
           ("mlp.w3", "mlp.fc2"))
    out = {}
    for k, v in sd.items():
        if "rope" in k:
            continue
        for old, new in ren:
            k = k.replace(old, new)
        if mim and k in ("mask_token", "lm_head.weight", "lm_head.bias"):
            continue
        if mim and k in ("norm.weight", "norm.bias"):
            k = "fc_" + k
        out[k] = v
    return out


def build_eva_x(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """EVA-X Tiny / Small (Paper E's image-only baselines): timm ``Eva`` as in EVA-X's
    ``eva_x.py`` (patch 16, SwiGLU MLP with ratio 8/3, rotary embeddings on a 14 x 14 grid,
    mean-pooled patch tokens); release checkpoints via :func:`eva_x_state_dict`."""
    from timm.models.eva import Eva

    from .encoder import BackboneEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = _want_weights(entry, weights_path, tiny, pretrained)
    arch = {**EVA_X_ARCH[entry.name]}
    if tiny:
        arch.update(depth=1)
    size = entry.preprocess.size
    model = Eva(img_size=size, patch_size=16, num_classes=0, mlp_ratio=4 * 2 / 3,
                swiglu_mlp=True, use_rot_pos_emb=True, ref_feat_shape=(size // 16, size // 16),
                global_pool="avg", **arch)
    wid = "tiny-random" if tiny else "random-init"
    if path is not None:
        load_into(model, eva_x_state_dict(load_state_dict(path)), name=entry.name,
                  allow_missing=("fc_norm.",), allow_unexpected=("head.", "norm."))
        wid = fingerprint(path)
    return _finish(BackboneEncoder(entry, model, kind="timm", embed_dim=entry.embed_dim),
                   device, wid)


def build_resnet50(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                   pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                   tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """ResNet-50 image towers (Paper E: BarlowTwins-CXR, ConVIRT's image encoder, the
    supervised baseline): torchvision ResNet-50, ``fc`` removed."""
    import torch.nn as nn
    import torchvision

    from .encoder import BackboneEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = (_want_weights(entry, weights_path, tiny, pretrained)
            if entry.weights != "random-init" or weights_path is not None else None)
    model = torchvision.models.resnet50(weights=None)
    model.fc = nn.Identity()
    wid = "tiny-random" if tiny else "random-init"
    if path is not None:
        sd = load_state_dict(path)
        for pre in ("backbone.", "module.backbone.", "module.", "encoder."):
            if sd and all(k.startswith(pre) for k in sd):
                sd = {k[len(pre):]: v for k, v in sd.items()}
        load_into(model, sd, name=entry.name, allow_unexpected=("fc.", "projector.", "bn."))
        wid = fingerprint(path)
    return _finish(BackboneEncoder(entry, model, kind="torchvision", embed_dim=2048), device, wid)


def build_densenet121(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                      pretrained: bool = True, device: str = "cpu",
                      trust_remote_code: bool = False, tokenizer: Any = None,
                      tokenizer_path: Any = None, progress: bool = True) -> Any:
    """DenseNet-121 (torchvision), ``classifier`` removed: Paper C's supervised CNN.  Reads
    torchvision's ImageNet checkpoint (old ``norm.1`` key names are renamed), timm's
    ``densenet121.tv_in1k`` or a fine-tuned state dict (``module.``/``model.`` prefixes and
    a ``classifier`` are dropped)."""
    import re

    import torch.nn as nn
    import torchvision

    from .encoder import BackboneEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = _want_weights(entry, weights_path, tiny, pretrained)
    model = torchvision.models.densenet121(weights=None)
    model.classifier = nn.Identity()
    wid = "tiny-random" if tiny else "random-init"
    if path is not None:
        sd = load_state_dict(path)
        for pre in ("module.", "model.", "backbone."):
            if sd and all(k.startswith(pre) for k in sd):
                sd = {k[len(pre):]: v for k, v in sd.items()}
        old = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|"
                         r"running_mean|running_var|num_batches_tracked))$")
        sd = {old.sub(r"\1\2", k): v for k, v in sd.items()}
        load_into(model, sd, name=entry.name, allow_unexpected=("classifier.", "fc."))
        wid = fingerprint(path)
    return _finish(BackboneEncoder(entry, model, kind="torchvision", embed_dim=1024), device, wid)


def build_dual(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
               pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
               tokenizer: Any = None, tokenizer_path: Any = None, progress: bool = True) -> Any:
    """MedCLIP (Swin-T or ResNet-50 + BioClinicalBERT) and GLoRIA (ResNet-50 + BioClinicalBERT).

    Module names follow the released checkpoints (``vision_model.model``,
    ``vision_model.projection_head``, ``text_model.model``, ``text_model.projection_head``);
    GLoRIA's Lightning keys (``gloria.img_encoder.model``, ``...global_embedder``,
    ``gloria.text_encoder.model``) are renamed to these on load.
    """
    import torch.nn as nn
    import torchvision
    from transformers import BertConfig, BertModel, SwinConfig, SwinModel

    from .encoder import DualEncoder
    from .weights import fingerprint, load_into, load_state_dict

    path = _want_weights(entry, weights_path, tiny, pretrained)
    tok = hf_tokenizer(tokenizer=tokenizer, tokenizer_path=tokenizer_path,
                       repo="" if tiny else entry.hub_extra[0], weights_dir=path,
                       trust_remote_code=trust_remote_code)
    if entry.name == "medclip-vit":
        swin = (SwinConfig(embed_dim=96, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8],
                           image_size=224) if tiny else
                SwinConfig(embed_dim=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                           image_size=224, window_size=7))
        vision, vkind, vdim = SwinModel(swin), "swin", 768
    else:
        vision = torchvision.models.resnet50(weights=None)
        vision.fc = nn.Identity()
        vkind, vdim = "resnet", 2048
    # the text tower's BertConfig: BioClinicalBERT's config.json in the Hugging Face cache
    # (the authors' code builds it with AutoModel.from_pretrained of that repository), else
    # BioClinicalBERT's architecture as carried here
    text_json = None if tiny else _cached_repo_config(entry.hub_extra[0])
    bert = (_tiny_bert(_vocab_size(tok), 512) if tiny else
            BertConfig(**{k: v for k, v in text_json.items()
                          if k not in ("model_type", "architectures")}) if text_json else
            BertConfig(vocab_size=28996, hidden_size=768, num_hidden_layers=12,
                       num_attention_heads=12, intermediate_size=3072))
    text = BertModel(bert, add_pooling_layer=False)
    if entry.name == "gloria":
        vproj, tproj, pooling = nn.Linear(vdim, entry.embed_dim), (
            nn.Identity() if bert.hidden_size == entry.embed_dim
            else nn.Linear(bert.hidden_size, entry.embed_dim, bias=False)), "last4-cls"
    else:
        vproj = nn.Linear(vdim, entry.embed_dim, bias=False)
        tproj = nn.Linear(bert.hidden_size, entry.embed_dim, bias=False)
        pooling = "medclip"
    enc = DualEncoder(entry, vision, vproj, text, tproj, vision_kind=vkind,
                      text_pooling=pooling, tokenizer=tok)
    wid = "tiny-random" if tiny else "random-init"
    if path is not None:
        sd = load_state_dict(path)
        if any(k.startswith("gloria.") for k in sd):
            ren = {"gloria.img_encoder.global_embedder.": "vision_model.projection_head.",
                   "gloria.img_encoder.model.": "vision_model.model.",
                   "gloria.text_encoder.model.": "text_model.model."}
            sd = {next((new + k[len(old):] for old, new in ren.items() if k.startswith(old)), k): v
                  for k, v in sd.items()}
            sd = {k: v for k, v in sd.items() if not k.startswith("gloria.")}
        load_into(enc, sd, name=entry.name,
                  allow_missing=("text_model.projection_head",) if entry.name == "gloria" else (),
                  allow_unexpected=("logit_scale", "text_model.model.pooler",
                                    "text_model.model.embeddings.position_ids",
                                    "vision_model.model.fc"))
        wid = fingerprint(path)
    return _finish(enc, device, wid)


def build_embeddings_file(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                          pretrained: bool = True, device: str = "cpu",
                          trust_remote_code: bool = False, tokenizer: Any = None,
                          tokenizer_path: Any = None, pooling: str = "mean",
                          progress: bool = True) -> Any:
    """MedImageInsight / CXR Foundation: read the vendor tool's embeddings file (``.npz``)."""
    from .encoder import EmbeddingsFileEncoder

    if tiny:
        raise ConfigError(f"{entry.name} has no PyTorch architecture to build; it reads the "
                          "embeddings file its vendor's tool wrote (weights_path=)")
    return EmbeddingsFileEncoder(entry, weights_path, pooling=pooling)


# ----------------------------------------------------------------------------- entries

_CXR3 = "grey image repeated to 3 channels"

register_model(ModelEntry(
    name="clip-vit-b-16", family="open_clip",
    description="CLIP ViT-B/16, OpenAI weights (general-domain)",
    weights="openai", hub_id="timm/vit_base_patch16_clip_224.openai",
    preprocess=Preprocess(224, CLIP_MEAN, CLIP_STD, "bicubic"), embed_dim=512, has_text=True,
    text_encoder="CLIP text transformer (12 layers, width 512)",
    tokenizer="open_clip SimpleTokenizer (BPE vocab in the wheel, 77 tokens)",
    lora_targets=OPEN_CLIP_TARGETS, paper="A", licence="MIT",
    access="public on the Hugging Face hub", demo_standin="toy-clip-vit",
    builder=build_open_clip))

register_model(ModelEntry(
    name="biomedclip", family="open_clip",
    description="BiomedCLIP: ViT-B/16 + PubMedBERT, trained on PMC-15M figure-caption pairs",
    weights="microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
    hub_id="microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
    hub_extra=("microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract",),
    preprocess=Preprocess(224, CLIP_MEAN, CLIP_STD, "bicubic", hu_window=LUNG),
    embed_dim=512, has_text=True,
    text_encoder="PubMedBERT (BiomedBERT-base-uncased-abstract, BertModel), MLP projection",
    tokenizer="BiomedBERT WordPiece (HF), 256 tokens",
    lora_targets=VIT_TARGETS, paper="A, B", licence="MIT",
    access="public on the Hugging Face hub; architecture config carried in the package",
    demo_standin="toy-clip-vit-skewed", builder=build_open_clip))

register_model(ModelEntry(
    name="medclip-vit", family="medclip",
    description="MedCLIP ViT: Swin-T image tower + BioClinicalBERT, decoupled contrastive",
    weights="MedCLIP release 'medclip-vit' (pytorch_model.bin)",
    hub_extra=("emilyalsentzer/Bio_ClinicalBERT",),
    preprocess=Preprocess(224, MEDCLIP_MEAN, MEDCLIP_STD, "bilinear"), embed_dim=512,
    has_text=True, text_encoder="BioClinicalBERT (BertModel), linear projection",
    tokenizer="BioClinicalBERT WordPiece (HF), 77 tokens",
    lora_targets=SWIN_TARGETS, paper="A", licence="MIT (code); weights per the authors' release",
    access="download the 'medclip-vit' pretrained weights linked from the MedCLIP GitHub "
           "README (RyanWangZf/MedCLIP), unzip, and pass the folder holding pytorch_model.bin",
    demo_standin="toy-clip-vit", builder=build_dual))

register_model(ModelEntry(
    name="medclip-rn50", family="medclip",
    description="MedCLIP ResNet-50 image tower + BioClinicalBERT, decoupled contrastive",
    weights="MedCLIP release 'medclip-resnet' (pytorch_model.bin)",
    hub_extra=("emilyalsentzer/Bio_ClinicalBERT",),
    preprocess=Preprocess(224, MEDCLIP_MEAN, MEDCLIP_STD, "bilinear"), embed_dim=512,
    has_text=True, text_encoder="BioClinicalBERT (BertModel), linear projection",
    tokenizer="BioClinicalBERT WordPiece (HF), 77 tokens",
    lora_targets=RESNET_TARGETS, paper="A", licence="MIT (code); weights per the authors' release",
    access="download the 'medclip-resnet' pretrained weights linked from the MedCLIP GitHub "
           "README (RyanWangZf/MedCLIP), unzip, and pass the folder holding pytorch_model.bin",
    demo_standin="toy-clip-resnet", builder=build_dual))

register_model(ModelEntry(
    name="gloria", family="gloria",
    description="GLoRIA: ResNet-50 + BioClinicalBERT, global-local contrastive (CheXpert)",
    weights="GLoRIA release chexpert_resnet50.ckpt",
    hub_extra=("emilyalsentzer/Bio_ClinicalBERT",),
    preprocess=Preprocess(224, HALF, HALF, "bilinear", resize=256), embed_dim=768,
    has_text=True, text_encoder="BioClinicalBERT (BertModel), sum of last 4 layers",
    tokenizer="BioClinicalBERT WordPiece (HF), 77 tokens",
    lora_targets=RESNET_TARGETS, paper="A", licence="MIT (code); weights per the authors' release",
    access="download chexpert_resnet50.ckpt linked from the GLoRIA GitHub README "
           "(marshuang80/gloria); re-save its 'state_dict' with safetensors if it holds "
           "non-tensor objects; pass that file",
    demo_standin="toy-clip-resnet", builder=build_dual))

register_model(ModelEntry(
    name="medsiglip", family="transformers-siglip",
    description="MedSigLIP-448: SigLIP So400m/14 tuned on medical image-text pairs",
    weights="google/medsiglip-448", hub_id="google/medsiglip-448", gated=True,
    preprocess=Preprocess(448, HALF, HALF, "bilinear", hu_window=LUNG), embed_dim=1152,
    has_text=True, text_encoder="SigLIP text transformer",
    tokenizer="SigLIP/Gemma SentencePiece (HF), 64 tokens, max-length padding",
    lora_targets=HF_ATTN_TARGETS, paper="B", licence="Health AI Developer Foundations terms",
    access="gated on the Hugging Face hub: accept the HAI-DEF terms, then fetch",
    demo_standin="toy-clip-vit", builder=build_siglip))

register_model(ModelEntry(
    name="rad-dino", family="transformers-dinov2",
    description="RAD-DINO: DINOv2 ViT-B/14 self-supervised on chest X-rays",
    weights="microsoft/rad-dino", hub_id="microsoft/rad-dino",
    preprocess=Preprocess(518, RAD_DINO_MEAN, RAD_DINO_STD, "bicubic"), embed_dim=768,
    has_text=False, lora_targets=DINO_TARGETS, paper="C", licence="MSRLA (research use)",
    access="public on the Hugging Face hub (Microsoft Research Licence)",
    demo_standin="toy-clip-vit", token_pooling="cls", builder=build_dinov2))

register_model(ModelEntry(
    name="dinov2-base", family="transformers-dinov2",
    description="DINOv2 ViT-B/14, general-domain self-supervised (Paper C's control)",
    weights="facebook/dinov2-base", hub_id="facebook/dinov2-base",
    preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bicubic", resize=256),
    embed_dim=768, has_text=False, lora_targets=DINO_TARGETS, paper="C", licence="Apache-2.0",
    access="public on the Hugging Face hub", demo_standin="toy-clip-vit-skewed",
    token_pooling="cls", builder=build_dinov2))

register_model(ModelEntry(
    name="densenet121", family="torchvision",
    description="DenseNet-121, ImageNet-initialised, trained end to end (Paper C's supervised CNN)",
    weights="timm/densenet121.tv_in1k", hub_id="timm/densenet121.tv_in1k",
    preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bilinear", resize=256),
    embed_dim=1024, has_text=False, lora_targets=("conv1", "conv2"), paper="C",
    licence="BSD-3-Clause (torchvision weights)",
    access="public on the Hugging Face hub (timm/densenet121.tv_in1k), or torchvision's "
           "densenet121 ImageNet checkpoint passed as a file",
    demo_standin="toy-clip-resnet", builder=build_densenet121))

register_model(ModelEntry(
    name="vit-b-16-imagenet", family="timm",
    description="ViT-B/16 ImageNet-21k/1k (augreg2), Paper A's stand-in for full fine-tuning",
    weights="timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
    hub_id="timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
    preprocess=Preprocess(224, HALF, HALF, "bicubic"), embed_dim=768, has_text=False,
    lora_targets=VIT_TARGETS, paper="A", licence="Apache-2.0",
    access="public on the Hugging Face hub", demo_standin="toy-clip-vit",
    builder=build_timm_vit))

register_model(ModelEntry(
    name="vit-b-16-random", family="timm",
    description="ViT-B/16, random init (benchmarks and sanity baselines; no weights)",
    weights="random-init",
    preprocess=Preprocess(224, HALF, HALF, "bicubic"), embed_dim=768, has_text=False,
    lora_targets=VIT_TARGETS, paper="-", licence="-", access="none needed",
    demo_standin="toy-clip-vit", builder=build_timm_vit))

register_model(ModelEntry(
    name="resnet50-barlowtwins-cxr", family="torchvision",
    description="ResNet-50 BarlowTwins-CXR: self-supervised on chest X-rays (Paper E's image encoder)",
    weights="BarlowTwins-CXR release (ResNet-50 backbone state dict)",
    preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bilinear", resize=256),
    embed_dim=2048, has_text=False, lora_targets=RESNET_TARGETS, paper="E",
    licence="per the authors' release",
    access="download the BarlowTwins-CXR ResNet-50 checkpoint linked from Sheng et al. (2024) "
           "and pass it (a state_dict .pth/.safetensors; 'backbone.' prefixes are stripped)",
    demo_standin="toy-clip-resnet", builder=build_resnet50))

register_model(ModelEntry(
    name="medimageinsight", family="embeddings-file", kind="embeddings-file",
    description="MedImageInsight (ViT-H/14 image encoder; read from its tool's embeddings)",
    weights="embeddings .npz written by the vendor's tool",
    preprocess=Preprocess(448, HALF, HALF, "bicubic", hu_window=LUNG), embed_dim=1024,
    has_text=False, lora_targets=(), paper="B, D",
    licence="Microsoft (Azure AI Foundry / HF 'lion-ai/MedImageInsights' terms)",
    access="run the official MedImageInsight tool on your images and save an .npz with "
           "'sample_id' (n,) and 'embeddings' (n, 1024); pass it as weights_path",
    demo_standin="toy-clip-vit", token_pooling="mean", builder=build_embeddings_file))

register_model(ModelEntry(
    name="cxr-foundation", family="embeddings-file", kind="embeddings-file",
    description="CXR Foundation (ELIXR v2.0; read from its tool's embeddings, tokens mean-pooled)",
    weights="embeddings .npz written by the vendor's tool",
    preprocess=Preprocess(1024, (0.0,) * 3, (1.0,) * 3, "bilinear"), embed_dim=768,
    has_text=False, lora_targets=(), paper="C, D",
    licence="Health AI Developer Foundations terms",
    access="run Google's CXR Foundation (ELIXR v2.0) tool; save an .npz with 'sample_id' (n,) "
           "and 'embeddings' (n, 32, 768) token features (mean-pooled here, Paper D) or (n, 768)",
    demo_standin="toy-clip-resnet", token_pooling="mean", builder=build_embeddings_file))


_EVA_X_ACCESS = ("download the EVA-X release checkpoint linked from the hustvl/EVA-X README "
                 "({}) and pass it (a state_dict .pt/.pth/.safetensors; EVA-02 key names are "
                 "mapped to timm's on load)")
for _name, _desc, _dim, _file in (
        ("eva-x-tiny", "EVA-X Tiny: EVA-02 ViT-Ti/16 self-supervised on chest X-rays", 192,
         "eva_x_ti_16.pt"),
        ("eva-x-small", "EVA-X Small: EVA-02 ViT-S/16 self-supervised on chest X-rays", 384,
         "eva_x_s_16.pt")):
    register_model(ModelEntry(
        name=_name, family="timm-eva", description=_desc,
        weights=f"EVA-X release {_file}",
        preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bicubic"), embed_dim=_dim,
        has_text=False, lora_targets=VIT_TARGETS, paper="E",
        licence="Apache-2.0 (code); weights per the authors' release",
        access=_EVA_X_ACCESS.format(_file), demo_standin="toy-clip-vit", builder=build_eva_x))

register_model(ModelEntry(
    name="convirt", family="torchvision",
    description="ConVIRT image encoder: ResNet-50 contrastively trained with radiology reports",
    weights="a ConVIRT ResNet-50 image-encoder state dict",
    preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bilinear", resize=256),
    embed_dim=2048, has_text=False, lora_targets=RESNET_TARGETS, paper="E",
    licence="per the release used",
    access="the ConVIRT authors released no weights; pass the image-encoder state dict of a "
           "ConVIRT run (e.g. a reproduction on MIMIC-CXR); 'backbone.' / 'encoder.' "
           "prefixes are stripped",
    demo_standin="toy-clip-resnet", builder=build_resnet50))

register_model(ModelEntry(
    name="resnet50-random", family="torchvision",
    description="ResNet-50, random init (Paper E's supervised baseline; no weights)",
    weights="random-init",
    preprocess=Preprocess(224, IMAGENET_MEAN, IMAGENET_STD, "bilinear", resize=256),
    embed_dim=2048, has_text=False, lora_targets=RESNET_TARGETS, paper="E", licence="-",
    access="none needed", demo_standin="toy-clip-resnet", builder=build_resnet50))
