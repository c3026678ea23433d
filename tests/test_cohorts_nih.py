"""NIH ChestX-ray14 builder (fixture in the real layout), NIH 6x200 from the shipped table,
and the `compendium cohort` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from compendium.cli import main
from compendium.cohorts import build_cohort, describe_cohorts
from compendium.cohorts.nih6x200 import GROUPS, qualification_table
from compendium.errors import DataNotFoundError, InputError

HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,"
          "View Position,OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")
ROWS = [  # image, findings, follow-up, patient, age, sex, view
    ("00000001_000.png", "Cardiomegaly", 0, 1, 57, "M", "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, 1, 58, "M", "PA"),
    ("00000002_000.png", "No Finding", 0, 2, 81, "M", "PA"),
    ("00000003_000.png", "Hernia", 0, 3, 77, "F", "PA"),
    ("00000003_001.png", "Hernia|Effusion", 1, 3, 78, "F", "AP"),
    ("00000004_000.png", "Mass|Nodule", 0, 4, 82, "M", "AP"),
    ("00000005_000.png", "No Finding", 0, 5, 69, "F", "PA"),
    ("00000006_000.png", "Edema", 0, 6, 61, "F", "AP"),
    ("00000007_000.png", "Pneumothorax", 0, 7, 22, "F", "PA"),
    ("00000008_000.png", "Atelectasis|Consolidation|Pneumonia", 0, 8, 45, "M", "AP"),
    ("00000009_000.png", "Pleural_Thickening", 0, 9, 33, "F", "PA"),
    ("00000010_000.png", "Infiltration|Fibrosis", 0, 10, 60, "M", "PA"),
]


def write_nih(root, rows=ROWS, *, split=True, skip=()):
    lines = [HEADER] + [f"{a},{b},{c},{d},{e},{f},{g},2500,2048,0.143,0.143" for a, b, c, d, e, f, g in rows]
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join(lines) + "\n")
    for k, r in enumerate(rows):
        folder = root / ("images_001" if k < 6 else "images_002") / "images"
        folder.mkdir(parents=True, exist_ok=True)
        if r[0] not in skip:
            Image.fromarray(np.full((32, 40), 10 * k, np.uint8)).save(folder / r[0])
    if split:
        test = [r[0] for r in rows if r[3] in (3, 7)]
        (root / "test_list.txt").write_text("\n".join(test) + "\n")
        (root / "train_val_list.txt").write_text("\n".join(r[0] for r in rows if r[0] not in test) + "\n")
    return root


def test_nih_builder_reads_the_official_layout(tmp_path):
    c = build_cohort("nih", root=write_nih(tmp_path), seed=0)
    t = c.table.set_index("sample_id")
    assert c.source == "real" and c.pixel_column == "image_path" and len(t) == 12
    assert t.loc["00000001_001.png", "image_path"] == "images_001/images/00000001_001.png"
    assert t.loc["00000007_000.png", "image_path"] == "images_002/images/00000007_000.png"
    row = t.loc["00000008_000.png"]
    assert (row["Atelectasis"], row["Consolidation"], row["Pneumonia"], row["Edema"]) == (1, 1, 1, 0)
    assert row["n_findings"] == 3 and row["No Finding"] == 0
    assert t.loc["00000002_000.png", "No Finding"] == 1 and t.loc["00000002_000.png", "n_findings"] == 0
    assert t.loc["00000003_000.png", "sex"] == "F" and t.loc["00000003_000.png", "age"] == 77
    assert t.loc["00000010_000.png", "age_group"] == ">=60"
    assert set(t.loc[t["patient_id"].isin(["3", "7"]), "split"]) == {"test"}
    assert set(t["split"]) <= {"train", "val", "test"} and "" not in set(t["split"])
    assert t["race"].isna().all()


def test_nih_views_filter_and_missing_files(tmp_path):
    root = write_nih(tmp_path, skip=("00000004_000.png", "00000006_000.png"))
    with pytest.raises(DataNotFoundError, match=r"2 of 12 listed files are missing.*00000004_000.png"):
        build_cohort("nih", root=root)
    c = build_cohort("nih", root=root, drop_missing=True, views=("PA",))
    assert len(c.table) == 8 and set(c.table["view"]) == {"PA"}
    c = build_cohort("nih", root=root, drop_missing=True)
    assert len(c.table) == 10 and "00000004_000.png" not in set(c.table["sample_id"])


def test_nih_bad_inputs(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a folder"):
        build_cohort("nih", root=tmp_path / "nope")
    root = write_nih(tmp_path)
    csv = root / "Data_Entry_2017_v2020.csv"
    csv.write_text(csv.read_text().replace("Patient Gender", "Gender"))
    with pytest.raises(InputError, match="lacks column.*'Patient Gender'"):
        build_cohort("nih", root=root)
    with pytest.raises(DataNotFoundError, match="not found"):
        build_cohort("nih", metadata=tmp_path / "missing.csv")


def test_nih_metadata_only_from_the_shipped_table():
    c = build_cohort("nih")
    assert c.source == "real-metadata" and c.pixel_column is None
    assert len(c.table) == 112120 and c.table["patient_id"].nunique() == 30805
    assert c.table["image_path"].isna().all()


@pytest.fixture(scope="module")
def six():
    return build_cohort("nih-6x200", seed=0)


def test_nih_6x200_matches_paper_a(six):
    t = six.table
    assert six.labels == ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Pneumothorax")
    assert six.task == "multiclass" and len(t) == 1200
    assert (six.label_matrix().sum(axis=1) == 1).all()
    counts = t.groupby(["disease", "group"]).size().unstack()
    assert (counts.sum(axis=1) == 200).all()
    for d in six.labels:
        expected = {"old-F": 47, "old-M": 53} if d == "Edema" else {}
        for g in GROUPS:
            assert counts.loc[d, g] == expected.get(g, 50), (d, g)
    # single-label, group consistent with age and sex
    assert (t["finding_labels"] == t["disease"]).all()
    assert ((t["age"] >= 60) == (t["age_band"] == "old")).all()
    assert (t["group"] == t["age_band"] + "-" + t["sex"]).all()
    # patient-wise 7:1:2
    assert t.groupby("patient_id")["split"].nunique().max() == 1
    sizes = t["split"].value_counts()
    assert abs(sizes["train"] - 840) <= 12 and abs(sizes["val"] - 120) <= 12 and abs(sizes["test"] - 240) <= 12
    assert "Pneumonia" in six.report and "excluded" in six.report


def test_qualification_table_explains_pneumonia_and_edema(six):
    q = six.meta["qualification"]
    assert list(q.index[q["qualifies"]]) == list(six.labels)
    assert q.loc["Edema", "old-F"] == 47 and q.loc["Edema", "take_old-M"] == 53
    assert q.loc["Pneumonia", "old-F"] == 14 and not q.loc["Pneumonia", "qualifies"]
    assert "14" in q.loc["Pneumonia", "reason"]
    strict = qualification_table(n=50, max_shortfall=0)
    assert not strict.loc["Edema", "qualifies"]


def test_nih_6x200_is_seeded():
    a = build_cohort("nih-6x200", seed=1).table
    b = build_cohort("nih-6x200", seed=1).table
    pd.testing.assert_frame_equal(a, b)
    assert set(a["sample_id"]) != set(build_cohort("nih-6x200", seed=2).table["sample_id"])


def test_cli_cohort_writes_table_and_report(tmp_path, capsys):
    out = tmp_path / "cohort.csv"
    (tmp_path / "nih").mkdir()
    assert main(["cohort", "nih", "--root", str(write_nih(tmp_path / "nih")), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cohort nih (source: real" in text and "12 samples from 10 patients" in text
    back = pd.read_csv(out)
    assert len(back) == 12 and list(back.columns[:6]) == ["sample_id", "patient_id", "split", "age", "sex", "race"]
    assert not list(tmp_path.glob("*.partial"))


def test_cli_cohort_user_errors(tmp_path, capsys):
    assert main(["cohort", "nih", "--root", str(tmp_path / "absent")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["cohort", "no-such-cohort"]) == 2
    assert "unknown cohort" in capsys.readouterr().err
    assert main(["cohort", "nih", "--option", "colour=1"]) == 2
    assert "unknown option 'colour'" in capsys.readouterr().err


def test_list_cohorts(capsys):
    assert main(["list", "cohorts"]) == 0
    out = capsys.readouterr().out
    assert "nih-6x200" in out and "nih " in out
    assert any(line.startswith("nih-6x200") for line in describe_cohorts())


def test_paper_a_rule_readings_on_the_real_table():
    """The counts behind the Paper A chapter's cohort paragraph (real NIH table): the stated
    criterion admits 13 findings (any-label images) or 11 (single-label; Edema's old-female
    group has 47), our reading exactly the paper's six."""
    from compendium.cohorts.nih6x200 import rule_comparison

    t = rule_comparison().set_index("finding")
    assert int(t["stated, any-label"].sum()) == 13 and int(t["stated, single-label"].sum()) == 11
    assert sorted(t.index[t["ours"]]) == ["Atelectasis", "Cardiomegaly", "Consolidation",
                                          "Edema", "Effusion", "Pneumothorax"]
    assert t.loc["Edema", "smallest group, single-label"] == 47
    assert not t.loc["Hernia", "stated, any-label"]
