"""INSPECT (Huang et al., 2023): CT pulmonary angiography volumes with PE and prognostic labels.

Layout under ``--root`` (Stanford AIMI release; file dates vary by release)::

    labels_<date>.tsv          impression_id, pe_positive_nlp, 1_month_mortality, 6_month_mortality,
                               12_month_mortality, 1_month_readmission, 6_month_readmission,
                               12_month_readmission, 12_month_PH   (True / False / Censored)
    study_mapping_<date>.tsv   impression_id, person_id, image_id, procedure_DATETIME
    splits_<date>.tsv          impression_id, split (train / valid / test)
    CTPA/<image_id>.nii.gz     the CTPA volume (NIfTI, Hounsfield units)
    person.csv[.gz]            OMOP person table from the INSPECT EHR (optional; or demographics=PATH)

Labels: PE diagnosis (``pe_positive_nlp``) plus the seven prognostic tasks Paper B audits
(mortality and readmission at 1, 6 and 12 months; pulmonary hypertension at 12 months).
``Censored`` becomes NaN.  Demographics (OMOP): sex from ``gender_concept_id`` (8507 male,
8532 female) or ``gender_source_value``; age at the study = study year - ``year_of_birth``;
race/ethnicity = ``Hispanic`` when ``ethnicity_concept_id`` is 38003563, else the race
concept (8527 White, 8516 Black, 8515 Asian, 8557 NHPI, 8657 AIAN, other ids Other, 0 unknown).
Age bands default to Paper B's (18-40, 40-60, 60-75, 75-90).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError, InputError
from ._common import check_files, find_file, finish, read_table, require_columns, require_root
from .base import Cohort, register_cohort
from .splits import add_age_group

INSPECT_LABELS = ("pe_positive_nlp", "1_month_mortality", "6_month_mortality", "12_month_mortality",
                  "1_month_readmission", "6_month_readmission", "12_month_readmission", "12_month_PH")
RACE_CONCEPTS = {8527: "White", 8516: "Black", 8515: "Asian", 8557: "NHPI", 8657: "AIAN"}
HISPANIC = 38003563
SPLITS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def _tsv(root: Path, stem: str) -> pd.DataFrame:
    path = find_file(root, [f"{stem}_*.tsv", f"{stem}.tsv", f"{stem}_*.csv", f"{stem}.csv"], "inspect",
                     f"{stem} table")
    return read_table(path, "inspect", sep="\t" if path.suffix == ".tsv" else ",", dtype={"impression_id": str})


def _label(v: pd.Series, name: str) -> pd.Series:
    s = v.astype("string").str.strip().str.lower()
    out = s.map({"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "censored": np.nan})
    bad = s.notna() & out.isna() & (s != "censored")
    if bad.any():
        raise InputError(f"inspect: label {name!r} holds {v[bad].iloc[0]!r} (expected True, False or Censored)")
    return out.astype(float)


def omop_demographics(person: pd.DataFrame) -> pd.DataFrame:
    """``person_id``, ``sex``, ``year_of_birth``, ``race`` from an OMOP person table."""
    require_columns(person, ("person_id", "year_of_birth"), "inspect", "person table")
    out = pd.DataFrame({"person_id": person["person_id"].astype(str),
                        "year_of_birth": pd.to_numeric(person["year_of_birth"], errors="coerce")})
    if "gender_concept_id" in person:
        out["sex"] = person["gender_concept_id"].map({8507: "M", 8532: "F"}).to_numpy()
    elif "gender_source_value" in person:
        out["sex"] = person["gender_source_value"].astype("string").str.upper().str[0].map(
            {"M": "M", "F": "F"}).to_numpy()
    else:
        out["sex"] = np.nan
    race = pd.Series(np.nan, index=person.index, dtype=object)
    if "race_concept_id" in person:
        rc = pd.to_numeric(person["race_concept_id"], errors="coerce")
        race = rc.map(RACE_CONCEPTS).astype(object)
        race[(rc.notna() & (rc != 0) & race.isna()).to_numpy()] = "Other"
    if "ethnicity_concept_id" in person:
        race[(pd.to_numeric(person["ethnicity_concept_id"], errors="coerce") == HISPANIC).to_numpy()] = "Hispanic"
    out["race"] = race.to_numpy()
    return out.drop_duplicates("person_id")


@register_cohort("inspect", description="INSPECT CTPA: PE + 7 prognostic labels, official split, OMOP demographics",
                 source="real", needs_root=True)
def build_inspect(*, root: str | Path | None = None, seed: int = 0,
                  demographics: str | Path | None = None, drop_missing: bool = False,
                  age_scheme: str = "paper_b") -> Cohort:
    """Build the INSPECT cohort (one row per CTPA study; ``volume_path`` -> NIfTI)."""
    rootp = require_root(root, "inspect", hint="; INSPECT is distributed by Stanford AIMI under a DUA")
    labels = _tsv(rootp, "labels")
    require_columns(labels, ("impression_id",) + INSPECT_LABELS, "inspect", "labels")
    mapping = _tsv(rootp, "study_mapping")
    require_columns(mapping, ("impression_id", "person_id", "image_id"), "inspect", "study_mapping")
    splits = _tsv(rootp, "splits")
    require_columns(splits, ("impression_id", "split"), "inspect", "splits")
    df = (mapping.drop_duplicates("impression_id")
          .merge(labels.drop_duplicates("impression_id"), on="impression_id", how="inner")
          .merge(splits.drop_duplicates("impression_id")[["impression_id", "split"]],
                 on="impression_id", how="left"))
    unknown = set(df["split"].dropna().astype(str)) - set(SPLITS)
    if unknown:
        raise InputError(f"inspect: unknown split value(s) {sorted(unknown)}")
    table = pd.DataFrame({
        "sample_id": df["impression_id"].astype(str), "patient_id": df["person_id"].astype(str),
        "image_id": df["image_id"].astype(str), "split": df["split"].map(SPLITS).fillna(""),
        "volume_path": ["CTPA/" + str(i) + ".nii.gz" for i in df["image_id"]],
    })
    if "procedure_DATETIME" in df:
        table["study_time"] = pd.to_datetime(df["procedure_DATETIME"], errors="coerce").to_numpy()
    for lab in INSPECT_LABELS:
        table[lab] = _label(df[lab], lab).to_numpy()
    notes = [f"{len(table)} studies with labels, mapping and split"]
    person_path = Path(demographics) if demographics else None
    if person_path is None:
        hits = sorted(rootp.glob("person.csv*")) + sorted(rootp.glob("EHR/person.csv*"))
        person_path = hits[0] if hits else None
    if person_path is not None:
        if not person_path.is_file():
            raise DataNotFoundError(f"inspect: demographics file {str(person_path)!r} not found")
        demo = omop_demographics(read_table(person_path, "inspect"))
        table = table.merge(demo, left_on="patient_id", right_on="person_id", how="left").drop(columns=["person_id"])
        year = table["study_time"].dt.year if "study_time" in table else np.nan
        table["age"] = year - table["year_of_birth"]
        table = table.drop(columns=["year_of_birth"])
        notes.append(f"demographics from {person_path.name}: {int(table['sex'].notna().sum())} studies matched")
    else:
        table["age"], table["sex"], table["race"] = np.nan, np.nan, np.nan
        notes.append("no OMOP person table: age, sex and race unknown")
    table = check_files(table, "volume_path", rootp, "inspect", drop_missing=drop_missing)
    table = add_age_group(table, age_scheme)
    return Cohort(name="inspect", table=finish(table, INSPECT_LABELS), labels=INSPECT_LABELS, source="real",
                  pixel_column="volume_path", root=str(rootp), task="multilabel", report="\n".join(notes))
