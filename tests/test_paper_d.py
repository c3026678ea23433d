"""Paper D's package: the NIH Opacity mapping (hand-checked fixture and the real tables),
sampling and splits, file-based encoders, the full-profile error, the reported Table 1 and a
tiny end-to-end run on synthetic pixels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError
from compendium.imaging.augment import view_ids
from compendium.papers.paper_d import LABELS, NIH_OPACITY, figures, pipeline, tables
from compendium.papers.reported import load_reported
from compendium.runner import resolve_params


def _cfg(profile="smoke", *overrides):
    return resolve_params("paper_d", profile, overrides=list(overrides))


# ------------------------------------------------------------------ NIH "Opacity"


def test_opacity_evidence_on_a_hand_checked_fixture():
    # 8 frontal images of 6 patients; Google relabelled the first six (3 positive)
    nih = pd.DataFrame({
        "sample_id": [f"i{k}" for k in range(8)],
        "patient_id": ["a", "a", "b", "c", "d", "e", "f", "f"],
        "view": ["PA"] * 7 + ["LL"],
        "Infiltration": [1, 0, 1, 0, 0, 0, 1, 1], "Consolidation": [0, 1, 0, 0, 0, 0, 0, 0],
        "Pneumonia": [0, 0, 0, 0, 0, 0, 0, 0], "Edema": [0, 0, 0, 1, 0, 0, 0, 0],
        "Atelectasis": [0, 0, 0, 0, 0, 0, 0, 0]})
    google = pd.DataFrame({"sample_id": [f"i{k}" for k in range(6)],
                           "patient_id": ["a", "a", "b", "c", "d", "e"],
                           "airspace_opacity": [1, 1, 0, 1, 0, 0]})
    cfg = _cfg("smoke", "nih_opacity=[Infiltration, Consolidation]")
    ev = pipeline.opacity_evidence(cfg, nih, google,
                                   candidates=[("Infiltration",), ("Infiltration", "Consolidation")])
    inf, both = ev.iloc[0], ev.iloc[1]
    # Infiltration alone: predicted 1,0,1,0,0,0 vs Google 1,1,0,1,0,0 -> TP 1, FP 1, FN 2, TN 2
    # p_o = 3/6, p_e = (2/6)(3/6) + (4/6)(3/6) = 1/2 -> kappa 0
    assert inf["kappa_vs_google"] == pytest.approx(0.0)
    assert inf["sensitivity"] == pytest.approx(1 / 3) and inf["ppv"] == pytest.approx(1 / 2)
    # with Consolidation: 1,1,1,0,0,0 -> TP 2, FP 1, FN 1, TN 2; p_o 4/6, p_e 1/2 -> kappa 1/3
    assert both["kappa_vs_google"] == pytest.approx(1 / 3)
    # counts over frontal images only (the lateral i7 is out): i0, i2, i6 / i0, i1, i2, i6
    assert (inf["positive_images"], inf["positive_patients"]) == (3, 3)
    assert (both["positive_images"], both["positive_patients"]) == (4, 3)
    assert ev["chosen"].tolist() == [False, True]
    assert ev.attrs == {"n_google_images": 6, "google_positive": 3,
                        "google_positive_patients": 2}


def test_opacity_decision_on_the_real_tables():
    """The numbers the chapter states, from the NIH table and Google's 2019 labels shipped
    with torchxrayvision (hand-checked when the decision was made)."""
    ev = pipeline.opacity_evidence(_cfg("demo"))
    chosen = ev[ev["chosen"]].iloc[0]
    assert chosen["nih_labels"] == " | ".join(NIH_OPACITY)
    assert (chosen["positive_images"], chosen["positive_patients"]) == (24084, 8768)
    assert round(chosen["kappa_vs_google"], 3) == 0.291
    assert ev.attrs["n_google_images"] == 4376 and ev.attrs["google_positive_patients"] == 820
    eligible = ev[~ev["overlaps_paper_d_label"]]
    assert eligible["kappa_vs_google"].idxmax() == chosen.name


def test_synthetic_nih_pool_is_presampled_frontal_with_the_union_as_opacity():
    pool = pipeline.pool_cohort("nih", _cfg("smoke", "n_per_class=34"))   # 1.5 x 34 = 51
    t = pool.table
    assert len(t) <= 4 * 2 * 51 and set(t["view"]) <= {"PA", "AP"}
    for label in LABELS:
        assert (t[label] == 0).sum() >= 51
    o = t[list(NIH_OPACITY)].to_numpy()
    assert ((t["Opacity"] == 1) == (o == 1).any(axis=1)).all()
    assert pool.pixel_column == "synthetic_key"


# ------------------------------------------------------------------ sampling


def test_sample_tasks_balanced_one_per_patient_and_patient_wise_split():
    cfg = _cfg("smoke", "n_per_class=40", "synthetic_rows=1500")
    pool = pipeline.pool_cohort("mimic-cxr", cfg)
    tasks, images = pipeline.sample_tasks(pool.table, cfg)
    for label, t in tasks.groupby("label"):
        assert (t["y"] == 1).sum() == 40 and (t["y"] == 0).sum() == 40
        assert t["patient_id"].is_unique
        pos_patients = set(pool.table.loc[pool.table[label] == 1, "patient_id"])
        assert not set(t.loc[t["y"] == 0, "patient_id"]) & pos_patients
    assert images["sample_id"].is_unique and set(images["sample_id"]) == set(tasks["sample_id"])
    assert images.groupby("patient_id")["split"].nunique().max() == 1
    assert 0.1 < (images["split"] == "test").mean() < 0.3
    again, _ = pipeline.sample_tasks(pool.table, cfg)
    assert again.equals(tasks)


def test_mean_ci_is_the_t_interval():
    # mean 0.82, sd sqrt(0.0026 / 4) = 0.0254951, t(0.975, 4) = 2.776445 -> half 0.0316563
    m, h = tables.mean_ci([0.80, 0.82, 0.85, 0.79, 0.84])
    assert m == pytest.approx(0.82) and h == pytest.approx(0.0316563, abs=1e-6)
    assert np.isnan(tables.mean_ci([0.7])[1]) and tables.mean_ci([0.7, np.nan])[0] == 0.7


# ------------------------------------------------------------------ file-based encoders


def test_embeddings_file_needs_the_augmented_views(tmp_path):
    from compendium.encoders import load_encoder

    images = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)],
                           "split": ["train"] * 4 + ["test"] * 2})
    pool = pipeline.Pool("nih", "NIH", None, pd.DataFrame(), images)
    rng = np.random.default_rng(0)
    ids = images["sample_id"].tolist()
    path = tmp_path / "cxr.npz"
    np.savez(path, sample_id=np.array(ids), embeddings=rng.normal(size=(6, 32, 768)))
    enc = load_encoder("cxr-foundation", weights=path)
    X, Xv, train = pipeline.embed_images(enc, pool, _cfg("full", "augment=false"))
    assert X.shape == (6, 768) and Xv is None
    with pytest.raises(DataNotFoundError, match=r"lacks 20 of the 20 augmented views.*#aug1"):
        pipeline.embed_images(enc, pool, _cfg("full"))
    all_ids = ids + view_ids(ids[:4])
    np.savez(path, sample_id=np.array(all_ids), embeddings=rng.normal(size=(len(all_ids), 32, 768)))
    enc = load_encoder("cxr-foundation", weights=path)
    X, Xv, train = pipeline.embed_images(enc, pool, _cfg("full"))
    assert Xv.shape == (20, 768) and train == ids[:4]


# ------------------------------------------------------------------ spec and CLI


def test_full_profile_without_data_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    code = cli.main(["run", "paper_d", "--profile", "full"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for what in ("data_roots.mimic-cxr", "data_roots.nih", "weights.medimageinsight",
                 "weights.cxr-foundation"):
        assert what in err
    assert not (tmp_path / "results").exists()


def test_synthetic_pixels_refuse_file_based_models_without_stand_ins():
    spec = _cfg("demo", "models=[cxr-foundation]", "use_stand_ins=false")
    with pytest.raises(ConfigError, match="its stand-in: toy-clip-resnet"):
        spec.check()


def test_full_profile_passes_its_check_with_roots_and_files(tmp_path):
    for d in ("mimic", "nih"):
        (tmp_path / d).mkdir()
    for m in ("mii", "cxrf"):
        (tmp_path / f"{m}.npz").write_bytes(b"")
    _cfg("full", f"data_roots={{mimic-cxr: {tmp_path / 'mimic'}, nih: {tmp_path / 'nih'}}}",
         f"weights={{medimageinsight: {tmp_path / 'mii.npz'}, "
         f"cxr-foundation: {tmp_path / 'cxrf.npz'}}}").check()
    with pytest.raises(DataNotFoundError, match="data_roots.mimic-iv: /nowhere is not a folder"):
        _cfg("full", f"data_roots={{mimic-cxr: {tmp_path / 'mimic'}, nih: {tmp_path / 'nih'}, "
             "mimic-iv: /nowhere}", f"weights={{medimageinsight: {tmp_path / 'mii.npz'}, "
             f"cxr-foundation: {tmp_path / 'cxrf.npz'}}}").check()


def test_reported_table1_as_printed():
    rep = load_reported("paper_d")
    assert len(rep) == 4 * 2 * 2 * 2            # labels x datasets x models x (AUROC, F1)
    wide = tables.table1_wide(tables.reported_long(rep))
    first = wide.iloc[0].to_dict()              # the paper's first row, as printed
    assert first == {"Disease": "Atelectasis", "Dataset": "MIMIC",
                     "AUROC MedImageInsight": "0.833 ± 0.007",
                     "AUROC CXR-Foundation": "0.823 ± 0.013",
                     "F1 MedImageInsight": "0.755 ± 0.007", "F1 CXR-Foundation": "0.751 ± 0.008"}
    assert wide.iloc[-1]["AUROC CXR-Foundation"] == "0.955 ± 0.006"


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_tiny_run_end_to_end():
    cfg = _cfg("smoke", "datasets=[nih]", "models=[cxr-foundation]", "labels=[Edema, Effusion]",
               "n_per_class=20", "n_bootstrap=20", "k_range=[2, 3]", "kmeans_n_init=2",
               "umap_neighbors=5")
    cfg.check()
    pools = pipeline.build_pools(cfg)
    embedded = pipeline.embed_pools(pools, cfg, progress=False)
    cv = pipeline.cross_validate_all(pools, embedded, cfg, progress=False)
    long = tables.table1_long(cv, cfg)
    wide = tables.table1_wide(long, cfg.labels)
    shown = "toy-clip-resnet (stand-in for CXR-Foundation)"
    assert wide.columns.tolist() == ["Disease", "Dataset", f"AUROC {shown}", f"F1 {shown}"]
    assert wide["Disease"].tolist() == ["Edema", "Effusion"]
    assert wide["Dataset"].tolist() == ["NIH (synthetic pixels)"] * 2
    assert len(cv.folds) == 2 * 2 * 5                  # labels x (with, without) x folds
    assert (cv.folds["n_views"][cv.folds["augmented"]] == 5 * cv.folds["n_train"]
            [cv.folds["augmented"]]).all()
    # Table 1's mean is the mean of the fold rows it summarises
    ed = cv.folds[(cv.folds["label"] == "Edema") & cv.folds["augmented"]]["auroc"].mean()
    assert long[(long["label"] == "Edema") & (long["metric"] == "auroc")]["mean"].iloc[0] == \
        pytest.approx(ed)
    aug = tables.augmentation_table(cv)
    assert set(aug["metric"]) == {"auroc", "f1"}
    held = pipeline.held_out(pools, embedded, cfg)
    assert set(held["attribute"]) == {"all"} and set(held["metric"]) == {"auroc", "f1"}
    assert {"sex", "age_group"} <= set(cv.groups["attribute"])
    space = pipeline.embedding_space(pools, embedded, long, cfg, progress=False)
    assert set(space.silhouette["k"]) == {2, 3} and space.silhouette["best"].sum() == 1
    assert set(space.umap["label"]) == {space.info["best"], space.info["worst"]}
    stab = tables.stability_table(long, load_reported("paper_d"))
    assert (stab["source"] == "reported").sum() == 8 and (stab["source"] == "reproduced").sum() == 0
    # the figures draw the tables they get
    fig = figures.silhouette_figure(space.silhouette)
    line = fig.axes[0].lines[0]
    assert np.allclose(line.get_ydata(), space.silhouette["silhouette"])
    g = figures.groups_figure(cv.groups)
    pts = np.concatenate([np.asarray(c.lines[0].get_ydata(), dtype=float)
                          for c in g.axes[0].containers])
    sub = cv.groups[(cv.groups["metric"] == "auroc") & (cv.groups["attribute"] != "all")]
    assert sorted(np.round(pts[np.isfinite(pts)], 9)) == sorted(
        np.round(sub["estimate"].dropna(), 9))


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_models_and_datasets_of_every_profile_are_registered(profile):
    from compendium.cohorts import load_builders
    from compendium.encoders import list_models

    spec = resolve_params("paper_d", profile)
    assert set(spec.models) <= set(list_models())
    assert set(spec.datasets) <= set(load_builders().names())
    assert spec.models == ["medimageinsight", "cxr-foundation"] and spec.labels == list(LABELS)


def test_the_papers_interval_widths_rule_out_the_t_interval():
    ev = pipeline.interval_evidence(load_reported("paper_d"), _cfg("demo"), n_sims=60,
                                    progress=False).set_index(["reading", "metric"])
    assert ev.loc[("t_folds", "auroc"), "ruled_out"] and ev.loc[("t_folds", "f1"), "ruled_out"]
    assert not ev.loc[("se_folds", "auroc"), "ruled_out"]
    # the printed mean half-width is the paper's: 16 AUROC cells of Table 1
    assert ev.loc[("t_folds", "auroc"), "printed_mean_half"] == pytest.approx(
        (0.007 + 0.013 + 0.008 + 0.012 + 0.011 + 0.014 + 0.012 + 0.006 + 0.011 + 0.014
         + 0.012 + 0.006 + 0.019 + 0.017 + 0.012 + 0.006) / 16)
    assert _cfg("demo").ci_reading == "se_folds"
    m, h = tables.mean_ci([0.80, 0.82, 0.85, 0.79, 0.84], reading="se_folds")
    assert h == pytest.approx(0.0254951 / np.sqrt(5), abs=1e-6)


def test_claims_on_the_papers_own_table_1():
    """Hand-checked from Table 1: MedImageInsight above CXR-Foundation in 5 of 8 cells; 10 of
    16 AUROCs above 0.90; mean |NIH - MIMIC| 0.05750 (MII) vs 0.05850 (CXR-F); on MIMIC
    MedImageInsight's best label Effusion (0.958), worst Opacity (0.782)."""
    from compendium.papers.claims import claims_table

    rep = tables.reported_long(load_reported("paper_d"))
    t = claims_table("paper_d", {"p": tables.claim_checks(rep)}).set_index("claim")
    assert t.loc["medimageinsight-higher", "verdict"] == "holds"
    assert t.loc["medimageinsight-higher", "value"].startswith("5 of 8 cells")
    assert t.loc["auroc-above-0.90", "value"].startswith("10 of 16")
    assert t.loc["cxr-foundation-stable", "verdict"] == "does not hold"
    assert "CXR-Foundation 0.058, MedImageInsight 0.057" in t.loc["cxr-foundation-stable", "value"]
    assert t.loc["effusion-best-opacity-worst", "verdict"] == "holds"
    one = rep[rep["registry_model"] == "medimageinsight"]
    t1 = claims_table("paper_d", {"p": tables.claim_checks(one)}).set_index("claim")
    assert t1.loc["medimageinsight-higher", "verdict"] == "not testable here"


def test_mimic_negatives_reading_reaches_the_pool(tmp_path):
    from tests.test_cohorts_real import write_mimic_cxr

    root = write_mimic_cxr(tmp_path)
    roots = f"data_roots={{mimic-cxr: {root}}}"
    explicit = pipeline.pool_cohort("mimic-cxr", _cfg("full", roots, "mimic_negatives=explicit"))
    both = pipeline.pool_cohort("mimic-cxr", _cfg("full", roots))
    e, b = (c.table.set_index("sample_id") for c in (explicit, both))
    assert np.isnan(e.loc["d1", "Edema"]) and b.loc["d1", "Edema"] == 0.0   # not mentioned
    assert np.isnan(b.loc["d3", "Edema"])                                    # uncertain: never
