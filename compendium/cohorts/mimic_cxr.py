"""MIMIC-CXR-JPG v2 (Johnson et al., 2019), from its own files (PhysioNet, credentialed).

Layout under ``--root``::

    mimic-cxr-2.0.0-metadata.csv[.gz]   dicom_id, subject_id, study_id, ViewPosition, StudyDate, StudyTime
    mimic-cxr-2.0.0-chexpert.csv[.gz]   subject_id, study_id, 14 CheXpert labels
    mimic-cxr-2.0.0-negbio.csv[.gz]     subject_id, study_id, 14 NegBio labels
    mimic-cxr-2.0.0-split.csv[.gz]      dicom_id, study_id, subject_id, split (train/validate/test)
    files/p10/p10000032/s50414267/<dicom_id>.jpg

Labels are per study (CheXpert or NegBio labeller; uncertainty policy as for CheXpert);
frontal images are those with ``ViewPosition`` PA or AP.  Age and race come from MIMIC-IV
(``mimic_iv=PATH``: a folder with ``patients.csv[.gz]`` and ``admissions.csv[.gz]``, directly
or under ``hosp/``): age at the study is ``anchor_age + (study year - anchor_year)``; race is
the patient's most frequent known ``race`` (``ethnicity`` in MIMIC-IV v1) over admissions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError
from ._common import (apply_uncertainty, check_files, coarse_race, find_file, finish,
                      normalise_sex, read_table, require_columns, require_root)
from .base import Cohort, register_cohort
from .chexpert import CHEXPERT_LABELS
from .splits import add_age_group

SPLITS = {"train": "train", "validate": "val", "test": "test"}


def _table(root: Path, stem: str) -> pd.DataFrame:
    path = find_file(root, [f"{stem}.csv.gz", f"{stem}.csv"], "mimic-cxr", stem)
    return read_table(path, "mimic-cxr")


def image_path(subject_id, study_id, dicom_id) -> str:
    """``files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`` of one image."""
    s = str(int(subject_id))
    return f"files/p{s[:2]}/p{s}/s{int(study_id)}/{dicom_id}.jpg"


def mimic_iv_demographics(path: str | Path, dataset: str = "mimic-cxr") -> pd.DataFrame:
    """Per-subject ``gender``, ``anchor_age``, ``anchor_year``, coarse ``race`` and
    ``race_detail`` from MIMIC-IV's ``patients`` and ``admissions`` tables."""
    base = Path(path)
    if not base.is_dir():
        raise DataNotFoundError(f"{dataset}: MIMIC-IV folder {str(base)!r} not found")
    pat = read_table(find_file(base, ["patients.csv.gz", "patients.csv", "hosp/patients.csv.gz",
                                      "hosp/patients.csv"], dataset, "MIMIC-IV patients table"), dataset)
    require_columns(pat, ("subject_id", "gender", "anchor_age", "anchor_year"), dataset, "patients")
    out = pat[["subject_id", "gender", "anchor_age", "anchor_year"]].copy()
    try:
        adm_path = find_file(base, ["admissions.csv.gz", "admissions.csv", "hosp/admissions.csv.gz",
                                    "hosp/admissions.csv"], dataset, "MIMIC-IV admissions table")
    except DataNotFoundError:
        adm_path = None
    if adm_path is not None:
        adm = read_table(adm_path, dataset)
        col = "race" if "race" in adm else "ethnicity"
        require_columns(adm, ("subject_id", col), dataset, "admissions")
        adm = adm.assign(race_group=coarse_race(adm[col]))
        known = adm[adm["race_group"].notna()]
        mode = (known.groupby(["subject_id", col, "race_group"]).size().reset_index(name="n")
                .sort_values(["subject_id", "n", col], ascending=[True, False, True])
                .drop_duplicates("subject_id"))
        out = out.merge(mode[["subject_id", "race_group", col]].rename(
            columns={"race_group": "race", col: "race_detail"}), on="subject_id", how="left")
    else:
        out["race"], out["race_detail"] = np.nan, np.nan
    return out


@register_cohort("mimic-cxr", description="MIMIC-CXR-JPG: CheXpert/NegBio labels, official split (+MIMIC-IV age, race)",
                 source="real", needs_root=True)
def build_mimic_cxr(*, root: str | Path | None = None, seed: int = 0, labeler: str = "chexpert",
                    uncertainty: str = "ones", unmentioned: str = "unknown",
                    frontal_only: bool = True,
                    mimic_iv: str | Path | None = None, drop_missing: bool = False,
                    check_images: bool = True, age_scheme: str = "paper_c") -> Cohort:
    """Build the MIMIC-CXR-JPG cohort (one row per image).

    Parameters
    ----------
    labeler : {"chexpert", "negbio"}
    uncertainty : {"ones", "zeros", "ignore"}
    unmentioned : {"unknown", "negative"}
        A finding the report does not mention: unknown (NaN) or negative (0).
    frontal_only : bool
        Keep PA and AP images only.
    mimic_iv : path, optional
        MIMIC-IV folder for sex, age at study and race.
    check_images : bool
        Check every JPEG exists (``drop_missing`` drops absent ones).
    """
    rootp = require_root(root, "mimic-cxr", hint="; MIMIC-CXR-JPG needs PhysioNet credentials")
    if labeler not in ("chexpert", "negbio"):
        raise ConfigError(f"mimic-cxr: unknown labeler {labeler!r} (allowed: chexpert, negbio)")
    meta = _table(rootp, "mimic-cxr-2.0.0-metadata")
    require_columns(meta, ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate"),
                    "mimic-cxr", "metadata")
    labels = _table(rootp, f"mimic-cxr-2.0.0-{labeler}")
    require_columns(labels, ("subject_id", "study_id") + CHEXPERT_LABELS, "mimic-cxr", labeler)
    split = _table(rootp, "mimic-cxr-2.0.0-split")
    require_columns(split, ("dicom_id", "split"), "mimic-cxr", "split")
    notes = [f"labels: {labeler}, U-{uncertainty}" if uncertainty != "ignore" else f"labels: {labeler}, uncertain -> NaN"]
    if frontal_only:
        meta = meta[meta["ViewPosition"].isin(["PA", "AP"])]
    labels = apply_uncertainty(labels, CHEXPERT_LABELS, uncertainty, "mimic-cxr",
                               unmentioned=unmentioned)
    notes.append(f"unmentioned findings: {'negative' if unmentioned == 'negative' else 'unknown'}")
    df = (meta.merge(labels.drop(columns=["subject_id"]), on="study_id", how="left")
              .merge(split[["dicom_id", "split"]], on="dicom_id", how="left"))
    unknown = set(df["split"].dropna()) - set(SPLITS)
    if unknown:
        raise ConfigError(f"mimic-cxr: unknown split value(s) {sorted(unknown)} in the split file")
    date = pd.to_datetime(df["StudyDate"].astype(str), format="%Y%m%d", errors="coerce")
    table = pd.DataFrame({
        "sample_id": df["dicom_id"].astype(str), "patient_id": df["subject_id"].astype(int).astype(str),
        "study_id": df["study_id"].astype(int).astype(str), "split": df["split"].map(SPLITS).fillna(""),
        "view": df["ViewPosition"], "study_date": date,
        "image_path": [image_path(a, b, c) for a, b, c in zip(df["subject_id"], df["study_id"], df["dicom_id"])],
        "age": np.nan, "sex": np.nan, "race": np.nan,
    })
    if "StudyTime" in df:
        t = pd.to_numeric(df["StudyTime"], errors="coerce").fillna(0).astype(int).astype(str).str.zfill(6)
        table["study_datetime"] = pd.to_datetime(df["StudyDate"].astype(str) + t.to_numpy(),
                                                 format="%Y%m%d%H%M%S", errors="coerce")
    for lab in CHEXPERT_LABELS:
        table[lab] = df[lab].to_numpy()
    if mimic_iv is not None:
        demo = mimic_iv_demographics(mimic_iv)
        demo["patient_id"] = demo["subject_id"].astype(int).astype(str)
        table = table.drop(columns=["age", "sex", "race"]).merge(
            demo.drop(columns=["subject_id"]), on="patient_id", how="left")
        table["age"] = table["anchor_age"] + (table["study_date"].dt.year - table["anchor_year"])
        table["sex"] = normalise_sex(table["gender"]).to_numpy()
        table = table.drop(columns=["gender", "anchor_age", "anchor_year"])
        notes.append(f"demographics from MIMIC-IV: {int(table['sex'].notna().sum())} of {len(table)} rows matched")
    else:
        notes.append("no mimic_iv: age, sex and race unknown")
    if check_images:
        table = check_files(table, "image_path", rootp, "mimic-cxr", drop_missing=drop_missing)
    table = add_age_group(table, age_scheme)
    return Cohort(name="mimic-cxr", table=finish(table, CHEXPERT_LABELS), labels=CHEXPERT_LABELS,
                  source="real", pixel_column="image_path", root=str(rootp), task="multilabel",
                  report="\n".join(notes))
