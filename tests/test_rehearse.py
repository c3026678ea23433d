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


def _check_run(summary, paper):
    out = summary["output_dir"]
    run = json.loads(Path(out, "run.json").read_text())
    assert run["profile"] == "full" and run["parameters"]["pixels"] == "real"
    assert run["parameters"]["use_stand_ins"] is False
    full = yaml.safe_load(Path("params", paper, "full.yaml").read_text())
    changed = {k for k, v in run["parameters"].items() if k in full and full[k] != v}
    assert changed <= set(INPUT_KEYS) | set(BUDGET_KEYS), changed
    assert summary["privacy_problems"] == [] and summary["identifiers_checked"] > 100
    nb = json.loads(Path(out, f"{paper}.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
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
    # a miniature test split may hold no label with both classes: its macro is NaN, flagged
    assert long["estimate"].notna().any() and long["estimate"].dropna().between(0, 1).all()
    assert "EHR" in pd.read_csv(f"{out}/tables/datasets.csv").columns


@pytest.mark.slow
@pytest.mark.rehearsal
def test_rehearse_paper_a_preflight_and_weights(tmp_path):
    """Paper A on CPU: the NIH 6x200 layout and the full-size weights of its six encoders are
    written, the full profile's preflight passes and every encoder is loaded by its real
    loader (the notebook itself is a GPU rehearsal: `--device cuda`)."""
    from compendium.rehearse.core import rehearse

    summary = rehearse("paper_a", tmp_path, check_only=True)
    covers = "\n".join(summary["covers"])
    for enc in ("clip-vit-b-16", "gloria", "medclip-vit", "medclip-rn50", "biomedclip",
                "vit-b-16-imagenet"):
        assert f"{enc}: built and loaded by its real loader" in covers
    data_entry = pd.read_csv(tmp_path / "data/nih-cxr14/Data_Entry_2017_v2020.csv")
    assert len(data_entry) == 1200
    assert len(list((tmp_path / "data/nih-cxr14").glob("images_*/images/*.png"))) == 1200
