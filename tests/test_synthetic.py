"""Tests of the synthetic world: determinism, finding signs, knobs, reports, EHR, CT."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.cohorts import build_cohort
from compendium.cohorts.base import Cohort
from compendium.errors import ConfigError, InputError
from compendium.synthetic import (CXR_LABELS, EHR_FEATURES, EHR_MASK_SLICE, FINDINGS, BiasKnobs,
                                  GroupKnobs, default_knobs, extract_labels, pretraining_pairs,
                                  render_ehr, render_rows, render_volumes, synthetic_cxr,
                                  synthetic_inspect, with_synthetic_pixels)
from compendium.synthetic import ehr as ehr_mod

SIZE = 96


@pytest.fixture(scope="module")
def cohort():
    return synthetic_cxr(n=240, seed=3, knobs="default")


def _same_patient_table(findings_rows, key="k0", sex="M", age=50.0, race="White"):
    """One row per finding set, all the same patient and synthetic key (same anatomy)."""
    rows = []
    for i, pos in enumerate(findings_rows):
        r = {"sample_id": f"s{i}", "patient_id": "p-" + key, "split": "train", "age": age,
             "sex": sex, "race": race, "synthetic_key": key}
        for f in FINDINGS:
            r[f] = float(f in pos)
        r["No Finding"] = float(not pos)
        rows.append(r)
    return pd.DataFrame(rows)


def _toy(table, knobs=None, seed=0):
    k = BiasKnobs() if knobs is None else knobs
    return Cohort(name="toy", table=table, labels=CXR_LABELS, source="synthetic",
                  pixel_column="synthetic_key",
                  meta={"synthetic": {"seed": seed, "knobs": k.to_dict(), "kind": "cxr"}})


# ------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_and_different_seed_differs():
    a, b = synthetic_cxr(n=40, seed=1), synthetic_cxr(n=40, seed=1)
    assert a.table.to_csv() == b.table.to_csv()
    ia, ib = render_rows(a, range(40), 64), render_rows(b, range(40), 64)
    assert ia.tobytes() == ib.tobytes()
    c = synthetic_cxr(n=40, seed=2)
    assert a.table.to_csv() != c.table.to_csv()
    assert render_rows(c, range(40), 64).tobytes() != ia.tobytes()
    assert render_ehr(a, range(5)).tobytes() == render_ehr(b, range(5)).tobytes()


def test_rendering_a_row_does_not_depend_on_the_batch(cohort):
    full = render_rows(cohort, np.arange(60), SIZE)
    for i in (0, 7, 31, 59):
        assert np.array_equal(render_rows(cohort, [i], SIZE)[0], full[i])
    rev = render_rows(cohort, np.arange(60)[::-1], SIZE)
    assert np.array_equal(rev[::-1], full)
    assert np.array_equal(render_ehr(cohort, [9])[0], render_ehr(cohort, range(12))[9])


# ------------------------------------------------------------------ finding signs

_C = (np.arange(128) + 0.5) / 128 * 2 - 1
_U, _V = np.meshgrid(_C, _C)          # u: left -> right, v: top -> bottom


def _diffs(finding, keys=("a", "b", "c", "d", "e", "f")):
    out = []
    for k in keys:
        t = _same_patient_table([[], [finding]], key=k)
        img = render_rows(_toy(t), [0, 1], 128).astype(float)
        out.append((img[0], img[1] - img[0]))
    return out


def _mass(d, region):
    pos = np.clip(d, 0, None)
    return pos[region].sum() / max(pos.sum(), 1e-9)


def test_every_finding_changes_the_image():
    for f in FINDINGS:
        for _, d in _diffs(f, keys=("a", "b", "c")):
            assert np.abs(d).sum() > (800 if f == "Nodule" else 2000), f   # nodules are small


def test_effusion_raises_basal_lateral_intensity():
    region = (_V > 0.1) & (np.abs(_U) > 0.3)
    for _, d in _diffs("Effusion"):
        assert d.sum() > 0
        assert _mass(d, region) > 0.8


def test_cardiomegaly_widens_the_heart():
    region = (np.abs(_U) < 0.75) & (_V > -0.1) & (_V < 0.75)
    for base, d in _diffs("Cardiomegaly"):
        assert _mass(d, region) > 0.9
        row = int(np.argmax(np.clip(d, 0, None).sum(1)))          # the heart's widest row
        assert (d[row] > 10).sum() >= 6                           # wider by several pixels


def test_pneumothorax_removes_apical_lung_markings():
    apex = (_V < -0.1) & (np.abs(_U) > 0.2) & (np.abs(_U) < 0.85)
    corr = []
    for base, d in _diffs("Pneumothorax"):
        after = base + d
        smooth = lambda im: sum(im[1 + a:127 + a, 1 + b:127 + b]  # noqa: E731
                                for a in (-1, 0, 1) for b in (-1, 0, 1)) / 9
        assert after[apex].mean() < base[apex].mean()             # darker: pleural air
        neg = np.clip(-d, 0, None)
        assert neg[_V < 0.3].sum() > 0.7 * neg.sum()              # change is apical/upper
        # lung markings vanish where the pleural air is: inside the rim the change subtracts
        # exactly the marking texture, so it anti-correlates with the original image there
        inside = (d < -15) & apex
        for _ in range(3):      # erode: keep pixels well inside the rim, away from its edges
            inside = inside & np.roll(inside, 1, 0) & np.roll(inside, -1, 0) \
                & np.roll(inside, 1, 1) & np.roll(inside, -1, 1)
        rim = inside[1:-1, 1:-1]
        assert rim.sum() > 50
        corr.append(np.corrcoef(smooth(d)[rim], smooth(base)[rim])[0, 1])
    assert max(corr) < -0.1 and np.mean(corr) < -0.4


def test_edema_is_bilateral_and_perihilar():
    for _, d in _diffs("Edema"):
        pos = np.clip(d, 0, None)
        left, right = pos[:, :64].sum(), pos[:, 64:].sum()
        assert min(left, right) > 0.25 * (left + right)
        assert _mass(d, (np.abs(_U) < 0.75) & (_V > -0.5) & (_V < 0.75)) > 0.85


@pytest.mark.parametrize("finding", ["Consolidation", "Pneumonia", "Opacity", "Atelectasis",
                                     "Nodule", "Mass"])
def test_parenchymal_findings_stay_in_the_lungs(finding):
    lungs = (np.abs(_U) > 0.05) & (np.abs(_U) < 0.85) & (_V > -0.9) & (_V < 0.75)
    for _, d in _diffs(finding):
        assert _mass(d, lungs) > 0.95
        if finding == "Atelectasis":
            assert _mass(d, _V > -0.05) > 0.8                     # lower zone


# ------------------------------------------------------------------ bias knobs


def test_with_zero_knobs_demographics_change_nothing():
    t = _same_patient_table([[], ["Effusion"], ["Edema", "Cardiomegaly"]], key="z")
    for cols in ({"sex": "F"}, {"race": "Black"}, {"age": 85.0}, {"age": 25.0}):
        t2 = t.assign(**cols)
        a, b = _toy(t), _toy(t2)
        assert render_rows(a, range(3), 64).tobytes() == render_rows(b, range(3), 64).tobytes()
        assert render_ehr(a).tobytes() == render_ehr(b).tobytes()
    z0, z1 = synthetic_cxr(n=150, seed=4, knobs="zero"), synthetic_cxr(n=150, seed=4, knobs="zero")
    assert (z0.label_matrix() == z1.label_matrix()).all()
    tl = z0.table
    assert all((tl[f] == tl[f"true_{f}"]).all() for f in FINDINGS)   # no label noise


def test_default_knobs_change_the_intended_groups_only():
    t = _same_patient_table([[], ["Effusion"]], key="y")
    k = default_knobs()
    m = render_rows(_toy(t, k), range(2), 64)
    f = render_rows(_toy(t.assign(sex="F"), k), range(2), 64)
    assert m.tobytes() != f.tobytes()
    # the soft-tissue overlay hides basal effusion: the sign is weaker in women
    basal = (np.kron(_V, 1)[::2, ::2] > 0.1) & (np.abs(_U[::2, ::2]) > 0.3)
    sign_m = (m[1].astype(float) - m[0])[basal].mean()
    sign_f = (f[1].astype(float) - f[0])[basal].mean()
    assert sign_f < 0.7 * sign_m
    # a group without knobs (race=Asian, age 50) renders exactly as with zero knobs
    a = render_rows(_toy(t.assign(race="Asian"), k), range(2), 64)
    assert a.tobytes() == render_rows(_toy(t.assign(race="Asian")), range(2), 64).tobytes()


def _sex_auc(knobs):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    c = synthetic_cxr(n=360, seed=11, knobs=knobs)
    img = render_rows(c, range(360), 64).astype(np.float32) / 255
    x = img.reshape(360, 16, 4, 16, 4).mean((2, 4)).reshape(360, -1)
    y = (c.table["sex"] == "F").to_numpy()
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(x[:240], y[:240])
    return roc_auc_score(y[240:], clf.predict_proba(x[240:])[:, 1])


def test_sex_is_not_learnable_from_pixels_with_zero_knobs_but_is_with_defaults():
    assert _sex_auc("zero") < 0.65
    assert _sex_auc("default") > 0.85


def test_underdiagnosis_knob_hits_only_its_group(cohort):
    t = synthetic_cxr(n=800, seed=5, knobs="default").table
    true = t[[f"true_{f}" for f in FINDINGS]].to_numpy()
    rec = t[list(FINDINGS)].to_numpy()
    black = (t["race"] == "Black").to_numpy()
    kept = lambda m: rec[m][true[m] == 1].mean()  # noqa: E731
    assert kept(~black) == 1.0
    assert 0.65 < kept(black) < 0.92                    # about 0.8 recorded
    assert (t["No Finding"] == (rec.sum(1) == 0)).all()


def test_ehr_missingness_knob(cohort):
    e = render_ehr(cohort)
    black = (cohort.table["race"] == "Black").to_numpy()
    obs = e[:, :, EHR_MASK_SLICE].mean((1, 2))
    assert obs[black].mean() < 0.93 * obs[~black].mean()


def test_knob_spec_validation():
    k = BiasKnobs.from_dict({"groups": {"sex=F": {"noise": 0.1}}})
    assert k.groups["sex=F"] == GroupKnobs(noise=0.1)
    with pytest.raises(ConfigError, match="nois"):
        BiasKnobs.from_dict({"groups": {"sex=F": {"nois": 0.1}}})
    with pytest.raises(ConfigError, match="column=value"):
        BiasKnobs.from_dict({"groups": {"female": {"noise": 0.1}}})
    with pytest.raises(ConfigError, match="underdiagnosis"):
        GroupKnobs(underdiagnosis=1.5)
    with pytest.raises(InputError, match="insurance"):
        BiasKnobs.from_dict({"groups": {"insurance=x": {}}}).per_row(pd.DataFrame({"sex": ["F"]}))
    ages = pd.DataFrame({"age": [17.0, 18.0, 39.5, 40.0, 80.0]})
    per = BiasKnobs.from_dict({"groups": {"age=18-39": {"noise": 1.0}, "age=80+": {"noise": 2.0}}}).per_row(ages)
    assert per["noise"].tolist() == [0, 1, 1, 0, 2]
    assert default_knobs().table()["knob"].tolist()[:2] == ["soft_tissue", "anatomy"]


# ------------------------------------------------------------------ reports


def test_reports_have_negations_hedges_and_are_hard_but_not_too_hard(cohort):
    text = " ".join(cohort.table["report"]).lower()
    assert "no pneumothorax" in text or "no pleural effusion" in text
    assert any(h in text for h in ("cannot be excluded", "possible", "may represent", "questionable"))
    assert all(r.startswith("FINDINGS:") and "IMPRESSION:" in r for r in cohort.table["report"])
    got = extract_labels(cohort.table["report"])
    acc = (got[list(CXR_LABELS)].to_numpy() == cohort.table[list(CXR_LABELS)].to_numpy()).mean()
    assert 0.9 < acc < 1.0
    # reports follow the recorded labels, not the truth: an under-diagnosed finding is absent
    t = cohort.table
    missed = (t["true_Effusion"] == 1) & (t["Effusion"] == 0)
    if missed.any():
        assert not extract_labels(t.loc[missed, "report"])["Effusion"].all()


# ------------------------------------------------------------------ EHR


def test_ehr_layout_and_mask_semantics(cohort):
    e = render_ehr(cohort, range(40), hours=48)
    assert e.shape == (40, 24, 76) and len(EHR_FEATURES) == 76
    masks = e[:, :, EHR_MASK_SLICE]
    assert set(np.unique(masks)) <= {0.0, 1.0}
    col = 0
    for c, ch in enumerate(ehr_mod.CHANNELS):
        width = len(ehr_mod.CATEGORICAL[ch]) if ch in ehr_mod.CATEGORICAL else 1
        block = e[:, :, col:col + width]
        m = masks[:, :, c]
        if width > 1:
            assert np.allclose(block.sum(-1), 1.0)            # one-hot at every step
        # carried forward: an unmeasured step repeats the previous step
        same = np.all(block[:, 1:] == block[:, :-1], axis=-1)
        assert same[m[:, 1:] == 0].all(), ch
        # before the first measurement: the normal value (standardised 0 for continuous)
        never = np.cumsum(m, axis=1) == 0
        if width == 1:
            assert np.all(block[..., 0][never] == 0.0), ch
        col += width
    assert col == 59


def test_ehr_correlates_with_findings():
    c = synthetic_cxr(n=300, seed=8, knobs="zero")
    e = render_ehr(c)
    temp = EHR_FEATURES.index("Temperature")
    spo2 = EHR_FEATURES.index("Oxygen saturation")
    inf = ((c.table["true_Consolidation"] + c.table["true_Pneumonia"]) > 0).to_numpy()
    sick = (c.table["true_No Finding"] == 0).to_numpy()
    assert e[inf, -6:, temp].mean() > e[~inf, -6:, temp].mean() + 0.8
    assert e[sick, -6:, spo2].mean() < e[~sick, -6:, spo2].mean() - 0.3


# ------------------------------------------------------------------ CT


def test_ct_volumes_in_hu_with_filling_defects_inside_arteries():
    c = synthetic_inspect(n=24, seed=1, knobs="zero")
    pe = c.table["true_PE"].to_numpy()
    assert pe.sum() >= 2 and (1 - pe).sum() >= 2
    idx = np.r_[np.flatnonzero(pe)[:3], np.flatnonzero(pe == 0)[:3]]
    vol, art, dfx = render_volumes(c, idx, 48, 24, return_masks=True)
    assert vol.dtype == np.float32 and vol.shape == (6, 24, 48, 48)
    assert vol.min() < -900 and 250 < np.median(vol[art]) < 350
    for j, i in enumerate(idx):
        if pe[i]:
            assert dfx[j].sum() >= 5 and (dfx[j] <= art[j]).all()
            assert vol[j][dfx[j]].max() < 150
            assert np.median(vol[j][art[j] & ~dfx[j]]) > 250
        else:
            assert dfx[j].sum() == 0 and vol[j][art[j]].min() > 150
    assert np.array_equal(render_volumes(c, [idx[0]], 48, 24)[0], vol[0])


def test_inspect_cohort_labels():
    c = build_cohort("synthetic-inspect", n=300, seed=0)
    t = c.table
    assert {"PE", "mortality_1m", "mortality_12m", "ph_12m", "race", "sex", "age"} <= set(t.columns)
    assert (t["mortality_1m"] <= t["mortality_6m"]).all() and (t["mortality_6m"] <= t["mortality_12m"]).all()
    assert 0.1 < t["PE"].mean() < 0.3
    frail_hi = t["frailty"] > t["frailty"].median()
    assert t.loc[frail_hi, "mortality_12m"].mean() > t.loc[~frail_hi, "mortality_12m"].mean()


# ------------------------------------------------------------------ cohorts and API


@pytest.mark.parametrize("name", ["synthetic-cxr", "synthetic-inspect", "synthetic-ehr"])
def test_registered_builders(name):
    c = build_cohort(name, n=30, seed=0)
    assert c.source == "synthetic" and c.pixel_column == "synthetic_key"
    assert set(c.table["split"]) <= {"train", "val", "test"}
    assert "synthetic" in c.meta and c.meta["synthetic"]["seed"] == 0


def test_cxr_cohort_contract(cohort):
    t = cohort.table
    assert set(CXR_LABELS) <= set(cohort.labels) and cohort.task == "multilabel"
    assert t.groupby("patient_id")["split"].nunique().max() == 1
    assert (t[list(FINDINGS)].sum(axis=1) >= 2).any()                 # multi-label rows exist
    assert set(t["sex"]) <= {"F", "M"} and t["age"].between(0, 120).all()
    assert t["race"].notna().all()


def test_with_synthetic_pixels_keeps_real_rows_and_labels():
    rows = pd.DataFrame({
        "sample_id": [f"img{i}" for i in range(8)], "patient_id": [f"p{i // 2}" for i in range(8)],
        "split": ["train"] * 4 + ["test"] * 4, "age": [30, 30, 50, 50, 70, 70, 85, 85.0],
        "sex": ["F", "F", "M", "M", "F", "F", "M", "M"], "race": [np.nan] * 8,
        "Pleural Effusion": [1, 0, 1, 0, 1, 0, 1, 0.0], "Mass": [0, 1, 0, 0, 0, 0, 0, 0.0]})
    real = Cohort(name="mini", table=rows, labels=("Pleural Effusion", "Mass"), source="real-metadata")
    s = with_synthetic_pixels(real, knobs="zero", seed=2)
    assert s.source == "real-metadata+synthetic-pixels" and s.pixel_column == "synthetic_key"
    assert (s.table["Pleural Effusion"] == rows["Pleural Effusion"]).all()
    assert (s.table["true_Pleural Effusion"] == rows["Pleural Effusion"]).all()
    assert s.table["race"].notna().all() and s.meta["synthetic"]["race"] == "synthetic"
    assert s.table["report"].str.contains("IMPRESSION").all()
    img = render_rows(s, range(8), 64)
    assert img.shape == (8, 64, 64) and img.dtype == np.uint8
    with pytest.raises(InputError, match="not a synthetic cohort"):
        render_rows(real, [0], 64)
    # underdiagnosis for everyone flips recorded labels, keeps the truth
    u = with_synthetic_pixels(real, knobs={"sex=F": {"underdiagnosis": 1.0}})
    f = (rows["sex"] == "F").to_numpy()
    assert (u.table.loc[f, "Pleural Effusion"] == 0).all()
    assert (u.table.loc[~f, "Pleural Effusion"] == rows.loc[~f, "Pleural Effusion"]).all()
    assert (u.table["true_Pleural Effusion"] == rows["Pleural Effusion"]).all()


def test_pretraining_pairs_skew():
    p = pretraining_pairs(400, seed=0, knobs="zero", skew={"sex": {"M": 0.9, "F": 0.1}})
    share = (p.table["sex"] == "M").mean()
    assert 0.85 < share < 0.95
    assert p.table["report"].str.len().min() > 20
    with pytest.raises(ConfigError):
        pretraining_pairs(10, seed=0, skew={"sex": {"X": 1.0}})


def test_sign_strength_knob_shrinks_pe_defects_for_its_group():
    c = synthetic_inspect(n=40, seed=2, knobs="default")
    t = c.table
    i = int(np.flatnonzero(t["true_PE"].to_numpy() == 1)[0])
    young = c.table.copy()
    young.loc[i, "age"] = 25.0
    old = c.table.copy()
    old.loc[i, "age"] = 55.0
    import dataclasses
    _, _, d_young = render_volumes(dataclasses.replace(c, table=young), [i], 48, 24, return_masks=True)
    _, _, d_old = render_volumes(dataclasses.replace(c, table=old), [i], 48, 24, return_masks=True)
    assert 0 < d_young.sum() < d_old.sum()


def test_render_sizes_and_bad_input(cohort):
    for size in (32, 224):
        assert render_rows(cohort, [0, 1], size).shape == (2, size, size)
    with pytest.raises(ConfigError):
        render_rows(cohort, [0], 8)
    with pytest.raises(InputError):
        render_rows(cohort, [10_000], 64)
    with pytest.raises(ConfigError):
        synthetic_cxr(n=0)


def test_all_key_and_presets_make_the_world_harder_for_everyone_alike():
    from compendium.synthetic.knobs import resolve_knobs

    k = resolve_knobs({"preset": "default", "all": {"sign_strength": 0.5},
                       "age=18-39": {"sign_strength": 0.1}})
    assert k.groups["sex=F"].soft_tissue == 0.5          # from the preset
    assert k.groups["age=18-39"].sign_strength == 0.1   # replaced
    t = pd.DataFrame({"sex": ["F", "M", "M"], "age": [30, 50, 85], "race": ["White"] * 3})
    per = k.per_row(t)
    np.testing.assert_allclose(per["sign_strength"], [0.6, 0.5, 0.5])
    assert resolve_knobs({"all": {"noise": 0.1}}).is_fair()
    assert not resolve_knobs({"all": {"noise": 0.1}}).is_zero()
    assert not k.is_fair()
    with pytest.raises(ConfigError, match="unknown preset 'strong'"):
        resolve_knobs({"preset": "strong"})
    with pytest.raises(ConfigError, match="or be 'all'"):
        resolve_knobs({"everyone": {"noise": 0.1}})


def test_mislabel_knob_makes_multiclass_images_show_another_class():
    n = 400
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    labels = ("Effusion", "Cardiomegaly", "Pneumothorax")
    rows = pd.DataFrame({"sample_id": [f"i{i}" for i in range(n)],
                         "patient_id": [f"p{i}" for i in range(n)], "split": "test",
                         "age": 50.0, "sex": rng.choice(["F", "M"], n), "race": "White"})
    for j, lab in enumerate(labels):
        rows[lab] = (y == j).astype(float)
    real = Cohort(name="mc", table=rows, labels=labels, source="real-metadata", task="multiclass")
    clean = with_synthetic_pixels(real, knobs="zero", seed=1)
    noisy = with_synthetic_pixels(real, knobs={"sex=F": {"mislabel": 0.5}}, seed=1)
    rec = noisy.table[list(labels)].to_numpy()
    shown = noisy.table[[f"true_{lab}" for lab in labels]].to_numpy()
    assert (rec == rows[list(labels)].to_numpy()).all()         # recorded labels kept
    assert (shown.sum(1) == 1).all()                            # one class shown
    wrong = (rec != shown).any(1)
    f = (rows["sex"] == "F").to_numpy()
    assert not wrong[~f].any()                                  # only the knob's group
    assert 0.4 < wrong[f].mean() < 0.6                          # about half of it
    same = (clean.table[[f"true_{lab}" for lab in labels]].to_numpy() == rec).all()
    assert same                                                 # no knob, no noise
    # the images follow what is shown: a mislabelled image differs from its clean render
    i = int(np.flatnonzero(wrong)[0])
    assert not np.array_equal(render_rows(noisy, [i], 64), render_rows(clean, [i], 64))
    again = with_synthetic_pixels(real, knobs={"sex=F": {"mislabel": 0.5}}, seed=1)
    assert again.table.equals(noisy.table)                      # deterministic
