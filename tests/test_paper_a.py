"""Paper A's pipeline: inputs checked up front, reported numbers, selection, audit, noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError
from compendium.papers import paper_a
from compendium.runner import resolve_params, results_dir

CLASSES = ["Atelectasis", "Cardiomegaly", "Edema"]


# ----------------------------------------------------------------------------- preflight


def test_preflight_names_everything_missing_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with pytest.raises(DataNotFoundError) as err:
        paper_a.preflight(cohort="nih-6x200", data_root="", models=["gloria", "biomedclip"],
                          finetune_backbone={"gloria": "vit-b-16-imagenet"},
                          weights={"gloria": str(tmp_path / "absent.ckpt")})
    msg = str(err.value)
    assert "4 input(s) missing" in msg
    for needle in ("data_root", "gloria", "biomedclip", "vit-b-16-imagenet", "absent.ckpt"):
        assert needle in msg


def test_preflight_accepts_toys_and_present_inputs(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"x")
    checked = paper_a.preflight(cohort="nih-6x200", data_root=str(tmp_path),
                                models=["toy-clip-resnet", "gloria"], finetune_backbone={},
                                weights={"gloria": str(tmp_path / "w.safetensors")})
    assert any("toy encoder" in c for c in checked)
    assert any(c.startswith("gloria:") for c in checked)


def test_full_profile_without_data_stops_at_once_and_writes_nothing(tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    code = cli.main(["run", "paper_a", "--profile", "full", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "data_root" in err and "clip-vit-b-16" in err and "biomedclip" in err
    assert not results_dir("paper_a", "full").exists()


def test_spec_rejects_bad_values():
    with pytest.raises(ConfigError, match="unknown method"):
        resolve_params("paper_a", "smoke", overrides=["methods=[zero-shot, prompting]"]).check()
    with pytest.raises(ConfigError, match="not one of models"):
        resolve_params("paper_a", "smoke", overrides=["stand_in_for={toy-clip-vit: gloria}"]).check()
    with pytest.raises(ConfigError, match="learning_rates"):
        resolve_params("paper_a", "smoke", overrides=["learning_rates={lora: [0.001]}"]).check()
    with pytest.raises(ConfigError):
        resolve_params("paper_a", "smoke", overrides=["models=[no-such-model]"]).check()


# ----------------------------------------------------------------------------- reported


def test_reported_numbers_are_quoted_fractions_with_known_models():
    rep = paper_a.reported()
    assert len(rep) >= 20
    assert rep["value"].between(0, 1).all()
    assert rep["quote"].str.len().gt(20).all()
    assert set(rep["model"]) <= set(paper_a.PAPER_MODELS)
    assert set(rep["method"]) <= set(paper_a.METHODS)
    # the headline numbers the chapter cites
    acc = rep[rep["metric"] == "accuracy"].set_index("method")["value"]
    assert acc["zero-shot"] == pytest.approx(0.494) and acc["finetune"] == pytest.approx(0.596)


def _fake_predictions(rng, n=240, skill=0.6):
    y = rng.choice(CLASSES, n)
    scores = rng.dirichlet(np.ones(len(CLASSES)), n)
    right = rng.random(n) < skill
    scores[right, [CLASSES.index(v) for v in y[right]]] += 1.0
    scores /= scores.sum(1, keepdims=True)
    t = pd.DataFrame({"sample_id": [f"s{i}" for i in range(n)],
                      "patient_id": [f"p{i}" for i in range(n)],
                      "sex": rng.choice(["M", "F"], n),
                      "age_group": rng.choice(["young", "old"], n), "y_true": y})
    for j, c in enumerate(CLASSES):
        t[f"score_{c}"] = scores[:, j]
    t["y_pred"] = np.array(CLASSES)[scores.argmax(1)]
    return t


def _fake_runs():
    rng = np.random.default_rng(0)
    runs = []
    for name, target in (("toy-clip-resnet", "gloria"), ("toy-clip-vit", "medclip-vit")):
        preds = {m: _fake_predictions(rng, skill=0.3 + 0.1 * k)
                 for k, m in enumerate(("zero-shot", "linear", "finetune"))}
        runs.append(paper_a.ModelRun(name, paper_a.model_label(name, {name: target}), preds,
                                     pd.DataFrame(), None))
    return runs


def test_audit_runs_corrects_over_the_headline_gaps_only():
    runs = _fake_runs()
    table = paper_a.audit_runs(runs, n_bootstrap=20, n_permutations=20, progress=False)
    head = paper_a.headline_mask(table)
    # 2 models x 3 methods x 2 attributes x 3 metrics
    assert head.sum() == 2 * 3 * 2 * 3
    assert table.loc[head, "p_adjusted"].notna().all()
    assert table.loc[~head, "p_adjusted"].isna().all()
    assert (table.loc[head, "p_adjusted"] >= table.loc[head, "p_value"] - 1e-12).all()
    acc = paper_a.accuracy_table(table)
    assert len(acc) == 6 and acc["estimate"].between(0, 1).all()
    # more skill -> higher accuracy (the fake runs' methods are ordered by skill)
    ft = acc[acc["method"] == "finetune"]["estimate"].to_numpy()
    zs = acc[acc["method"] == "zero-shot"]["estimate"].to_numpy()
    assert (ft > zs).all()
    groups = paper_a.group_f1_table(table, "finetune")
    assert set(groups["group"].astype(str)) == set(paper_a.GROUPS)


def test_compare_reported_uses_the_stand_in_and_reads_the_audit():
    runs = _fake_runs()
    table = paper_a.audit_runs(runs, n_bootstrap=0, n_permutations=0, progress=False)
    cmp = paper_a.compare_reported(table, runs, {"toy-clip-resnet": "gloria",
                                                 "toy-clip-vit": "medclip-vit"})
    assert len(cmp) == len(paper_a.reported())
    ft_acc = cmp[(cmp["metric"] == "accuracy") & (cmp["method"] == "FT")].iloc[0]
    expect = table[(table["model"] == "toy-clip-vit") & (table["method"] == "finetune")
                   & (table["metric"] == "accuracy") & (table["attribute"] == "all")]
    assert ft_acc["reproduced"] == pytest.approx(float(expect["estimate"].iloc[0]))
    assert "stand-in for MedCLIP-ViT" in ft_acc["reproduced_with"]
    # BiomedCLIP has no stand-in here: its rows say so and carry no number
    bio = cmp[cmp["paper_model"] == "BiomedCLIP"]
    assert (bio["reproduced_with"] == "not run").all() and bio["reproduced"].isna().all()


# ----------------------------------------------------------------------------- noise


def test_null_gap_thresholds_shrink_with_sample_size():
    small = paper_a.null_gap_thresholds([0.6], n_per_class=40, n_sims=300, progress=False)
    large = paper_a.null_gap_thresholds([0.6], n_per_class=400, n_sims=300, progress=False)
    for t in (small, large):
        assert (t["critical_value"] > t["null_mean"]).all() and (t["null_mean"] > 0).all()
    s = small.set_index("metric")["critical_value"]
    big = large.set_index("metric")["critical_value"]
    assert (big < s / 2).all()      # ~1/sqrt(10) of the small-sample threshold
    assert small["n_test"].iloc[0] == 240


def test_reported_vs_noise_judges_every_reported_gap():
    thr = paper_a.null_gap_thresholds([0.494, 0.596], n_sims=200, progress=False)
    v = paper_a.reported_vs_noise(thr)
    rep = paper_a.reported()
    assert len(v) == rep["metric"].isin(["f1_gap", "eqodds"]).sum()
    assert (v["distinguishable"] == (v["reported"] > v["noise_threshold"])).all()
    with pytest.raises(ConfigError):
        paper_a.null_gap_thresholds([0.1], n_sims=10, progress=False)


# ----------------------------------------------------------------------------- pipeline


def test_run_model_keeps_the_learning_rate_with_the_lowest_validation_loss():
    cohort = paper_a.load_cohort("nih-6x200-synthetic", seed=0)
    run = paper_a.run_model("toy-clip-resnet", cohort, methods=["linear", "mlp"],
                            learning_rates={"linear": [1e-3, 3e-2], "mlp": [1e-3, 3e-2]},
                            epochs=3, pretrained=False, threads=1, progress=False)
    sel = run.selection
    assert len(sel) == 4 and set(run.predictions) == {"linear", "mlp"}
    for method, rows in sel.groupby("method"):
        assert rows["chosen"].sum() == 1
        assert rows.loc[rows["chosen"], "val_score"].iloc[0] == rows["val_score"].min()
    test = run.predictions["linear"]
    assert len(test) == (cohort.table["split"] == "test").sum()
    with pytest.raises(ConfigError, match="learning_rates"):
        paper_a.run_model("toy-clip-resnet", cohort, methods=["linear"], learning_rates={},
                          pretrained=False, progress=False)


@pytest.mark.slow
def test_smoke_outputs_hold_no_per_image_rows(smoke_runs):
    """What a run publishes is aggregates: no table carries image or patient identifiers."""
    out = smoke_runs["paper_a"]
    for csv in (out / "tables").glob("*.csv"):
        cols = set(pd.read_csv(csv, nrows=0).columns)
        assert not cols & {"sample_id", "patient_id", "image_path"}, csv.name
    for fig in ("fig2a_accuracy", "fig2b_classwise_f1", "fig3a_var_f1", "fig3b_group_f1",
                "fig3c_gaps_finetune", "fig3d_gaps_zero_shot", "trajectory", "noise"):
        assert (out / "figures" / f"{fig}.png").is_file()
