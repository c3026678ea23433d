"""Real-data builders, each on a fixture written in the dataset's own on-disk format:
CheXpert, MIMIC-CXR-JPG (+MIMIC-IV demographics), VinDr-CXR (DICOM), Open-i (XML),
INSPECT (NIfTI + TSVs), MIMIC-IV EHR stays (76 features).  Plus their error paths and the
metadata-only cohorts built from the copies shipped with torchxrayvision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from cohort_fixtures import write_dicom, write_jpeg, write_nifti

from compendium.cohorts import build_cohort, load_builders
from compendium.cohorts.chexpert import CHEXPERT_LABELS
from compendium.cohorts.inspect_ctpa import INSPECT_LABELS
from compendium.cohorts.mimic_iv_ehr import StayNormalizer, discretize, feature_names, load_stay
from compendium.errors import ConfigError, DataNotFoundError, InputError

# ------------------------------------------------------------------------------ CheXpert


def write_chexpert(root, *, skip=()):
    d = root / "CheXpert-v1.0-small"
    head = "Path,Sex,Age,Frontal/Lateral,AP/PA," + ",".join(CHEXPERT_LABELS)
    def row(p, s, a, fl, ap, cm, ef):  # Cardiomegaly, Pleural Effusion; others blank
        labels = {"Cardiomegaly": cm, "Pleural Effusion": ef}
        return f"{p},{s},{a},{fl},{ap}," + ",".join(str(labels.get(lab, "")) for lab in CHEXPERT_LABELS)
    train = [
        row("CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg", "Female", 68, "Frontal", "AP", 1.0, -1.0),
        row("CheXpert-v1.0-small/train/patient00001/study1/view2_lateral.jpg", "Female", 68, "Lateral", "", 1.0, -1.0),
        row("CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg", "Male", 45, "Frontal", "PA", 0.0, ""),
        row("CheXpert-v1.0-small/train/patient00003/study2/view1_frontal.jpg", "Male", 81, "Frontal", "AP", -1.0, 1.0),
        row("CheXpert-v1.0-small/train/patient00004/study1/view1_frontal.jpg", "Unknown", 0, "Frontal", "AP", "", 0.0),
    ]
    valid = [row("CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg", "Male", 73, "Frontal", "AP", 1.0, 0.0)]
    d.mkdir(parents=True)
    (d / "train.csv").write_text("\n".join([head] + train) + "\n")
    (d / "valid.csv").write_text("\n".join([head] + valid) + "\n")
    for line in train + valid:
        p = line.split(",")[0]
        if p not in skip:
            write_jpeg(root / p)
    (root / "demo.csv").write_text("PATIENT,GENDER,AGE_AT_CXR,PRIMARY_RACE,ETHNICITY\n"
                                   "patient00001,Female,68,White,Non-Hispanic/Non-Latino\n"
                                   "patient00002,Male,45,\"Black or African American\",Non-Hispanic/Non-Latino\n"
                                   "patient00003,Male,81,Other,Hispanic/Latino\n")
    return root


@pytest.mark.parametrize("policy,expected", [("ones", (1.0, 1.0)), ("zeros", (0.0, 0.0)),
                                             ("ignore", (np.nan, np.nan))])
def test_chexpert_uncertainty_policies(tmp_path, policy, expected):
    c = build_cohort("chexpert", root=write_chexpert(tmp_path), uncertainty=policy,
                     demographics=tmp_path / "demo.csv")
    t = c.table.set_index("patient_id")
    assert len(c.table) == 5 and c.source == "real"   # the lateral view is dropped
    np.testing.assert_array_equal([t.loc["patient00001", "Pleural Effusion"], t.loc["patient00003", "Cardiomegaly"]], expected)
    assert t.loc["patient00001", "Cardiomegaly"] == 1.0 and np.isnan(t.loc["patient00002", "Pleural Effusion"])
    assert t.loc["patient00001", "sex"] == "F" and t.loc["patient00002", "sex"] == "M"
    assert pd.isna(t.loc["patient00004", "sex"]) and np.isnan(t.loc["patient00004", "age"])
    assert t.loc["patient00002", "race"] == "Black" and t.loc["patient00003", "race"] == "Hispanic"
    assert pd.isna(t.loc["patient00004", "race"])
    assert t.loc["patient64541", "split"] == "val" and t.loc["patient00002", "split"] == "train"
    assert (tmp_path / t.loc["patient00002", "image_path"]).is_file()


def test_chexpert_errors_and_shipped(tmp_path):
    root = write_chexpert(tmp_path, skip=("CheXpert-v1.0-small/train/patient00003/study2/view1_frontal.jpg",))
    with pytest.raises(DataNotFoundError, match="1 of 5 listed files are missing.*patient00003"):
        build_cohort("chexpert", root=root)
    assert len(build_cohort("chexpert", root=root, drop_missing=True).table) == 4
    with pytest.raises(ConfigError, match="unknown uncertainty policy 'maybe'"):
        build_cohort("chexpert", root=root, uncertainty="maybe")
    with pytest.raises(DataNotFoundError, match="no train.csv"):
        build_cohort("chexpert", root=tmp_path / "CheXpert-v1.0-small" / "train")
    csv = root / "CheXpert-v1.0-small" / "train.csv"
    csv.write_text(csv.read_text().replace("Frontal/Lateral", "View"))
    with pytest.raises(InputError, match="lacks column.*'Frontal/Lateral'"):
        build_cohort("chexpert", root=root)
    shipped = build_cohort("chexpert", uncertainty="zeros")
    assert shipped.source == "real-metadata" and len(shipped.table) == 191027
    assert not (shipped.label_matrix() == -1).any()


# ----------------------------------------------------------------------------- MIMIC-CXR

MIMIC_LABELS = ",".join(CHEXPERT_LABELS)


def write_mimic_cxr(root, *, skip=()):
    images = [  # dicom_id, subject, study, view, date, time, split
        ("d1", 10000032, 50414267, "PA", 21800506, 213014.531, "train"),
        ("d2", 10000032, 50414267, "LATERAL", 21800506, 213015.0, "train"),
        ("d3", 10000032, 53189527, "AP", 21800626, 165500.312, "train"),
        ("d4", 10000764, 57375967, "AP", 21320101, 120000.0, "validate"),
        ("d5", 10000898, 50771383, "PA", 21860403, 80000.0, "test"),
        ("d6", 11000011, 51000001, "PA", 21700301, 101010.0, "train"),
    ]
    meta = ["dicom_id,subject_id,study_id,PerformedProcedureStepDescription,ViewPosition,Rows,Columns,StudyDate,StudyTime"]
    split = ["dicom_id,study_id,subject_id,split"]
    for d, s, st, v, date, time, sp in images:
        meta.append(f"{d},{s},{st},CHEST (PA AND LAT),{v},3056,2544,{date},{time}")
        split.append(f"{d},{st},{s},{sp}")
        if d not in skip:
            write_jpeg(root / f"files/p{str(s)[:2]}/p{s}/s{st}/{d}.jpg")
    (root / "mimic-cxr-2.0.0-metadata.csv").write_text("\n".join(meta) + "\n")
    (root / "mimic-cxr-2.0.0-split.csv").write_text("\n".join(split) + "\n")
    pd.DataFrame({"dicom_id": []}).to_csv(root / "unused.csv")

    def labels(values):
        rows = [f"subject_id,study_id,{MIMIC_LABELS}"]
        for (s, st), lab in values.items():
            rows.append(f"{s},{st}," + ",".join(str(lab.get(l, "")) for l in CHEXPERT_LABELS))
        return "\n".join(rows) + "\n"
    studies = {(10000032, 50414267): {"No Finding": 1.0}, (10000032, 53189527): {"Edema": -1.0},
               (10000764, 57375967): {"Edema": 1.0, "Pneumonia": 0.0},
               (10000898, 50771383): {"No Finding": 1.0}, (11000011, 51000001): {"Atelectasis": 1.0}}
    (root / "mimic-cxr-2.0.0-chexpert.csv").write_text(labels(studies))
    negbio = {k: dict(v) for k, v in studies.items()}
    negbio[(10000032, 53189527)] = {"Edema": 1.0}
    (root / "mimic-cxr-2.0.0-negbio.csv").write_text(labels(negbio))
    iv = root / "mimic-iv" / "hosp"
    iv.mkdir(parents=True)
    (iv / "patients.csv").write_text("subject_id,gender,anchor_age,anchor_year,anchor_year_group,dod\n"
                                     "10000032,F,52,2180,2014 - 2016,\n10000764,M,86,2132,2014 - 2016,\n"
                                     "10000898,F,33,2186,2008 - 2010,\n")
    (iv / "admissions.csv").write_text("subject_id,hadm_id,admittime,race\n"
                                       "10000032,1,2180-05-06,WHITE\n10000032,2,2180-06-26,UNKNOWN\n"
                                       "10000032,3,2180-07-01,WHITE - OTHER EUROPEAN\n"
                                       "10000764,4,2132-01-01,BLACK/AFRICAN AMERICAN\n"
                                       "10000898,5,2186-04-03,HISPANIC/LATINO - PUERTO RICAN\n")
    return root


def test_mimic_cxr_builder(tmp_path):
    root = write_mimic_cxr(tmp_path)
    c = build_cohort("mimic-cxr", root=root, mimic_iv=root / "mimic-iv")
    t = c.table.set_index("sample_id")
    assert sorted(t.index) == ["d1", "d3", "d4", "d5", "d6"]          # the lateral is dropped
    assert t.loc["d3", "image_path"] == "files/p10/p10000032/s53189527/d3.jpg"
    assert t.loc["d1", "split"] == "train" and t.loc["d4", "split"] == "val" and t.loc["d5", "split"] == "test"
    assert t.loc["d3", "Edema"] == 1.0 and t.loc["d4", "Pneumonia"] == 0.0 and np.isnan(t.loc["d1", "Edema"])
    assert t.loc["d1", "age"] == 52 and t.loc["d4", "age"] == 86 and t.loc["d5", "age"] == 33
    assert t.loc["d1", "sex"] == "F" and t.loc["d4", "sex"] == "M"
    assert t.loc["d1", "race"] == "White" and t.loc["d4", "race"] == "Black" and t.loc["d5", "race"] == "Hispanic"
    assert pd.isna(t.loc["d6", "race"]) and np.isnan(t.loc["d6", "age"])
    assert pd.isna(t.loc["d1", "age_group"]) and t.loc["d5", "age_group"] == "18-40"   # Paper C: 18-40 vs 80+
    assert t.loc["d4", "age_group"] == "80+"
    z = build_cohort("mimic-cxr", root=root, uncertainty="zeros").table.set_index("sample_id")
    assert z.loc["d3", "Edema"] == 0.0 and z["age"].isna().all()
    nb = build_cohort("mimic-cxr", root=root, labeler="negbio", uncertainty="zeros").table.set_index("sample_id")
    assert nb.loc["d3", "Edema"] == 1.0
    # unmentioned as negative: d1's blank Edema becomes 0, d3's uncertain one stays unknown
    neg = build_cohort("mimic-cxr", root=root, uncertainty="ignore",
                       unmentioned="negative").table.set_index("sample_id")
    assert neg.loc["d1", "Edema"] == 0.0 and np.isnan(neg.loc["d3", "Edema"])


def test_mimic_cxr_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no dataset root"):
        build_cohort("mimic-cxr")
    root = write_mimic_cxr(tmp_path, skip=("d3", "d5"))
    with pytest.raises(DataNotFoundError, match=r"2 of 5 listed files are missing .*d3\.jpg"):
        build_cohort("mimic-cxr", root=root)
    assert len(build_cohort("mimic-cxr", root=root, drop_missing=True).table) == 3
    with pytest.raises(ConfigError, match="unknown labeler"):
        build_cohort("mimic-cxr", root=root, labeler="gpt")
    (root / "mimic-cxr-2.0.0-split.csv").unlink()
    with pytest.raises(DataNotFoundError, match="mimic-cxr-2.0.0-split not found"):
        build_cohort("mimic-cxr", root=root)


# ---------------------------------------------------------------------------- VinDr-CXR

VINDR = ["Aortic enlargement", "Cardiomegaly", "Pleural effusion", "No finding"]


def write_vindr(root):
    ann = root / "annotations"
    ann.mkdir(parents=True)
    train = [  # image, rad, labels (AE, CM, PE, NF)
        ("img1", "R1", (1, 1, 0, 0)), ("img1", "R2", (1, 0, 0, 0)), ("img1", "R3", (0, 0, 0, 1)),
        ("img2", "R1", (0, 0, 0, 1)), ("img2", "R4", (0, 0, 0, 1)), ("img2", "R5", (0, 0, 1, 0)),
        ("img3", "R2", (0, 1, 1, 0)), ("img3", "R3", (0, 1, 1, 0)), ("img3", "R6", (0, 1, 0, 0)),
    ]
    rows = ["image_id,rad_id," + ",".join(VINDR)] + [f"{i},{r}," + ",".join(map(str, v)) for i, r, v in train]
    (ann / "image_labels_train.csv").write_text("\n".join(rows) + "\n")
    (ann / "image_labels_test.csv").write_text("image_id," + ",".join(VINDR) + "\nimg4,0,0,1,0\nimg5,0,0,0,1\n")
    ramp = np.arange(64, dtype=np.uint16).reshape(8, 8) * 50
    write_dicom(root / "train/img1.dicom", ramp, photometric="MONOCHROME1", sex="M", age="045Y")
    write_dicom(root / "train/img2.dicom", ramp, slope=2, intercept=-100, sex="F", age="071Y")
    write_dicom(root / "train/img3.dicom", ramp, sex="O", age="")
    write_dicom(root / "test/img4.dicom", ramp, sex="F", age="030Y")
    write_dicom(root / "test/img5.dicom", ramp, sex="M", age="006M")
    return root


@pytest.mark.parametrize("how,img1,img3", [("majority", (1, 0, 0, 0), (0, 1, 1, 0)),
                                            ("any", (1, 1, 0, 1), (0, 1, 1, 0)),
                                            ("all", (0, 0, 0, 0), (0, 1, 0, 0))])
def test_vindr_aggregation_and_headers(tmp_path, how, img1, img3):
    c = build_cohort("vindr-cxr", root=write_vindr(tmp_path), aggregate=how, val_fraction=0.0)
    t = c.table.set_index("sample_id")
    assert c.labels == tuple(VINDR)
    assert tuple(t.loc["img1", VINDR].astype(int)) == img1 and tuple(t.loc["img3", VINDR].astype(int)) == img3
    assert t.loc["img4", "split"] == "test" and t.loc["img1", "split"] == "train"
    assert t.loc["img1", "n_readers"] == 3 and t.loc["img4", "n_readers"] == 1
    assert t.loc["img1", "sex"] == "M" and t.loc["img1", "age"] == 45 and pd.isna(t.loc["img3", "sex"])
    assert t.loc["img5", "age"] == pytest.approx(0.5) and np.isnan(t.loc["img3", "age"])
    assert t.loc["img2", "image_path"] == "train/img2.dicom"


def test_vindr_pixels_through_the_dataset(tmp_path, monkeypatch):
    from compendium.imaging import read_dicom
    from compendium.imaging.dataset import CohortDataset

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    root = write_vindr(tmp_path)
    m1 = read_dicom(root / "train/img1.dicom")
    assert m1[0, 0] == 63 * 50 and m1[-1, -1] == 0           # MONOCHROME1 inverted
    assert read_dicom(root / "train/img2.dicom")[-1, -1] == 63 * 50 * 2 - 100
    ds = CohortDataset(build_cohort("vindr-cxr", root=root), size=8)
    first = ds[0]["img"][0].numpy()
    assert first[0, 0] == 1.0 and first[-1, -1] == 0.0         # img1: bright top-left after inversion


def test_vindr_errors_and_shipped(tmp_path):
    root = write_vindr(tmp_path)
    (root / "train/img2.dicom").unlink()
    with pytest.raises(DataNotFoundError, match="1 of 5 listed files are missing.*img2.dicom"):
        build_cohort("vindr-cxr", root=root)
    (root / "train/img3.dicom").write_bytes(b"junk")
    with pytest.raises(InputError, match="cannot read DICOM .*img3.dicom"):
        build_cohort("vindr-cxr", root=root, drop_missing=True)
    with pytest.raises(ConfigError, match="unknown aggregate"):
        build_cohort("vindr-cxr", root=root, aggregate="vote")
    shipped = build_cohort("vindr-cxr")
    assert len(shipped.table) == 15000 and "No finding" in shipped.labels and shipped.source == "real-metadata"


# ------------------------------------------------------------------------------- Open-i

XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="CXR{n}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="COMPARISON">None.</AbstractText>
<AbstractText Label="INDICATION">{ind}</AbstractText>
<AbstractText Label="FINDINGS">{fin}</AbstractText>
<AbstractText Label="IMPRESSION">{imp}</AbstractText>
</Abstract></Article></MedlineCitation>
<MeSH>{mesh}</MeSH>{images}</eCitation>"""


def write_openi(root):
    xml = root / "ecgen-radiology"
    xml.mkdir(parents=True)
    reports = [
        (1, "Positive TB test", "Clear lungs.", "Normal chest.", "<major>normal</major>", ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]),
        (2, "XXXX-year-old male, chest pain.", "Cardiomegaly. Small effusion.", "Cardiomegaly.",
         "<major>Cardiomegaly/mild</major><automatic>cardiomegaly</automatic><automatic>pleural effusion</automatic>", ["CXR2_IM-0652-1001"]),
        (3, "Female with dyspnea", "Patchy infiltrate.", "Pneumonia.",
         "<major>Infiltrate/lung</major><automatic>infiltrate</automatic>", ["CXR3_IM-1384-1001"]),
    ]
    for n, ind, fin, imp, mesh, imgs in reports:
        images = "".join(f'<parentImage id="{i}"><caption>x</caption></parentImage>' for i in imgs)
        (xml / f"{n}.xml").write_text(XML.format(n=n, ind=ind, fin=fin, imp=imp, mesh=mesh, images=images))
    meta = pd.DataFrame({
        "imageid": ["CXR1_IM-0001-3001", "CXR1_IM-0001-4001", "CXR2_IM-0652-1001", "CXR3_IM-1384-1001"],
        "Patient ID": [1, 1, 2, 3], "View Position": ["PA", "LL", "PA", "AP"],
        "Patient's Sex": [np.nan, np.nan, np.nan, "F"],
        "Patient's Birth Date": [19550820, 19550820, 19400101, 19800615],
        "Study Date": [20110328, 20110328, 20100101, 20120615],
        "filename": ["./1_IM-0001-3001.dcm", "./1_IM-0001-4001.dcm", "./2_IM-0652-1001.dcm", "./3_IM-1384-1001.dcm"],
    })
    meta.to_csv(root / "nlmcxr_dicom_metadata.csv", index=False)
    for i in range(4):
        write_dicom(root / "NLMCXR_dcm" / meta["filename"][i][2:], np.full((6, 6), 100 * i, np.uint16))
    return root


def test_openi_reports_and_metadata(tmp_path):
    c = build_cohort("openi", root=write_openi(tmp_path))
    t = c.table.set_index("sample_id")
    assert len(t) == 4 and c.pixel_column == "image_path"
    r2 = t.loc["CXR2_IM-0652-1001"]
    assert r2["indication"] == "XXXX-year-old male, chest pain." and r2["impression"] == "Cardiomegaly."
    assert r2["Cardiomegaly"] == 1 and r2["Effusion"] == 1 and r2["No Finding"] == 0
    assert r2["sex"] == "M" and r2["sex_source"] == "report text" and r2["age"] == pytest.approx(70, abs=0.1)
    r3 = t.loc["CXR3_IM-1384-1001"]
    assert r3["Infiltration"] == 1 and r3["sex"] == "F" and r3["sex_source"] == "dicom"
    r1 = t.loc["CXR1_1_IM-0001-3001"]
    assert r1["No Finding"] == 1 and pd.isna(r1["sex"]) and r1["patient_id"] == "1"
    assert r1["image_path"] == "NLMCXR_dcm/1_IM-0001-3001.dcm"
    assert list(build_cohort("openi", root=tmp_path, views=("PA",)).table["view"]) == ["PA", "PA"]


def test_openi_errors_and_shipped(tmp_path):
    root = write_openi(tmp_path)
    (root / "ecgen-radiology" / "3.xml").write_text("<eCitation><uId")
    with pytest.raises(InputError, match="cannot parse 3.xml"):
        build_cohort("openi", root=root)
    shipped = build_cohort("openi")
    assert shipped.source == "real-metadata" and len(shipped.table) == 7470
    assert shipped.table["report_id"].nunique() == 3851
    assert (shipped.table["sex_source"] != "dicom").all()     # the shipped headers have no sex


# ------------------------------------------------------------------------------ INSPECT


def write_inspect(root, *, n=6):
    ids = [f"PE{i:04x}" for i in range(n)]
    lab = pd.DataFrame({"impression_id": [str(100 + i) for i in range(n)],
                        "pe_positive_nlp": ["True", "False"] * (n // 2)})
    for k, name in enumerate(INSPECT_LABELS[1:]):
        lab[name] = [["False", "True", "Censored"][(i + k) % 3] for i in range(n)]
    lab.to_csv(root / "labels_20250611.tsv", sep="\t", index=False)
    pd.DataFrame({"impression_id": lab["impression_id"], "person_id": [1, 1, 2, 3, 4, 5][:n],
                  "image_id": ids, "procedure_DATETIME": [f"20{10 + i}-03-01 10:00:00" for i in range(n)]}
                 ).to_csv(root / "study_mapping_20250611.tsv", sep="\t", index=False)
    pd.DataFrame({"impression_id": lab["impression_id"], "split": ["train", "train", "valid", "test", "train", "test"][:n]}
                 ).to_csv(root / "splits_20250611.tsv", sep="\t", index=False)
    pd.DataFrame({"person_id": [1, 2, 3, 4, 5], "year_of_birth": [1980, 1950, 1990, 1940, 1960],
                  "gender_concept_id": [8507, 8532, 8532, 8507, 0],
                  "race_concept_id": [8527, 8516, 8515, 8557, 0],
                  "ethnicity_concept_id": [0, 0, 0, 0, 38003563]}).to_csv(root / "person.csv", index=False)
    for i, image in enumerate(ids):
        write_nifti(root / "CTPA" / f"{image}.nii.gz", np.full((8, 8, 5), -1000.0 + 100 * i))
    return root


def test_inspect_builder(tmp_path):
    c = build_cohort("inspect", root=write_inspect(tmp_path))
    t = c.table.set_index("sample_id")
    assert c.labels == INSPECT_LABELS and c.pixel_column == "volume_path" and len(t) == 6
    assert list(t["split"]) == ["train", "train", "val", "test", "train", "test"]
    assert t.loc["100", "pe_positive_nlp"] == 1 and t.loc["101", "pe_positive_nlp"] == 0
    assert t.loc["100", "1_month_mortality"] == 0 and t.loc["100", "6_month_mortality"] == 1
    assert np.isnan(t.loc["100", "12_month_mortality"])
    assert t.loc["100", "age"] == 2010 - 1980 and t.loc["101", "age"] == 2011 - 1980
    assert t.loc["100", "sex"] == "M" and t.loc["102", "sex"] == "F" and pd.isna(t.loc["105", "sex"])
    assert list(t["race"]) == ["White", "White", "Black", "Asian", "NHPI", "Hispanic"]
    assert t.loc["100", "age_group"] == "18-40" and t.loc["102", "age_group"] == "60-75"
    assert t.loc["104", "volume_path"] == "CTPA/PE0004.nii.gz"


def test_inspect_volumes_and_errors(tmp_path, monkeypatch):
    from compendium.imaging.dataset import CohortDataset

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    root = write_inspect(tmp_path)
    ds = CohortDataset(build_cohort("inspect", root=root), size=8, n_slices=2, window=(-600, 1500))
    # HU -1000 + 100 i through the lung window (-1350..150): (350 + 100 i) / 1500
    for i in (0, 3):
        assert float(ds[i]["img"].mean()) == pytest.approx(round((350 + 100 * i) / 1500 * 255) / 255, abs=1e-6)
    (root / "CTPA" / "PE0002.nii.gz").unlink()
    with pytest.raises(DataNotFoundError, match="1 of 6 listed files are missing.*PE0002"):
        build_cohort("inspect", root=root)
    lab = pd.read_csv(root / "labels_20250611.tsv", sep="\t")
    lab.drop(columns=["12_month_PH"]).to_csv(root / "labels_20250611.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="lacks column.*12_month_PH"):
        build_cohort("inspect", root=root, drop_missing=True)
    lab.assign(pe_positive_nlp="maybe").to_csv(root / "labels_20250611.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="expected True, False or Censored"):
        build_cohort("inspect", root=root, drop_missing=True)


# -------------------------------------------------------------------------- MIMIC-IV EHR


def write_stays(root, *, cxr=None):
    subjects = {10000032: [("30001", "2180-05-06 20:00", "2180-05-08 10:00", 0)],
                10000764: [("30002", "2132-01-01 08:00", "2132-01-03 08:00", 1),
                           ("30003", "2132-03-01 08:00", "2132-03-02 08:00", 0)],
                10000898: [("30004", "2186-04-02 00:00", "2186-04-05 00:00", 0)]}
    demo = {10000032: ("F", 52, "WHITE"), 10000764: ("M", 86, "BLACK/AFRICAN AMERICAN"),
            10000898: ("F", 33, "ASIAN")}
    for s, stays in subjects.items():
        d = root / str(s)
        d.mkdir(parents=True)
        g, a, r = demo[s]
        pd.DataFrame([{"subject_id": s, "hadm_id": 1, "stay_id": st, "intime": i, "outtime": o,
                       "gender": g, "age": a, "race": r, "mortality_inhospital": m}
                      for st, i, o, m in stays]).to_csv(d / "stays.csv", index=False)
        for k in range(len(stays)):
            pd.DataFrame({"Hours": [0.5, 1.0, 5.2, 9.9],
                          "Heart Rate": [80, 90, "", 100], "Glascow coma scale total": ["", "15", "", 8],
                          "Capillary refill rate": ["", "", 1.0, ""],
                          "Glascow coma scale eye opening": ["To Pain", "", "", ""]}
                         ).to_csv(d / f"episode{k + 1}_timeseries.csv", index=False)
    return root


def test_discretizer_76_features():
    names = feature_names()
    assert len(names) == 76 and sum(n.startswith("mask->") for n in names) == 17
    assert sum("->" in n and not n.startswith("mask->") for n in names) == 47
    ts = pd.DataFrame({"Hours": [0.5, 1.0, 5.2, 9.9], "Heart Rate": [80, 90, None, 100],
                       "Glascow coma scale total": [None, "15", None, 8],
                       "Capillary refill rate": [None, None, 1.0, None]})
    x = discretize(ts)
    col = {n: i for i, n in enumerate(names)}
    assert x.shape == (5, 76)                                    # bins [0,2) .. [8,10)
    np.testing.assert_array_equal(x[:, col["Heart Rate"]], [90, 90, 90, 90, 100])  # last in bin, then carried
    np.testing.assert_array_equal(x[:, col["mask->Heart Rate"]], [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(x[:, col["Glascow coma scale total->15"]], [1, 1, 1, 1, 0])
    np.testing.assert_array_equal(x[:, col["Glascow coma scale total->8"]], [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(x[:, col["Capillary refill rate->0.0"]], [1, 1, 0, 0, 0])   # normal, then observed 1.0
    np.testing.assert_allclose(x[:, col["Temperature"]], [36.6] * 5, rtol=1e-6)                    # never seen: normal value
    assert (x[:, col["mask->Temperature"]] == 0).all()
    normal_only = discretize(ts, impute="normal")
    assert normal_only[2, col["Heart Rate"]] == 86
    onehot = [i for i, n in enumerate(names) if n.startswith("Glascow coma scale eye opening->")]
    assert (x[:, onehot].sum(axis=1) == 1).all()
    with pytest.raises(InputError, match="unknown category"):
        discretize(pd.DataFrame({"Hours": [1], "Glascow coma scale total": ["16"]}))


def test_mimic_iv_ehr_builder_links_cxr(tmp_path):
    ehr = write_stays(tmp_path / "ehr")
    (tmp_path / "cxr").mkdir()
    cxr = write_mimic_cxr(tmp_path / "cxr")
    c = build_cohort("mimic-iv-ehr", root=ehr, mimic_cxr=cxr, seed=0)
    t = c.table.set_index("sample_id")
    assert sorted(t.index) == ["30001", "30002", "30003", "30004"] and c.labels == ("in_hospital_mortality",)
    assert t.loc["30002", "in_hospital_mortality"] == 1 and t.loc["30002", "race"] == "Black"
    assert t.loc["30003", "timeseries_path"] == "10000764/episode2_timeseries.csv"
    # 10000032's PA (d1) at 2180-05-06 21:30 falls in stay 30001; the AP d3 (June) does not
    assert t.loc["30001", "dicom_id"] == "d1" and t.loc["30001", "image_path"] == "files/p10/p10000032/s50414267/d1.jpg"
    assert pd.isna(t.loc["30003", "dicom_id"]) and t.loc["30002", "dicom_id"] == "d4"
    assert t.loc["30004", "dicom_id"] == "d5"
    assert t.groupby("patient_id")["split"].nunique().max() == 1
    only = build_cohort("mimic-iv-ehr", root=ehr, mimic_cxr=cxr, require_cxr=True)
    assert len(only.table) == 3 and only.pixel_column == "image_path"
    x = [load_stay(c, i) for i in range(len(c.table))]
    assert all(a.shape[1] == 76 for a in x)
    norm = StayNormalizer().fit(x)
    z = np.concatenate([norm.transform(a) for a in x])
    from compendium.cohorts.mimic_iv_ehr import continuous_columns
    hr = feature_names().index("Heart Rate")
    assert abs(z[:, hr].mean()) < 1e-5 and z[:, hr].std() == pytest.approx(1.0, abs=1e-5)
    assert hr in continuous_columns()


def test_mimic_iv_ehr_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="no <subject_id>/stays.csv"):
        build_cohort("mimic-iv-ehr", root=tmp_path)
    ehr = write_stays(tmp_path / "ehr")
    stays = ehr / "10000032" / "stays.csv"
    stays.write_text(stays.read_text().replace("outtime", "out_time"))
    with pytest.raises(InputError, match="lacks column.*'outtime'"):
        build_cohort("mimic-iv-ehr", root=ehr)
    with pytest.raises(ConfigError, match="not fitted"):
        StayNormalizer().transform(np.zeros((2, 76)))


# --------------------------------------------------------------------------- registry


def test_every_builder_is_registered():
    names = load_builders().names()
    for name in ("nih", "nih-6x200", "chexpert", "mimic-cxr", "vindr-cxr", "inspect", "mimic-iv-ehr", "openi"):
        assert name in names
