"""Paper D's pipeline: the NIH Opacity mapping on the real rows, sampling and splits,
cross-validation with augmented views, file-based encoders, the full-profile error, and a
tiny end-to-end run on synthetic pixels."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.cohorts.nih import nih_table, read_nih_metadata
from compendium.errors import ConfigError, DataNotFoundError
from compendium.imaging.augment import view_ids
from compendium.papers import paper_d as D
from compendium.runner import project_root, resolve_params


@pytest.fixture(scope="module")
def nih():
    return nih_table(read_nih_metadata())


# ------------------------------------------------------------------ NIH "Opacity"


def test_opacity_evidence_on_the_real_tables(nih):
    ev = D.opacity_evidence(nih)
    google = D.google_airspace_opacity()
    assert ev.attrs["n_google_images"] == len(google) == 4376
    assert ev.attrs["google_positive"] == int(google["airspace_opacity"].sum())
    chosen = ev[ev["chosen"]]
    assert len(chosen) == 1 and chosen["nih_labels"].iloc[0] == " | ".join(D.NIH_OPACITY)
    frontal = nih[nih["view"].isin(["PA", "AP"])]
    pos = frontal[list(D.NIH_OPACITY)].max(axis=1) > 0
    assert chosen["positive_images"].iloc[0] == int(pos.sum())
    assert chosen["positive_patients"].iloc[0] == frontal.loc[pos, "patient_id"].nunique()
    # the decision rule: best agreement among the sets that do not overlap another task
    eligible = ev[~ev["overlaps_paper_d_label"]]
    assert eligible["kappa_vs_google"].idxmax() == chosen.index[0]
    # and enough patients for 1,000 positives one per patient
    assert chosen["positive_patients"].iloc[0] >= 1000
    # Google's own label is too small for that: why it is evidence, not the label
    assert ev.attrs["google_positive_patients"] < 1000


def test_nih_pool_has_the_union_as_opacity_and_only_frontal_views():
    pool = D.pool_cohort("nih", pixels="synthetic", presample=50)
    t = pool.table
    assert len(t) <= 4 * 2 * 50 and t["patient_id"].nunique() > 100
    for label in D.PAPER_LABELS:          # the pre-sample keeps enough of every label
        assert (t[label] == 1).sum() >= 45 and (t[label] == 0).sum() >= 50
    assert set(t["view"]) <= {"PA", "AP"}
    assert np.array_equal(t["Opacity"], t[list(D.NIH_OPACITY)].max(axis=1))
    assert pool.pixel_column == "synthetic_key"


# ------------------------------------------------------------------ sampling


def test_sample_tasks_balanced_one_per_patient_and_patient_wise_split():
    pool = D.pool_cohort("mimic-cxr", pixels="synthetic", synthetic_rows=1500)
    tasks, images = D.sample_tasks(pool.table, n_per_class=40, seed=0)
    for label, t in tasks.groupby("label"):
        assert (t["y"] == 1).sum() == 40 and (t["y"] == 0).sum() == 40
        assert t["patient_id"].is_unique
        # negatives never come from a patient with a positive image of that label
        pos_patients = set(pool.table.loc[pool.table[label] == 1, "patient_id"])
        assert not set(t.loc[t["y"] == 0, "patient_id"]) & pos_patients
    assert images["sample_id"].is_unique and set(images["sample_id"]) == set(tasks["sample_id"])
    assert images.groupby("patient_id")["split"].nunique().max() == 1
    share = (images["split"] == "test").mean()
    assert 0.1 < share < 0.3 and set(images["split"]) == {"train", "test"}
    again, _ = D.sample_tasks(pool.table, n_per_class=40, seed=0)
    assert again.equals(tasks)


# ------------------------------------------------------------------ classifier


def test_cross_validation_learns_signal_not_noise_and_views_only_train():
    rng = np.random.default_rng(0)
    n = 200
    y = np.repeat([0, 1], n // 2)
    groups = np.array([f"p{i}" for i in range(n)])
    X = rng.normal(size=(n, 8))
    X[:, 0] += 2.5 * y
    folds, oof = D.cross_validate(X, y, groups, n_folds=5, seed=0)
    assert folds["auroc"].mean() > 0.9 and not np.isnan(oof).any()
    noise, _ = D.cross_validate(rng.normal(size=(n, 8)), y, groups, n_folds=5, seed=0)
    assert abs(noise["auroc"].mean() - 0.5) < 0.15
    owner = np.repeat(np.arange(n), 5)
    views = X[owner] + rng.normal(scale=0.05, size=(5 * n, 8))
    with_views, _ = D.cross_validate(X, y, groups, n_folds=5, seed=0, X_views=views,
                                     view_owner=owner)
    assert (with_views["n_train"] == 6 * folds["n_train"]).all()
    assert (with_views["n_val"] == folds["n_val"]).all()


def test_mean_ci_is_the_t_interval():
    from scipy import stats

    v = [0.80, 0.82, 0.85, 0.79, 0.84]
    m, h = D.mean_ci(v)
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=stats.sem(v))
    assert m == pytest.approx(np.mean(v)) and h == pytest.approx((hi - lo) / 2)


# ------------------------------------------------------------------ file-based encoders


def test_embeddings_file_needs_the_augmented_views(tmp_path):
    from compendium.encoders import create_model

    images = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)],
                           "split": ["train"] * 4 + ["test"] * 2})
    rng = np.random.default_rng(0)
    ids = images["sample_id"].tolist()
    path = tmp_path / "cxr.npz"
    np.savez(path, sample_id=np.array(ids), embeddings=rng.normal(size=(6, 32, 768)))
    enc = create_model("cxr-foundation", weights_path=path)
    X, Xv, train = D.embed_images(enc, None, images, augment=False)
    assert X.shape == (6, 768) and Xv is None
    with pytest.raises(DataNotFoundError, match=r"lacks 20 of the 20 augmented views.*#aug1"):
        D.embed_images(enc, None, images, augment=True)
    all_ids = ids + view_ids(ids[:4])
    np.savez(path, sample_id=np.array(all_ids), embeddings=rng.normal(size=(len(all_ids), 32, 768)))
    enc = create_model("cxr-foundation", weights_path=path)
    X, Xv, train = D.embed_images(enc, None, images, augment=True)
    assert Xv.shape == (20, 768) and train == ids[:4]


# ------------------------------------------------------------------ spec and CLI


def test_full_profile_without_data_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch,
                                                                          capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    code = cli.main(["run", "paper_d", "--profile", "full"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for what in ("roots.mimic-cxr", "roots.nih", "weights.medimageinsight",
                 "weights.cxr-foundation"):
        assert what in err
    assert not (tmp_path / "results").exists()


def test_synthetic_pixels_refuse_file_based_models():
    spec = resolve_params("paper_d", "demo", overrides=["models=[cxr-foundation]"])
    with pytest.raises(ConfigError, match="stand-in 'toy-clip-resnet'"):
        spec.check()


def test_full_profile_passes_its_check_with_roots_and_files(tmp_path):
    for d in ("mimic", "nih"):
        (tmp_path / d).mkdir()
    for m in ("mii", "cxrf"):
        (tmp_path / f"{m}.npz").write_bytes(b"")
    spec = resolve_params("paper_d", "full", overrides=[
        f"roots={{mimic-cxr: {tmp_path / 'mimic'}, nih: {tmp_path / 'nih'}}}",
        f"weights={{medimageinsight: {tmp_path / 'mii.npz'}, cxr-foundation: {tmp_path / 'cxrf.npz'}}}"])
    spec.check()


def test_reported_values_in_the_chapter_equal_the_package_copy():
    text = (project_root() / "book" / "papers" / "paper_d.md").read_text()
    section = text.split("## Table 1, reported")[1].split("\n## ")[0]
    rows = [r for r in section.splitlines() if re.match(r"\| (Atelectasis|Edema|Effusion|Opacity) ", r)]
    parsed = []
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        nums = [tuple(float(x) for x in c.split("±")) for c in cells[2:]]
        for model, auc, f1 in (("MedImageInsight", nums[0], nums[2]),
                               ("CXR-Foundation", nums[1], nums[3])):
            parsed.append((cells[0], cells[1], model, *auc, *f1))
    assert sorted(parsed) == sorted(D.REPORTED_TABLE1)


# ------------------------------------------------------------------ end to end


@pytest.mark.slow
def test_tiny_run_end_to_end():
    r = D.run_paper_d(datasets=["nih"], models=["toy-clip-resnet"], labels=["Edema", "Effusion"],
                      tiny_encoders=True, n_per_class=20, n_bootstrap=20, k_range=[2, 3],
                      kmeans_n_init=2, umap_neighbors=5)
    assert r.table1.columns.tolist() == [
        "Disease", "Dataset", "AUROC toy-clip-resnet (for CXR-Foundation)",
        "F1 toy-clip-resnet (for CXR-Foundation)"]
    assert r.table1["Disease"].tolist() == ["Edema", "Effusion"]
    assert r.table1["Dataset"].tolist() == ["NIH (synthetic pixels)"] * 2
    assert re.fullmatch(r"0\.\d{3} ± \d\.\d{3}", r.table1.iloc[0, 2])
    assert len(r.folds) == 2 * 2 * 5                  # labels x (with, without) x folds
    assert set(r.augmentation["metric"]) == {"auroc", "f1"}
    assert set(r.heldout["attribute"]) == {"all"} and set(r.heldout["metric"]) == {"auroc", "f1"}
    assert {"sex", "age_group"} <= set(r.groups["attribute"])
    assert set(r.silhouette["k"]) == {2, 3} and r.silhouette["best"].sum() == 1
    assert set(r.umap["label"]) == {r.umap_info["best"], r.umap_info["worst"]}
    rep = r.stability[r.stability["source"] == "reported"]
    assert len(rep) == 8 and (r.stability["source"] == "reproduced").sum() == 0  # no MIMIC here
    for fig in (D.umap_figure(r), D.silhouette_figure(r), D.groups_figure(r)):
        assert fig.axes


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_models_and_datasets_of_every_profile_are_registered(profile):
    from compendium.cohorts import load_builders
    from compendium.encoders import list_models

    spec = resolve_params("paper_d", profile)
    assert set(spec.models) <= set(list_models())
    assert set(spec.datasets) <= set(load_builders().names())
    assert spec.datasets == list(D.DATASETS) and spec.labels == list(D.PAPER_LABELS)
