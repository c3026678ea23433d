"""The glossary chapter and notebook come from the metric specs; thresholds and sweeps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from compendium.audit import metrics as M
from compendium.audit.glossary import generated_section, glossary_markdown, glossary_table
from compendium.audit.simulate import simulate_binary
from compendium.audit.thresholds import choose_threshold, parse_policy, threshold_sweep
from compendium.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_book_chapter_is_generated_from_the_specs():
    text = (ROOT / "book" / "reference" / "glossary.md").read_text(encoding="utf-8")
    assert generated_section(text) == glossary_markdown().strip(), (
        "run compendium.audit.glossary.update_chapter('book/reference/glossary.md')")
    for m in M.METRICS:
        assert f"`{m.name}`" in text and m.formula in text


def test_glossary_table_lists_every_metric_with_a_formula_and_readings():
    t = glossary_table()
    assert list(t.metric) == [m.name for m in M.METRICS]
    assert t.formula.str.startswith("$").all()
    readings = set(t.loc[t["other reading"] != "", "metric"])
    assert {"ece", "f1_var", "eqodds", "f1_gap", "ece_gap"} <= readings



def test_choose_threshold_policies_match_roc_curve():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.15), 0, 1)
    fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
    assert choose_threshold(y, s, "youden") == pytest.approx(thr[np.argmax(tpr - fpr)])
    t = choose_threshold(y, s, "spec", value=0.9)
    assert 1 - ((s >= t) & (y == 0)).sum() / (y == 0).sum() >= 0.9
    prec, rec, thr_pr = skm.precision_recall_curve(y, s)
    f1 = 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1)
    best = choose_threshold(y, s, "f1")
    assert skm.f1_score(y, s >= best) == pytest.approx(f1[:-1].max())
    assert parse_policy("spec=0.95") == ("spec", 0.95)
    assert parse_policy(0.3) == ("fixed", 0.3)
    with pytest.raises(ConfigError):
        parse_policy("median")


def test_threshold_sweep_matches_pointwise_metrics():
    df = simulate_binary(600, tpr={"A": 0.9, "B": 0.6}, seed=1)
    sweep = threshold_sweep(df.y_true, df.y_score, thresholds=[0.3, 0.5, 0.7],
                            sensitive_features=df.group)
    assert set(sweep.group) == {"all", "A", "B"}
    row = sweep.query("group == 'B' and threshold == 0.5").iloc[0]
    b = df[df.group == "B"]
    assert row.tpr == pytest.approx(M.tpr(b.y_true, (b.y_score >= 0.5).astype(int)))
    assert row.fpr == pytest.approx(M.fpr(b.y_true, (b.y_score >= 0.5).astype(int)))
    # TPR falls as the threshold rises
    assert sweep.query("group == 'all'").tpr.is_monotonic_decreasing


def test_simulator_injects_the_requested_rates():
    df = simulate_binary(200_000, tpr={"A": 0.9, "B": 0.6}, fpr=0.1, seed=2)
    pred = (df.y_score >= 0.5).astype(int)
    gap = M.tpr_gap(df.y_true, pred, sensitive_features=df.group)
    assert gap == pytest.approx(0.3, abs=0.01)
    assert M.fpr(df.y_true, pred) == pytest.approx(0.1, abs=0.01)


def test_glossary_states_threshold_rule_bin_edges_and_ece_confidence():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "book/reference/glossary.md").read_text()
    assert "score >= t" in text
    assert "[(b-1)/M, b/M)" in text and "[(M-1)/M, 1]" in text
    assert "--ece-confidence positive (default" in text and "max(p, 1 - p)" in text
