"""CheXpert (Irvin et al., AAAI 2019), v1.0 and v1.0-small, from its own files.

Layout under ``--root`` (the folder that holds the dataset folder, or the dataset folder)::

    CheXpert-v1.0-small/train.csv, valid.csv[, test.csv]
    CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg ...

``Path`` in the CSVs starts with the dataset folder's name.  Labels: 1 positive, 0 negative,
-1 uncertain, blank unmentioned; the uncertainty policy (U-ones, U-zeros, ignore) maps -1,
blanks stay NaN.  Race comes from the CheXpert demographics file (``CHEXPERT DEMO.xlsx`` or
a CSV export of it: ``PATIENT``, ``PRIMARY_RACE``, ``ETHNICITY``) when given.

Without a root, the ``chexpert_train.csv.gz`` shipped with torchxrayvision gives a
pixel-less cohort of the training table.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError, InputError
from ._common import (apply_uncertainty, check_files, coarse_race, finish, normalise_sex,
                      read_table, require_columns, require_root, shipped_file)
from .base import Cohort, register_cohort
from .splits import add_age_group

log = logging.getLogger(__name__)

CHEXPERT_LABELS = ("No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity",
                   "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
                   "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
                   "Support Devices")
COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
SPLIT_FILES = {"train.csv": "train", "valid.csv": "val", "test.csv": "test"}


def chexpert_table(raw: pd.DataFrame, *, uncertainty: str = "ones", frontal_only: bool = True,
                   dataset: str = "chexpert") -> pd.DataFrame:
    """Cohort columns from a CheXpert CSV (``Path``, ``Sex``, ``Age``, views, 14 labels)."""
    require_columns(raw, COLUMNS + CHEXPERT_LABELS, dataset, "the CheXpert table")
    if frontal_only:
        raw = raw[raw["Frontal/Lateral"] == "Frontal"]
    raw = apply_uncertainty(raw, CHEXPERT_LABELS, uncertainty, dataset)
    path = raw["Path"].astype(str)
    patient = path.str.extract(r"(patient\d+)", expand=False)
    study = path.str.extract(r"(study\d+)", expand=False)
    if patient.isna().any():
        raise InputError(f"{dataset}: Path {path[patient.isna()].iloc[0]!r} has no patientNNNNN part")
    table = pd.DataFrame({
        "sample_id": path.to_numpy(), "patient_id": patient.to_numpy(),
        "study_id": (patient + "/" + study).to_numpy(),
        "age": pd.to_numeric(raw["Age"], errors="coerce").replace(0, np.nan).to_numpy(),
        "sex": normalise_sex(raw["Sex"]).to_numpy(), "race": np.nan,
        "view": raw["AP/PA"].to_numpy(), "frontal": (raw["Frontal/Lateral"] == "Frontal").to_numpy(),
        "path": path.to_numpy(),
    })
    for lab in CHEXPERT_LABELS:
        table[lab] = raw[lab].to_numpy()
    return table


def read_demographics(path: str | Path, dataset: str = "chexpert") -> pd.DataFrame:
    """The CheXpert demographics file: ``patient_id``, ``race`` (coarse), ``race_detail``."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{dataset}: demographics file {str(path)!r} not found")
    if path.suffix.lower() in (".xlsx", ".xls"):
        try:
            demo = pd.read_excel(path)
        except ImportError:
            raise InputError(f"{dataset}: reading {path.name} needs openpyxl; save it as CSV") from None
    else:
        demo = read_table(path, dataset)
    require_columns(demo, ("PATIENT", "PRIMARY_RACE"), dataset, path.name)
    detail = demo["PRIMARY_RACE"].astype("string")
    race = coarse_race(detail)
    if "ETHNICITY" in demo:
        hisp = demo["ETHNICITY"].astype("string").str.upper().str.contains("^HISPANIC", regex=True)
        race[hisp.fillna(False).to_numpy()] = "Hispanic"
    return pd.DataFrame({"patient_id": demo["PATIENT"].astype(str), "race": race.to_numpy(),
                         "race_detail": detail.to_numpy()}).drop_duplicates("patient_id")


def _dataset_dir(root: Path) -> Path:
    if any((root / f).is_file() for f in SPLIT_FILES):
        return root
    for name in ("CheXpert-v1.0-small", "CheXpert-v1.0"):
        if (root / name / "train.csv").is_file() or (root / name / "valid.csv").is_file():
            return root / name
    raise DataNotFoundError(f"chexpert: no train.csv/valid.csv under {root} or "
                            f"{root}/CheXpert-v1.0[-small]")


@register_cohort("chexpert", description="CheXpert: 14 observations, U-ones/U-zeros/ignore, age, sex (+race)",
                 source="real-metadata")
def build_chexpert(*, root: str | Path | None = None, seed: int = 0, uncertainty: str = "ones",
                   frontal_only: bool = True, demographics: str | Path | None = None,
                   drop_missing: bool = False, age_scheme: str = "paper_a") -> Cohort:
    """Build the CheXpert cohort.

    Parameters
    ----------
    root : path, optional
        See the module docstring; without it the shipped training table is used (no pixels).
    uncertainty : {"ones", "zeros", "ignore"}
        U-ones, U-zeros or NaN for uncertain (-1) labels.
    frontal_only : bool
        Keep frontal views only.
    demographics : path, optional
        CheXpert demographics file adding ``race``.
    drop_missing : bool
        Drop rows whose JPEG is absent instead of raising.
    """
    notes = [f"uncertainty policy: U-{uncertainty}" if uncertainty != "ignore" else
             "uncertainty policy: ignore (uncertain -> NaN)"]
    if root is None:
        raw = read_table(shipped_file("chexpert_train.csv.gz"), "chexpert")
        table = chexpert_table(raw, uncertainty=uncertainty, frontal_only=frontal_only)
        table["split"] = ""
        table["image_path"] = np.nan
        base, source, pixel_column = None, "real-metadata", None
        notes.append("no root: chexpert_train.csv.gz shipped by torchxrayvision, no pixels")
    else:
        rootp = require_root(root, "chexpert")
        ddir = _dataset_dir(rootp)
        parts = []
        for fname, split in SPLIT_FILES.items():
            if (ddir / fname).is_file():
                t = chexpert_table(read_table(ddir / fname, "chexpert"), uncertainty=uncertainty,
                                   frontal_only=frontal_only)
                t["split"] = split
                parts.append(t)
                notes.append(f"{fname}: {len(t)} rows -> {split}")
        table = pd.concat(parts, ignore_index=True)
        base = ddir.parent
        table["image_path"] = table["path"]
        table = check_files(table, "image_path", base, "chexpert", drop_missing=drop_missing)
        source, pixel_column = "real", "image_path"
    if demographics is not None:
        demo = read_demographics(demographics)
        table = table.drop(columns=["race"]).merge(demo, on="patient_id", how="left")
        notes.append(f"race from {Path(demographics).name}: {int(table['race'].notna().sum())} rows matched")
    table = add_age_group(table, age_scheme)
    return Cohort(name="chexpert", table=finish(table, CHEXPERT_LABELS), labels=CHEXPERT_LABELS,
                  source=source, pixel_column=pixel_column, root=str(base) if base else None,
                  task="multilabel", report="\n".join(notes))
