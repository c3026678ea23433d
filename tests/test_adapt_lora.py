"""LoRA and full fine-tuning of a tiny real open_clip image tower."""

import pytest
import torch

from compendium.adapt.finetune import build_image_classifier, run_adaptation
from compendium.adapt.lora import LoraSpec, lora_target_modules, split_attention
from compendium.adapt.tiny import TinyClipEncoder
from compendium.adapt.training import DictDataset, TrainSpec, fit, make_loader
from compendium.errors import ConfigError

from tests.adapt_synth import synthetic_images, synthetic_rows

CLASSES = ["Atelectasis", "Cardiomegaly", "Effusion"]


@pytest.fixture(scope="module")
def encoder():
    return TinyClipEncoder(seed=0)


@pytest.fixture(scope="module")
def images():
    rows, y = synthetic_rows(240, CLASSES, seed=1)
    x = torch.as_tensor(synthetic_images(y, rows["sex"], seed=2))
    out = {}
    for s in ("train", "val", "test"):
        m = (rows["split"] == s).to_numpy()
        out[s] = (x[torch.as_tensor(m.copy())], rows[m].reset_index(drop=True))
    return out, y


def _spec(**kw):
    base = dict(epochs=3, lr=1e-2, device="cpu", progress=False, threads=1)
    return TrainSpec(**{**base, **kw})


def _loaders(images):
    data, _ = images
    (xtr, rtr), (xva, rva) = data["train"], data["val"]
    ytr = rtr[CLASSES].to_numpy().argmax(1)
    yva = rva[CLASSES].to_numpy().argmax(1)
    return {"train": make_loader(DictDataset(xtr, ytr), batch_size=32),
            "val": make_loader(DictDataset(xva, yva), batch_size=64, shuffle=False)}


def test_targets_listed_from_named_modules(encoder):
    import copy

    assert lora_target_modules(encoder.visual, ["attn", "mlp.c_fc"]) == [
        "transformer.resblocks.0.attn", "transformer.resblocks.1.attn",
        "transformer.resblocks.0.mlp.c_fc", "transformer.resblocks.1.mlp.c_fc"]
    tower = copy.deepcopy(encoder.visual)
    assert split_attention(tower) == 2
    names = lora_target_modules(tower, encoder.entry.lora_targets)
    for b in (0, 1):
        for layer in ("attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.out_proj",
                      "mlp.c_fc", "mlp.c_proj"):
            assert f"transformer.resblocks.{b}.{layer}" in names
    assert len(names) == 12
    assert sorted(lora_target_modules(tower)) == sorted(names)
    with pytest.raises(ConfigError, match="matches no"):
        lora_target_modules(tower, ["qkv"])
    with pytest.raises(ConfigError, match="rank"):
        LoraSpec(r=0)
    # an out_proj inside an un-split nn.MultiheadAttention is never called: refuse it
    with pytest.raises(ConfigError, match="never"):
        lora_target_modules(encoder.visual, ["out_proj"])


def test_split_attention_is_the_same_function(encoder):
    import copy

    tower = copy.deepcopy(encoder.visual).eval()
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = encoder.visual.eval()(x)
        split_attention(tower)
        out = tower(x)
    assert not any(isinstance(m, torch.nn.MultiheadAttention) for m in tower.modules())
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    attn = tower.transformer.resblocks[0].attn
    w = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
    assert torch.equal(w, encoder.visual.transformer.resblocks[0].attn.in_proj_weight)


def test_lora_only_adapters_and_head_trainable(encoder):
    model = build_image_classifier(encoder, 3, method="lora", lora=LoraSpec(r=4, alpha=8))
    names = {n for n, _ in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    lora = {n for n in names if ".lora_A." in n or ".lora_B." in n}
    assert trainable == lora | {"head.weight", "head.bias"}
    # every targeted layer of every block got an adapter pair
    for block in (0, 1):
        for layer in ("q_proj", "k_proj", "v_proj", "out_proj", "c_fc", "c_proj"):
            for ab in ("lora_A", "lora_B"):
                assert any(f"resblocks.{block}." in n and f".{layer}.{ab}." in n
                           for n in lora), (block, layer, ab)
    a = next(p for n, p in model.named_parameters() if n.endswith("c_fc.lora_A.default.weight"))
    assert a.shape[0] == 4
    # the encoder itself is untouched
    assert all(p.requires_grad for p in encoder.visual.parameters())
    assert not any("lora" in n for n, _ in encoder.visual.named_parameters())


def test_lora_training_keeps_base_weights(encoder, images):
    model = build_image_classifier(encoder, 3, method="lora")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, _loaders(images), _spec(epochs=2))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed, "nothing was trained"
    assert all(".lora_" in n or n.startswith("head.") for n in changed)
    assert any(".lora_B." in n for n in changed)
    # the frozen base weights are bit-identical, and equal to the pretrained tower's
    original = dict(encoder.visual.named_parameters())
    base = {n.split("base_model.model.", 1)[1].replace(".base_layer", ""): p
            for n, p in model.backbone.visual.named_parameters() if "lora_" not in n}
    blk = "transformer.resblocks.1.attn."
    qkv = torch.cat([base[blk + f"{x}_proj.weight"] for x in "qkv"])
    assert torch.equal(qkv, original[blk + "in_proj_weight"])
    for n, p in base.items():
        if n in original:
            assert torch.equal(p, original[n]), n


def test_full_finetuning_changes_encoder_weights(encoder, images):
    original = {n: p.detach().clone() for n, p in encoder.visual.named_parameters()}
    model = build_image_classifier(encoder, 3, method="finetune")
    assert all(p.requires_grad for p in model.parameters())
    fit(model, _loaders(images), _spec(epochs=1, lr=1e-3))
    tuned = dict(model.backbone.visual.named_parameters())
    changed = [n for n in original if not torch.equal(tuned[n], original[n])]
    assert len(changed) > 0.8 * len(original)
    # the encoder object keeps its pretrained weights (a copy was tuned)
    for n, p in encoder.visual.named_parameters():
        assert torch.equal(p, original[n])


@pytest.mark.parametrize("method", ["lora", "finetune"])
def test_adaptation_beats_chance(encoder, images, method):
    data, _ = images
    table, info = run_adaptation(encoder, data, CLASSES, "multiclass",
                                 _spec(epochs=4, lr=1e-2 if method == "lora" else 1e-3),
                                 method=method, batch_size=32)
    acc = (table["y_true"] == table["y_pred"]).mean()
    assert acc > 0.6                            # chance is 1/3
    assert list(table.columns[:5]) == ["sample_id", "patient_id", "sex", "age_group", "race"]
    assert len(info["history"].epochs) == 4


def test_adaptation_with_mitigations(encoder, images, tmp_path):
    data, _ = images
    for mitigation in ("importance_weighting", "resampling"):
        table, info = run_adaptation(encoder, data, CLASSES, "multiclass", _spec(epochs=1),
                                     method="lora", mitigation=mitigation, attribute="sex")
        assert len(table) == len(data["test"][1])
    table, info = run_adaptation(encoder, data, CLASSES, "multiclass",
                                 _spec(epochs=2, run_dir=str(tmp_path / "adv")),
                                 method="lora", mitigation="adversarial", attribute="sex",
                                 alpha=1.0)
    assert info["alpha"] == 1.0
    assert "adv_loss" in info["history"].epochs[0]
    assert (tmp_path / "adv" / "final" / "last.pt").exists()
    with pytest.raises(ConfigError, match="attribute"):
        run_adaptation(encoder, data, CLASSES, "multiclass", _spec(epochs=1),
                       mitigation="resampling")


def test_lora_run_resumes_exactly(encoder, images, tmp_path):
    class Stop(Exception):
        pass

    def stop(epoch, history, model):
        if epoch == 0:
            raise Stop

    ref = build_image_classifier(encoder, 3, method="lora")
    fit(ref, _loaders(images), _spec(epochs=2, run_dir=str(tmp_path / "ref")))
    run = build_image_classifier(encoder, 3, method="lora")
    with pytest.raises(Stop):
        fit(run, _loaders(images), _spec(epochs=2, run_dir=str(tmp_path / "run")),
            callbacks=[stop])
    resumed = build_image_classifier(encoder, 3, method="lora", seed=5)
    hist = fit(resumed, _loaders(images), _spec(epochs=2, run_dir=str(tmp_path / "run")))
    assert hist.resumed_from == 1
    expected = ref.state_dict()
    for k, v in resumed.state_dict().items():
        assert torch.equal(v, expected[k]), k


def test_lora_init_is_seeded(encoder):
    torch.rand(3)
    a = build_image_classifier(encoder, 3, method="lora", seed=1).state_dict()
    torch.rand(3)
    b = build_image_classifier(encoder, 3, method="lora", seed=1).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_head_width_follows_the_tower_output(encoder):
    import types

    other = types.SimpleNamespace(visual=encoder.visual, embed_dim=999, entry=types.SimpleNamespace(
        lora_targets=("mlp",), preprocess=types.SimpleNamespace(size=32, channels=3)))
    model = build_image_classifier(other, 2, method="lora")
    assert model.head.in_features == 32            # the tower's output, not embed_dim
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".mlp." in n or n.startswith("head.") for n in trainable)
