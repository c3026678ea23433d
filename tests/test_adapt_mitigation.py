import numpy as np
import pytest
import torch

from compendium.adapt.mitigation import (GroupBalancedSampler, balanced_indices,
                                         demographic_probe, grad_reverse, group_gap,
                                         importance_weights, select_alpha)
from compendium.errors import ConfigError

from tests.adapt_synth import synthetic_embeddings, synthetic_rows

GROUPS = np.array(["F"] * 6 + ["M"] * 4)
LABELS = np.array([1, 1, 1, 1, 1, 0, 1, 0, 0, 0])   # cells: F1=5, F0=1, M1=1, M0=3


def test_importance_weights_exact():
    w = importance_weights(GROUPS, LABELS)
    # n=10, K=4 cells: w = 10 / (4 * n_cell)
    expected = {("F", 1): 10 / 20, ("F", 0): 10 / 4, ("M", 1): 10 / 4, ("M", 0): 10 / 12}
    for g, y, wi in zip(GROUPS, LABELS, w):
        assert wi == pytest.approx(expected[(g, y)])
    for key in expected:
        m = (GROUPS == key[0]) & (LABELS == key[1])
        assert w[m].sum() == pytest.approx(2.5)      # every cell weighs n / K
    assert w.mean() == pytest.approx(1.0)


def test_balanced_indices_exact():
    idx = balanced_indices(GROUPS, LABELS, seed=0)
    cells = [(GROUPS[i], LABELS[i]) for i in idx]
    assert len(idx) == 20
    assert {c: cells.count(c) for c in set(cells)} == {("F", 1): 5, ("F", 0): 5,
                                                       ("M", 1): 5, ("M", 0): 5}
    # every member of the largest cell appears exactly once; M0 members 1 or 2 times
    counts = np.bincount(idx, minlength=10)
    assert counts[:5].tolist() == [1] * 5
    assert sorted(counts[7:].tolist()) == [1, 2, 2]
    np.testing.assert_array_equal(idx, balanced_indices(GROUPS, LABELS, seed=0))
    assert len(balanced_indices(GROUPS, LABELS, n_per_cell=2, seed=1)) == 8
    with pytest.raises(ConfigError):
        balanced_indices(GROUPS, LABELS, n_per_cell=0)


def test_sampler_balanced_each_epoch_and_seeded():
    s = GroupBalancedSampler(GROUPS, LABELS, seed=3)
    assert len(s) == 20
    orders = []
    for epoch in range(3):
        s.set_epoch(epoch)
        order = list(s)
        cells = [(GROUPS[i], LABELS[i]) for i in order]
        assert all(cells.count(c) == 5 for c in set(cells))
        orders.append(order)
    assert orders[0] != orders[1]
    s.set_epoch(1)
    assert list(s) == orders[1]


def test_gradient_reversal():
    x = torch.ones(3, requires_grad=True)
    y = grad_reverse(x, 2.0)
    assert torch.equal(y, x)
    y.sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -2.0))


def test_group_gap_and_alpha_selection():
    y = np.array([1, 1, 1, 1, 0, 0])
    pred = np.array([1, 1, 0, 0, 0, 0])
    g = ["a", "a", "b", "b", "a", "b"]
    assert group_gap(y, pred, g) == 1.0
    outcomes = {0.5: (pred, pred * 0.9 + 0.05), 1.0: (y, y * 0.9 + 0.05),
                2.0: (y, y * 0.9 + 0.05)}
    alpha, rows = select_alpha(lambda a: outcomes[a], y, g)
    assert alpha == 1.0 and [r["gap"] for r in rows] == [1.0, 0.0, 0.0]


def test_demographic_probe_reads_injected_attribute():
    rows, y = synthetic_rows(600, ["a", "b"], seed=0)
    sex = rows["sex"].to_numpy()
    tr = np.arange(600) < 400
    with_attr = synthetic_embeddings(y, sex, attr_signal=3.0, seed=1)
    without = synthetic_embeddings(y, sex, attr_signal=0.0, seed=1)
    hi = demographic_probe(with_attr[tr], sex[tr], with_attr[~tr], sex[~tr])
    lo = demographic_probe(without[tr], sex[tr], without[~tr], sex[~tr])
    assert hi["macro_f1"] > 0.85
    assert lo["macro_f1"] < 0.6
    assert hi["n_groups"] == 2
