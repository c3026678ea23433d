"""The paper framework's lower-layer pieces: one encoder loader for every registry entry,
stand-ins from the registry, one pixel accessor, one patient-wise CV, selection by
validation, the shared parameters, and no silent fallbacks."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import numpy as np
import pandas as pd
import pytest

import compendium
from compendium.adapt.probes import cross_validate, cross_validated_predictions
from compendium.adapt.selection import select_by_validation
from compendium.cohorts.splits import patient_folds
from compendium.encoders import get_entry, list_models, load_encoder, stand_in
from compendium.errors import ConfigError, InputError
from compendium.papers.base import plan_model
from compendium.runner import resolve_params


def test_every_module_of_the_package_imports():
    """A broken import fails here instead of skipping tests elsewhere."""
    for mod in pkgutil.walk_packages(compendium.__path__, prefix="compendium."):
        if not mod.name.endswith(".__main__"):          # that one runs the command line
            importlib.import_module(mod.name)


# ----------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("name", list_models())
def test_load_encoder_arguments_reach_every_builder(name):
    """load_encoder passes the same keywords to every entry: each builder accepts them."""
    entry = get_entry(name)
    inspect.signature(entry.builder).bind(entry, pretrained=False, device="cpu", progress=False,
                                          weights_path="w")


def test_load_encoder_is_seeded_without_touching_the_global_generator():
    import torch

    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = load_encoder("toy-clip-resnet", pretrained=False, seed=1, progress=False)
    after = torch.rand(1)
    b = load_encoder("toy-clip-resnet", pretrained=False, seed=1, progress=False)
    c = load_encoder("toy-clip-resnet", pretrained=False, seed=2, progress=False)
    assert torch.equal(before, after)
    pa, pb, pc = (next(m.visual.parameters()).detach() for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_load_encoder_reads_a_vendor_embeddings_file(tmp_path):
    path = tmp_path / "mii.npz"
    np.savez(path, sample_id=np.array(["a", "b"]), embeddings=np.ones((2, 1024)))
    enc = load_encoder("medimageinsight", weights=path)
    assert np.asarray(enc.encode_samples(["b"])).shape == (1, 1024)


def test_stand_ins_come_from_the_registry_and_can_be_overridden():
    assert stand_in("gloria") == "toy-clip-resnet"
    assert stand_in("biomedclip") == "toy-clip-vit-skewed"       # Paper A's demo and the
    assert stand_in("medimageinsight") == "toy-clip-vit"         # Models chapter agree
    assert stand_in("gloria", {"gloria": "toy-clip-vit"}) == "toy-clip-vit"
    assert stand_in("toy-clip-vit") == "toy-clip-vit"
    with pytest.raises(ConfigError, match="must be a toy"):
        stand_in("gloria", {"gloria": "biomedclip"})
    p = plan_model("medclip-vit", use_stand_in=True, paper_models={"medclip-vit": "MedCLIP-ViT"})
    assert (p.encoder, p.label, p.is_stand_in) == (
        "toy-clip-vit", "toy-clip-vit (stand-in for MedCLIP-ViT)", True)
    real = plan_model("medclip-vit", use_stand_in=False, paper_models={"medclip-vit": "MedCLIP-ViT"})
    assert (real.encoder, real.label, real.is_stand_in) == ("medclip-vit", "MedCLIP-ViT", False)


def test_models_chapter_names_the_registry_stand_ins():
    from compendium.encoders.table import models_table

    t = models_table()
    row = t[t["model"] == "biomedclip"].iloc[0]
    assert row["demo stand-in"] == "toy-clip-vit-skewed"


# ----------------------------------------------------------------------------- pixels


def test_pixels_of_some_rows_equal_those_rows_of_the_whole_cohort():
    from compendium.imaging import pixels
    from compendium.synthetic import synthetic_cxr

    cohort = synthetic_cxr(n=12, seed=3)
    whole = pixels(cohort, 32, progress=False)
    ids = cohort.table["sample_id"].astype(str).tolist()
    some = pixels(cohort, 32, sample_ids=[ids[5], ids[2]], progress=False)
    assert whole.shape == (12, 32, 32) and whole.dtype == np.uint8
    assert np.array_equal(some, whole[[5, 2]])
    with pytest.raises(InputError, match="no row 'nope'"):
        pixels(cohort, 32, sample_ids=["nope"], progress=False)


# ----------------------------------------------------------------------------- CV


def _patients(n_patients: int, per: int = 2):
    return np.repeat([f"p{i}" for i in range(n_patients)], per)


def test_patient_folds_keep_patients_whole_and_are_seeded():
    groups = _patients(30, 3)
    y = np.tile([0, 1, 0], 30)
    folds = patient_folds(groups, 5, y=y, seed=4)
    assert len(folds) == 5
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen) == list(range(len(groups)))          # every row validated once
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    again = patient_folds(groups, 5, y=y, seed=4)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    other = patient_folds(groups, 5, y=y, seed=5)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    plain = patient_folds(groups, 5, seed=4)                  # unstratified: seeded too
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(plain, patient_folds(groups, 5, seed=4)))
    with pytest.raises(InputError, match="4 patients cannot fill 5 folds"):
        patient_folds(_patients(4), 5)


def test_views_join_training_folds_only():
    rng = np.random.default_rng(0)
    n = 60
    y = np.tile([0, 1], n // 2)
    X = rng.normal(size=(n, 4)) + y[:, None]
    groups = np.array([f"p{i}" for i in range(n)])
    owner = np.repeat(np.arange(n), 5)
    views = X[owner] + 0.01
    cv = cross_validate("lightgbm", X, y, groups, n_splits=5, seed=0, views=views,
                        view_owner=owner, params={"n_estimators": 10})
    # 60 images, 12 per validation fold, 48 training images, each with its 5 views
    assert cv.folds["n_val"].tolist() == [12] * 5
    assert cv.folds["n_train"].tolist() == [48] * 5
    assert cv.folds["n_views"].tolist() == [240] * 5
    assert sorted(set(cv.fold)) == [0, 1, 2, 3, 4] and not np.isnan(cv.scores).any()


def test_a_training_fold_without_a_class_is_an_error_not_zero_scores():
    rng = np.random.default_rng(1)
    groups = np.array([f"p{i}" for i in range(20)] + ["sick"] * 3)
    y = np.array([0] * 20 + [1] * 3)                # every positive is one patient's
    X = rng.normal(size=(len(y), 3))
    with pytest.raises(InputError, match="has no example of class 1"):
        cross_validate("lightgbm", X, y, groups, n_splits=5, seed=0,
                       params={"n_estimators": 5})
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(len(y))], "patient_id": groups,
                         "Effusion": y})
    with pytest.raises(InputError, match="has no example of class 1"):
        cross_validated_predictions("lightgbm", X, rows, ["Effusion"], "binary", n_splits=5,
                                    params={"n_estimators": 5})


def test_a_single_class_validation_fold_is_flagged_and_its_auroc_undefined():
    from compendium.audit import auroc

    y = np.array([0, 1] * 10 + [0] * 4)
    groups = np.array([f"p{i // 2}" for i in range(20)] + ["a", "a", "b", "b"])
    cv = cross_validate("lightgbm", np.random.default_rng(2).normal(size=(24, 3)), y, groups,
                        n_splits=2, seed=0, params={"n_estimators": 5})
    # force a fold made of one class to see the flag (the splitter itself avoids it)
    cv.fold = np.where(np.isin(groups, ["a", "b"]), 1, 0)
    table = cv.per_fold(y, {"auroc": lambda t, s: auroc(t, s[:, 1])})
    assert table.loc[1, "flag"] == "single_class" and np.isnan(table.loc[1, "auroc"])
    assert table.loc[0, "flag"] == "" and np.isfinite(table.loc[0, "auroc"])


# ----------------------------------------------------------------------------- selection


def test_select_by_validation_keeps_the_best_and_every_candidate():
    scores = {0.1: 0.9, 0.01: 0.3, 0.001: 0.3}
    s = select_by_validation([0.1, 0.01, 0.001], lambda lr: (scores[lr], f"m{lr}", {"epoch": 2}),
                             metric="loss", describe=lambda lr: f"lr={lr:g}")
    assert s.winner == "m0.01"                                   # ties go to the first
    assert s.table["chosen"].tolist() == [False, True, False]
    assert s.table.columns.tolist() == ["candidate", "val_metric", "val_score", "epoch", "chosen"]
    best = select_by_validation([1, 2], lambda k: (k / 10, k, {}), metric="accuracy",
                                lower_is_better=False)
    assert best.winner == 2
    nan = select_by_validation([1, 2], lambda k: (np.nan if k == 1 else 5.0, k, {}), metric="loss")
    assert nan.winner == 2
    with pytest.raises(InputError, match="nothing to choose"):
        select_by_validation([1], lambda k: (np.nan, k, {}), metric="loss")
    with pytest.raises(ConfigError, match="empty"):
        select_by_validation([], lambda k: (0.0, k, {}), metric="loss")


# ----------------------------------------------------------------------------- shared params


@pytest.mark.parametrize("paper", ["paper_a", "paper_b", "paper_c", "paper_d", "paper_e"])
def test_shared_parameters_mean_the_same_in_every_paper(paper):
    from compendium.notebook import get_spec
    from compendium.papers.base import PaperSpec

    spec = get_spec(paper)
    assert issubclass(spec, PaperSpec)
    shared = [f for f in PaperSpec.field_names()]
    assert spec.field_names()[:len(shared)] == shared
    cfg = resolve_params(paper, "demo")
    assert cfg.pixels == "synthetic" and cfg.use_stand_ins
    from compendium.encoders import list_models

    other = next(m for m in list_models() if m not in cfg.models)   # a model this paper lacks
    with pytest.raises(ConfigError, match=f"stand_ins: .{other}. is not one of models"):
        resolve_params(paper, "demo", overrides=[f"stand_ins={{{other}: toy-clip-vit}}"]).check()
    with pytest.raises(ConfigError, match="data_roots: unknown dataset 'nowhere'"):
        resolve_params(paper, "demo", overrides=["data_roots={nowhere: /x}"]).check()
    with pytest.raises(ConfigError, match=r"threads must lie in \[0, 1024\]"):
        resolve_params(paper, "demo", overrides=["threads=-1"]).check()


def test_the_banner_shows_every_papers_bias_knobs():
    from compendium.notebook import profile_banner

    text = profile_banner(resolve_params("paper_a", "demo"))
    assert "`sex=F` soft_tissue 0.5" in text and "synthetic world" in text
    assert "every knob is zero" in profile_banner(
        resolve_params("paper_d", "demo", overrides=["knobs=zero"]))


def test_zero_shot_without_a_text_tower_is_refused_before_anything_runs():
    spec = resolve_params("paper_a", "smoke", overrides=["models=[rad-dino]", "use_stand_ins=false",
                                                          "pretrained=false"])
    with pytest.raises(ConfigError, match="zero-shot needs a text tower; rad-dino has none"):
        spec.check()
    resolve_params("paper_a", "smoke", overrides=[
        "models=[rad-dino]", "use_stand_ins=false", "pretrained=false",
        "methods=[linear]"]).check()


def test_umap_warnings_reach_the_user_except_the_seed_notice(monkeypatch):
    import warnings

    import umap

    from compendium.embedding_space import umap_2d

    def fit_transform(self, X):
        warnings.warn("n_jobs value 1 overridden to 1 by setting random_state", UserWarning)
        warnings.warn("Graph is not fully connected, spectral embedding may not work",
                      UserWarning)
        return np.zeros((len(X), 2))

    monkeypatch.setattr(umap.UMAP, "fit_transform", fit_transform)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        umap_2d(np.random.default_rng(0).normal(size=(10, 3)), n_neighbors=3)
    messages = [str(w.message) for w in seen]
    assert any("not fully connected" in m for m in messages)
    assert not any("n_jobs value" in m for m in messages)


def test_audit_notices_are_not_silenced(caplog):
    from compendium.adapt.predictions import predictions_table
    from compendium.papers.base import audit_predictions

    rng = np.random.default_rng(0)
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(60)],
                         "patient_id": [f"p{i}" for i in range(60)],
                         "sex": ["F"] * 10 + ["M"] * 50, "Edema": rng.integers(0, 2, 60)})
    pred = predictions_table(rows, rng.random(60), ["Edema"], "binary")
    with caplog.at_level("WARNING", logger="compendium.audit"):
        table = audit_predictions(pred, task="binary", attributes=["sex"], metrics=["auroc"],
                                  n_bootstrap=0, seed=0)
    assert "small_group" in caplog.text and "F" in caplog.text
    assert table.loc[table["group"] == "F", "flag"].str.contains("small_group").all()
    overall = audit_predictions(pred, task="binary", attributes=[], metrics=["auroc"],
                                n_bootstrap=0, seed=0)
    assert set(overall["attribute"]) == {"all"} and len(overall) == 1


def test_notebook_tables_show_long_text_whole():
    import pandas as pd

    from compendium.notebook import setup

    with pd.option_context("display.max_colwidth", 50):
        setup("glossary", {"profile": "smoke"}, banner=False)
        long = "x" * 120
        assert long in pd.DataFrame({"quote": [long]}).to_html()
