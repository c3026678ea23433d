"""Miniature datasets in the real on-disk layouts the ``full`` profiles read.

Each writer takes the rows of a cohort whose pixels come from the synthetic world (real public
metadata rows where the source publishes them: NIH's ``Data_Entry_2017``; synthetic rows
otherwise) and writes them the way the source ships them, so that the cohort builders of
:mod:`compendium.cohorts` read them exactly as they read a user's copy.  Each returns the
dataset folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohorts.base import Cohort
from .formats import write_image

NIH_HEADER = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
              "Patient Gender", "View Position", "OriginalImage[Width", "Height]",
              "OriginalImagePixelSpacing[x", "y]"]


def _render(cohort: Cohort, size: int) -> np.ndarray:
    from ..synthetic import render_rows

    return render_rows(cohort, None, size=size)


def write_nih(root: Path, raw: pd.DataFrame, images: np.ndarray, *,
              test_patients: Sequence[str] = ()) -> Path:
    """NIH ChestX-ray14: ``Data_Entry_2017_v2020.csv`` (``raw``: rows of the real table),
    ``images_001/images/<Image Index>`` PNGs (8-bit grey) and the official split lists."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    raw = raw.reset_index(drop=True)
    cols = [c for c in raw.columns if c in NIH_HEADER] or list(raw.columns)
    raw[cols].to_csv(root / "Data_Entry_2017_v2020.csv", index=False)
    for k, name in enumerate(raw["Image Index"].astype(str)):
        folder = root / f"images_{1 + k // 500:03d}" / "images"
        write_image(folder / name, images[k])
    test = raw["Patient ID"].astype(str).isin({str(p) for p in test_patients})
    (root / "test_list.txt").write_text("\n".join(raw.loc[test, "Image Index"]) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(raw.loc[~test, "Image Index"]) + "\n")
    return root


#: CheXpert's labels (MIMIC-CXR's label tables) drawn from the synthetic world's findings.
SYNTHETIC_TO_CHEXPERT = {"No Finding": "No Finding", "Cardiomegaly": "Cardiomegaly",
                         "Opacity": "Lung Opacity", "Mass": "Lung Lesion", "Edema": "Edema",
                         "Consolidation": "Consolidation", "Pneumonia": "Pneumonia",
                         "Atelectasis": "Atelectasis", "Pneumothorax": "Pneumothorax",
                         "Effusion": "Pleural Effusion"}


def mimic_ids(n: int, seed: int) -> pd.DataFrame:
    """MIMIC-CXR-shaped identifiers for ``n`` images: ``subject_id`` (8 digits from 1e7),
    ``study_id`` (8 digits from 5e7) and a 44-character ``dicom_id`` (as the real ones)."""
    rng = np.random.default_rng([seed, 21])
    subj = 10_000_000 + rng.choice(9_000_000, n, replace=False)
    study = 50_000_000 + rng.choice(9_000_000, n, replace=False)
    dicom = ["-".join(f"{int(x):08x}" for x in rng.integers(0, 2**32, 5)) for _ in range(n)]
    return pd.DataFrame({"subject_id": subj, "study_id": study, "dicom_id": dicom})


def write_mimic_cxr(root: Path, cohort: Cohort, images: np.ndarray, *, seed: int = 0,
                    mimic_iv: Path | None = None) -> tuple[Path, pd.DataFrame]:
    """MIMIC-CXR-JPG v2: ``files/pXX/pSUBJECT/sSTUDY/<dicom_id>.jpg``, the metadata, split,
    CheXpert and NegBio tables; with ``mimic_iv``, MIMIC-IV's ``hosp/patients.csv`` and
    ``hosp/admissions.csv`` for the same subjects (sex, age, race).  One frontal image per
    synthetic patient-study.  Returns the folder and the id map (``sample_id`` of the
    synthetic row -> ``dicom_id``...)."""
    from ..cohorts.chexpert import CHEXPERT_LABELS
    from ..cohorts.mimic_cxr import image_path

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t = cohort.table.reset_index(drop=True)
    ids = mimic_ids(len(t), seed)
    ids["sample_id"] = t["sample_id"].astype(str)
    rng = np.random.default_rng([seed, 22])
    year = 2110 + rng.integers(0, 80, len(t))
    date = [f"{y}{m:02d}{d:02d}" for y, m, d in zip(year, rng.integers(1, 13, len(t)),
                                                     rng.integers(1, 29, len(t)))]
    view = np.where(rng.random(len(t)) < 0.6, "PA", "AP")
    pd.DataFrame({"dicom_id": ids["dicom_id"], "subject_id": ids["subject_id"],
                  "study_id": ids["study_id"],
                  "PerformedProcedureStepDescription": "CHEST (PA AND LAT)",
                  "ViewPosition": view, "Rows": images.shape[1], "Columns": images.shape[2],
                  "StudyDate": date, "StudyTime": 120000.0}).to_csv(
        root / "mimic-cxr-2.0.0-metadata.csv", index=False)
    split = t["split"].map({"train": "train", "val": "validate", "test": "test"}).fillna("train")
    pd.DataFrame({"dicom_id": ids["dicom_id"], "study_id": ids["study_id"],
                  "subject_id": ids["subject_id"], "split": split}).to_csv(
        root / "mimic-cxr-2.0.0-split.csv", index=False)
    labels = pd.DataFrame({"subject_id": ids["subject_id"], "study_id": ids["study_id"]})
    for lab in CHEXPERT_LABELS:
        src = next((s for s, c in SYNTHETIC_TO_CHEXPERT.items() if c == lab), None)
        # the labeller leaves a finding it does not see unmentioned (blank), as in the real table
        labels[lab] = (t[src].where(t[src] == 1) if src in t else np.nan)
    labels.to_csv(root / "mimic-cxr-2.0.0-chexpert.csv", index=False)
    labels.to_csv(root / "mimic-cxr-2.0.0-negbio.csv", index=False)
    for k in range(len(t)):
        write_image(root / image_path(ids["subject_id"][k], ids["study_id"][k],
                                      ids["dicom_id"][k]), images[k])
    if mimic_iv is not None:
        hosp = Path(mimic_iv) / "hosp"
        hosp.mkdir(parents=True, exist_ok=True)
        age = t["age"].fillna(50).astype(int).clip(18, 91)
        pd.DataFrame({"subject_id": ids["subject_id"], "gender": t["sex"],
                      "anchor_age": age, "anchor_year": year,
                      "anchor_year_group": "2014 - 2016", "dod": ""}).to_csv(
            hosp / "patients.csv", index=False)
        race = t["race"].map({"White": "WHITE", "Black": "BLACK/AFRICAN AMERICAN",
                              "Asian": "ASIAN", "Hispanic": "HISPANIC/LATINO"}).fillna("UNKNOWN")
        pd.DataFrame({"subject_id": ids["subject_id"], "hadm_id": 20_000_000 + np.arange(len(t)),
                      "admittime": [f"{y}-01-01 00:00:00" for y in year],
                      "race": race}).to_csv(hosp / "admissions.csv", index=False)
    return root, ids


def write_embeddings(path: Path, sample_ids: Sequence[str], images: np.ndarray, *, dim: int,
                     tokens: int = 0, seed: int = 0) -> Path:
    """A vendor tool's embeddings file (``.npz``: ``sample_id``, ``embeddings`` (n, D) or
    (n, tokens, D)).  The rehearsal cannot run the vendor's model; its stand-in output is a
    fixed random projection of each image (downsampled to 32 px), so that images that look
    alike get embeddings that look alike."""
    from PIL import Image

    small = np.stack([np.asarray(Image.fromarray(np.asarray(im, np.uint8)).resize((32, 32)),
                                 np.float32).ravel() / 255.0 for im in images])
    small -= small.mean(axis=0, keepdims=True)
    rng = np.random.default_rng([seed, 23, dim, tokens])
    width = dim * max(tokens, 1)
    emb = small @ rng.normal(0, 1 / np.sqrt(small.shape[1]), (small.shape[1], width))
    emb = emb.astype(np.float32).reshape((len(images), tokens, dim) if tokens else (len(images), dim))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    from ..atomic import atomic_write

    with atomic_write(path, "wb") as fh:
        np.savez(fh, sample_id=np.asarray(list(sample_ids), dtype=str), embeddings=emb)
    return path


#: OMOP concepts of INSPECT's person table (compendium.cohorts.inspect_ctpa reads them back).
OMOP_SEX = {"M": 8507, "F": 8532}
OMOP_RACE = {"White": 8527, "Black": 8516, "Asian": 8515, "NHPI": 8557, "AIAN": 8657}
OMOP_HISPANIC = 38003563


def write_inspect(root: Path, cohort: Cohort, volumes: np.ndarray, *, labels: dict[str, str],
                  seed: int = 0, date: str = "20250611") -> tuple[Path, pd.DataFrame]:
    """INSPECT: ``labels_<date>.tsv`` (True / False / Censored), ``study_mapping_<date>.tsv``,
    ``splits_<date>.tsv`` (train / valid / test), ``CTPA/<image_id>.nii.gz`` (HU, int16 with
    scaling, axial slices along the last axis) and the OMOP ``person.csv``.  ``labels`` maps
    INSPECT's label columns to the cohort's; ``volumes`` is (n, depth, H, W) in HU.  Returns
    the folder and the ids (``impression_id``, ``person_id``, ``image_id`` per row)."""
    from .formats import write_nifti

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    t = cohort.table.reset_index(drop=True)
    rng = np.random.default_rng([seed, 28])
    impression = [str(x) for x in 1_000_000 + rng.choice(9_000_000, len(t), replace=False)]
    persons = {p: 100_000 + k for k, p in enumerate(pd.unique(t["patient_id"]))}
    person = t["patient_id"].map(persons).to_numpy()
    image = [f"PE{int(x):08x}" for x in rng.integers(0, 2**31, len(t))]
    year = 2000 + rng.integers(0, 20, len(t))
    lab = pd.DataFrame({"impression_id": impression})
    for real, ours in labels.items():
        v = t[ours].to_numpy(dtype=float)
        lab[real] = np.where(np.isnan(v), "Censored", np.where(v == 1, "True", "False"))
    lab.to_csv(root / f"labels_{date}.tsv", sep="\t", index=False)
    pd.DataFrame({"impression_id": impression, "person_id": person, "image_id": image,
                  "procedure_DATETIME": [f"{y}-03-01 10:00:00" for y in year]}).to_csv(
        root / f"study_mapping_{date}.tsv", sep="\t", index=False)
    # patient-wise 60/20/20 (the release's own split file has train / valid / test)
    order = rng.permutation(list(persons.values()))
    cut = {p: ("train" if k < 0.6 * len(order) else "valid" if k < 0.8 * len(order) else "test")
           for k, p in enumerate(order)}
    pd.DataFrame({"impression_id": impression, "split": [cut[p] for p in person]}).to_csv(
        root / f"splits_{date}.tsv", sep="\t", index=False)
    first = t.assign(person_id=person, year=year).drop_duplicates("person_id")
    pd.DataFrame({
        "person_id": first["person_id"],
        "year_of_birth": (first["year"] - first["age"].fillna(60)).astype(int),
        "gender_concept_id": first["sex"].map(OMOP_SEX).fillna(0).astype(int),
        "race_concept_id": first["race"].map(OMOP_RACE).fillna(0).astype(int),
        "ethnicity_concept_id": np.where(first["race"] == "Hispanic", OMOP_HISPANIC, 0)}
    ).to_csv(root / "person.csv", index=False)
    for k, name in enumerate(image):
        write_nifti(root / "CTPA" / f"{name}.nii.gz", np.transpose(volumes[k], (1, 2, 0)))
    return root, pd.DataFrame({"impression_id": impression, "person_id": person,
                               "image_id": image})


def write_vindr(root: Path, images: np.ndarray, *, seed: int = 0, n_test: int = 0
                ) -> tuple[Path, list[str]]:
    """VinDr-CXR: ``annotations/image_labels_train.csv`` (image_id, rad_id, one 0/1 column
    per finding) from the real per-radiologist rows of the VinBigData release (shipped by
    torchxrayvision), ``image_labels_test.csv`` (consensus) and ``train|test/<image_id>.dicom``
    (MONOCHROME2, 12 bits, ``PatientSex`` / ``PatientAge`` tags).  One image of ``images`` per
    image_id; the last ``n_test`` go to the test folder with the majority of their readers
    as consensus."""
    from ..cohorts._common import read_table, shipped_file
    from .formats import write_dicom

    raw = read_table(shipped_file("vinbigdata-train.csv.gz"), "vindr-cxr")
    rng = np.random.default_rng([seed, 29])
    chosen = list(rng.choice(sorted(raw["image_id"].unique()), len(images), replace=False))
    labels = sorted(raw["class_name"].unique())   # every class, as the release's file has
    raw = raw[raw["image_id"].isin(set(chosen))]
    wide = pd.crosstab([raw["image_id"], raw["rad_id"]], raw["class_name"]).clip(upper=1)
    wide = wide.reindex(columns=labels, fill_value=0).reset_index()
    test_ids = set(chosen[len(chosen) - n_test:]) if n_test else set()
    ann = Path(root) / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    wide[~wide["image_id"].isin(test_ids)].to_csv(ann / "image_labels_train.csv", index=False)
    if test_ids:
        cons = (wide[wide["image_id"].isin(test_ids)].groupby("image_id")[labels].mean() >= 0.5)
        cons.astype(int).reset_index().to_csv(ann / "image_labels_test.csv", index=False)
    for k, image_id in enumerate(chosen):
        split = "test" if image_id in test_ids else "train"
        write_dicom(Path(root) / split / f"{image_id}.dicom",
                    np.asarray(images[k], np.uint16) * 16,
                    sex=str(rng.choice(["M", "F"])), age=f"{int(rng.integers(20, 90)):03d}Y")
    return Path(root), chosen


def write_chexpert(root: Path, images: np.ndarray, *, seed: int = 0, n_valid: int = 0
                   ) -> tuple[Path, pd.DataFrame]:
    """CheXpert-v1.0: ``train.csv`` / ``valid.csv`` holding real rows of the released
    training table (shipped by torchxrayvision: ``Path``, sex, age, view, the 14
    observations), frontal views, one per patient, and their JPEGs at ``Path``; the last
    ``n_valid`` rows go to ``valid.csv`` (their paths under ``valid/``)."""
    from ..cohorts._common import read_table, shipped_file

    raw = read_table(shipped_file("chexpert_train.csv.gz"), "chexpert")
    raw = raw[raw["Frontal/Lateral"] == "Frontal"].copy()
    raw["_patient"] = raw["Path"].str.extract(r"(patient\d+)")[0]
    raw = raw.drop_duplicates("_patient")
    rng = np.random.default_rng([seed, 30])
    rows = raw.iloc[np.sort(rng.choice(len(raw), len(images), replace=False))].copy()
    ddir = Path(root) / "CheXpert-v1.0"
    ddir.mkdir(parents=True, exist_ok=True)
    rows["Path"] = rows["Path"].str.replace(r"^CheXpert-v1.0(-small)?/", "CheXpert-v1.0/",
                                            regex=True)
    valid = np.zeros(len(rows), bool)
    if n_valid:
        valid[-n_valid:] = True
        rows.loc[valid, "Path"] = rows.loc[valid, "Path"].str.replace("/train/", "/valid/")
    cols = [c for c in rows.columns if c != "_patient"]
    rows.loc[~valid, cols].to_csv(ddir / "train.csv", index=False)
    rows.loc[valid, cols].to_csv(ddir / "valid.csv", index=False)
    for k, p in enumerate(rows["Path"]):
        write_image(Path(root) / p, images[k])
    return Path(root), rows[cols].reset_index(drop=True)


def write_mimic_iv_ehr(root: Path, stays: pd.DataFrame, *, seed: int = 0,
                       hours: int = 24) -> Path:
    """The MIMIC-IV benchmark extraction: ``<subject_id>/stays.csv`` and
    ``episode1_timeseries.csv`` (``Hours`` + the 17 variables, hourly, ~30 % missing) per
    stay row of ``stays`` (subject_id, stay_id, intime, outtime, gender, age, race,
    mortality_inhospital).  Values: the benchmark's normal values with seeded noise."""
    from ..cohorts.mimic_iv_ehr import CATEGORICAL_VALUES, CHANNELS, NORMAL_VALUES

    rng = np.random.default_rng([seed, 31])
    for _, s in stays.iterrows():
        d = Path(root) / str(int(s["subject_id"]))
        d.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([s.to_dict()]).to_csv(d / "stays.csv", index=False)
        ts = {"Hours": np.arange(hours) + 0.5}
        for ch in CHANNELS:
            if ch in CATEGORICAL_VALUES:
                v = rng.choice(list(CATEGORICAL_VALUES[ch]), hours).astype(object)
            else:
                v = np.round(float(NORMAL_VALUES[ch]) * (1 + 0.05 * rng.normal(size=hours)), 2)
                v = v.astype(object)
            v[rng.random(hours) < 0.3] = ""
            ts[ch] = v
        pd.DataFrame(ts).to_csv(d / "episode1_timeseries.csv", index=False)
    return Path(root)
