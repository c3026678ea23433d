"""Paper E's registry entries: EVA-X Tiny/Small (timm Eva as in EVA-X's eva_x.py), ConVIRT's
and the supervised baseline's ResNet-50; the EVA-X release key names load (weights_only);
the small towers of the synthetic world."""

from __future__ import annotations

import pytest
import torch

from compendium.encoders import create_model, get_entry
from compendium.encoders.models import EVA_X_ARCH, eva_x_state_dict
from compendium.encoders.small import SmallCNN, TinyEva
from compendium.errors import InputError


def _as_release(sd: dict, *, mim: bool) -> dict:
    """timm key names -> the EVA-02 / EVA-X release names (inverse of eva_x_state_dict)."""
    out = {}
    for k, v in sd.items():
        k = k.replace("mlp.fc1", "mlp.w12").replace("mlp.fc2", "mlp.w3")
        if mim and k.startswith("fc_norm."):
            k = k[3:]
        out[k] = v
    if mim:
        out["mask_token"] = torch.zeros(1, 1, sd["cls_token"].shape[-1])
        out["lm_head.weight"] = torch.zeros(8, sd["cls_token"].shape[-1])
    out["rope.freqs_cos"] = torch.zeros(3)
    return {"model": out}


@pytest.mark.parametrize("name", ["eva-x-tiny", "eva-x-small"])
@pytest.mark.parametrize("mim", [True, False])
def test_eva_x_release_checkpoint_round_trip(name, mim, tmp_path):
    torch.manual_seed(0)
    src = create_model(name, tiny=True)
    assert src.visual.embed_dim == EVA_X_ARCH[name]["embed_dim"]
    assert src.visual.patch_embed.proj.kernel_size == (16, 16)
    torch.save(_as_release(src.visual.state_dict(), mim=mim), tmp_path / "eva_x.pt")
    torch.manual_seed(1)
    dst = create_model(name, tiny=True, weights_path=tmp_path / "eva_x.pt")
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        torch.testing.assert_close(dst.encode_images(x), src.encode_images(x))
    assert dst.weights_id != "tiny-random"


def test_eva_x_key_mapping_by_hand():
    sd = {"model": {"blocks.0.mlp.w1.weight": 1, "blocks.0.mlp.w2.weight": 2,
                    "blocks.0.mlp.w3.weight": 3, "blocks.0.mlp.ffn_ln.bias": 4,
                    "blocks.0.attn.inner_attn_ln.weight": 5, "rope.freqs_sin": 6,
                    "mask_token": 7, "norm.weight": 8}}
    assert eva_x_state_dict(sd) == {
        "blocks.0.mlp.fc1_g.weight": 1, "blocks.0.mlp.fc1_x.weight": 2,
        "blocks.0.mlp.fc2.weight": 3, "blocks.0.mlp.norm.bias": 4,
        "blocks.0.attn.norm.weight": 5, "fc_norm.weight": 8}


def test_eva_x_checkpoint_that_does_not_fit_is_refused(tmp_path):
    torch.save({"blocks.0.unknown.weight": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="does not fit"):
        create_model("eva-x-tiny", tiny=True, weights_path=tmp_path / "bad.pt")


def test_resnet_entries():
    assert create_model("resnet50-random").weights_id == "random-init"   # needs no weights
    assert get_entry("convirt").embed_dim == 2048 and get_entry("convirt").paper == "E"


def test_small_towers():
    x = torch.randn(3, 1, 32, 32)
    assert SmallCNN(width=4)(x).shape == (3, 32)
    eva = TinyEva(img_size=32, patch_size=8, dim=24, depth=1, heads=2)
    assert eva(x).shape == (3, 24)
    assert eva.vit.rope is not None            # rotary position embeddings, as EVA-X
