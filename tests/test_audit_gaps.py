"""compendium.audit.gaps: per-group rates, signed gaps and paired gap differences, checked
against fairlearn-style references and a naive patient bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from compendium.audit.gaps import group_rates, paired_gap_difference, signed_gap
from compendium.audit.metrics import fpr_difference
from compendium.audit.stats import counts_to_indices, iter_resample_counts
from compendium.errors import InputError


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["Black", "White", "Asian"], n)
    pid = rng.integers(0, n // 2, n)
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < np.where(g == "Black", 0.4, 0.2), 1 - y, y)
    return y, p, g, pid


def test_point_estimates_match_references():
    y, p, g, _ = _data()
    t = group_rates(y, p, sensitive_features=g, n_bootstrap=0).set_index("group")
    for grp in ("Black", "White"):
        m = (g == grp) & (y == 0)
        assert t.loc[grp, "estimate"] == pytest.approx(p[m].mean())
        assert t.loc[grp, "denominator"] == m.sum()
    gap = signed_gap(y, p, sensitive_features=g, pair=("Black", "White"), n_bootstrap=0)
    assert gap["estimate"] == pytest.approx(
        fpr_difference(y, p, sensitive_features=g, pair=("Black", "White")))
    fnr = group_rates(y, p, sensitive_features=g, rate="fnr", n_bootstrap=0).set_index("group")
    m = (g == "White") & (y == 1)
    assert fnr.loc["White", "estimate"] == pytest.approx((p[m] == 0).mean())


def test_bootstrap_resamples_whole_patients_like_a_naive_loop():
    y, p, g, pid = _data(n=120, seed=1)
    got = signed_gap(y, p, sensitive_features=g, pair=("Black", "White"), clusters=pid,
                     n_bootstrap=200, seed=5)
    counts = np.concatenate(list(iter_resample_counts(200, len(y), clusters=pid, seed=5)), axis=1)
    reps = []
    for idx in counts_to_indices(counts):
        yy, pp, gg = y[idx], p[idx], g[idx]
        a = pp[(gg == "Black") & (yy == 0)].mean()
        b = pp[(gg == "White") & (yy == 0)].mean()
        reps.append(a - b)
    lo, hi = np.quantile(reps, [0.025, 0.975])
    assert got["ci_low"] == pytest.approx(lo) and got["ci_high"] == pytest.approx(hi)
    assert got["ci_low"] <= got["estimate"] <= got["ci_high"]


def test_paired_difference_zero_for_identical_arms_and_detects_a_real_change():
    y, p, g, pid = _data(n=1000, seed=2)
    same = paired_gap_difference({"a": (y, p), "b": (y, p)}, sensitive_features=g,
                                 pair=("Black", "White"), clusters=pid, n_bootstrap=200)
    assert same["difference"] == 0 and same["ci_low"] == 0 and same["p_value"] == 1.0
    # arm b: Black negatives' false positives removed -> the gap shrinks clearly
    p2 = np.where((g == "Black") & (y == 0), 0, p)
    d = paired_gap_difference({"chexpert": (y, p), "llm": (y, p2)}, sensitive_features=g,
                              pair=("Black", "White"), clusters=pid, n_bootstrap=300)
    assert d["gap_llm"] < 0 < d["gap_chexpert"]
    assert d["difference"] == pytest.approx(d["gap_llm"] - d["gap_chexpert"])
    assert d["ci_high"] < 0 and d["p_value"] < 0.01
    assert d["relative_change"] == pytest.approx(d["difference"] / abs(d["gap_chexpert"]))


def test_bad_inputs():
    with pytest.raises(InputError, match="only 0 and 1"):
        group_rates([0, 2], [0, 1], sensitive_features=["a", "b"], n_bootstrap=0)
    with pytest.raises(InputError, match="not found"):
        signed_gap([0, 0], [0, 1], sensitive_features=["a", "b"], pair=("a", "c"), n_bootstrap=0)
