"""Alignment losses (Paper E, eqs. 3-8) against a direct, loop-by-loop transcription of the
paper's equations on small tensors; the baselines' losses against hand values; alignment
training lowers the loss on paired data and not on shuffled pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from compendium.adapt import alignment as A
from compendium.errors import ConfigError


def _sim(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _ref_global(zc, ze, tau):
    """Eqs. 3, 4 and 5, written as printed."""
    B = len(zc)
    l_ce = -sum(math.log(math.exp(_sim(zc[i], ze[i]) / tau)
                         / sum(math.exp(_sim(zc[i], ze[j]) / tau) for j in range(B)))
                for i in range(B)) / B
    l_ec = -sum(math.log(math.exp(_sim(ze[i], zc[i]) / tau)
                         / sum(math.exp(_sim(ze[i], zc[j]) / tau) for j in range(B)))
                for i in range(B)) / B
    return 0.5 * (l_ce + l_ec)


def _ref_topk(attn_row, k):
    """Top-k(b): the k steps with the highest attention (earlier step first among ties)."""
    return sorted(range(len(attn_row)), key=lambda j: (-attn_row[j], j))[:k]


def _ref_local(zc, zs, attn, k, tau):
    """Eqs. 6a, 6b and 7, written as printed (z_EHR,j: step j of patient b)."""
    B, t = attn.shape
    la = lb = 0.0
    for b in range(B):
        for j in _ref_topk(attn[b], k):
            la += math.log(math.exp(_sim(zc[b], zs[b, j]) / tau)
                           / sum(math.exp(_sim(zc[b], zs[b, jj]) / tau) for jj in range(t)))
            lb += math.log(math.exp(_sim(zs[b, j], zc[b]) / tau)
                           / sum(math.exp(_sim(zs[b, j], zc[bb]) / tau) for bb in range(B)))
    return 0.5 * (-la / (B * k) + -lb / (B * k))


@pytest.fixture
def small():
    g = torch.Generator().manual_seed(3)
    B, t, d = 4, 6, 5
    return (torch.randn(B, d, generator=g), torch.randn(B, d, generator=g),
            torch.randn(B, t, d, generator=g), torch.rand(B, t, generator=g).softmax(1))


@pytest.mark.parametrize("tau", [0.07, 0.5, 1.0])
def test_global_infonce_matches_eqs_3_to_5(small, tau):
    zc, ze, _, _ = small
    got = float(A.global_infonce(zc, ze, tau))
    assert got == pytest.approx(_ref_global(zc.numpy(), ze.numpy(), tau), rel=1e-5)


def test_global_infonce_hand_value():
    # identical one-hot pairs, tau 1: each row's softmax is e / (e + 2)
    z = torch.eye(3)
    assert float(A.global_infonce(z, z, 1.0)) == pytest.approx(math.log(math.e + 2) - 1,
                                                               rel=1e-6)


@pytest.mark.parametrize("k", [1, 2, 3, 6])
@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_local_topk_matches_eqs_6a_6b_7(small, k, tau):
    zc, _, zs, attn = small
    got = float(A.local_topk_loss(zc, zs, attn, k, tau))
    assert got == pytest.approx(_ref_local(zc.numpy(), zs.numpy(), attn.numpy(), k, tau),
                                rel=1e-5)


def test_topk_selection_follows_the_attention():
    attn = torch.tensor([[0.1, 0.4, 0.2, 0.3], [0.25, 0.25, 0.4, 0.1]])
    assert A.topk_steps(attn, 2).tolist() == [[1, 3], [2, 0]]   # tie: earlier step first
    assert A.topk_steps(attn, 10).shape == (2, 4)                # k larger than t: all steps
    with pytest.raises(ConfigError):
        A.topk_steps(attn, 0)


def test_local_loss_depends_on_which_steps_are_selected(small):
    zc, _, zs, attn = small
    reversed_attn = attn.flip(1)
    a = float(A.local_topk_loss(zc, zs, attn, 2, 0.5))
    b = float(A.local_topk_loss(zc, zs, reversed_attn, 2, 0.5))
    assert a != pytest.approx(b)
    assert b == pytest.approx(_ref_local(zc.numpy(), zs.numpy(), reversed_attn.numpy(), 2, 0.5),
                              rel=1e-5)


def test_local_loss_mask_leaves_padding_out():
    g = torch.Generator().manual_seed(0)
    zc, zs = torch.randn(3, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    mask = torch.tensor([[1, 1, 1, 0, 0]] * 3, dtype=torch.bool)
    attn = A.attention_weights(zc, zs, mask=mask)
    assert float(attn[:, 3:].abs().sum()) == 0.0
    got = float(A.local_topk_loss(zc, zs, attn, 2, 0.3, mask))
    want = _ref_local(zc.numpy(), zs[:, :3].numpy(), attn[:, :3].numpy(), 2, 0.3)
    assert got == pytest.approx(want, rel=1e-5)


def test_medcam_total_is_global_plus_local(small):
    zc, ze, zs, attn = small
    tot = float(A.medcam_loss(zc, ze, zs, attn, k=3, tau=0.2))
    want = _ref_global(zc.numpy(), ze.numpy(), 0.2) + _ref_local(
        zc.numpy(), zs.numpy(), attn.numpy(), 3, 0.2)
    assert tot == pytest.approx(want, rel=1e-5)
    only_g = float(A.medcam_loss(zc, ze, zs, attn, k=3, tau=0.2, use_local=False))
    assert only_g == pytest.approx(_ref_global(zc.numpy(), ze.numpy(), 0.2), rel=1e-5)
    with pytest.raises(ConfigError):
        A.medcam_loss(zc, ze, zs, attn, k=3, tau=0.2, use_global=False, use_local=False)


def test_attention_is_a_softmax_of_scaled_dot_products():
    zc = torch.tensor([[1.0, 0.0]])
    zs = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    a = A.attention_weights(zc, zs)
    e = math.exp(2 / math.sqrt(2))
    assert a[0].tolist() == pytest.approx([e / (e + 1), 1 / (e + 1)], rel=1e-6)


def test_baseline_losses_hand_values():
    z = torch.eye(3)
    # ConVIRT with lam: both directions equal here -> the InfoNCE value
    assert float(A.convirt_loss(z, z, tau=1.0, lam=0.75)) == pytest.approx(
        math.log(math.e + 2) - 1, rel=1e-6)
    # ALIGN with scale 1 equals the symmetric InfoNCE at tau 1
    assert float(A.align_loss(z, z, torch.tensor(0.0))) == pytest.approx(
        math.log(math.e + 2) - 1, rel=1e-6)
    # VICReg of identical branches with unit-variance, uncorrelated columns: only the
    # variance hinge at std sqrt(var + 1e-4) is ~0 and the covariance is 0
    za = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]]) * math.sqrt(0.75)
    assert float(A.vicreg_loss(za, za)) == pytest.approx(0.0, abs=1e-3)
    # Barlow Twins of identical standardised uncorrelated views: C = I -> 0
    assert float(A.barlow_twins_loss(za, za)) == pytest.approx(0.0, abs=1e-3)
    # a shuffled second view decorrelates: the on-diagonal term grows
    assert float(A.barlow_twins_loss(za, za[[1, 0, 3, 2]])) > 1.0


def test_soft_targets_reduce_to_infonce_for_distinct_labels():
    z = torch.eye(3)
    labels = torch.eye(3)
    # with one-hot, distinct labels and a small tau the targets are the identity
    got = float(A.soft_target_loss(z, z, labels, tau=0.01))
    assert got == pytest.approx(float(A.global_infonce(z, z, 0.01)), rel=1e-4)


# ----------------------------------------------------------------------------- training


def _paired(n, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(n, 4, generator=g)
    w_img = torch.randn(4, 64, generator=torch.Generator().manual_seed(100))
    w_ehr = torch.randn(4, 7, generator=torch.Generator().manual_seed(101))
    img = (u @ w_img + 0.3 * torch.randn(n, 64, generator=g)).reshape(n, 1, 8, 8)
    steps = torch.linspace(0.2, 1.0, 6)[None, :, None]
    ehr = steps * (u @ w_ehr)[:, None, :] + 0.3 * torch.randn(n, 6, 7, generator=g)
    return img, ehr


def _model(seed=0):
    torch.manual_seed(seed)
    image = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
    return A.AlignmentModel(image, 32, A.EHREncoder(7, hidden=16), 16, dim=16)


@pytest.mark.parametrize("objective, use_global, use_local", [
    ("medcam", True, True), ("medcam", True, False), ("medcam", False, True),
    ("convirt", True, True)])
def test_alignment_lowers_the_loss_on_paired_data_not_on_shuffled_pairs(objective, use_global,
                                                                         use_local):
    # (ALIGN learns its temperature, so its loss falls to chance on shuffled pairs too:
    # fixed-temperature objectives only)
    img, ehr = _paired(256, 0)
    test_img, test_ehr = _paired(256, 1)
    spec = A.AlignSpec(objective=objective, k=3, tau=0.2, epochs=12, lr=3e-3, batch_size=64,
                       use_global=use_global, use_local=use_local)
    with torch.random.fork_rng(devices=[]):
        paired, shuffled = _model(), _model()
        before = A.evaluate_alignment(paired, test_img, test_ehr, spec)
        A.train_alignment(paired, img, ehr, spec)
        perm = torch.randperm(len(ehr), generator=torch.Generator().manual_seed(5))
        A.train_alignment(shuffled, img, ehr[perm], spec)
    after_paired = A.evaluate_alignment(paired, test_img, test_ehr, spec)
    after_shuffled = A.evaluate_alignment(shuffled, test_img, test_ehr, spec)
    assert after_paired < 0.6 * before, (before, after_paired)
    assert after_shuffled > 0.9 * before, (before, after_shuffled)


def test_training_is_deterministic_and_leaves_global_rng():
    img, ehr = _paired(128, 0)
    spec = A.AlignSpec(k=2, epochs=2, batch_size=32)
    state = torch.random.get_rng_state()
    h1 = A.train_alignment(_model(), img, ehr, spec)
    torch.random.set_rng_state(state)
    h2 = A.train_alignment(_model(), img, ehr, spec)
    assert h1 == h2


def test_adapter_update_freezes_the_backbone():
    img, ehr = _paired(64, 0)
    image = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU())
    before = [p.detach().clone() for p in image.parameters()]
    m = A.AlignmentModel(image, 32, A.EHREncoder(7, hidden=16), 16, dim=16, update="adapter")
    A.train_alignment(m, img, ehr, A.AlignSpec(k=2, epochs=2, batch_size=32))
    assert all(torch.equal(a, b) for a, b in zip(before, image.parameters()))
    assert any(p.abs().sum() > 0 for p in m.adapter.up.parameters())   # the adapter moved
    x = img[:3]
    assert torch.allclose(m.adapted_image_encoder()(x), m.image_features(x))


def test_bad_specs_are_refused():
    with pytest.raises(ConfigError):
        A.AlignSpec(objective="clip")
    with pytest.raises(ConfigError):
        A.AlignSpec(k=0)
    with pytest.raises(ConfigError):
        A.train_alignment(_model(), torch.zeros(4, 1, 8, 8), torch.zeros(3, 6, 7),
                          A.AlignSpec())


def test_bag_of_words_and_barlow_pretraining_run():
    x, vocab = A.bag_of_words(["Small left effusion.", "no effusion"])
    assert vocab == ["effusion", "left", "no", "small"]
    assert x.tolist() == [[1, 1, 0, 1], [1, 0, 1, 0]]
    img, _ = _paired(64, 0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    torch.manual_seed(0)
    net2 = nn.Sequential(nn.Flatten(), nn.Linear(64, 16))
    net2.load_state_dict(net.state_dict())
    hist = A.pretrain_barlow_twins(net, img, out_dim=16, proj_dim=8, epochs=3, batch_size=32)
    assert len(hist) == 3 and all(np.isfinite(hist))
    # deterministic whatever the global generator's state (the projector too)
    torch.manual_seed(123)
    assert A.pretrain_barlow_twins(net2, img, out_dim=16, proj_dim=8, epochs=3,
                                   batch_size=32) == hist
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), net2.parameters()))
