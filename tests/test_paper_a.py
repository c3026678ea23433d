"""Paper A's package: inputs checked before a kernel starts, reported numbers, selection,
audit, the figures' data, noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError
from compendium.papers.paper_a import PAPER_MODELS, figures, pipeline, tables
from compendium.papers.paper_a.spec import METHODS, PaperASpec
from compendium.papers.reported import compare_reported, load_reported
from compendium.runner import resolve_params, results_dir

CLASSES = ["Atelectasis", "Cardiomegaly", "Edema"]


# ----------------------------------------------------------------------------- inputs


def test_full_profile_check_names_everything_missing_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    spec = resolve_params("paper_a", "full", overrides=[
        "models=[gloria, biomedclip]", "finetune_backbone={gloria: vit-b-16-imagenet}",
        f"weights={{gloria: {tmp_path / 'absent.ckpt'}}}"])
    with pytest.raises(DataNotFoundError) as err:
        spec.check()
    msg = str(err.value)
    assert "4 input(s) missing" in msg
    for needle in ("data_roots.nih", "gloria", "biomedclip", "vit-b-16-imagenet", "absent.ckpt"):
        assert needle in msg


def test_full_profile_check_accepts_present_inputs(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"x")
    resolve_params("paper_a", "full", overrides=[
        "models=[gloria]", "finetune_backbone={}", f"data_roots={{nih: {tmp_path}}}",
        f"weights={{gloria: {tmp_path / 'w.safetensors'}}}"]).check()


def test_full_profile_without_data_stops_before_a_kernel_and_writes_nothing(
        tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    code = cli.main(["run", "paper_a", "--profile", "full", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "data_roots.nih" in err and "clip-vit-b-16" in err and "biomedclip" in err
    assert not results_dir("paper_a", "full").exists()


def test_spec_rejects_bad_values():
    with pytest.raises(ConfigError, match="unknown method 'prompting'"):
        resolve_params("paper_a", "smoke", overrides=["methods=[zero-shot, prompting]"]).check()
    with pytest.raises(ConfigError, match="finetune_backbone: 'biomedclip' is not one of models"):
        resolve_params("paper_a", "smoke",
                       overrides=["finetune_backbone={biomedclip: vit-b-16-imagenet}"]).check()
    with pytest.raises(ConfigError, match="learning_rates needs a list for 'linear'"):
        resolve_params("paper_a", "smoke", overrides=["learning_rates={lora: [0.001]}"]).check()
    with pytest.raises(ConfigError, match="no-such-model"):
        resolve_params("paper_a", "smoke", overrides=["models=[no-such-model]"]).check()
    with pytest.raises(ConfigError, match="must lie in"):
        resolve_params("paper_a", "smoke", overrides=["learning_rates={linear: [0], mlp: [1],"
                                                       " lora: [1], finetune: [1]}"]).check()


# ----------------------------------------------------------------------------- reported


def test_reported_numbers_are_fractions_of_the_papers_models():
    rep = load_reported("paper_a")
    assert len(rep) == 22 and rep["value"].between(0, 1).all()
    assert set(rep["model"]) <= set(PAPER_MODELS) and set(rep["method"]) <= set(METHODS)
    acc = rep[rep["metric"] == "accuracy"].set_index("method")["value"]
    assert acc["zero-shot"] == 0.494 and acc["finetune"] == 0.596      # typed from Sec. 3.2


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


def _fake_runs(cfg):
    rng = np.random.default_rng(0)
    runs = []
    for plan in cfg.model_plans():
        preds = {m: _fake_predictions(rng, skill=0.3 + 0.1 * k)
                 for k, m in enumerate(("zero-shot", "linear", "finetune"))}
        runs.append(pipeline.ModelRun(plan, preds, pd.DataFrame(), None))
    return runs


def test_audit_runs_corrects_over_the_headline_gaps_only():
    cfg = PaperASpec(models=["gloria", "medclip-vit"], n_bootstrap=20, n_permutations=20)
    runs = _fake_runs(cfg)
    table = pipeline.audit_runs(runs, cfg, progress=False)
    head = pipeline.headline_mask(table)
    assert head.sum() == 2 * 3 * 2 * 3     # 2 models x 3 methods x 2 attributes x 3 metrics
    assert table.loc[head, "p_adjusted"].notna().all()
    assert table.loc[~head, "p_adjusted"].isna().all()
    assert (table.loc[head, "p_adjusted"] >= table.loc[head, "p_value"] - 1e-12).all()
    acc = tables.accuracy_table(table)
    for run in runs:                       # the audit's accuracy is scikit-learn's
        for method, pred in run.predictions.items():
            got = acc[(acc["model_label"] == run.plan.label) & (acc["method"] == method)]["estimate"]
            assert float(got.iloc[0]) == pytest.approx(accuracy_score(pred["y_true"],
                                                                      pred["y_pred"]))
    groups = tables.group_f1_table(table, "finetune")
    assert set(groups["group"].astype(str)) <= set(pipeline.GROUPS)


def test_reported_beside_reproduced_reads_the_stand_ins_runs():
    cfg = PaperASpec(models=["gloria", "medclip-vit"], n_bootstrap=0, n_permutations=0)
    runs = _fake_runs(cfg)
    audits = pipeline.audit_runs(runs, cfg, progress=False)
    cmp = compare_reported(load_reported("paper_a"), pipeline.reproduced_values(audits))
    assert len(cmp) == 22
    ft = cmp[(cmp["metric"] == "accuracy") & (cmp["method"] == "finetune")].iloc[0]
    pred = runs[1].predictions["finetune"]                 # medclip-vit's stand-in
    assert ft["reproduced"] == pytest.approx(accuracy_score(pred["y_true"], pred["y_pred"]))
    assert ft["reproduced_with"] == "toy-clip-vit (stand-in for MedCLIP-ViT)"
    f1_hi = cmp[(cmp["metric"] == "f1_max") & (cmp["model"] == "gloria")].iloc[0]
    gl = runs[0].predictions["finetune"]
    assert f1_hi["reproduced"] == pytest.approx(
        f1_score(gl["y_true"], gl["y_pred"], labels=CLASSES, average=None).max())
    bio = cmp[cmp["model"] == "biomedclip"]            # not in this run: said so, no number
    assert (bio["reproduced_with"] == "not run").all() and bio["reproduced"].isna().all()


def test_figures_plot_the_tables_they_are_given():
    cfg = PaperASpec(models=["gloria", "medclip-vit"], n_bootstrap=0, n_permutations=0)
    audits = pipeline.audit_runs(_fake_runs(cfg), cfg, progress=False)
    acc = tables.accuracy_table(audits)
    fig = figures.fig_accuracy(acc, n_classes=3)
    bars = sorted(round(p.get_height(), 9) for p in fig.axes[0].patches)
    assert bars == sorted(round(v, 9) for v in acc["estimate"])
    chance = [ln for ln in fig.axes[0].lines if ln.get_label().startswith("chance")][0]
    assert chance.get_ydata()[0] == pytest.approx(1 / 3)
    grp = tables.group_f1_table(audits, "finetune")
    heights = sorted(round(p.get_height(), 9) for p in figures.fig_group_f1(grp).axes[0].patches)
    assert heights == sorted(round(v, 9) for v in grp["estimate"])


# ----------------------------------------------------------------------------- noise


def test_null_gap_thresholds_shrink_with_sample_size():
    small = pipeline.null_gap_thresholds([0.6], n_per_class=40, n_classes=6, n_sims=300,
                                         progress=False)
    large = pipeline.null_gap_thresholds([0.6], n_per_class=400, n_classes=6, n_sims=300,
                                         progress=False)
    for t in (small, large):
        assert (t["critical_value"] > t["null_mean"]).all() and (t["null_mean"] > 0).all()
    s = small.set_index("metric")["critical_value"]
    big = large.set_index("metric")["critical_value"]
    assert (big < s / 2).all()      # ~1/sqrt(10) of the small-sample threshold
    assert small["n_test"].iloc[0] == 240
    with pytest.raises(ConfigError, match="outside"):
        pipeline.null_gap_thresholds([0.1], n_per_class=40, n_classes=6, n_sims=10,
                                     progress=False)


def test_reported_vs_noise_judges_every_reported_gap():
    thr = pipeline.null_gap_thresholds([0.494, 0.596], n_per_class=40, n_classes=6, n_sims=200,
                                       progress=False)
    rep = load_reported("paper_a")
    v = tables.reported_vs_noise(rep, thr)
    assert len(v) == 10                     # 4 F1 gaps and 6 EqOdds values in the text
    assert (v["distinguishable"] == (v["reported"] > v["noise_threshold"])).all()
    vals = tables.noise_values(thr, v, rep)
    assert vals["paper_ft_accuracy"][0] == 0.596


# ----------------------------------------------------------------------------- pipeline


def test_run_model_keeps_the_learning_rate_with_the_lowest_validation_loss():
    cfg = resolve_params("paper_a", "smoke", overrides=[
        "methods=[linear, mlp]", "learning_rates={linear: [0.001, 0.03], mlp: [0.001, 0.03]}"])
    cohort = pipeline.load_cohort(cfg)
    run = pipeline.run_model(cfg.model_plans()[0], cohort, cfg, progress=False)
    sel = run.selection
    assert len(sel) == 4 and set(run.predictions) == {"linear", "mlp"}
    assert run.plan.label == "toy-clip-resnet (stand-in for GLoRIA)"
    for method, rows in sel.groupby("method"):
        assert rows["chosen"].sum() == 1
        assert rows.loc[rows["chosen"], "val_score"].iloc[0] == rows["val_score"].min()
    assert len(run.predictions["linear"]) == (cohort.table["split"] == "test").sum()


def test_adapt_train_rows_caps_the_training_images_of_lora_and_finetuning(monkeypatch):
    """The rehearsal's budget: LoRA / FT train on a stratified subset; val and test whole."""
    import compendium.adapt.finetune as ft

    seen = {}

    def fake(enc, tensors, labels, task, spec, **kw):
        seen.update({s: len(rows) for s, (_, rows) in tensors.items()})
        seen["strata"] = tensors["train"][1].groupby(["disease", "group"]).size()
        raise RuntimeError("stop")

    monkeypatch.setattr(ft, "run_adaptation", fake)
    for cap in (None, 24):
        cfg = resolve_params("paper_a", "smoke", overrides=[f"adapt_train_rows={cap or 'null'}"])
        cohort = pipeline.load_cohort(cfg)
        enc = pipeline.load_plan_encoder(cfg.model_plans()[0], cfg, progress=False)
        with pytest.raises(RuntimeError):
            pipeline._adapt("lora", enc, cohort, cfg, progress=False)
        split = cohort.table["split"].value_counts()
        assert seen["val"] == split["val"] and seen["test"] == split["test"]
        if cap is None:
            assert seen["train"] == split["train"]
        else:
            assert seen["train"] == 24 and split["train"] > 24
            assert len(seen["strata"]) == 24 and set(seen["strata"]) == {1}


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


def test_the_papers_own_gaps_rule_out_the_per_class_reading():
    """At 240 test images a fair classifier's per-class-mean F1 gap is rarely below 0.04, so
    GLoRIA's reported 0.004 rules that reading out; the gap-of-macro reading allows it."""
    cfg = resolve_params("paper_a", "smoke", overrides=["null_sims=400"])
    cohort = pipeline.load_cohort(cfg)
    ev = pipeline.gap_reading_evidence(load_reported("paper_a"), cohort, cfg, progress=False)
    by = ev.set_index(["reading", "id"])
    assert by.loc[("mean_of_gaps", "f1-gap-gloria-ft-age"), "ruled_out"]
    assert by.loc[("mean_of_gaps", "f1-gap-gloria-ft-age"), "fair_low"] > 0.03
    assert not by.loc["gap_of_macro", "ruled_out"].any()
    verdicts = tables.reading_verdicts(ev).set_index("reading")
    assert verdicts.loc["mean_of_gaps", "ruled out"] >= 5
    assert verdicts.loc["gap_of_macro", "ruled out"] == 0
    with pytest.raises(ConfigError, match="gap_reading: 'mean' is not a reading"):
        resolve_params("paper_a", "smoke", overrides=["gap_reading=mean"]).check()


def test_gap_of_macro_eqodds_is_the_gap_of_the_groups_macro_rates():
    from compendium.audit import eqodds

    y = np.array([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0, 0, 0, 1, 2, 2, 2])
    g = np.array(["A"] * 6 + ["B"] * 6)
    # A: TPR per class 1/2, 1, 1/2 -> 2/3; FPR per class 1/4, 1/4, 0 -> 1/6
    # B: TPR per class 1, 1/2, 1 -> 5/6; FPR per class 0, 0, 1/4 -> 1/12
    got = eqodds(y, p, sensitive_features=g, labels=[0, 1, 2], gap_macro="gap_of_macro")
    assert got == pytest.approx(0.5 * (abs(2 / 3 - 5 / 6) + abs(1 / 6 - 1 / 12)))


def test_claim_checks_on_a_hand_made_audit():
    from compendium.papers.claims import claims_table

    rows = []
    acc = {("gloria", "zero-shot"): 0.40, ("gloria", "lora"): 0.55, ("gloria", "finetune"): 0.50,
           ("medclip-vit", "zero-shot"): 0.45, ("medclip-vit", "lora"): 0.50,
           ("medclip-vit", "finetune"): 0.60}
    for (m, method), v in acc.items():
        rows.append({"paper_model": m, "method": method, "metric": "accuracy",
                     "attribute": "all", "group": "all", "label": "all", "estimate": v,
                     "ci_low": v - 0.05, "ci_high": v + 0.05})
        for metric, label in pipeline.GAP_METRICS.items():
            for attr in pipeline.ATTRIBUTES:       # GLoRIA's gaps shrink, MedCLIP-ViT's grow
                g = {"gloria": 0.02, "medclip-vit": 0.05}[m] * (
                    (0.5 if m == "gloria" else 2.0) if method == "finetune" else 1.0)
                rows.append({"paper_model": m, "method": method, "metric": metric,
                             "attribute": attr, "group": "all", "label": label, "estimate": g,
                             "ci_low": g / 2, "ci_high": g * 2})
    t = claims_table("paper_a", {"run": tables.claim_checks(pd.DataFrame(rows))})
    t = t.set_index("claim")
    assert t.loc["fine-tuning-helps", "verdict"] == "holds"
    assert t.loc["fine-tuning-helps", "value"].startswith("4 of 4")
    assert "+0.050 (MedCLIP-ViT, LoRA)" in t.loc["fine-tuning-helps", "value"]
    assert t.loc["best-adaptation-per-model", "verdict"] == "holds"     # MedCLIP-ViT: FT
    assert t.loc["medclip-vit-most-accurate", "verdict"] == "holds"
    assert t.loc["gloria-fairest", "verdict"] == "holds"
    assert t.loc["fine-tuning-and-fairness", "verdict"] == "holds"
    assert t.loc["biomedclip-disease-fairness", "verdict"] == "not testable here"
