"""Issue 13, statistics: families, the p-value floor, sequential permutations, and the
table's reserved values (single group, groups named ``all`` or ``a vs b``, duplicate ids)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.audit import audit, summary
from compendium.errors import ConfigError, InputError

CLASSES = [f"c{k}" for k in range(6)]


def _planted(n=1800, seed=0, tpr_f=0.9, tpr_m=0.47):
    """Six classes; the TPR of class c0 is 0.90 for F and 0.47 for M (a 0.43 gap)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    sex = rng.choice(["F", "M"], n)
    age = rng.choice(["18-40", "40-80", "80+"], n)
    hit = np.where(y == 0, rng.random(n) < np.where(sex == "F", tpr_f, tpr_m),
                   rng.random(n) < 0.7)
    pred = np.where(hit, y, (y + rng.integers(1, 6, n)) % 6)
    scores = np.full((n, 6), 0.1)
    scores[np.arange(n), pred] = 0.5
    df = pd.DataFrame({"y_true": np.array(CLASSES)[y], "sex": sex, "age": age})
    for k, c in enumerate(CLASSES):
        df[f"score_{c}"] = scores[:, k]
    return df


def _tpr_c0_sex(table):
    return table.query("metric == 'tpr_gap' and attribute == 'sex' and label == 'c0'").iloc[0]


def test_whole_table_family_with_1000_permutations_cannot_detect_a_043_gap_and_says_so():
    df = _planted()
    table = audit(df, task="multiclass", attributes=["sex", "age", "sex+age"], n_bootstrap=0,
                  n_permutations=1000, seed=0, family="table")
    row = _tpr_c0_sex(table)
    assert row.estimate == pytest.approx(0.43, abs=0.12)  # planted 0.43, 150 positives a sex
    m = int(((table.p_value.notna()) & (table.metric != "udr_gap")).sum())
    assert m > 100
    assert row.p_floor == pytest.approx(m / 1001)
    assert row.p_adjusted >= row.p_floor - 1e-12 and row.p_adjusted >= 0.05
    assert "p_floor" in row.flag
    text = summary(table)
    assert "warning:" in text and "cannot be significant" in text


def test_sequential_permutations_let_the_table_family_reach_significance():
    df = _planted()
    table = audit(df, task="multiclass", attributes=["sex", "age", "sex+age"], n_bootstrap=0,
                  n_permutations=1000, max_permutations=4000, seed=0, family="table")
    row = _tpr_c0_sex(table)
    assert row.p_adjusted < 0.05
    assert "p_floor" not in row.flag
    drawn = table.attrs["permutations"]
    assert drawn["sex"] == 4000          # a test could still be significant: it went on
    assert drawn["age"] < 4000           # nothing there: its tests stopped before the maximum


def test_auto_sizes_the_permutations_to_the_family():
    df = _planted(n=900)
    table = audit(df, task="multiclass", attributes=["sex"], n_bootstrap=0, n_permutations=200,
                  max_permutations="auto", seed=1, metrics=["tpr_gap"])
    # family: tpr_gap of sex over 6 classes + macro = 7 tests; auto: 10 * 7 / 0.05 - 1
    assert table.attrs["permutations"]["sex"] == 1399
    assert (table.p_floor.dropna() <= 0.05 / 10 + 1e-12).all()
    assert _tpr_c0_sex(table).p_adjusted < 0.05


def test_default_family_detects_the_planted_gap_with_1000_permutations():
    table = audit(_planted(), task="multiclass", attributes=["sex", "age", "sex+age"],
                  n_bootstrap=0, n_permutations=1000, seed=0)
    row = _tpr_c0_sex(table)
    assert row.p_adjusted < 0.05 and row.p_floor == pytest.approx(7 / 1001)


def _binary(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y_true": rng.integers(0, 2, n), "y_score": rng.random(n),
                         "sex": rng.choice(["F", "M"], n)})


def test_single_group_attribute_has_an_undefined_flagged_gap_not_zero():
    df = _binary().assign(site="A")
    table = audit(df, task="binary", attributes=["site"], n_bootstrap=50, n_permutations=50)
    gaps = table[table.metric.isin(["tpr_gap", "fpr_gap", "f1_gap", "eqodds", "auroc_gap"])]
    assert len(gaps) == 5
    assert gaps.estimate.isna().all() and gaps.p_value.isna().all()
    assert gaps.ci_low.isna().all()
    assert gaps.flag.str.contains("single_group").all()
    assert gaps.flag.str.contains("undefined").all()
    assert "tpr_gap" in summary(table) and "undefined" in summary(table)


def test_a_group_named_all_keeps_its_own_rows_and_n():
    """The row kind comes from the metric, not from the group's name: a group called
    ``all`` is a group (its own n), distinct from the gap and overall rows."""
    df = _binary()
    df["site"] = np.where(np.arange(len(df)) % 4 == 0, "all", "other")
    table = audit(df, task="binary", attributes=["site"], n_bootstrap=0, n_permutations=0)
    tpr = table[(table.metric == "tpr") & (table.attribute == "site")].set_index("group")
    assert tpr.loc["all", "n"] == 50 and tpr.loc["other", "n"] == 150
    assert tpr.loc["all", "kind"] == "group"
    gap = table[(table.metric == "tpr_gap") & (table.attribute == "site")].iloc[0]
    assert gap.kind == "gap" and gap.n == 200
    assert set(table[table.attribute == "all"].kind) == {"overall"}
    assert not table.duplicated(["metric", "attribute", "group", "label", "kind"]).any()


def test_a_named_pair_whose_group_contains_vs_is_refused():
    df = _binary()
    df["race"] = np.where(np.arange(len(df)) % 3 == 0, "Black vs White", "Other")
    table = audit(df, task="binary", attributes=["race"], n_bootstrap=0, n_permutations=0)
    assert table.query("metric == 'tpr' and group == 'Black vs White'").kind.tolist() == ["group"]
    with pytest.raises(ConfigError, match="contains 'vs'"):
        audit(df, task="binary", attributes=["race"], n_bootstrap=0, n_permutations=0,
              pairs=["race=Black vs White:Other"])


def test_duplicate_sample_ids_are_an_error():
    df = _binary().assign(sample_id=[f"s{i}" for i in range(200)])
    df.loc[5, "sample_id"] = "s4"
    with pytest.raises(InputError, match="sample_id.*'s4'"):
        audit(df, task="binary", attributes=["sex"], n_bootstrap=0, n_permutations=0)


def test_summary_prints_each_gap_once():
    table = audit(_binary(), task="binary", attributes=["sex"], n_bootstrap=20,
                  n_permutations=20)
    lines = summary(table).splitlines()
    gap_lines = [ln.split(":")[0].split() for ln in lines if ln.startswith("  ")]
    assert len(gap_lines) == len({tuple(g) for g in gap_lines})
    assert not any(g[0] == "udr_gap" for g in gap_lines)
    assert any(g[0] == "tpr_gap" for g in gap_lines)


def test_cli_summary_warns_when_the_floor_is_at_or_above_alpha(tmp_path, capsys):
    from compendium.cli import main

    path = tmp_path / "pred.csv"
    _planted(n=600).to_csv(path, index=False)
    args = ["audit", str(path), "--task", "multiclass", "--attributes", "sex,age,sex+age",
            "--bootstrap", "0", "--permutations", "200", "--out", str(tmp_path / "a.csv")]
    assert main(args + ["--family", "table", "--max-permutations", "none"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "cannot be significant" in out
    written = pd.read_csv(tmp_path / "a.csv")
    assert "p_floor" in written.columns and written.flag.str.contains("p_floor").any()
    assert main(args) == 0
    assert "warning:" not in capsys.readouterr().out  # default: family one attribute x metric, auto


def test_an_audit_without_attributes_is_the_overall_rows_only(caplog):
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y_true": rng.integers(0, 2, 40), "y_score": rng.random(40)})
    with caplog.at_level("WARNING", logger="compendium.audit"):
        t = audit(df, task="binary", attributes=[], n_bootstrap=30, n_permutations=0,
                  metrics=["auroc"])
    assert t["kind"].tolist() == ["overall"] and t["attribute"].tolist() == ["all"]
    assert t["estimate"].iloc[0] == pytest.approx(roc_auc_score(df["y_true"], df["y_score"]))
    assert t["ci_low"].iloc[0] < t["estimate"].iloc[0] < t["ci_high"].iloc[0]
    assert caplog.text == ""              # no notice about a stand-in group
