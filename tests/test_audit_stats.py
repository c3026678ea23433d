"""Bootstrap, permutation tests and corrections: equivalence with a naive loop, validity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
from sklearn import metrics as skm
from statsmodels.stats.multitest import multipletests

from compendium.audit import audit, stats
from compendium.audit.metrics import RowSet
from compendium.audit.predictions import parse_attributes, parse_predictions


def _binary_table(n=240, seed=0, patients=True):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "y_true": rng.integers(0, 2, n),
        "y_score": np.round(rng.random(n), 2),
        "sex": rng.choice(["F", "M"], n),
        "age": rng.choice(["18-40", "40-80", "80+"], n),
    })
    if patients:
        df["patient_id"] = rng.integers(0, n // 3, n).astype(str)
    return df


def test_resample_counts_keep_strata_sizes_and_patients_together():
    rng = np.random.default_rng(1)
    strata = rng.integers(0, 3, 300)
    patients = rng.integers(0, 120, 300)
    strata = strata[patients]  # a patient's rows share a stratum
    counts = np.concatenate(list(stats.iter_resample_counts(
        50, 300, strata=strata, clusters=patients, seed=0, chunk=7)), axis=1)
    assert counts.shape == (300, 50)
    # every row of a patient is drawn as many times as the patient
    for p in np.unique(patients)[:20]:
        rows = counts[patients == p]
        assert (rows == rows[0]).all()
    # every stratum keeps its number of patients
    for s in range(3):
        units = np.unique(patients[strata == s])
        first_rows = np.array([np.flatnonzero(patients == u)[0] for u in units])
        assert (counts[first_rows].sum(axis=0) == len(units)).all()
    # without clusters: the row count of each stratum is fixed
    c2 = np.concatenate(list(stats.iter_resample_counts(20, 300, strata=strata, seed=3)), axis=1)
    for s in range(3):
        assert (c2[strata == s].sum(axis=0) == (strata == s).sum()).all()


def _ece(correct, conf, bins=10):
    b = np.minimum((conf * bins).astype(int), bins - 1)
    return sum((b == k).mean() * abs(correct[b == k].mean() - conf[b == k].mean())
               for k in range(bins) if (b == k).any())


def test_vectorised_engine_equals_naive_loop_on_the_same_resamples():
    df = _binary_table()
    d = parse_predictions(df, task="binary")
    counts = next(stats.iter_resample_counts(40, len(df), clusters=df.patient_id, seed=5))
    ev = RowSet(d).evaluate(counts)
    ev_pred = RowSet(d.with_confidence("predicted")).evaluate(counts)
    for j, idx in enumerate(stats.counts_to_indices(counts)):
        y, s = df.y_true.to_numpy()[idx], df.y_score.to_numpy()[idx]
        p = (s >= 0.5).astype(int)
        assert ev["auroc"][0, j] == pytest.approx(skm.roc_auc_score(y, s))
        assert ev["auprc"][0, j] == pytest.approx(skm.average_precision_score(y, s))
        assert ev["f1"][0, j] == pytest.approx(skm.f1_score(y, p))
        assert ev["tpr"][0, j] == pytest.approx(skm.recall_score(y, p))
        assert ev["accuracy"][0, j] == pytest.approx(skm.accuracy_score(y, p))
        # positive-class reading (default): the score against the truth
        assert ev["ece"][0, j] == pytest.approx(_ece(y, s))
        conf = np.where(p == 1, s, 1 - s)
        assert ev_pred["ece"][0, j] == pytest.approx(_ece(p == y, conf))


def test_audit_intervals_equal_naive_metricframe_loop():
    """The audit's intervals equal those formed from naive per-resample MetricFrame values:
    percentiles of a group's metric and of a signed difference, the absolute value of the
    signed interval for a two-group gap, calibrated pairwise intervals for three groups."""
    df = _binary_table(n=200, seed=2)
    n_boot = 60
    table = audit(df, task="binary", attributes=["sex", "age"], n_bootstrap=n_boot,
                  n_permutations=0, seed=11)
    # the same resamples: strata = intersection of the attributes, patients as clusters
    attrs = parse_attributes(df, ["sex", "age"])
    strata = np.unique(np.stack([a.codes for a in attrs], 1), axis=0, return_inverse=True)[1]
    counts = np.concatenate(list(stats.iter_resample_counts(
        n_boot, len(df), strata=strata.ravel(), clusters=df.patient_id.astype(str).to_numpy(),
        seed=np.random.default_rng(11))), axis=1)
    fprs, tpr_sex, aucs = [], [], []

    def fpr_by(r, attr):
        p = (r.y_score >= 0.5).astype(int)
        return MetricFrame(metrics={"fpr": false_positive_rate, "tpr": true_positive_rate},
                           y_true=r.y_true, y_pred=p, sensitive_features=r[attr]).by_group

    for idx in stats.counts_to_indices(counts):
        r = df.iloc[idx]
        fprs.append(fpr_by(r, "age")["fpr"].to_numpy())
        tpr_sex.append(fpr_by(r, "sex")["tpr"].to_numpy())
        aucs.append(MetricFrame(metrics=skm.roc_auc_score, y_true=r.y_true, y_pred=r.y_score,
                                sensitive_features=r.sex).by_group["F"])
    # three age groups: max over pairs of |d| bounds of simultaneous (max-t) intervals
    est = fpr_by(df, "age")["fpr"].to_numpy()
    fprs = np.array(fprs)
    pairs = [(0, 1), (0, 2), (1, 2)]
    d_hat = np.array([est[i] - est[j] for i, j in pairs])
    d_boot = np.array([fprs[:, i] - fprs[:, j] for i, j in pairs])
    se = d_boot.std(axis=1)
    c = np.quantile((np.abs(d_boot - d_hat[:, None]) / se[:, None]).max(axis=0), 0.95)
    lows, highs = d_hat - c * se, d_hat + c * se
    abs_lo = [0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)) for lo, hi in zip(lows, highs)]
    abs_hi = [max(abs(lo), abs(hi)) for lo, hi in zip(lows, highs)]
    if max(abs_lo) > 0:
        # the joint band tells a difference from 0: the critical value is calibrated, the
        # smallest c with which each resample's interval of the max-min gap holds the
        # estimate, in closed form: lower bound max(|d*| - c se) <= gap and upper bound
        # max(|d*| + c se) >= gap
        gap_hat = np.abs(d_hat).max()
        ad = np.abs(d_boot)
        need = np.maximum(0, np.maximum(((ad - gap_hat) / se[:, None]).max(axis=0),
                                        ((gap_hat - ad) / se[:, None]).min(axis=0)))
        c = np.quantile(need, 0.95, method="higher")
        abs_lo = np.maximum(np.abs(d_hat) - c * se, 0)
        abs_hi = np.abs(d_hat) + c * se
    row = table.query("metric == 'fpr_gap' and attribute == 'age'").iloc[0]
    assert row.interval == "calibrated"
    assert (row.ci_low, row.ci_high) == pytest.approx((max(abs_lo), max(abs_hi)), abs=1e-6)
    assert row.ci_low <= row.estimate <= row.ci_high
    # two sexes: the signed difference F - M (percentiles) and the gap, its absolute value
    tpr_sex = np.array(tpr_sex)
    lo, hi = np.quantile(tpr_sex[:, 0] - tpr_sex[:, 1], [0.025, 0.975])
    diff = table.query("metric == 'tpr_diff' and attribute == 'sex'").iloc[0]
    assert diff.group == "F vs M" and (diff.ci_low, diff.ci_high) == pytest.approx((lo, hi))
    gap = table.query("metric == 'tpr_gap' and attribute == 'sex'").iloc[0]
    assert gap.estimate == pytest.approx(abs(diff.estimate))
    expected = ((0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi))), max(abs(lo), abs(hi)))
    assert (gap.ci_low, gap.ci_high) == pytest.approx(expected)
    assert gap.p_value == diff.p_value or np.isnan(gap.p_value)
    row = table.query("metric == 'auroc' and attribute == 'sex' and group == 'F'").iloc[0]
    assert (row.ci_low, row.ci_high) == pytest.approx(tuple(np.quantile(aucs, [0.025, 0.975])))


def test_permutation_pvalue_formula_and_naive_equivalence():
    obs = np.array(0.2)
    perms = np.array([0.1, 0.25, 0.2, 0.05, np.nan])
    # (1 + #{>= 0.2}) / (1 + 4 defined permutations)
    assert float(stats.permutation_pvalue(obs, perms)) == pytest.approx(3 / 5)
    assert float(stats.permutation_pvalue(np.array(-0.2), perms, two_sided=True)) == pytest.approx(3 / 5)
    df = _binary_table(n=150, seed=4, patients=False)
    table = audit(df, task="binary", attributes=["sex"], n_bootstrap=0, n_permutations=80,
                  seed=3, metrics=["tpr_gap"])
    rng = np.random.default_rng(3)
    codes = parse_attributes(df, ["sex"])[0].codes
    perm_codes = np.concatenate(list(stats.iter_permuted_codes(codes, 80, seed=rng)))
    y, p = df.y_true.to_numpy(), (df.y_score >= 0.5).astype(int).to_numpy()
    observed = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=p,
                           sensitive_features=df.sex).difference()
    naive = [MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=p,
                         sensitive_features=c).difference() for c in perm_codes]
    expected = (1 + np.sum(np.array(naive) >= observed - 1e-12)) / 81
    assert table.p_value.iloc[0] == pytest.approx(expected)


def test_adjust_pvalues_matches_statsmodels_and_skips_nan():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2])
    ok = np.isfinite(p)
    for method, sm in (("holm", "holm"), ("bh", "fdr_bh")):
        out = stats.adjust_pvalues(p, method)
        np.testing.assert_allclose(out[ok], multipletests(p[ok], method=sm)[1])
        assert np.isnan(out[2])


def _simulate(rng, n_per_group, tpr_a, tpr_b, fpr=0.2):
    g = np.repeat(["A", "B"], n_per_group)
    y = rng.integers(0, 2, 2 * n_per_group)
    tpr = np.where(g == "A", tpr_a, tpr_b)
    p = np.where(y == 1, rng.random(len(y)) < tpr, rng.random(len(y)) < fpr).astype(int)
    return pd.DataFrame({"y_true": y, "y_score": np.where(p == 1, 0.75, 0.25), "y_pred": p,
                         "group": g})


def test_bootstrap_coverage_and_permutation_size_on_simulations():
    """Known truth: 95% intervals cover the true TPR gap in 93-97% of simulations, and with
    no true gap the permutation test rejects at alpha = 0.05 in at most 6.5% of them.

    1000 simulations each: the Monte-Carlo standard error of a 95% coverage is 0.7 points.
    """
    rng = np.random.default_rng(20261123)
    n_sim = 1000
    true_gap = 0.85 - 0.55
    covered, rejected = 0, 0
    for _ in range(n_sim):
        df = _simulate(rng, 200, 0.85, 0.55)
        row = audit(df, task="binary", attributes=["group"], n_bootstrap=400, n_permutations=0,
                    seed=rng, metrics=["tpr_gap"], correction=None).iloc[0]
        covered += row.ci_low <= true_gap <= row.ci_high
        df = _simulate(rng, 200, 0.7, 0.7)
        row = audit(df, task="binary", attributes=["group"], n_bootstrap=0, n_permutations=99,
                    seed=rng, metrics=["tpr_gap"], correction=None).iloc[0]
        rejected += row.p_value <= 0.05
    print(f"coverage {covered / n_sim:.3f}, size {rejected / n_sim:.3f}")
    assert 0.93 <= covered / n_sim <= 0.97, covered / n_sim
    assert rejected / n_sim <= 0.065, rejected / n_sim
    # and the test has power when the gap is real (not a test that cannot fail)
    powered = sum(audit(_simulate(rng, 200, 0.85, 0.55), task="binary", attributes=["group"],
                        n_bootstrap=0, n_permutations=99, seed=rng,
                        metrics=["tpr_gap"]).p_value.iloc[0] <= 0.05 for _ in range(20))
    assert powered >= 18


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.intp])
def test_shuffled_rows_is_the_permuted_stream_and_commutes_with_gathering(dtype):
    """Row-by-row shuffles give exactly ``Generator.permuted`` along the rows (so seeds
    keep their permutations), and shuffling codes equals gathering them through shuffled
    indices (what the shared draws of several attributes rely on)."""
    values = (np.arange(257) % 5).astype(dtype)
    ref = np.random.default_rng(11).permuted(np.broadcast_to(values, (6, 257)), axis=1)
    got = stats.shuffled_rows(np.random.default_rng(11), values, 6)
    assert got.dtype == dtype and np.array_equal(got, ref)
    index = stats.shuffled_rows(np.random.default_rng(11), np.arange(257), 6)
    assert np.array_equal(values[index], got)
    assert (np.sort(index, axis=1) == np.arange(257)).all()     # each row a permutation
    assert len({tuple(r) for r in index}) == 6                   # and the rows differ


def test_permutations_shuffle_patients_when_the_attribute_is_constant_within_them():
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 40, 200)
    codes = (patients % 3).astype(np.int64)
    assert stats.constant_within(codes, patients)
    assert not stats.constant_within(rng.integers(0, 2, 200), patients)
    perm = np.concatenate(list(stats.iter_permuted_codes(codes, 30, clusters=patients, seed=1)))
    for p in np.unique(patients):
        rows = perm[:, patients == p]
        assert (rows == rows[:, :1]).all()
    # the patients' labels are a permutation of the original patients' labels
    first = np.array([np.flatnonzero(patients == p)[0] for p in np.unique(patients)])
    assert (np.sort(perm[:, first], axis=1) == np.sort(codes[first])).all()


@pytest.mark.parametrize("prevalence, n_groups, max_words",
                         [(0.5, 4, 2), (0.85, 4, 2), (0.3, 14, 2), (0.3, 14, 1), (0.85, 4, 0)])
def test_group_auroc_under_permutation_equals_the_weighted_engine(prevalence, n_groups,
                                                                  max_words):
    """The packed-count AUROC of every shuffled group equals the weighted engine's AUROC on
    the group's 0/1 mask (an empty group is nan), also when positives outnumber negatives
    (the rows are then walked by decreasing score), when the groups' bit fields need
    several 64-bit words (13 groups with rows, 10 fields per word), and on the radix-sort
    path taken beyond ``max_words`` words; tied positive/negative scores are detected so
    that the engine falls back to the weighted path (ties count one half)."""
    from compendium.audit.metrics import GroupAUROC

    rng = np.random.default_rng(3)
    n = 400
    df = pd.DataFrame({"y_true": (rng.random(n) < prevalence).astype(int),
                       "y_score": rng.random(n)})
    d = parse_predictions(df, task="binary")
    codes = rng.integers(0, n_groups - 1, n)
    codes[codes == 1] = n_groups - 1  # group 1 declared but empty
    sizes = np.bincount(codes, minlength=n_groups)
    if n_groups > 4:
        assert np.count_nonzero(sizes) > 64 // int(sizes.max()).bit_length()
    perm = np.concatenate(list(stats.iter_permuted_codes(codes, 12, seed=0)))
    fast = GroupAUROC(d)
    assert fast.exact
    fast.max_words = max_words
    got = fast.evaluate(perm, sizes)
    for g in np.flatnonzero(sizes):
        ref = RowSet(d).evaluate((perm == g).T.astype(float))["auroc"]
        assert np.isfinite(ref).all()
        np.testing.assert_allclose(got[g], ref, rtol=1e-12)
    assert np.isnan(got[1]).all()
    tied = parse_predictions(df.assign(y_score=np.round(df.y_score, 1)), task="binary")
    assert not GroupAUROC(tied).exact
    # and the audit's p-values with ties (weighted path) equal a naive scikit-learn loop
    t = df.assign(y_score=np.round(df.y_score, 1), sex=np.where(codes == 0, "F", "M"))
    table = audit(t, task="binary", attributes=["sex"], n_bootstrap=0, n_permutations=30,
                  seed=5, metrics=["auroc_gap"])
    sex = parse_attributes(t, ["sex"])[0].codes
    draws = np.concatenate(list(stats.iter_permuted_codes(sex, 30, seed=np.random.default_rng(5))))

    def gap(c):
        a = [skm.roc_auc_score(t.y_true[c == g], t.y_score[c == g]) for g in (0, 1)]
        return abs(a[0] - a[1])

    obs = gap(sex)
    expected = (1 + sum(gap(c) >= obs - 1e-12 for c in draws)) / 31
    assert table.p_value.iloc[0] == pytest.approx(expected)


@pytest.mark.parametrize("patients", [False, True])
def test_attributes_share_permutations_and_each_pvalue_equals_a_naive_loop(patients):
    """Several attributes shuffled alike share each permutation of the rows (or patients):
    every attribute's p-value is still that of its own shuffled groups."""
    rng = np.random.default_rng(8)
    n = 300
    pid = rng.integers(0, 100, n)
    df = pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_score": rng.random(n),
                       "sex": np.where(pid % 2, "F", "M"), "site": np.array(["a", "b", "c"])[pid % 3]})
    if patients:
        df["patient_id"] = pid.astype(str)
    table = audit(df, task="binary", attributes=["sex", "site"], n_bootstrap=0,
                  n_permutations=50, seed=4, metrics=["tpr_gap"], correction=None)
    attrs = parse_attributes(df, ["sex", "site"])
    units = stats.units_of(df.patient_id.astype(str).to_numpy()) if patients else None
    n_units = len(units[0]) if patients else n
    perms = np.concatenate(list(stats.iter_unit_permutations(
        n_units, 50, n_rows=n, seed=np.random.default_rng(4))))
    y, p = df.y_true.to_numpy(), (df.y_score >= 0.5).astype(int).to_numpy()
    for a in attrs:
        codes = stats.permuted_codes(a.codes, perms, units=units)
        observed = MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=p,
                               sensitive_features=a.codes).difference()
        naive = [MetricFrame(metrics=true_positive_rate, y_true=y, y_pred=p,
                             sensitive_features=c).difference() for c in codes]
        expected = (1 + np.sum(np.array(naive) >= observed - 1e-12)) / 51
        got = table.query(f"attribute == '{a.name}'").p_value.iloc[0]
        assert got == pytest.approx(expected)
        if patients:  # every image of a patient moved together
            for u in range(5):
                rows = codes[:, units[1] == u]
                assert (rows == rows[:, :1]).all()
