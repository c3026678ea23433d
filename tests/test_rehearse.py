"""`compendium rehearse`: each paper's full profile run end to end on miniature data in the
real on-disk formats, through the normal runner, with full's privacy rule checked."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from compendium.cli import main
from compendium.rehearse.core import BUDGET_KEYS, INPUT_KEYS, privacy_scan


def test_privacy_scan_finds_identifier_columns_and_ids(tmp_path):
    (tmp_path / "tables").mkdir()
    pd.DataFrame({"group": ["F", "M"], "auroc": [0.7, 0.8]}).to_csv(tmp_path / "tables/ok.csv")
    assert privacy_scan(tmp_path, {"00012345_000.png", "10000032"}) == []
    pd.DataFrame({"patient_id": ["a"], "score": [0.1]}).to_csv(tmp_path / "tables/rows.csv",
                                                                 index=False)
    (tmp_path / "values.json").write_text(json.dumps({"x": "seen in 10000032's study"}))
    (tmp_path / "num.json").write_text(json.dumps({"x": 0.100000321}))  # digits inside a number
    problems = privacy_scan(tmp_path, {"00012345_000.png", "10000032"})
    assert len(problems) == 2
    assert "rows.csv: per-row identifier column(s) ['patient_id']" in problems[0]
    assert "values.json" in problems[1] and "'10000032'" in problems[1]
    pd.DataFrame({"group": ["F"], "test images": [7]}).to_csv(tmp_path / "tables/small.csv",
                                                               index=False)
    assert "count column 'test images' shows 7" in privacy_scan(tmp_path, set())[-1]


def test_full_never_publishes_a_per_patient_table(tmp_path, capsys):
    """Found by the rehearsal: Paper C's notebook published its per-image predictions table
    (sample_id, patient_id, scores) under full.  Results.table now keeps any table with a
    per-row identifier in memory under full, and still writes it under demo/smoke."""
    from compendium.results import Results

    rows = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["p", "q"], "score": [0.1, 0.9]})
    full = Results(tmp_path / "full", glue=False, min_cell=10)
    assert full.table(rows, "predictions", display=False) is rows
    assert not (tmp_path / "full/tables/predictions.csv").exists()
    assert "'predictions' is not published: it has one row per sample id" in capsys.readouterr().out
    agg = pd.DataFrame({"group": ["F", "M"], "n": [12, 30]})
    full.table(agg, "groups", display=False)
    assert (tmp_path / "full/tables/groups.csv").is_file()
    demo = Results(tmp_path / "demo", glue=False)
    demo.table(rows, "predictions", display=False)
    assert len(pd.read_csv(tmp_path / "demo/tables/predictions.csv")) == 2


def test_paper_b_defect_figure_on_real_data():
    """Found by the rehearsal: on INSPECT (no filling-defect sizes) defect_size_auroc is an
    empty table, and Paper B's last cell failed drawing it (KeyError 'model')."""
    import matplotlib

    matplotlib.use("Agg")
    from compendium.papers.paper_b.figures import defect_figure

    fig = defect_figure(pd.DataFrame())
    assert "known only in the synthetic world" in fig.axes[0].texts[0].get_text()


def test_paper_d_cohort_counts_are_suppressed_under_full():
    """Found by the rehearsal: Paper D's cohorts table printed its train/test image counts
    below 10 under full (columns the small-cell rule did not read as counts)."""
    import numpy as np

    from compendium.papers.paper_d.pipeline import Pool
    from compendium.papers.paper_d.tables import cohorts_table
    from compendium.results import suppress_small_cells

    tasks = pd.DataFrame({"label": "Edema", "sample_id": [f"s{i}" for i in range(24)],
                          "patient_id": [f"p{i}" for i in range(24)],
                          "y": np.tile([0, 1], 12), "split": ["train"] * 16 + ["test"] * 8})
    cohort = type("C", (), {"source": "real"})()
    table = suppress_small_cells(cohorts_table([Pool("nih", "NIH", cohort, tasks, tasks)]))
    row = table.iloc[0]
    assert row["test images"] == "<10" and row["train images"] == 16
    assert row["positives"] == 12


def test_unknown_paper_is_one_line(tmp_path, capsys):
    assert main(["rehearse", "paper_z", "--out", str(tmp_path)]) == 2
    assert "no rehearsal for 'paper_z'" in capsys.readouterr().err


def _check_chapter(summary):
    """The Re-running chapter lists exactly what this rehearsal's rehearsal.json says it
    covered and skipped."""
    from compendium.rehearse.docs import CHAPTER, chapter_problems
    from compendium.runner import project_root

    assert chapter_problems(summary, project_root() / CHAPTER) == []
    stored = json.loads(Path(summary["params_file"]).with_name("rehearsal.json").read_text())
    assert stored["covers"] == summary["covers"] and stored["skips"] == summary["skips"]


def _check_run(summary, paper):
    out = summary["output_dir"]
    run = json.loads(Path(out, "run.json").read_text())
    assert run["profile"] == "full" and run["parameters"]["pixels"] == "real"
    assert run["parameters"]["use_stand_ins"] is False
    full = yaml.safe_load(Path("params", paper, "full.yaml").read_text())
    changed = {k for k, v in run["parameters"].items() if k in full and full[k] != v}
    assert changed <= set(INPUT_KEYS) | set(BUDGET_KEYS), changed
    # a shrunk grid holds only values of the full profile's grid
    for method, grid in run["parameters"].get("learning_rates", {}).items():
        assert set(grid) <= set(full.get("learning_rates", {}).get(method, grid)), method
    assert summary["privacy_problems"] == [] and summary["identifiers_checked"] > 100
    nb = json.loads(Path(out, f"{paper}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    _check_chapter(summary)
    return out


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_d(tmp_path):
    from compendium.rehearse.core import rehearse

    summary = rehearse("paper_d", tmp_path)
    out = _check_run(summary, "paper_d")
    table1 = pd.read_csv(f"{out}/tables/table1.csv")
    assert set(table1["Dataset"]) == {"MIMIC", "NIH"}
    assert set(table1["Disease"]) == {"Atelectasis", "Edema", "Effusion", "Opacity"}
    cohorts = pd.read_csv(f"{out}/tables/cohorts.csv")
    assert len(cohorts) >= 2
    assert (tmp_path / "data/mimic-cxr-jpg/mimic-cxr-2.0.0-metadata.csv").is_file()
    assert (tmp_path / "data/nih-cxr14/Data_Entry_2017_v2020.csv").is_file()


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_c(tmp_path):
    from compendium.rehearse.core import rehearse

    summary = rehearse("paper_c", tmp_path)
    out = _check_run(summary, "paper_c")
    snap = tmp_path / "hf/hub/models--microsoft--rad-dino/snapshots"
    assert (next(snap.iterdir()) / "model.safetensors").is_symlink()   # the hub's layout
    assert len(pd.read_csv(f"{out}/tables/auroc.csv")) > 0


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_b(tmp_path):
    from compendium.rehearse.core import rehearse

    summary = rehearse("paper_b", tmp_path)
    _check_run(summary, "paper_b")
    assert any((tmp_path / "data/inspect/CTPA").glob("PE*.nii.gz"))


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_e(tmp_path):
    """Paper E's full path on miniature real layouts: every cohort built from the rehearsal's
    files, every encoder loaded by its real loader, then the run (alignment and fine-tuning
    on streamed images) with Tables 2-4 of real-path numbers and no per-patient row."""
    from compendium.rehearse.core import rehearse
    from compendium.runner import resolve_params

    summary = rehearse("paper_e", tmp_path)
    out = _check_run(summary, "paper_e")
    covers = "\n".join(summary["covers"])
    for cohort in ("mimic-iv-ehr", "mimic-cxr", "nih", "vindr-cxr", "chexpert"):
        assert f"{cohort} builder:" in covers
    assert "mimic-iv-ehr builder: 32 stays, each linked" in covers
    needed = resolve_params("paper_e", "full").encoders_needed()
    assert {"eva-x-tiny", "convirt", "gloria", "medclip-vit"} <= set(needed)
    for enc in needed:
        assert f"{enc}: built and loaded by its real loader" in covers
    long = pd.read_csv(f"{out}/tables/results_long.csv")
    assert set(long["dataset"]) == {"mimic-cxr", "nih", "vindr", "chexpert"}
    ran = long.groupby("dataset")["model"].agg(set)     # model: the strategy id
    assert ran["mimic-cxr"] == set(resolve_params("paper_e", "full").strategies)
    for d in ("nih", "vindr", "chexpert"):     # the budget: the gain table's pair only
        assert ran[d] == {"barlowtwins-cxr", "medcam"}, d
    # a miniature test split may hold no label with both classes: its macro is NaN, flagged
    assert long["estimate"].notna().any() and long["estimate"].dropna().between(0, 1).all()
    assert "EHR" in pd.read_csv(f"{out}/tables/datasets.csv").columns
    _check_chapter(summary)


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_a(tmp_path):
    """Paper A end to end: NIH 6x200's real rows (10 per disease and group) in the NIH
    layout, its six encoders (CLIP, BiomedCLIP and the ImageNet ViT tiny from the configs
    that travel with their weights; GLoRIA and MedCLIP full size) loaded by the real
    loaders, zero-shot, probes, LoRA and fine-tuning of every model, the audit."""
    from compendium.rehearse.core import rehearse

    summary = rehearse("paper_a", tmp_path)
    out = _check_run(summary, "paper_a")
    data_entry = pd.read_csv(tmp_path / "data/nih-cxr14/Data_Entry_2017_v2020.csv")
    assert len(data_entry) == 240
    selection = pd.read_csv(f"{out}/tables/selection.csv")
    assert set(selection["method"]) == {"zero-shot", "linear", "mlp", "lora", "finetune"}
    assert selection["model"].nunique() == 5
    run = json.loads(Path(out, "run.json").read_text())
    assert run["parameters"]["finetune_backbone"] == {"clip-vit-b-16": "vit-b-16-imagenet"}
    snap = next((tmp_path / "hf/hub/models--timm--vit_base_patch16_clip_224.openai"
                 / "snapshots").iterdir())
    assert json.loads((snap / "open_clip_config.json").read_text())["model_cfg"][
        "vision_cfg"]["layers"] == 1


def test_chapter_block_follows_rehearsal_json(tmp_path):
    """The chapter's block is rendered from rehearsal.json: a line changed by hand, or a
    cover the rehearsal no longer has, is found; --update-chapter writes it back."""
    from compendium.rehearse.docs import chapter_problems, section, update_chapter

    summary = {"paper": "paper_x", "check_only": False, "refused": "",
               "covers": ["the NIH layout", "x: built and loaded by its real loader"],
               "skips": ["pretrained values"]}
    chapter = tmp_path / "rerun.md"
    chapter.write_text("intro\n<!-- rehearsal:paper_x:begin -->\nold text\n"
                       "<!-- rehearsal:paper_x:end -->\nafter\n")
    assert "differs from its rehearsal.json" in chapter_problems(summary, chapter)[0]
    update_chapter(summary, chapter)
    assert chapter_problems(summary, chapter) == []
    text = chapter.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n")
    assert "- x: built and loaded by its real loader" in text and "- pretrained values" in text
    assert "**Paper X** (`compendium rehearse paper_x`; the CPU test runs it end to end)" in text
    summary["budget"] = {"epochs": 2, "learning_rates": {"lora": [0.001]}}
    assert chapter_problems(summary, chapter)          # the budget changed: the block differs
    update_chapter(summary, chapter)
    assert ("Budget shrunk (the rest as in `params/paper_x/full.yaml`): `epochs: 2`, "
            "`learning_rates: {lora: [0.001]}`") in chapter.read_text()
    summary["covers"] = summary["covers"][:1]
    assert chapter_problems(summary, chapter)
    assert "no block" in chapter_problems({**summary, "paper": "paper_y"}, chapter)[0]
    assert "(-" not in section(summary)


def test_chapter_has_a_block_per_rehearsal():
    from compendium.rehearse.core import papers
    from compendium.rehearse.docs import CHAPTER, markers

    text = CHAPTER.read_text()
    for paper in papers():
        begin, end = markers(paper)
        assert text.count(begin) == 1 and text.count(end) == 1, paper


def test_group_size_below_the_split_is_one_line():
    """Found by the rehearsal: NIH 6x200 with fewer than 10 images per disease and group
    failed deep in scikit-learn's stratified split; the spec now refuses it at once."""
    from compendium.errors import ConfigError
    from compendium.runner import resolve_params

    with pytest.raises(ConfigError, match="group_size"):
        resolve_params("paper_a", "demo", overrides=["group_size=5"]).check()
    with pytest.raises(ConfigError, match="max_shortfall"):
        resolve_params("paper_a", "demo", overrides=["group_size=10", "max_shortfall=10"]).check()


def test_loaders_read_the_config_that_travels_with_the_weights(tmp_path, monkeypatch):
    """open_clip and timm hub snapshots carry their architecture config
    (open_clip_config.json; config.json with model_args); the real loaders build what it
    says, as open_clip / timm do for 'hf-hub:' models, and refuse a config whose embedding
    size differs from the registry's."""
    import torch

    from compendium.encoders import load_encoder
    from compendium.errors import InputError
    from compendium.rehearse.weights import (
        TINY_VIT_ARGS,
        bert_tokenizer_repo,
        open_clip_repo,
        timm_repo,
    )

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    hf = tmp_path / "hf"
    bert_tokenizer_repo(hf, "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract")
    clip = open_clip_repo(hf, "timm/vit_base_patch16_clip_224.openai", "clip-vit-b-16", {},
                          tiny=True)
    bio = open_clip_repo(hf, "microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224",
                         "biomedclip", {}, tiny=True)
    vit = timm_repo(hf, "timm/vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit-b-16-imagenet",
                    "vit_base_patch16_224", model_args=TINY_VIT_ARGS)
    x = torch.rand(2, 3, 224, 224)
    e = load_encoder("clip-vit-b-16", progress=False)
    assert len(e.model.visual.transformer.resblocks) == 1        # the config's, not ViT-B/16's
    assert tuple(e.encode_images(x).shape) == (2, 512)
    assert tuple(e.encode_text(["pleural effusion"]).shape) == (1, 512)
    b = load_encoder("biomedclip", progress=False)
    assert b.model.text.transformer.config.hidden_size == 32     # BiomedBERT's config.json
    assert tuple(b.encode_images(x).shape) == (2, 512)
    v = load_encoder("vit-b-16-imagenet", progress=False)
    assert len(v.backbone.blocks) == 1 and v.backbone.num_features == 768
    # a config that changes the embedding size is refused with one line
    cfg = json.loads((clip / "open_clip_config.json").read_text())
    cfg["model_cfg"]["embed_dim"] = 256
    target = (clip / "open_clip_config.json").resolve()
    (clip / "open_clip_config.json").unlink()
    (clip / "open_clip_config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="embedding size 256"):
        load_encoder("clip-vit-b-16", progress=False)
    assert target.is_file() and bio.is_dir() and vit.is_dir()


@pytest.mark.parametrize("name", ["gloria", "medclip-rn50", "medclip-vit"])
@pytest.mark.parametrize("method", ["lora", "finetune"])
def test_dual_encoders_adapt(name, method):
    """Found by the rehearsal of Paper A: LoRA and fine-tuning of GLoRIA and MedCLIP failed
    (their image tower, ``encoder.visual``, had no forward).  Each adapts now, and the
    adapted tower gives the encoder's own image features before training."""
    import numpy as np
    import torch

    from compendium.adapt.finetune import build_image_classifier, run_adaptation
    from compendium.adapt.training import TrainSpec
    from compendium.encoders.base import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        enc = create_model(name, tiny=True, pretrained=False)
    x = torch.rand(6, 3, 224, 224)
    with torch.no_grad():
        assert torch.allclose(enc.visual(x[:2]), enc.encode_images(x[:2]), atol=1e-5)
    clf = build_image_classifier(enc, 2, method=method)
    trainable = {n for n, p in clf.named_parameters() if p.requires_grad}
    if method == "lora":
        assert trainable and all("lora_" in n or n.startswith("head") for n in trainable)
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)],
                         "patient_id": [f"p{i}" for i in range(6)],
                         "a": np.tile([0.0, 1.0], 3), "b": np.tile([1.0, 0.0], 3),
                         "sex": ["F", "M"] * 3})
    data = {s: (x, rows) for s in ("train", "val", "test")}
    table, info = run_adaptation(enc, data, ["a", "b"], "multiclass",
                                 TrainSpec(epochs=1, lr=1e-3, seed=0), method=method,
                                 batch_size=3, seed=0)
    assert len(table) == 6 and info["history"].best_epoch is not None
