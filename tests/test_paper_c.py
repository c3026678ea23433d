"""Paper C's package: the full-profile input check (LLM-label CSV schema included), label
sources under pixels: real, thresholds, the gap audit on a hand-made table, the claims on the
abstract's own numbers, and the Open-i reports."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.audit.metrics import fpr_difference
from compendium.errors import DataNotFoundError, InputError
from compendium.papers.claims import claims_table
from compendium.papers.paper_c import PAIRS, pipeline, tables
from compendium.papers.reported import load_reported
from compendium.runner import resolve_params


def _cfg(profile="smoke", *overrides):
    return resolve_params("paper_c", profile, overrides=list(overrides))


# ------------------------------------------------------------------ full profile inputs


def test_full_profile_without_data_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    code = cli.main(["run", "paper_c", "--profile", "full"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for what in ("data_roots.mimic-cxr", "data_roots.mimic-iv", "weights.cxr-foundation",
                 "llm_labels is not set", "study_id"):
        assert what in err, what
    assert not (tmp_path / "results").exists()


def test_full_profile_passes_its_check_with_roots_and_files(tmp_path):
    for d in ("mimic", "mimiciv"):
        (tmp_path / d).mkdir()
    (tmp_path / "cxrf.npz").write_bytes(b"")
    (tmp_path / "llm.csv").write_text("study_id,No Finding\n1,1\n")
    roots = f"data_roots={{mimic-cxr: {tmp_path / 'mimic'}, mimic-iv: {tmp_path / 'mimiciv'}}}"
    weights = f"weights={{cxr-foundation: {tmp_path / 'cxrf.npz'}}}"
    _cfg("full", roots, weights, f"llm_labels={tmp_path / 'llm.csv'}", "pretrained=false").check()
    with pytest.raises(DataNotFoundError, match="llm_labels: /nowhere.csv is not a file"):
        _cfg("full", roots, weights, "llm_labels=/nowhere.csv", "pretrained=false").check()


def _real_cohort():
    t = pd.DataFrame({"sample_id": ["a", "b", "c"], "study_id": ["10", "11", "12"],
                      "No Finding": [1.0, np.nan, 0.0]})
    return types.SimpleNamespace(table=t)


def test_real_label_sources_read_the_llm_csv(tmp_path):
    p = tmp_path / "llm.csv"
    p.write_text("study_id,No Finding\n12,1\n10,0\n11,-1\n99,1\n")
    out = pipeline.label_sources(_real_cohort(), _cfg("full", f"llm_labels={p}"))
    assert out["chexpert"].tolist() == [1.0, 0.0, 0.0]      # CheXpert: missing -> 0
    assert out["llm"].tolist() == [0.0, 0.0, 1.0]           # uncertain (-1) is not "No Finding"


@pytest.mark.parametrize("content, message", [
    ("study_id,No Finding\n10,1\n11,0\n", "1 of 3 studies have no 'No Finding' label"),
    ("study_id,label\n10,1\n", "no column\\(s\\) 'No Finding'"),
    ("study_id,No Finding\n10,maybe\n", "holds 'maybe'"),
    ("study_id,No Finding\n10,1\n10,0\n", "appears more than once"),
])
def test_llm_csv_schema_errors_are_one_line(tmp_path, content, message):
    p = tmp_path / "llm.csv"
    p.write_text(content)
    with pytest.raises(InputError, match=message) as err:
        pipeline.label_sources(_real_cohort(), _cfg("full", f"llm_labels={p}"))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------ decisions and gaps


def test_youden_threshold_and_half():
    y, s = np.array([0, 0, 1, 1]), np.array([0.2, 0.8, 0.85, 0.9])
    # cut at 0.85: TPR 1, FPR 0 (J = 1); 0.5 would call the 0.8 negative positive
    assert pipeline.choose_threshold(y, s, "youden_val") == pytest.approx(0.85)
    assert pipeline.choose_threshold(y, s, "half") == 0.5
    with pytest.raises(InputError, match="one class"):
        pipeline.choose_threshold(np.zeros(3), np.ones(3), "youden_val")


def _decided(n=600, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                         "patient_id": [f"p{i // 2}" for i in range(n)],
                         "race": rng.choice(["Black", "White"], n),
                         "sex": rng.choice(["F", "M"], n),
                         "age_group": rng.choice(["18-40", "80+", "nan"], n),
                         "y_true": rng.integers(0, 2, n)})
    base["score"] = np.clip(0.3 * base["y_true"] + rng.random(n) * 0.7, 0, 1)
    parts = []
    for source, extra in (("chexpert", 0.35), ("llm", 0.1)):
        d = base.copy()
        # Black patients with a finding get "No Finding" more often under chexpert
        flip = (d["race"] == "Black") & (d["y_true"] == 0) & (rng.random(n) < extra)
        d["y_pred"] = np.where(flip, 1, (d["score"] > 0.5).astype(int))
        parts.append(d.assign(model="m", model_label="m", paper_model="M", source=source))
    return pd.concat(parts, ignore_index=True)


def test_audit_gaps_on_a_hand_made_table():
    dec = _decided()
    res = pipeline.audit_gaps(dec, _cfg("smoke", "n_bootstrap=100"))
    g = res.gaps.set_index(["source", "attribute"])
    for source in ("chexpert", "llm"):
        d = dec[dec["source"] == source]
        want = fpr_difference(d["y_true"], d["y_pred"], sensitive_features=d["race"],
                              pair=("Black", "White"))
        assert g.loc[(source, "race"), "gap"] == pytest.approx(want)
    e = res.effect.set_index("attribute")
    assert e.loc["race", "gap_chexpert"] > e.loc["race", "gap_llm"] > -0.05
    assert e.loc["race", "shrinks"] and e.loc["race", "ci_high"] < 0
    assert set(res.rates["group"]) == {g for pair in PAIRS.values() for g in pair}
    assert (res.auroc["auroc"] > 0.5).all()
    checks = tables.claim_checks(res)
    assert checks["llm-labels-reduce-race-gap"]().verdict == "holds"


# ------------------------------------------------------------------ reported and claims


def test_claims_on_the_abstracts_own_numbers():
    rep = load_reported("paper_c")
    assert len(rep) == 16
    t = claims_table("paper_c", {"the paper's numbers": tables.claim_checks(rep)})
    v = dict(zip(t["claim"], t["verdict"]))
    assert v == {"foundation-comparable-to-supervised": "holds",
                 "domain-specific-not-worse-than-dinov2": "not testable here",
                 "llm-labels-reduce-race-gap": "holds", "sex-gaps-smaller": "holds",
                 "age-gaps-shrink-most": "holds"}
    # the abstract's reductions follow from its printed gaps (0.071 -> 0.054 is 24 %)
    r = rep.set_index("id")
    for m in ("supervised", "raddino", "google"):
        a, b = r.loc[f"race-gap-{m}-chexpert", "value"], r.loc[f"race-gap-{m}-llm", "value"]
        assert (a - b) / a == pytest.approx(r.loc[f"race-reduction-{m}", "value"], abs=0.011)


# ------------------------------------------------------------------ Open-i


def test_openi_reports_are_the_real_collection():
    rep = pipeline.openi_reports(_cfg("smoke"))
    # 3,851 reports with images, 1,379 indexed "normal"; those indexed "No Indexing" and
    # those without text are left out
    assert 3700 <= len(rep) < 3851 and rep["report_id"].is_unique
    assert not rep["mesh_major"].str.contains("No Indexing").any()
    assert 0.3 < rep["mesh_normal"].mean() < 0.4
    assert 0.2 < (rep["sex"] != "unknown").mean() < 0.4    # sex from the report text only
    assert set(rep.loc[rep["sex"] != "unknown", "sex_source"]) == {"report text"}
    assert rep["age"].notna().mean() > 0.95                 # age from the DICOM dates
