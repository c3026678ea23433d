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


def test_per_group_rates_and_gaps_match_metricframe():
    frame = mf({"tpr": true_positive_rate, "fpr": false_positive_rate,
                "f1": skm.f1_score, "acc": skm.accuracy_score}, Y, P, G)
    ours = M.by_group("tpr", Y, P, sensitive_features=G)
    np.testing.assert_allclose(ours["1"].to_numpy(), frame.by_group["tpr"].to_numpy())
    np.testing.assert_allclose(M.by_group("fpr", Y, P, sensitive_features=G)["1"],
                               frame.by_group["fpr"])
    diff = frame.difference(method="between_groups")
    assert M.tpr_gap(Y, P, sensitive_features=G) == pytest.approx(diff["tpr"])
    assert M.fpr_gap(Y, P, sensitive_features=G) == pytest.approx(diff["fpr"])
    assert M.udr_gap(Y, P, sensitive_features=G) == pytest.approx(diff["tpr"])
    assert M.f1_gap(Y, P, sensitive_features=G) == pytest.approx(diff["f1"])
    assert M.eqodds(Y, P, sensitive_features=G) == pytest.approx(0.5 * (diff["tpr"] + diff["fpr"]))
    assert M.eqodds(Y, P, sensitive_features=G, eqodds="max") == pytest.approx(
        max(diff["tpr"], diff["fpr"]))
    auc = MetricFrame(metrics=skm.roc_auc_score, y_true=Y, y_pred=S, sensitive_features=G)
    assert M.auroc_gap(Y, S, sensitive_features=G) == pytest.approx(auc.difference())
    assert M.worst_group_auroc(Y, S, sensitive_features=G) == pytest.approx(auc.group_min())
    a = G == "a"
    fpr_a = false_positive_rate(Y[a], P[a])
    fpr_b = false_positive_rate(Y[~a], P[~a])
    assert M.fpr_difference(Y, P, sensitive_features=G, pair=("a", "b")) == pytest.approx(fpr_a - fpr_b)


def test_multiclass_paper_a_fairness_metrics_match_metricframe():
    g = np.array(list("ababababbaab"))
    classes = ["x", "y", "z"]
    f1_gaps, tpr_gaps, fpr_gaps = [], [], []
    for c in classes:
        yt, yp = (YC == c).astype(int), (PC == c).astype(int)
        frame = mf({"f1": skm.f1_score, "tpr": true_positive_rate, "fpr": false_positive_rate},
                   yt, yp, g)
        d = frame.difference()
        f1_gaps.append(d["f1"])
        tpr_gaps.append(d["tpr"])
        fpr_gaps.append(d["fpr"])
    assert M.f1_gap(YC, PC, sensitive_features=g) == pytest.approx(np.mean(f1_gaps))
    np.testing.assert_allclose(M.f1_gap(YC, PC, sensitive_features=g, average=None), f1_gaps)
    expected = np.mean([(t + f) / 2 for t, f in zip(tpr_gaps, fpr_gaps)])
    assert M.eqodds(YC, PC, sensitive_features=g) == pytest.approx(expected)
    per_class = skm.f1_score(YC, PC, average=None)
    assert M.f1_var(YC, PC) == pytest.approx(np.var(per_class))
    assert M.f1_var(YC, PC, ddof=1) == pytest.approx(np.var(per_class, ddof=1))
    ece_a = M.ece(YC[g == "a"], SC[g == "a"], labels=classes)
    ece_b = M.ece(YC[g == "b"], SC[g == "b"], labels=classes)
    assert M.ece_gap(YC, SC, sensitive_features=g, labels=classes) == pytest.approx(abs(ece_a - ece_b))


def test_gap_over_more_than_two_groups_is_max_minus_min_and_intersections():
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    sex, age = rng.choice(["F", "M"], 300), rng.choice(["y", "m", "o"], 300)
    sf = pd.DataFrame({"sex": sex, "age": age})
    frame = mf(true_positive_rate, y, p, sf)
    assert M.tpr_gap(y, p, sensitive_features=sf) == pytest.approx(frame.difference())
    assert M.by_group("tpr", y, p, sensitive_features=sf).shape == (6, 1)


def test_undefined_metrics_are_nan_not_zero():
    y = np.array([1, 1, 0, 0])
    s = np.array([.9, .8, .3, .1])
    g = np.array(["a", "a", "b", "b"])  # each group has one class only
    assert np.isnan(M.auroc_gap(y, s, sensitive_features=g))
    assert np.isnan(M.tpr(np.array([0, 0]), np.array([0, 1])))


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1), st.integers(min_value=8, max_value=60),
       st.integers(min_value=2, max_value=4), st.booleans())
def test_property_random_inputs_match_references(seed, n, n_groups, ties):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    s = rng.random(n)
    if ties:
        s = np.round(s, 1)
    p = (s >= 0.5).astype(int)
    g = rng.integers(0, n_groups, n).astype(str)
    if 0 < y.sum() < n:
        assert M.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
        assert M.auprc(y, s) == pytest.approx(skm.average_precision_score(y, s))
    if y.sum() > 0 or p.sum() > 0:
        assert M.f1(y, p) == pytest.approx(skm.f1_score(y, p))
    assert M.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    frame = mf({"tpr": true_positive_rate, "fpr": false_positive_rate}, y, p, g)
    ours = pd.DataFrame({m: M.by_group(m, y, p, sensitive_features=g)["1"] for m in ("tpr", "fpr")})
    ref = frame.by_group.astype(float)
    for m in ("tpr", "fpr"):
        got, want = ours[m].to_numpy(), ref[m].to_numpy()
        # fairlearn returns 0 where the rate is undefined; we return nan
        defined = np.isfinite(got)
        np.testing.assert_allclose(got[defined], want[defined])
        gap = getattr(M, f"{m}_gap")(y, p, sensitive_features=g)
        if defined.all():
            assert gap == pytest.approx(frame.difference()[m])
        else:
            assert np.isnan(gap)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**31 - 1), st.integers(min_value=3, max_value=5))
def test_property_multiclass_matches_sklearn(seed, k):
    rng = np.random.default_rng(seed)
    n = 60
    labels = np.arange(k)
    y = np.concatenate([labels, rng.integers(0, k, n - k)])
    s = rng.dirichlet(np.ones(k), n)
    p = s.argmax(1)
    np.testing.assert_allclose(
        M.f1(y, p, labels=labels, average=None).to_numpy(),
        skm.f1_score(y, p, average=None, labels=labels, zero_division=np.nan))
    assert M.auroc(y, s, labels=labels) == pytest.approx(
        skm.roc_auc_score(y, s, multi_class="ovr", labels=labels))
    assert M.accuracy(y, p, labels=labels) == pytest.approx(skm.accuracy_score(y, p))


def test_signed_differences_by_hand():
    y = [0, 0, 1, 1, 0, 0, 1, 1]
    p = [1, 0, 1, 0, 0, 0, 1, 1]
    g = ["a"] * 4 + ["b"] * 4
    assert M.fpr_difference(y, p, sensitive_features=g, pair=("a", "b")) == 0.5
    assert M.tpr_difference(y, p, sensitive_features=g, pair=("a", "b")) == -0.5
    assert M.tpr_difference(y, p, sensitive_features=g, pair=("b", "a")) == 0.5
    s = [0.9, 0.1, 0.8, 0.2, 0.1, 0.2, 0.9, 0.8]
    assert M.auroc_difference(y, s, sensitive_features=g, pair=("a", "b")) == 0.5 - 1.0


def test_spec_list_drives_public_functions():
    for sp in M.METRICS:
        fn = getattr(M, sp.name.replace("_diff", "_difference"))
        assert fn.__doc__ and sp.title.split(" (")[0].split()[0] in fn.__doc__
    assert set(M.GAPS) == {"f1_gap", "eqodds", "ece_gap", "auroc_gap", "worst_group_auroc",
                           "tpr_gap", "fpr_gap", "udr_gap"}


def test_rank_metrics_take_scores_outside_zero_one():
    """AUROC depends only on the order of the scores: raw logits or margins work too."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    s = rng.normal(size=200) * 3 + y
    assert M.auroc(y, s) == pytest.approx(roc_auc_score(y, s))
