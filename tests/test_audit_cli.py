"""``compendium audit``: the tidy table, the summary, and clear messages on bad input."""

from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest

from compendium.audit import audit
from compendium.audit.report import COLUMNS
from compendium.cli import main
from compendium.errors import ConfigError, InputError

METRIC_NAMES = {"accuracy", "f1", "auroc", "auprc", "tpr", "fpr", "udr", "ece", "f1_var",
                "f1_gap", "eqodds", "ece_gap", "auroc_gap", "worst_group_auroc", "tpr_gap",
                "fpr_gap", "udr_gap",
                # signed differences beside the gaps of the two-group attributes
                "f1_diff", "tpr_diff", "fpr_diff", "udr_diff", "auroc_diff", "ece_diff"}


def _multiclass(n=300, seed=0):
    rng = np.random.default_rng(seed)
    classes = ["Atelectasis", "Edema", "Effusion"]
    s = rng.dirichlet([1, 1, 1], n)
    return pd.DataFrame({
        "y_true": rng.choice(classes, n), **{f"score_{c}": s[:, i] for i, c in enumerate(classes)},
        "sex": rng.choice(["F", "M"], n), "age_group": rng.choice(["young", "old"], n),
        "patient_id": rng.integers(0, 150, n)})


def _multilabel(n=200, seed=1):
    rng = np.random.default_rng(seed)
    out = {"race": rng.choice(["Black", "White", "Asian"], n, p=[.4, .5, .1])}
    for lab in ("no_finding", "effusion"):
        out[f"true_{lab}"] = rng.integers(0, 2, n)
        out[f"score_{lab}"] = rng.random(n)
    return pd.DataFrame(out)


def test_cli_multiclass_writes_tidy_table_and_summary(tmp_path, capsys):
    path = tmp_path / "pred.csv"
    _multiclass().to_csv(path, index=False)
    out = tmp_path / "audit.csv"
    rc = main(["audit", str(path), "--task", "multiclass", "--attributes", "sex,age_group,sex+age_group",
               "--bootstrap", "50", "--permutations", "50", "--seed", "1", "--out", str(out)])
    assert rc == 0
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == COLUMNS
    assert set(table.metric) == METRIC_NAMES
    assert set(table.attribute) == {"all", "sex", "age_group", "sex+age_group"}
    gaps = table[table.metric == "f1_gap"]
    assert set(gaps.group) == {"all"} and "macro" in set(gaps.label)
    assert gaps.p_value.between(0, 1).all() and (gaps.ci_low <= gaps.ci_high).all()
    overall_acc = table.query("metric == 'accuracy' and attribute == 'all'")
    assert overall_acc.label.tolist() == ["all"] and overall_acc.n.tolist() == [300]
    text = capsys.readouterr().out
    assert "overall:" in text and "largest gaps" in text


def test_cli_is_deterministic_for_a_seed(tmp_path):
    path = tmp_path / "pred.csv"
    _multilabel().to_csv(path, index=False)
    args = ["audit", str(path), "--task", "multilabel", "--attributes", "race",
            "--bootstrap", "30", "--permutations", "30", "--pair", "race=Black:White"]
    assert main(args + ["--out", str(tmp_path / "a.csv")]) == 0
    assert main(args + ["--out", str(tmp_path / "b.csv")]) == 0
    a, b = (tmp_path / "a.csv").read_bytes(), (tmp_path / "b.csv").read_bytes()
    assert a == b
    table = pd.read_csv(tmp_path / "a.csv", keep_default_na=False, na_values=[""])
    diff = table[table.metric == "fpr_diff"]
    assert set(diff.group) == {"Black vs White"}
    assert set(diff.label) == {"no_finding", "effusion", "macro"}


def test_small_groups_are_flagged(tmp_path):
    table = audit(_multilabel(), task="multilabel", attributes=["race"], n_bootstrap=0,
                  n_permutations=0, min_group_size=30)
    asian = table[(table.attribute == "race") & (table.group == "Asian")]
    assert asian.flag.str.contains("small_group").all()
    assert not table[(table.group == "White")].flag.str.contains("small_group").any()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns=["score_Edema", "score_Effusion"]), "score_<class>"),
    (lambda d: d.drop(columns=["y_true"]), "missing column 'y_true'"),
    (lambda d: d.assign(score_Edema=d.score_Edema * 0.5), "must sum to 1"),
    (lambda d: d.assign(score_Edema=d.score_Edema * 0 - 0.1), r"\[0, 1\]"),
    (lambda d: d.assign(sex=d.sex.where(d.index != 5)), "column 'sex' has 1 missing"),
    (lambda d: d.assign(y_true=d.y_true.replace("Edema", "Oedema")), "not a class"),
])
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, mutate, message):
    path = tmp_path / "bad.csv"
    mutate(_multiclass()).to_csv(path, index=False)
    rc = main(["audit", str(path), "--task", "multiclass", "--attributes", "sex",
               "--bootstrap", "0", "--permutations", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert re.search(message, err), err


def test_unknown_task_missing_file_and_bad_threshold(tmp_path, capsys):
    path = tmp_path / "p.csv"
    _multiclass().to_csv(path, index=False)
    assert main(["audit", str(path), "--task", "regression", "--attributes", "sex"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert main(["audit", str(tmp_path / "nope.csv"), "--task", "binary", "--attributes", "sex"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["audit", str(path), "--task", "multiclass", "--attributes", "sex",
                 "--threshold", "youden"]) == 2
    assert "argmax" in capsys.readouterr().err


def test_undefined_metrics_are_empty_with_a_warning_naming_the_group(caplog):
    df = pd.DataFrame({"y_true": [1, 1, 1, 0, 1, 0, 0, 1], "y_score": [.9, .8, .7, .2, .6, .3, .4, .55],
                       "site": ["a", "a", "a", "b", "b", "b", "b", "b"]})
    df["site"] = pd.Categorical(df.site, categories=["a", "b", "c"])  # "c" has no samples
    with caplog.at_level(logging.WARNING, logger="compendium"):
        table = audit(df, task="binary", attributes=["site"], n_bootstrap=20, n_permutations=20)
    auc_a = table.query("metric == 'auroc' and group == 'a'").iloc[0]
    assert np.isnan(auc_a.estimate) and "undefined" in auc_a.flag
    assert table.query("metric == 'auroc_gap'").estimate.isna().all()
    assert "site=a" in caplog.text and "site=c" in caplog.text and "no samples" in caplog.text
    empty = table.query("group == 'c'")
    assert len(empty) and empty.estimate.isna().all() and (empty.n == 0).all()
    # defined metrics still have values
    assert np.isfinite(table.query("metric == 'tpr' and group == 'a'").estimate.iloc[0])


def test_threshold_policies_on_a_validation_table():
    rng = np.random.default_rng(5)
    n = 400
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1)
    df = pd.DataFrame({"y_true": y, "y_score": s, "sex": rng.choice(["F", "M"], n)})
    val, test = df.iloc[:200], df.iloc[200:]
    with pytest.raises(ConfigError, match="validation"):
        audit(test, task="binary", attributes=["sex"], threshold="youden")
    fixed = audit(test, task="binary", attributes=["sex"], threshold=0.9, n_bootstrap=0,
                  n_permutations=0)
    chosen = audit(test, task="binary", attributes=["sex"], threshold="spec=0.95",
                   validation=val, n_bootstrap=0, n_permutations=0)
    fpr = chosen.query("metric == 'fpr' and attribute == 'all'").estimate.iloc[0]
    assert fpr < 0.15  # chosen for 95% specificity on a validation set of the same law
    assert fixed.query("metric == 'tpr' and attribute == 'all'").estimate.iloc[0] < 0.35
    with pytest.raises(InputError):
        audit(test.assign(y_score=test.y_score * np.nan), task="binary", attributes=["sex"])


def test_holm_family_is_the_gap_rows_and_udr_shares_tpr():
    from statsmodels.stats.multitest import multipletests

    table = audit(_multiclass(), task="multiclass", attributes=["sex", "age_group"],
                  n_bootstrap=0, n_permutations=40, seed=2, family="table")
    family = table[table.p_value.notna() & (table.metric != "udr_gap")]
    np.testing.assert_allclose(family.p_adjusted, multipletests(family.p_value, method="holm")[1])
    udr = table[table.metric == "udr_gap"].set_index(["attribute", "label"]).p_adjusted
    tpr = table[table.metric == "tpr_gap"].set_index(["attribute", "label"]).p_adjusted
    pd.testing.assert_series_equal(udr, tpr)
    assert table.loc[table.p_value.isna(), "p_adjusted"].isna().all()
    # the floor of the whole-table family: m / (N + 1), flagged when >= alpha
    m = len(family)
    assert family.p_floor.unique().tolist() == [pytest.approx(min(1, m / 41))]
    assert family.flag.str.contains("p_floor").all()


def test_default_family_is_one_attribute_and_one_metric():
    from statsmodels.stats.multitest import multipletests

    table = audit(_multiclass(), task="multiclass", attributes=["sex", "age_group"],
                  n_bootstrap=0, n_permutations=40, seed=2)
    assert table.attrs["family"] == "attribute_metric"
    tested = table[table.p_value.notna() & (table.metric != "udr_gap")]
    for (attr, metric), fam in tested.groupby(["attribute", "metric"]):
        np.testing.assert_allclose(fam.p_adjusted, multipletests(fam.p_value, method="holm")[1])
        np.testing.assert_allclose(fam.p_floor, min(1, len(fam) / 41))
    with pytest.raises(ConfigError, match="family"):
        audit(_multiclass(), task="multiclass", attributes=["sex"], family="everything")


def test_results_do_not_depend_on_threads(monkeypatch):
    from compendium.audit import stats

    monkeypatch.setattr(stats, "CHUNK_ELEMENTS", 2000)  # 10 resamples per chunk
    df = _multiclass(n=200, seed=4)
    one = audit(df, task="multiclass", attributes=["sex"], n_bootstrap=30, n_permutations=30,
                seed=7, n_jobs=1)
    two = audit(df, task="multiclass", attributes=["sex"], n_bootstrap=30, n_permutations=30,
                seed=7, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)


def test_audit_rows_equal_the_public_metric_functions():
    from compendium.audit import metrics as M

    df = _multiclass(n=250, seed=6)
    classes = ["Atelectasis", "Edema", "Effusion"]
    table = audit(df, task="multiclass", attributes=["sex"], n_bootstrap=0, n_permutations=0)
    y, s = df.y_true.to_numpy(), df[[f"score_{c}" for c in classes]].to_numpy()
    pred = np.array(classes)[s.argmax(1)]
    f = df.sex.to_numpy() == "F"

    def row(metric, group="all", label="macro", attribute=None):
        attribute = attribute or ("all" if group == "all" and metric in (
            "accuracy", "f1", "auroc", "ece", "f1_var") else "sex")
        return table.query("metric == @metric and attribute == @attribute and group == @group "
                           "and label == @label").estimate.iloc[0]

    assert row("f1", "F") == pytest.approx(M.f1(y[f], pred[f], labels=classes))
    assert row("auroc", "M") == pytest.approx(M.auroc(y[~f], s[~f], labels=classes))
    assert row("ece", "F", "all") == pytest.approx(M.ece(y[f], s[f], labels=classes))
    assert row("f1_var") == pytest.approx(M.f1_var(y, pred, labels=classes))
    assert row("f1_gap") == pytest.approx(M.f1_gap(y, pred, sensitive_features=df.sex, labels=classes))
    assert row("eqodds") == pytest.approx(M.eqodds(y, pred, sensitive_features=df.sex, labels=classes))
    assert row("ece_gap", label="all") == pytest.approx(
        M.ece_gap(y, s, sensitive_features=df.sex, labels=classes))
    assert row("worst_group_auroc", label="Edema") == pytest.approx(
        M.worst_group_auroc(y, s, sensitive_features=df.sex, labels=classes, average=None)["Edema"])
