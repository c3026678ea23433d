"""Toy CLIP encoders: contrastive pretraining learns, is deterministic and cached."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest
import torch

from compendium.encoders import create_model, get_entry
from compendium.encoders import toy

HAVE_SYNTHETIC = importlib.util.find_spec("compendium.synthetic") is not None

SMALL = toy.ToySpec(
    vision_cfg={"image_size": toy.TOY_SIZE, "patch_size": 16, "width": 32, "layers": 1,
                "head_width": 16, "mlp_ratio": 2.0, "pool_type": "avg"},
    embed_dim=16, text_cfg={"context_length": 8, "vocab_size": 49408, "width": 16, "heads": 1,
                            "layers": 1},
    epochs=12, batch_size=32, lr=5e-3, weight_decay=0.0)


def two_class_pairs(n: int = 128, seed: int = 0):
    """Bright upper half = 'upper opacity', bright lower half = 'lower opacity'."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    img = rng.integers(0, 60, (n, toy.TOY_SIZE, toy.TOY_SIZE)).astype(np.uint8)
    h = toy.TOY_SIZE // 2
    for i, c in enumerate(y):
        img[i, :h] += 150 if c == 0 else 0
        img[i, h:] += 150 if c == 1 else 0
    texts = ["upper opacity." if c == 0 else "lower opacity." for c in y]
    return img, texts, y


def test_toys_registered_with_distinct_towers():
    vit, rn, skew = (get_entry(n) for n in ("toy-clip-vit", "toy-clip-resnet",
                                             "toy-clip-vit-skewed"))
    assert all(e.kind == "toy" and e.weights == "synthetic-pretraining" for e in (vit, rn, skew))
    assert toy.TOYS["toy-clip-vit-skewed"].skew and not toy.TOYS["toy-clip-vit"].skew
    assert "layers" in toy.TOYS["toy-clip-resnet"].vision_cfg
    a, b = create_model("toy-clip-vit", tiny=True), create_model("toy-clip-resnet", tiny=True)
    assert type(a.visual).__name__ != type(b.visual).__name__


def test_toy_key_changes_with_config_and_seed():
    k = toy.toy_key("toy-clip-vit", seed=0)
    assert k == toy.toy_key("toy-clip-vit", seed=0)
    assert k != toy.toy_key("toy-clip-vit", seed=1)
    assert k != toy.toy_key("toy-clip-vit-skewed", seed=0)
    assert k != toy.toy_key("toy-clip-vit", seed=0,
                            spec=dataclasses.replace(toy.TOYS["toy-clip-vit"], epochs=1))


def test_contrastive_pretraining_learns_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "c1"))
    img, texts, y = two_class_pairs()
    path = toy.pretrain_toy("toy-clip-vit", seed=0, pairs=(img, texts), spec=SMALL,
                            progress=False)
    import json

    meta = json.loads((path / "meta.json").read_text())
    assert meta["loss"][-1] < meta["loss"][0]
    # zero-shot on fresh images is well above chance (1/2)
    import open_clip

    from compendium.encoders.encoder import OpenClipEncoder
    from compendium.encoders.weights import load_state_dict

    model = open_clip.CLIP(**SMALL.model_cfg())
    model.load_state_dict(load_state_dict(path))
    enc = OpenClipEncoder(get_entry("toy-clip-vit"), model, toy.toy_tokenizer("toy-clip-vit", SMALL),
                          embed_dim=SMALL.embed_dim).eval()
    test_img, _, test_y = two_class_pairs(64, seed=1)
    scores = toy.zero_shot_scores(enc, test_img, ["upper opacity", "lower opacity"],
                                  templates=("{}.",))
    assert (scores.argmax(1) == test_y).mean() > 0.8
    # cached: a second call trains nothing
    monkeypatch.setattr(toy, "pretrain_clip", lambda *a, **k: pytest.fail("retrained"))
    assert toy.pretrain_toy("toy-clip-vit", seed=0, pairs=(img, texts), spec=SMALL) == path
    monkeypatch.undo()
    # deterministic: the same run elsewhere gives byte-identical weights
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "c2"))
    again = toy.pretrain_toy("toy-clip-vit", seed=0, pairs=(img, texts), spec=SMALL,
                             progress=False)
    assert (again / "model.safetensors").read_bytes() == (path / "model.safetensors").read_bytes()
    assert torch.get_rng_state() is not None


def test_toy_builder_loads_cached_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path))
    ref = create_model("toy-clip-resnet", tiny=True)
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in ref.model.state_dict().items()},
              str(tmp_path / "w.safetensors"))
    enc = create_model("toy-clip-resnet", weights_path=tmp_path / "w.safetensors")
    x = ref.preprocess(np.zeros((1, 64, 64), np.uint8))
    with torch.inference_mode():
        torch.testing.assert_close(enc.encode_images(x), ref.encode_images(x))


@pytest.mark.skipif(not HAVE_SYNTHETIC, reason="compendium.synthetic (the synthetic world, "
                    "branch 'synthetic') is not importable")
def test_synthetic_pairs_and_nih6_task():
    img, texts = toy.synthetic_pairs("toy-clip-vit-skewed", seed=0, n_pairs=64)
    assert img.shape == (64, toy.TOY_SIZE, toy.TOY_SIZE) and img.dtype == np.uint8
    assert len(texts) == 64 and all(t == t.lower() and "impression" not in t for t in texts)
    images, labels, table = toy.nih6_task(seed=1, n_per_class=20, pool=3000)
    assert images.shape == (120, toy.TOY_SIZE, toy.TOY_SIZE)
    assert np.bincount(labels).tolist() == [20] * 6
    from compendium.synthetic import FINDINGS

    truth = table[[f"true_{f}" for f in FINDINGS]].to_numpy(float)
    assert (np.nansum(truth, 1) == 1).all()


def test_impression():
    assert toy.impression("FINDINGS: x.\nIMPRESSION: Small effusion.") == "small effusion."
    assert toy.impression("No finding.") == "no finding."


def test_a_second_process_waits_for_the_toy_being_pretrained(tmp_path, monkeypatch):
    """The book's notebooks run in parallel: two asking for the same toy train it once."""
    import shutil
    import threading

    from filelock import FileLock

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "c"))
    img, texts, _ = two_class_pairs()
    ready = toy.pretrain_toy("toy-clip-vit", seed=0, pairs=(img, texts), spec=SMALL,
                             progress=False)
    kept = tmp_path / "kept"
    shutil.copytree(ready, kept)
    shutil.rmtree(ready)
    trained = []
    monkeypatch.setattr(toy, "pretrain_clip", lambda *a, **k: trained.append(1) or [1.0])
    key = "custom-" + toy._pairs_hash("toy-clip-vit", (img, texts), 0, SMALL)
    result = {}
    with FileLock(str(ready.parent / f".toy-clip-vit-{key}.lock")):   # "another process"
        worker = threading.Thread(target=lambda: result.setdefault("path", toy.pretrain_toy(
            "toy-clip-vit", seed=0, pairs=(img, texts), spec=SMALL, progress=False)))
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive() and not trained    # it waits for the lock holder
        shutil.copytree(kept, ready)                # the holder's weights appear
    worker.join(timeout=30)
    assert result["path"] == ready and not trained  # reused, not trained again


def test_compact_vocabulary_gives_the_same_weights_bit_for_bit():
    """Training only the token rows the texts use (and replaying AdamW's decoupled weight
    decay on the others) must not change a single bit of any weight."""
    spec = dataclasses.replace(SMALL, weight_decay=0.05)
    img, texts, _ = two_class_pairs(96)
    texts = [t if i % 3 else t.replace("opacity", "opacity seen") for i, t in enumerate(texts)]
    states = []
    for compact in (False, True):
        torch.manual_seed(0)
        import open_clip

        model = open_clip.CLIP(**spec.model_cfg())
        before = model.token_embedding.weight.detach().clone()
        toy.pretrain_clip(model, toy.toy_tokenizer("toy-clip-vit", spec), img, texts,
                          epochs=2, batch_size=32, lr=spec.lr, weight_decay=spec.weight_decay,
                          progress=False, compact_vocab=compact)
        assert model.token_embedding.num_embeddings == 49408   # the full table is back
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    differ = [k for k in states[0] if not torch.equal(states[0][k], states[1][k])]
    assert differ == []
    # the check can fail: unused rows did move (weight decay), used rows moved more
    emb = states[1]["token_embedding.weight"]
    assert not torch.equal(emb, before)


def test_an_interrupted_pretraining_leaves_the_full_token_table(monkeypatch):
    import open_clip

    model = open_clip.CLIP(**SMALL.model_cfg())
    img, texts, _ = two_class_pairs(64)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(toy, "clip_loss", boom)
    with pytest.raises(KeyboardInterrupt):
        toy.pretrain_clip(model, toy.toy_tokenizer("toy-clip-vit", SMALL), img, texts,
                          epochs=1, batch_size=32, lr=1e-3, progress=False)
    assert model.token_embedding.num_embeddings == 49408
