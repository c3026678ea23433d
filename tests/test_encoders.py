"""Registry entries: real architectures from tiny configs, preprocessing, weights loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from compendium.encoders import create_model, get_entry, list_models
from compendium.encoders.weights import MissingWeightsError, load_state_dict
from compendium.errors import ConfigError, DataNotFoundError, InputError

ALL = list_models()
TORCH_ENTRIES = [n for n in ALL if get_entry(n).kind != "embeddings-file"]
FILE_ENTRIES = [n for n in ALL if get_entry(n).kind == "embeddings-file"]
HF_TOKENIZED = {"biomedclip", "medclip-vit", "medclip-rn50", "gloria", "medsiglip"}

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "chest", "x", "-", "ray", "showing",
         "effusion", "cardiomegaly", "no", "finding", "a", "of", "."]


@pytest.fixture
def vocab(tmp_path):
    """A tiny WordPiece vocabulary, so BERT-style tokenizers work offline."""
    p = tmp_path / "vocab.txt"
    p.write_text("\n".join(WORDS) + "\n")
    return p


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Hugging Face cache, offline."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "hf"


def test_registry_has_every_paper_model():
    expected = {"clip-vit-b-16", "biomedclip", "medclip-vit", "medclip-rn50", "gloria",
                "medsiglip", "rad-dino", "dinov2-base", "vit-b-16-imagenet",
                "resnet50-barlowtwins-cxr", "medimageinsight", "cxr-foundation",
                "toy-clip-vit", "toy-clip-resnet", "toy-clip-vit-skewed"}
    assert expected <= set(ALL)
    for name in ALL:
        e = get_entry(name)
        assert e.demo_standin in ALL, name
        assert get_entry(e.demo_standin).kind == "toy", name
        assert e.embed_dim > 0 and e.preprocess.size > 0
        assert (e.text_encoder != "") == e.has_text, name
        assert e.licence and e.access, name


@pytest.mark.parametrize("name", TORCH_ENTRIES)
def test_entry_smoke(name, vocab):
    """Real architecture from a tiny config: preprocessing, image (and text) forward shapes."""
    entry = get_entry(name)
    kw = {"tokenizer_path": vocab} if name in HF_TOKENIZED else {}
    torch.manual_seed(0)
    enc = create_model(name, tiny=True, **kw)
    assert enc.entry is entry and enc.embed_dim == entry.embed_dim
    # non-square uint8 grey images: shorter side resized, centre-cropped, normalised
    imgs = np.full((2, 40, 52), 128, dtype=np.uint8)
    x = enc.preprocess(imgs)
    p = entry.preprocess
    assert tuple(x.shape) == (2, p.channels, p.size, p.size)
    expect = (128 / 255 - np.array(p.mean)) / np.array(p.std)
    np.testing.assert_allclose(x[0, :, p.size // 2, p.size // 2].numpy(), expect, atol=1e-4)
    with torch.inference_mode():
        rng = np.random.default_rng(0)
        y = enc.encode_images(enc.preprocess(rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)))
        assert tuple(y.shape) == (3, entry.embed_dim)
        assert torch.isfinite(y).all()
        if entry.has_text:
            t = enc.encode_text(["chest x-ray showing effusion.", "no finding."])
            assert tuple(t.shape) == (2, entry.embed_dim)
        else:
            with pytest.raises(ConfigError):
                enc.encode_text(["anything"])
    # every LoRA target names Linear/Conv2d layers of the built image tower, once fused
    # attention is split into q/k/v/out linears as compendium.adapt.lora.wrap_lora does
    import copy

    from compendium.adapt.lora import split_attention

    visual = copy.deepcopy(enc.visual)
    split_attention(visual)
    names = {n.rsplit(".", 1)[-1] for n, m in visual.named_modules()
             if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))}
    assert set(entry.lora_targets) <= names, (name, set(entry.lora_targets) - names)


@pytest.mark.parametrize("name", [n for n in TORCH_ENTRIES if get_entry(n).kind != "toy"])
def test_missing_weights_error(name, offline):
    entry = get_entry(name)
    if entry.weights == "random-init":
        enc = create_model(name, tiny=True)
        assert enc.weights_id == "tiny-random"
        return
    with pytest.raises(MissingWeightsError) as err:
        create_model(name)
    msg = str(err.value)
    assert isinstance(err.value, DataNotFoundError)
    assert name in msg and "\n" not in msg
    if entry.hub_id:
        assert str(offline) in msg and entry.hub_id in msg
        assert f"compendium weights fetch {name}" in msg
    else:
        assert entry.access in msg
    with pytest.raises(MissingWeightsError, match="weights_path="):
        create_model(name, weights_path=offline / "nope.safetensors")


def test_toy_missing_weights_path(tmp_path):
    with pytest.raises(MissingWeightsError, match="toy-clip-vit"):
        create_model("toy-clip-vit", weights_path=tmp_path / "absent")


@pytest.mark.parametrize("name", FILE_ENTRIES)
def test_embeddings_file_adapter(name, tmp_path):
    entry = get_entry(name)
    rng = np.random.default_rng(0)
    ids = np.array(["s1", "s2", "s3"])
    tokens = rng.normal(size=(3, 4, entry.embed_dim)).astype(np.float32)
    f = tmp_path / "emb.npz"
    np.savez(f, sample_id=ids, embeddings=tokens)
    enc = create_model(name, weights_path=f)
    out = enc.encode_samples(["s3", "s1"])
    np.testing.assert_allclose(out, tokens[[2, 0]].mean(axis=1), rtol=1e-6)
    with pytest.raises(ConfigError, match="encode_samples"):
        enc.encode_images(torch.zeros(1, 3, 8, 8))
    with pytest.raises(InputError, match="not in the embeddings"):
        enc.encode_samples(["zz"])
    with pytest.raises(MissingWeightsError, match=name):
        create_model(name)
    np.savez(tmp_path / "bad.npz", sample_id=ids, embeddings=tokens[:, 0, :7])
    with pytest.raises(InputError, match="7-d"):
        create_model(name, weights_path=tmp_path / "bad.npz")
    with pytest.raises(ConfigError):
        create_model(name, tiny=True)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_checkpoint_round_trip_weights_only(fmt, tmp_path, monkeypatch):
    """A state dict saved from the tiny model loads back (weights_only=True for .bin)."""
    from safetensors.torch import save_file

    torch.manual_seed(1)
    src = create_model("clip-vit-b-16", tiny=True)
    sd = {k: v.contiguous() for k, v in src.model.state_dict().items()}
    path = tmp_path / ("open_clip_model.safetensors" if fmt == "safetensors"
                       else "open_clip_pytorch_model.bin")
    if fmt == "safetensors":
        save_file(sd, str(path))
    else:
        torch.save({"state_dict": sd}, path)
    calls = []
    real_load = torch.load

    def spy(*a, **k):
        calls.append(k.get("weights_only"))
        return real_load(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    torch.manual_seed(2)
    dst = create_model("clip-vit-b-16", tiny=True, weights_path=tmp_path)
    if fmt == "bin":
        assert calls == [True]
    x = src.preprocess(np.random.default_rng(0).integers(0, 255, (2, 32, 32), dtype=np.uint8))
    with torch.inference_mode():
        torch.testing.assert_close(dst.encode_images(x), src.encode_images(x))
    assert dst.weights_id not in ("tiny-random", "random-init")


def test_pickled_objects_are_refused(tmp_path):
    import argparse  # a Namespace is no tensor: weights_only=True must refuse it

    torch.save({"state_dict": {"a": torch.zeros(1)}, "extra": argparse.Namespace(a=1)},
               tmp_path / "x.pt")
    with pytest.raises(InputError, match="weights_only"):
        load_state_dict(tmp_path / "x.pt")


@pytest.mark.parametrize("name,cls", [("rad-dino", "Dinov2Model"), ("medsiglip", "SiglipModel")])
def test_hf_round_trip_and_no_remote_code(name, cls, tmp_path, monkeypatch, vocab):
    """save_pretrained of the tiny model loads back; trust_remote_code only when asked."""
    import transformers

    kw = {"tokenizer_path": vocab} if name in HF_TOKENIZED else {}
    src = create_model(name, tiny=True, **kw)
    src.model.save_pretrained(tmp_path / "w") if hasattr(src, "model") else \
        src.backbone.save_pretrained(tmp_path / "w")
    klass = getattr(transformers, cls)
    seen = []
    real = klass.from_pretrained.__func__

    def spy(c, *a, **k):
        seen.append(dict(k))
        return real(c, *a, **{kk: vv for kk, vv in k.items() if kk != "trust_remote_code"})

    monkeypatch.setattr(klass, "from_pretrained", classmethod(spy))
    dst = create_model(name, weights_path=tmp_path / "w", **kw)
    assert "trust_remote_code" not in seen[-1] and seen[-1]["local_files_only"] is True
    x = torch.randn(1, 3, src.entry.preprocess.size, src.entry.preprocess.size)
    with torch.inference_mode():
        torch.testing.assert_close(dst.encode_images(x), src.encode_images(x))
    create_model(name, weights_path=tmp_path / "w", trust_remote_code=True, **kw)
    assert seen[-1]["trust_remote_code"] is True


def test_no_trust_remote_code_in_source():
    """The package never sets trust_remote_code except from the caller's parameter."""
    import pathlib

    import compendium.encoders as pkg

    for f in pathlib.Path(pkg.__file__).parent.glob("*.py"):
        for line in f.read_text().splitlines():
            if "trust_remote_code=True" in line:
                pytest.fail(f"{f.name}: {line.strip()}")


def test_ct_hu_window_and_volume_pooling():
    from compendium.encoders.cache import encode_volume

    enc = create_model("toy-clip-vit", tiny=True)
    lvl, width = enc.entry.preprocess.hu_window or (-600.0, 1500.0)
    vol = np.full((3, 20, 20), lvl + width, dtype=np.float32)  # above the window: clipped
    x = enc.preprocess(vol, hu=True)
    p = enc.entry.preprocess
    np.testing.assert_allclose(x[:, 0].numpy(), (1 - p.mean[0]) / p.std[0], atol=1e-5)
    vol = np.random.default_rng(0).normal(-500, 300, (5, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        per_slice = enc.encode_images(enc.preprocess(vol, hu=True)).numpy()
    np.testing.assert_allclose(encode_volume(enc, vol), per_slice.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(encode_volume(enc, vol, pooling="max"), per_slice.max(0),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="pooling"):
        encode_volume(enc, vol, pooling="median")


def test_preprocess_rejects_bad_input():
    enc = create_model("toy-clip-vit", tiny=True)
    with pytest.raises(InputError):
        enc.preprocess(np.zeros((2, 3, 4, 5, 6), dtype=np.uint8))
    with pytest.raises(InputError):
        enc.preprocess(np.zeros((2, 8, 8), dtype=np.int32))


def test_unknown_model_is_config_error():
    with pytest.raises(ConfigError, match="unknown model"):
        create_model("not-a-model")


def test_zero_shot_scale_is_the_models_own():
    import math

    import torch

    enc = create_model("toy-clip-vit", tiny=True)
    with torch.no_grad():
        enc.model.logit_scale.fill_(math.log(20.0))
    assert enc.zero_shot_scale == pytest.approx(20.0)
    with torch.no_grad():
        enc.model.logit_scale.fill_(math.log(500.0))
    assert enc.zero_shot_scale == 100.0                      # CLIP's cap
    sig = create_model("medsiglip", tiny=True)
    assert sig.zero_shot_scale == pytest.approx(float(sig.model.logit_scale.exp()))


def test_densenet121_reads_torchvision_old_key_names(tmp_path):
    """Paper C's supervised CNN: torchvision's released DenseNet checkpoints name the layers
    'norm.1', 'conv.2'; they load into today's 'norm1', 'conv2' (classifier dropped)."""
    import re

    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(1)
    src = torchvision.models.densenet121(weights=None)
    sd = {re.sub(r"(denselayer\d+\.(?:norm|relu|conv))(\d)\.", r"\1.\2.", k): v.contiguous()
          for k, v in src.state_dict().items()}
    assert any(".norm.1." in k for k in sd)
    save_file(sd, str(tmp_path / "densenet.safetensors"))
    enc = create_model("densenet121", weights_path=tmp_path / "densenet.safetensors")
    got = enc.visual.state_dict()
    key = "features.denseblock1.denselayer1.conv1.weight"
    assert torch.equal(got[key], src.state_dict()[key])
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert tuple(enc.encode_images(x).shape) == (2, 1024)
