"""Whiskers of the papers' interval plots are drawn as the intervals are: never clipped, and
every whisker contains the bar (point) it belongs to."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from compendium.audit import audit
from compendium.papers.plots import interval_bars, interval_points, whiskers


def _segments(ax):
    """(x, y_low, y_high) of every vertical error-bar segment drawn on ``ax``."""
    out = []
    for coll in ax.collections:
        if isinstance(coll, matplotlib.collections.LineCollection):
            for seg in coll.get_segments():
                (x0, y0), (x1, y1) = seg[0], seg[-1]
                if x0 == pytest.approx(x1):
                    out.append((x0, min(y0, y1), max(y0, y1)))
    return out


def _audit_gaps():
    """Gap rows of a real audit: two and three groups, true gaps of zero (where percentile
    intervals of a gap used to exclude their estimate)."""
    rng = np.random.default_rng(5)
    n = 240
    df = pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_score": rng.random(n),
                       "sex": rng.choice(["F", "M"], n), "age": rng.choice(["a", "b", "c"], n)})
    t = audit(df, task="binary", attributes=["sex", "age"], n_bootstrap=200, n_permutations=0,
              metrics=["tpr_gap", "fpr_gap", "eqodds", "f1_gap"])
    return t[t.kind == "gap"]


def test_bars_whiskers_contain_their_bar():
    gaps = _audit_gaps()
    fig, ax = plt.subplots()
    order = ["tpr_gap", "fpr_gap", "eqodds", "f1_gap"]
    interval_bars(ax, gaps, "metric", "attribute", order, ["sex", "age"])
    bars = [(p.get_x() + p.get_width() / 2, p.get_height()) for p in ax.patches]
    segs = _segments(ax)
    assert len(bars) == len(segs) == 8
    for (xb, h), (xs, lo, hi) in zip(sorted(bars), sorted(segs)):
        assert xb == pytest.approx(xs)
        assert lo - 1e-12 <= h <= hi + 1e-12
    # the whiskers are the intervals themselves, not clipped copies
    got = sorted((round(lo, 9), round(hi, 9)) for _, lo, hi in segs)
    want = sorted((round(lo, 9), round(hi, 9)) for lo, hi in zip(gaps.ci_low, gaps.ci_high))
    assert got == want
    plt.close(fig)


def test_points_whiskers_contain_their_point():
    gaps = _audit_gaps()
    fig, ax = plt.subplots()
    interval_points(ax, gaps, "metric", "attribute", ["tpr_gap", "fpr_gap"], ["sex", "age"])
    segs = _segments(ax)
    points = np.concatenate([line.get_xydata() for line in ax.lines if line.get_marker() == "o"])
    assert len(segs) == len(points) == 4
    for (x, y), (xs, lo, hi) in zip(sorted(map(tuple, points)), sorted(segs)):
        assert x == pytest.approx(xs) and lo - 1e-12 <= y <= hi + 1e-12
    plt.close(fig)


def test_an_interval_that_excludes_its_estimate_is_refused_not_clipped():
    with pytest.raises(ValueError, match="exclude their estimate"):
        whiskers([0.037], [0.043], [0.119])
    err = whiskers([0.1, np.nan], [0.05, np.nan], [0.2, np.nan])
    assert err.tolist() == [[pytest.approx(0.05), 0.0], [pytest.approx(0.1), 0.0]]
