"""Each audit metric against scikit-learn and fairlearn's MetricFrame.

Literal arrays first, then property-based random inputs (hypothesis).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

from compendium.audit import metrics as M
from compendium.errors import ConfigError

Y = np.array([0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0])
S = np.array([.1, .9, .35, .4, .8, .2, .55, .65, .7, .3, .5, .45])
P = (S >= 0.5).astype(int)
G = np.array(list("aabbaabbabab"))

YC = np.array(["x", "y", "z", "x", "y", "z", "x", "x", "y", "z", "z", "y"])
SC = np.array([[.7, .2, .1], [.1, .8, .1], [.2, .2, .6], [.3, .4, .3], [.3, .6, .1],
               [.1, .1, .8], [.5, .3, .2], [.2, .5, .3], [.6, .3, .1], [.2, .3, .5],
               [.4, .1, .5], [.1, .7, .2]])
PC = np.array(["x", "y", "z"])[SC.argmax(1)]


def mf(metric, y, p, g):
    return MetricFrame(metrics=metric, y_true=y, y_pred=p, sensitive_features=g)


def test_binary_utility_metrics_match_sklearn():
    assert M.accuracy(Y, P) == pytest.approx(skm.accuracy_score(Y, P))
    assert M.f1(Y, P) == pytest.approx(skm.f1_score(Y, P))
    assert M.tpr(Y, P) == pytest.approx(skm.recall_score(Y, P))
    assert M.fpr(Y, P) == pytest.approx(1 - skm.recall_score(Y, P, pos_label=0))
    assert M.udr(Y, P) == pytest.approx(1 - skm.recall_score(Y, P))
    assert M.auroc(Y, S) == pytest.approx(skm.roc_auc_score(Y, S))
    assert M.auprc(Y, S) == pytest.approx(skm.average_precision_score(Y, S))


def test_multiclass_utility_metrics_match_sklearn():
    assert M.accuracy(YC, PC) == pytest.approx(skm.accuracy_score(YC, PC))
    assert M.f1(YC, PC) == pytest.approx(skm.f1_score(YC, PC, average="macro"))
    per = M.f1(YC, PC, average=None)
    np.testing.assert_allclose(per.to_numpy(), skm.f1_score(YC, PC, average=None))
    assert M.tpr(YC, PC) == pytest.approx(skm.recall_score(YC, PC, average="macro"))
    assert M.auroc(YC, SC) == pytest.approx(skm.roc_auc_score(YC, SC, multi_class="ovr"))
    onehot = YC[:, None] == np.array(["x", "y", "z"])
    assert M.auprc(YC, SC) == pytest.approx(skm.average_precision_score(onehot, SC, average="macro"))


def test_multilabel_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, (80, 4))
    s = rng.random((80, 4))
    p = (s >= 0.5).astype(int)
    assert M.f1(y, p) == pytest.approx(skm.f1_score(y, p, average="macro"))
    assert M.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s, average="macro"))
    assert M.auprc(y, s) == pytest.approx(skm.average_precision_score(y, s, average="macro"))
    acc = M.accuracy(y, p, average=None).to_numpy()
    np.testing.assert_allclose(acc, (y == p).mean(axis=0))


def _ece_reference(correct, conf, n_bins=10):
    """Textbook ECE with an explicit loop over equal-width bins."""
    total = 0.0
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    for b in range(n_bins):
        m = bins == b
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return total


def test_ece_matches_a_binned_loop_and_options():
    conf = np.where(P == 1, S, 1 - S)
    # default reading: positive-class probability against the truth (FairMedFM, MEDFAIR)
    assert M.ece(Y, S) == pytest.approx(_ece_reference(Y.astype(float), S))
    assert M.ece(Y, S, confidence="predicted") == pytest.approx(_ece_reference(P == Y, conf))
    top = SC.max(1)
    assert M.ece(YC, SC) == pytest.approx(_ece_reference(PC == YC, top))
    assert M.ece(YC, SC, confidence="predicted") == pytest.approx(_ece_reference(PC == YC, top))
    assert M.ece(Y, S, n_bins=5, confidence="predicted") == pytest.approx(
        _ece_reference(P == Y, conf, 5))
    # one bin per sample: mean |o - p|
    assert M.ece(Y, S, binning="sample") == pytest.approx(np.abs(Y - S).mean())
    assert M.ece(Y, S, binning="sample", confidence="predicted") == pytest.approx(
        np.abs((P == Y) - conf).mean())
    with pytest.raises(ConfigError, match="confidence"):
        M.ece(Y, S, confidence="max")


def test_ece_confidence_readings_on_the_glossary_example():
    """The glossary's example: two positives scored 0.3 and 0.7 give 0.5 with the
    positive-class reading and 0.2 with max(p, 1 - p)."""
    y, s = np.array([1, 1]), np.array([0.3, 0.7])
    assert M.ece(y, s) == pytest.approx(0.5)
    assert M.ece(y, s, confidence="predicted") == pytest.approx(0.2)


def test_ece_confidence_reading_can_reverse_a_group_gap():
    """Group a over-predicts one negative (0.7): the positive-class ECE ranks a above b,
    max(p, 1 - p) puts a's two predictions (0 and 1, both at confidence 0.7) in one bin
    and ranks a below b."""
    y = np.array([0, 0, 0, 0])
    s = np.array([0.3, 0.7, 0.4, 0.4])
    g = np.array(["a", "a", "b", "b"])
    pos = M.by_group("ece", y, s, sensitive_features=g).iloc[:, 0]
    pred = M.by_group("ece", y, s, sensitive_features=g, confidence="predicted").iloc[:, 0]
    assert (pos["a"], pos["b"]) == (pytest.approx(0.5), pytest.approx(0.4))
    assert (pred["a"], pred["b"]) == (pytest.approx(0.2), pytest.approx(0.4))
