"""Fine-tuning by validation macro AUROC (Paper E, section 4.3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from compendium.adapt.multilabel import (
    FinetuneSpec,
    finetune_multilabel,
    macro_auroc,
    predict_multilabel,
)
from compendium.errors import ConfigError


def test_macro_auroc_against_sklearn_and_skips_single_class_labels():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (50, 3)).astype(float)
    s = rng.uniform(size=(50, 3))
    y[:, 2] = 0                                   # one class only: left out
    y[0, 0] = np.nan                              # unknown: ignored
    want = np.mean([roc_auc_score(y[1:, 0], s[1:, 0]), roc_auc_score(y[:, 1], s[:, 1])])
    assert macro_auroc(y, s) == pytest.approx(want)
    assert np.isnan(macro_auroc(np.zeros((4, 1)), np.ones((4, 1))))


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = torch.stack([(x[:, 0] > 0), (x[:, 1] + x[:, 2] > 0.5)], 1).float().numpy()
    return x, y


def test_finetune_selects_by_validation_and_keeps_the_backbone():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
    before = [p.detach().clone() for p in backbone.parameters()]
    spec = FinetuneSpec(lrs=[1e-2, 1e-6], max_epochs=20, batch_size=32, eval_every=5,
                        patience=2)
    res = finetune_multilabel(backbone, 8, _data(256, 0), _data(128, 1), spec)
    assert res.lr == 1e-2 and res.selection["selected"].tolist() == [True, False]
    assert res.val_auroc == pytest.approx(res.selection["best_val_auroc"].max())
    assert res.val_auroc > 0.9
    # the kept weights are those of the best evaluation: recomputing gives the same AUROC
    xv, yv = _data(128, 1)
    assert macro_auroc(yv, predict_multilabel(res.model, xv)) == pytest.approx(res.val_auroc)
    assert all(torch.equal(a, b) for a, b in zip(before, backbone.parameters()))
    assert set(res.selection["epochs_run"]) <= {5, 10, 15, 20}


def test_finetune_is_deterministic():
    backbone = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
    spec = FinetuneSpec(lrs=[1e-2], max_epochs=5, eval_every=5)
    a = finetune_multilabel(backbone, 8, _data(64, 0), _data(64, 1), spec)
    b = finetune_multilabel(backbone, 8, _data(64, 0), _data(64, 1), spec)
    assert a.val_auroc == b.val_auroc


def test_bad_specs():
    with pytest.raises(ConfigError):
        FinetuneSpec(lrs=[])
    with pytest.raises(ConfigError):
        FinetuneSpec(eval_every=0)
