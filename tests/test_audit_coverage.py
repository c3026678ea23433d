"""Coverage of the audit's gap intervals by simulation, and the interval helpers against
hand-computed values and scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from compendium.audit import coverage, stats
from compendium.audit.coverage import CHOSEN, Scenario


def test_abs_interval_by_hand():
    lo, hi = stats.abs_interval(np.array([-0.02, -0.09, 0.01, -0.3]),
                                np.array([0.05, -0.01, 0.2, 0.1]))
    assert lo.tolist() == [0.0, 0.01, 0.01, 0.0]
    assert hi.tolist() == [0.05, 0.09, 0.2, 0.3]


def test_bc_interval_with_jackknife_acceleration_equals_scipy_bca():
    """Our BCa bounds equal scipy.stats.bootstrap's BCa on scipy's own resamples."""
    rng = np.random.default_rng(3)
    x = rng.exponential(size=40)
    res = sps.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", random_state=1,
                        confidence_level=0.9)
    boot = res.bootstrap_distribution
    jack = np.array([np.delete(x, i).mean() for i in range(len(x))])
    lo, hi = stats.bc_interval(boot, np.array(x.mean()), level=0.9,
                               acceleration=stats.jackknife_acceleration(jack))
    assert (float(lo), float(hi)) == pytest.approx(
        (res.confidence_interval.low, res.confidence_interval.high), rel=1e-6)


def test_range_interval_holds_its_estimate_and_zero_when_groups_agree():
    rng = np.random.default_rng(0)
    est = np.array([0.5, 0.52, 0.49])[:, None]
    boot = est[..., None] + rng.normal(0, 0.05, size=(3, 1, 500))
    _, _, lo, hi = stats.range_interval(est, boot)
    gap = est.max() - est.min()
    assert lo[0] == 0.0 and gap < hi[0]
    # far-apart groups: the interval leaves 0 and still holds the estimate
    est = np.array([0.2, 0.5, 0.8])[:, None]
    boot = est[..., None] + rng.normal(0, 0.02, size=(3, 1, 500))
    _, _, lo, hi = stats.range_interval(est, boot)
    assert 0.5 < lo[0] <= 0.6 <= hi[0] < 0.7


@pytest.fixture(scope="module")
def measured():
    """A few of the papers' designs, 1000 simulated data sets each (about 20 s of CPU)."""
    scenarios = [Scenario("A: 2 x 120, gap 0.3", (120, 120), 1 / 6, (0.75, 0.45), (0.2, 0.2)),
                 Scenario("A: 3 x 80, gap 0.3", (80, 80, 80), 1 / 6, (0.75, 0.6, 0.45),
                          (0.2, 0.2, 0.2)),
                 Scenario("B: 3 x 300, gap 0", (300,) * 3, 0.3, (0.6,) * 3, (0.2,) * 3),
                 Scenario("B: 3 x 300, gap 0.1", (300,) * 3, 0.3, (0.65, 0.6, 0.55),
                          (0.2,) * 3)]
    return coverage.coverage_table(scenarios, n_sim=1000, n_bootstrap=400, seed=20261203)


def _row(t, scenario, statistic, interval):
    r = t[(t.scenario == scenario) & (t.statistic == statistic) & (t.interval == interval)]
    assert len(r) == 1
    return r.iloc[0]


def test_reported_intervals_cover_93_to_97_percent_where_a_valid_one_exists(measured):
    """The intervals the audit reports (coverage.CHOSEN) cover the true value of a signed
    difference, a two-group gap and a max-min gap of three groups in 93-97% of 1000
    simulated data sets (Monte-Carlo standard error 0.7 points), and never exclude their own
    estimate; the percentile interval of a max-min gap does not cover a true gap of 0.
    Where the reported interval is conservative (above 97%) the test asks only for >= 93%."""
    t = measured
    for scenario, statistic in (("A: 2 x 120, gap 0.3", "signed"), ("A: 2 x 120, gap 0.3", "abs"),
                                ("A: 3 x 80, gap 0.3", "maxmin"), ("B: 3 x 300, gap 0", "maxmin")):
        r = _row(t, scenario, statistic, CHOSEN[statistic])
        assert r.chosen
        assert 0.93 <= r.coverage <= 0.97, (scenario, statistic, r.coverage)
        assert r.excludes_estimate == 0.0
    # the problem the choice solves: percentile intervals of a max-min gap at a true gap
    # of 0 hardly ever hold 0, and they sometimes exclude their own estimate
    pct = _row(t, "B: 3 x 300, gap 0", "maxmin", "percentile")
    assert pct.coverage < 0.05 and pct.excludes_estimate > 0
    assert not _row(t, "B: 3 x 300, gap 0", "maxmin", "percentile").valid
    # conservative but valid: the max-min gap of three groups a few hundred strong at a
    # non-zero gap, and EqOdds (both measured at 0.98-1.00; the glossary says so)
    assert _row(t, "B: 3 x 300, gap 0.1", "maxmin", CHOSEN["maxmin"]).coverage >= 0.93
    assert _row(t, "A: 2 x 120, gap 0.3", "eqodds", CHOSEN["eqodds"]).coverage >= 0.93


def test_recommendation_flags_what_is_out_of_range(measured):
    rec = coverage.recommendation(measured).set_index(["statistic", "interval"])
    assert bool(rec.loc[("abs", "abs_of_signed"), "within"])
    # the bias-corrected percentile undercovers a two-group gap of 0.3 at Paper A's size
    assert rec.loc[("abs", "bc"), "min_coverage"] < 0.93


def test_scenarios_validate():
    with pytest.raises(Exception, match="one value per group"):
        Scenario("bad", (10, 10), 0.5, (0.5,), (0.2, 0.2))


def _random_table(rng, n, n_groups, task):
    groups = np.array([f"g{i}" for i in range(n_groups)])
    df = {"sex": rng.choice(["F", "M"], n), "site": rng.choice(groups, n),
          "patient_id": rng.integers(0, n // 2, n)}
    if task == "multiclass":
        classes = ["a", "b", "c"]
        s = rng.dirichlet([1, 1, 1], n)
        df["y_true"] = rng.choice(classes, n)
        df.update({f"score_{c}": s[:, i] for i, c in enumerate(classes)})
    else:
        df["y_true"] = rng.integers(0, 2, n)
        df["y_score"] = np.round(rng.random(n), 2)
    return pd.DataFrame(df)


def test_no_audit_interval_excludes_its_estimate_and_the_table_says_how_it_was_formed():
    """Random small tables (the sizes where percentile intervals of gaps failed): every
    finite interval of every row holds its estimate; two-group gaps have their signed
    difference beside them; the column ``interval`` names the method."""
    from compendium.audit import audit

    rng = np.random.default_rng(11)
    for n, n_groups, task in ((120, 3, "binary"), (240, 4, "multiclass"), (90, 2, "binary")):
        t = audit(_random_table(rng, n, n_groups, task), task=task, attributes=["sex", "site"],
                  n_bootstrap=120, n_permutations=0, seed=int(rng.integers(1000)))
        ok = t.ci_low.notna()
        assert ok.sum() > 20
        assert ((t.ci_low[ok] <= t.estimate[ok] + 1e-9)
                & (t.estimate[ok] <= t.ci_high[ok] + 1e-9)).all(), t[ok & (
                    (t.ci_low > t.estimate + 1e-9) | (t.estimate > t.ci_high + 1e-9))]
        gaps = t[t.kind == "gap"]
        # the worst group (a minimum, not a gap of differences): "simultaneous"
        assert set(gaps.loc[gaps.attribute == "sex", "interval"]) <= {
            "abs_of_signed", "calibrated", "simultaneous", ""}
        assert set(gaps.loc[(gaps.attribute == "site") & gaps.ci_low.notna(), "interval"]) == (
            {"abs_of_signed", "calibrated", "simultaneous"} if n_groups == 2
            else {"calibrated", "simultaneous"})
        signed = t[(t.metric == "tpr_diff") & (t.attribute == "sex")]
        assert len(signed) and set(signed.group) == {"F vs M"} and set(signed.kind) == {"pair"}
        for r in signed[signed.label != "macro"].itertuples():
            gap = gaps[(gaps.metric == "tpr_gap") & (gaps.attribute == "sex")
                       & (gaps.label == r.label)].iloc[0]
            assert gap.estimate == pytest.approx(abs(r.estimate))
            if np.isfinite(r.ci_low):
                assert gap.ci_low == pytest.approx(0.0 if r.ci_low <= 0 <= r.ci_high
                                                   else min(abs(r.ci_low), abs(r.ci_high)))
                assert gap.ci_high == pytest.approx(max(abs(r.ci_low), abs(r.ci_high)))


def test_metrics_restricted_to_a_gap_keep_its_signed_difference_only():
    from compendium.audit import audit

    t = audit(_random_table(np.random.default_rng(2), 200, 3, "binary"), task="binary",
              attributes=["sex", "site"], n_bootstrap=50, n_permutations=20,
              metrics=["tpr_gap"])
    assert set(t.metric) == {"tpr_gap", "tpr_diff"}
    assert t.iloc[0].metric == "tpr_gap"          # gaps first, signed rows after
    assert t.loc[t.metric == "tpr_diff", "p_value"].isna().all()
    assert t.loc[t.metric == "tpr_gap", "p_value"].notna().all()


def test_an_estimate_undefined_in_most_resamples_gets_no_interval_and_a_flag():
    """A group whose two labels have one positive each: its macro AUROC is defined, but
    in most resamples one of the positives is missing (each is drawn with probability
    about 0.64, both about 0.4): no interval, flag few_resamples."""
    from compendium.audit import audit

    rng = np.random.default_rng(4)
    n = 40
    df = pd.DataFrame({"true_a": 0, "true_b": 0, "score_a": rng.random(n),
                       "score_b": rng.random(n), "site": ["rare"] * 20 + ["common"] * 20})
    df.loc[[0], "true_a"] = 1
    df.loc[[1], "true_b"] = 1
    df.loc[20:29, ["true_a", "true_b"]] = 1
    t = audit(df, task="multilabel", attributes=["site"], metrics=["auroc"],
              n_bootstrap=200, n_permutations=0)
    row = t[(t.group == "rare") & (t.label == "macro")].iloc[0]
    assert np.isfinite(row.estimate) and np.isnan(row.ci_low) and row.interval == ""
    assert "few_resamples" in row.flag
    common = t[(t.group == "common") & (t.label == "macro")].iloc[0]
    assert np.isfinite(common.ci_low) and "few_resamples" not in common.flag


def test_an_interval_that_would_exclude_its_estimate_is_withheld_and_flagged(monkeypatch):
    """Where the resamples lie almost all on one side of the estimate (Paper E's smoke:
    the macro AUPRC of 13 rows, 0.337 with resamples' 2.5-97.5% at [0.349, 0.565]), the row
    gets no interval and the flag biased_bootstrap (here forced by shifting the bounds)."""
    from compendium.audit import audit, report

    real = report.stats.percentile_interval

    def shifted(boot, *, level=0.95):
        lo, hi = real(boot, level=level)
        return lo + 10.0, hi + 10.0

    df = _random_table(np.random.default_rng(3), 200, 2, "binary")
    monkeypatch.setattr(report.stats, "percentile_interval", shifted)
    t = audit(df, task="binary", attributes=["sex"], metrics=["tpr", "tpr_gap"],
              n_bootstrap=50, n_permutations=0)
    pct = t[t.kind.isin(["overall", "group", "pair"])]
    assert pct.ci_low.isna().all() and pct.flag.str.contains("biased_bootstrap").all()
    gap = t[t.kind == "gap"].iloc[0]   # |shifted signed interval| excludes the gap too
    assert np.isnan(gap.ci_low) and "biased_bootstrap" in gap.flag
    monkeypatch.undo()
    t = audit(df, task="binary", attributes=["sex"], metrics=["tpr", "tpr_gap"],
              n_bootstrap=50, n_permutations=0)
    assert t.ci_low.notna().all() and not t.flag.str.contains("biased_bootstrap").any()


def test_signed_beside_names_which_group_minus_which():
    """The signed difference printed beside a two-group gap: first minus second as the
    audit's pair row names it, |signed| = the gap; nothing beside a gap of three groups or
    EqOdds."""
    from compendium.audit import audit
    from compendium.audit.report import signed_beside

    df = _random_table(np.random.default_rng(5), 300, 3, "binary")
    t = audit(df, task="binary", attributes=["sex", "site"], metrics=["tpr_gap", "eqodds"],
              n_bootstrap=60, n_permutations=0)
    gaps = t[t.kind == "gap"].reset_index(drop=True)
    cells = signed_beside(t, gaps)
    for r, cell in zip(gaps.itertuples(), cells):
        if r.attribute == "sex" and r.metric == "tpr_gap":
            pair = t[(t.metric == "tpr_diff") & (t.attribute == "sex")].iloc[0]
            head, _, rest = cell.partition(": ")
            assert pair.group == "F vs M" and head == "F - M"
            assert float(rest.split()[0]) == pytest.approx(pair.estimate, abs=5e-4)
            assert rest.split()[1] == f"[{pair.ci_low:+.3f},"
            assert abs(float(rest.split()[0])) == pytest.approx(r.estimate, abs=5e-4)
            assert rest.split()[1].startswith("[")
        else:
            assert cell == "", (r.attribute, r.metric, cell)
