"""Paper E's package: the spec and the full-profile input check, the reported Tables 2-4 and
the claims on the paper's own numbers (hand-checked), and the pipeline's pieces on the
synthetic world (splits, knobs, labels, the missingness world)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError
from compendium.papers.paper_e import STRATEGIES, pipeline, tables
from compendium.papers.reported import load_reported
from compendium.runner import resolve_params


def _cfg(profile="smoke", *overrides):
    return resolve_params("paper_e", profile, overrides=list(overrides))


def test_full_profile_without_inputs_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch,
                                                                           capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    code = cli.main(["run", "paper_e", "--profile", "full"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    for what in ("data_roots.mimic-cxr", "data_roots.mimic-iv-ehr", "data_roots.nih",
                 "data_roots.vindr", "data_roots.chexpert", "resnet50-barlowtwins-cxr",
                 "eva-x-tiny", "eva-x-small", "convirt", "gloria", "medclip-rn50",
                 "medclip-vit"):
        assert what in err, what
    assert "resnet50-random" not in err            # random init: nothing to find
    assert not (tmp_path / "results").exists()


def test_spec_checks():
    with pytest.raises(ConfigError, match="strategies: 'clip' is not allowed"):
        _cfg("smoke", "strategies=[clip, medcam]").check()
    with pytest.raises(ConfigError, match="strategies must include medcam"):
        _cfg("smoke", "strategies=[supervised]").check()
    with pytest.raises(ConfigError, match="the first must be mimic-cxr"):
        _cfg("smoke", "datasets=[nih, mimic-cxr]").check()
    with pytest.raises(ConfigError, match="models: 'gloria' is needed"):
        _cfg("smoke", "models=[resnet50-random, resnet50-barlowtwins-cxr]",
             "strategies=[medcam, gloria]").check()
    with pytest.raises(ConfigError, match="ood_shift.nih: unknown knob 'blur'"):
        _cfg("smoke", "ood_shift={nih: {blur: 1}}").check()
    with pytest.raises(ConfigError, match="attention: 'dot' is not a reading"):
        _cfg("smoke", "attention=dot").check()


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_models_of_every_profile_are_registered(profile):
    from compendium.encoders import list_models

    spec = resolve_params("paper_e", profile)
    assert set(spec.models) <= set(list_models())
    assert set(spec.strategy_encoders()) <= set(spec.models)


# ------------------------------------------------------------------ the paper's numbers


def test_reported_tables_as_printed():
    rep = load_reported("paper_e")
    assert len(rep) == 8 * 2 + 4 * 3 + 5 * 4
    long = tables.reported_long(rep)
    t2 = tables.table2(long)
    assert t2.iloc[0].to_dict() == {"Pretraining Strategy": "Supervised", "Model": "ResNet-50",
                                    "AUROC": "0.705 [0.692, 0.718]",
                                    "AUPRC": "0.323 [0.317, 0.329]"}
    assert t2.iloc[-1]["AUROC"] == "0.906 [0.903, 0.909]"
    t3 = tables.table3(long).set_index("Model")
    assert t3.loc["EVA-X-T", "VinDr-CXR"] == "0.690 [0.668, 0.712]"
    t4 = tables.table4(long).set_index("Model")
    assert t4.loc["GLoRIA", "VinDr-CXR"] == "0.905 [0.897, 0.913]"
    assert t4.loc["MedCAM", "NIH"] == "0.847 [0.843, 0.851]"


def test_claims_on_the_papers_own_tables():
    """Hand-checked from Tables 2-4: MedCAM 0.906 vs best other 0.839 (MIMIC), 0.847 vs 0.820
    (NIH); (0.906 - 0.809) / 0.809 = +12.0 %; best image-EHR ConVIRT 0.638 < lowest image-only
    EVA-X-T 0.791; BarlowTwins-CXR above both EVA-X everywhere; MedCAM above the image-only
    models out of distribution; GLoRIA 0.905 vs ConVIRT 0.904 on VinDr."""
    from compendium.papers.claims import claims_table

    rep = tables.reported_long(load_reported("paper_e"))
    t = claims_table("paper_e", {"p": tables.claim_checks(rep)}).set_index("claim")
    assert (t["verdict"] == "holds").all(), t["verdict"]
    assert t.loc["medcam-gain-10pct", "value"].startswith("+12.0 % over BarlowTwins-CXR")
    assert "MIMIC-CXR: MedCAM 0.906 vs best other ConVIRT (image-text) 0.839" in t.loc[
        "medcam-best-mimic-nih", "value"]
    assert t.loc["gloria-best-vindr", "value"] == "GLoRIA 0.905 vs best other ConVIRT (image-text) 0.904"
    # without GLoRIA or MedCAM the claims are not testable, not failed
    t2 = claims_table("paper_e", {"p": tables.claim_checks(
        rep[~rep["model"].isin(["gloria", "medcam"])])}).set_index("claim")
    assert t2.loc["gloria-best-vindr", "verdict"] == "not testable here"
    assert t2.loc["medcam-best-ood", "verdict"] == "not testable here"


# ------------------------------------------------------------------ pipeline pieces


def test_shifted_knobs_add_to_everyone_and_replace_a_group():
    k = pipeline.shifted_knobs("default", {"noise": 0.01}, {"sex=F": {"ehr_missing": 0.6}})
    assert k["sex=F"]["noise"] == 0.01 and k["sex=M"]["noise"] == 0.01
    assert k["sex=F"]["ehr_missing"] == 0.6 and k["sex=F"]["soft_tissue"] == 0.5
    assert k["age=80+"]["noise"] == 0.02                       # the default knobs stay
    assert pipeline.shifted_knobs("zero") == {}


def test_split_keeps_minimum_evaluation_rows_and_patients_apart():
    t = pd.DataFrame({"patient_id": [f"p{i // 2}" for i in range(400)]})
    s = pipeline._split(t, (0.996, 0.003, 0.001), 40, seed=0)
    n = s["split"].value_counts()
    assert n["val"] >= 38 and n["test"] >= 38
    assert s.groupby("patient_id")["split"].nunique().max() == 1
    plain = pipeline._split(t, (0.6, 0.2, 0.2), 0, seed=0)["split"].value_counts()
    assert abs(plain["train"] - 240) <= 4


def test_defined_labels_and_restriction():
    pred = pd.DataFrame({"sex": ["F", "F", "M", "M"], "true_A": [0, 1, 0, 1],
                         "true_B": [0, 0, 0, 1], "score_A": .5, "score_B": .5,
                         "pred_A": 1, "pred_B": 1})
    assert pipeline.defined_labels(pred, ["A", "B"]) == ["A", "B"]
    assert pipeline.defined_labels(pred, ["A", "B"], pred["sex"]) == ["A"]  # B: no F positive
    r = pipeline.restrict_labels(pred, ["A", "B"], ["A"])
    assert [c for c in r if c.endswith("_B")] == []


def test_ablation_variants_cover_terms_k_tau_update_attention():
    v = [x["variant"] for x in pipeline.ablation_variants(_cfg("demo"))]
    assert v == ["global + local (MedCAM)", "global only", "local only", "k = 1", "k = 5",
                 "tau = 0.05", "tau = 0.5", "adapter update", "learned attention"]


def test_synthetic_datasets_and_the_missingness_world():
    cfg = _cfg("smoke")
    data = pipeline.build_datasets(cfg)
    assert list(data) == ["mimic-cxr", "nih", "vindr", "chexpert"]
    m = data["mimic-cxr"]
    assert m.ehr.shape == (150, cfg.ehr_hours // 2, 76) and data["nih"].ehr is None
    assert m.images.shape == (150, 1, cfg.image_size, cfg.image_size)
    for d in data.values():
        assert set(d.rows["split"]) == {"train", "val", "test"}
        assert d.rows.groupby("patient_id")["split"].nunique().max() == 1
    hi = pipeline.mimic_with_missingness(m, 0.9, cfg)
    women = (m.rows["sex"] == "F").to_numpy()
    masks_lo, masks_hi = m.ehr[..., 59:].numpy(), hi.ehr[..., 59:].numpy()
    # the group's measured share falls, the others' EHR is unchanged
    assert masks_hi[women].mean() < 0.5 * masks_lo[women].mean()
    np.testing.assert_array_equal(masks_hi[~women], masks_lo[~women])
    assert pipeline.labels_of("chexpert", cfg) == ("Atelectasis", "Cardiomegaly",
                                                   "Consolidation", "Edema", "Effusion")


def test_every_strategy_has_a_recipe_and_a_table():
    cfg = _cfg("smoke")
    for s in STRATEGIES:
        assert "stand-in for " + STRATEGIES[s][1] in pipeline._recipe(s, cfg)
    assert set(tables.TABLE2) | set(tables.TABLE4) == set(STRATEGIES)
    assert set(pipeline.OOD_STRATEGIES) == set(tables.TABLE3) | set(tables.TABLE4)


def test_full_profile_checks_every_input_before_any_work(tmp_path):
    roots = {d: tmp_path / d for d in ("mimic-cxr", "mimic-iv-ehr", "nih", "vindr", "chexpert")}
    for p in roots.values():
        p.mkdir()
    weights = {m: tmp_path / f"{m}.pt" for m in
               ("resnet50-barlowtwins-cxr", "eva-x-tiny", "eva-x-small", "convirt", "gloria",
                "medclip-rn50", "medclip-vit")}
    for p in weights.values():
        p.write_bytes(b"")
    as_map = lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"
    _cfg("full", f"data_roots={as_map(roots)}", f"weights={as_map(weights)}").check()
    del roots["mimic-iv-ehr"]
    with pytest.raises(DataNotFoundError, match=r"data_roots.mimic-iv-ehr .* is not set"):
        _cfg("full", f"data_roots={as_map(roots)}", f"weights={as_map(weights)}").check()


def test_dict_parameters_are_range_checked():
    with pytest.raises(ConfigError, match=r"n_rows\[0\] must lie in \[50, 10000000\]"):
        _cfg("smoke", "n_rows={mimic-cxr: 10}").check()
    with pytest.raises(ConfigError, match=r"ood_shift.nih\[0\] must lie in \[-3, 3\]"):
        _cfg("smoke", "ood_shift={nih: {noise: 5}}").check()


def test_towers_and_fine_tuning_are_deterministic():
    import torch

    cfg = _cfg("smoke", "strategies=[barlowtwins-cxr, medcam, vicreg-ehr]", "n_pretrain=60")
    data = pipeline.build_datasets(cfg)
    corpus = pipeline.pretraining_corpus(cfg)
    runs = []
    for seed in (1, 2):
        torch.manual_seed(seed)                  # the global generator must not matter
        towers = pipeline.pretrain_towers(data, corpus, cfg)
        t = towers["medcam"]
        pred, _ = pipeline.finetune_predict(t.module, t.out_dim, data["mimic-cxr"], cfg)
        runs.append((towers, pred))
    (a, pa), (b, pb) = runs
    for s in a:
        for x, y in zip(a[s].module.state_dict().values(), b[s].module.state_dict().values()):
            assert torch.equal(x, y), s
    pd.testing.assert_frame_equal(pa, pb)


def test_real_label_names_exist_in_each_dataset():
    """The label_set reading's names, spelled as each real dataset spells them, are labels
    its builder produces (CheXpert's 14 for MIMIC-CXR and CheXpert, NIH's 14, and the
    VinBigData classes of the shipped VinDr-CXR table)."""
    from compendium.cohorts import build_cohort
    from compendium.cohorts.chexpert import CHEXPERT_LABELS
    from compendium.cohorts.nih import NIH_LABELS
    from compendium.papers.paper_e.spec import DATASET_LABELS, SHARED_LABELS

    vindr = build_cohort("vindr-cxr").labels
    have = {"mimic-cxr": CHEXPERT_LABELS, "chexpert": CHEXPERT_LABELS, "nih": NIH_LABELS,
            "vindr": vindr}
    for d, labels in DATASET_LABELS.items():
        names = pipeline.REAL_LABEL_NAMES[d]
        for lab in (*labels, *SHARED_LABELS):
            assert names.get(lab, lab) in have[d], (d, lab)
    assert pipeline.REAL_LABEL_NAMES["vindr"]["Effusion"] == "Pleural effusion"


@pytest.mark.parametrize("policy", ["ones", "zeros"])
def test_uncertain_labels_reading_reaches_the_chexpert_builders(policy, monkeypatch):
    """Under pixels: real the ``uncertain_labels`` reading is the uncertainty policy of the
    MIMIC-CXR and CheXpert builders (the builders' own tests check what each policy does);
    a policy that is not a candidate (U-Ignore would need a masked loss) is refused."""
    import dataclasses
    from types import SimpleNamespace

    import compendium.cohorts as cohorts

    class Stop(Exception):
        pass

    seen = {}

    def fake(name, **kw):
        seen[name] = kw
        if name == "mimic-iv-ehr":
            return SimpleNamespace(table=pd.DataFrame({"dicom_id": ["d1"]}))
        raise Stop

    monkeypatch.setattr(cohorts, "build_cohort", fake)
    cfg = resolve_params("paper_e", "smoke", overrides=[f"uncertain_labels={policy}"])
    for d, roots in (("chexpert", {"chexpert": "/c"}),
                     ("mimic-cxr", {"mimic-cxr": "/m", "mimic-iv-ehr": "/e"})):
        with pytest.raises(Stop):
            pipeline._real_datasets(dataclasses.replace(cfg, datasets=[d], data_roots=roots))
        assert seen[d]["uncertainty"] == policy
    with pytest.raises(ConfigError, match="uncertain_labels"):
        resolve_params("paper_e", "smoke", overrides=["uncertain_labels=ignore"]).check()


def test_ehr_window_ends_at_the_image(tmp_path):
    """The EHR of a stay before its image: 2-hour bins from admission up to the image time
    (the last ``ehr_hours / 2`` of them), a measurement after the image left out, bins
    before admission filled with the normal value and mask 0 (hand-computed)."""
    from compendium.cohorts.mimic_iv_ehr import NORMAL_VALUES, feature_names

    (tmp_path / "1").mkdir()
    pd.DataFrame({"Hours": [0.5, 3.0, 4.9, 6.0], "Heart Rate": [80, 90, 100, 200]}).to_csv(
        tmp_path / "1" / "episode1_timeseries.csv", index=False)
    row = pd.Series({"intime": pd.Timestamp("2150-01-01 00:00"),
                     "timeseries_path": "1/episode1_timeseries.csv"})
    w = pipeline._ehr_window(str(tmp_path), row, pd.Timestamp("2150-01-01 05:00"), hours=8)
    names = feature_names()
    hr, mask = names.index("Heart Rate"), names.index("mask->Heart Rate")
    assert w.shape == (4, 76)
    # bin 0 precedes admission; then [0, 2) h: 80, [2, 4): 90, [4, 6): 100 (200 at 6 h is
    # after the image at 5 h)
    assert w[:, hr].tolist() == [NORMAL_VALUES["Heart Rate"], 80, 90, 100]
    assert w[:, mask].tolist() == [0, 1, 1, 1]
    w2 = pipeline._ehr_window(str(tmp_path), row, pd.Timestamp("2150-01-01 05:00"), hours=4)
    assert w2[:, hr].tolist() == [90, 100]


def test_audit_of_a_split_without_a_defined_label_is_nan_with_a_flag():
    """A test split where no label has both classes (small real splits): the macro AUROC and
    AUPRC are undefined, reported as NaN with a flag, not an error and not a number."""
    pred = pd.DataFrame({"sample_id": list("abc"), "patient_id": list("abc"),
                         "true_A": [0, 0, 0], "score_A": [0.1, 0.2, 0.3], "pred_A": [0, 0, 0],
                         "sex": ["F", "M", "F"]})
    t = pipeline.audit_run(pred, ["A"], _cfg("smoke"))
    assert sorted(t["metric"]) == ["auprc", "auroc"]
    assert t["estimate"].isna().all() and (t["labels_used"] == 0).all()
    assert (t["flag"] == "no label has both classes").all()
    long = tables.results_long(t.assign(strategy="medcam", dataset="nih"))
    assert len(long) == 2 and long["estimate"].isna().all()


def test_ood_strategies_choose_the_out_of_distribution_runs():
    full = resolve_params("paper_e", "full")
    every = pipeline.runs_of(full)
    assert {s for s, d in every if d == "nih"} == set(pipeline.OOD_STRATEGIES)
    some = resolve_params("paper_e", "full", overrides=["ood_strategies=[medcam]"])
    runs = pipeline.runs_of(some)
    assert {s for s, d in runs if d != "mimic-cxr"} == {"medcam"}
    assert {s for s, d in runs if d == "mimic-cxr"} == set(full.strategies)
    with pytest.raises(ConfigError, match="ood_strategies: 'supervised'"):
        resolve_params("paper_e", "full", overrides=["ood_strategies=[supervised]"]).check_paper()


def test_real_pixels_train_on_every_core_unless_threads_says_otherwise():
    """Found by the rehearsal: threads 0 meant one torch thread under full too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        for profile, overrides, want in (("full", [], 2), ("full", ["threads=1"], 1),
                                         ("smoke", [], 1)):
            cfg = resolve_params("paper_e", profile, overrides=overrides)
            with pipeline._threads(cfg):
                assert torch.get_num_threads() == want, (profile, overrides)
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
