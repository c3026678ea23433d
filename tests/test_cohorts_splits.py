"""Patient-wise splits, k-fold, balanced sampling and the papers' age bands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.cohorts.splits import (AGE_BANDS, add_age_group, age_bands, balanced_sample,
                                       kfold_indices, patient_split,
                                       stratified_subset)
from compendium.errors import ConfigError, InputError


def table(n_patients=200, per=3, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        y = int(rng.random() < 0.4)
        for k in range(rng.integers(1, per + 1)):
            rows.append({"sample_id": f"{p}_{k}", "patient_id": f"p{p}", "y": y,
                         "sex": "MF"[p % 2], "age": 20 + p % 70})
    return pd.DataFrame(rows)


def test_age_bands_of_the_papers():
    assert age_bands("paper_a").assign([59, 60]).tolist() == ["<60", ">=60"]
    assert age_bands("paper_b").assign([18, 39.9, 40, 60, 74, 75, 89, 90, 17]).tolist()[:7] == \
        ["18-40", "18-40", "40-60", "60-75", "60-75", "75-90", "75-90"]
    b = age_bands("paper_b").assign([90, 17])
    assert b.isna().all()
    c = age_bands("paper_c").assign([25, 50, 80, 95])
    assert c.iloc[0] == "18-40" and pd.isna(c.iloc[1]) and c.iloc[2] == "80+" and c.iloc[3] == "80+"
    assert AGE_BANDS["paper_c"].labels == ["18-40", "80+"]
    with pytest.raises(ConfigError, match="unknown age banding 'paper_z'"):
        age_bands("paper_z")
    t = add_age_group(table(), "decades")
    assert set(t["age_group"]) <= {"0-20", "20-40", "40-60", "60-80", "80+"}


@pytest.mark.parametrize("stratify", [None, ["y", "sex"]])
def test_patient_split_is_patient_wise_and_near_fractions(stratify):
    t = table()
    s = patient_split(t, (0.7, 0.1, 0.2), stratify=stratify, seed=3)
    assert s.groupby("patient_id")["split"].nunique().max() == 1
    frac = s["split"].value_counts(normalize=True)
    assert abs(frac["train"] - 0.7) < 0.08 and abs(frac["val"] - 0.1) < 0.06 and abs(frac["test"] - 0.2) < 0.08
    again = patient_split(t, (0.7, 0.1, 0.2), stratify=stratify, seed=3)
    assert (s["split"] == again["split"]).all()
    if stratify:
        share = s.groupby("split")["y"].mean()
        assert (share - t["y"].mean()).abs().max() < 0.1


def test_patient_split_bad_fractions():
    with pytest.raises(ConfigError, match="summing to 1"):
        patient_split(table(), (0.5, 0.1, 0.1))
    with pytest.raises(InputError, match="missing column"):
        patient_split(table(), stratify="nope")


def test_kfold_is_patient_wise_and_covers_every_row():
    t = table()
    folds = kfold_indices(t, 5, stratify="y", seed=0)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == list(range(len(t)))
    for tr, te in folds:
        assert not set(t["patient_id"].iloc[tr]) & set(t["patient_id"].iloc[te])
    plain = kfold_indices(t, 5, seed=0)
    assert len(plain) == 5
    with pytest.raises(InputError, match="cannot fill"):
        kfold_indices(t.head(3), 5)


def test_balanced_sample_paper_d_style():
    t = table(400)
    s = balanced_sample(t, "y", 50, seed=0)
    assert (s["y"].to_numpy() == [1] * 50 + [0] * 50).all()
    assert s["patient_id"].is_unique
    assert not set(s.loc[s.y == 0, "patient_id"]) & set(t.loc[t.y == 1, "patient_id"])
    pd.testing.assert_frame_equal(s, balanced_sample(t, "y", 50, seed=0))
    with pytest.raises(InputError, match="only .* eligible positive"):
        balanced_sample(t, "y", 10_000)


def test_stratified_subset_keeps_every_stratum_in_proportion():
    t = pd.DataFrame({"d": np.repeat(list("abc"), [60, 30, 10]), "v": np.arange(100)})
    k = stratified_subset(t, 20, stratify="d", seed=1)
    assert len(k) == 20 and list(k) == sorted(k)
    assert t.iloc[k]["d"].value_counts().to_dict() == {"a": 12, "b": 6, "c": 2}
    assert list(stratified_subset(t, 20, stratify="d", seed=1)) == list(k)   # seeded
    assert list(stratified_subset(t, 20, stratify="d", seed=2)) != list(k)
    assert len(stratified_subset(t, None, stratify="d")) == 100
    assert len(stratified_subset(t, 500, stratify="d")) == 100
    small = stratified_subset(t, 3, stratify="d")            # one of each, however rare
    assert sorted(t.iloc[small]["d"]) == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="at least 3"):
        stratified_subset(t, 2, stratify="d")
