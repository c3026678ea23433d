"""VinDr-CXR (Nguyen et al., Sci Data 2022), from its own files (PhysioNet).

Layout under ``--root``::

    annotations/image_labels_train.csv   image_id, rad_id, 28 labels (3 radiologists per image)
    annotations/image_labels_test.csv    image_id, 28 labels (consensus of 5 radiologists)
    train/<image_id>.dicom, test/<image_id>.dicom

Training labels are per radiologist; they are aggregated to one label per image by
``aggregate``: ``"majority"`` (at least half of the image's radiologists, the default),
``"any"`` or ``"all"``.  Sex and age are read from the DICOM headers (``PatientSex``,
``PatientAge`` such as ``"045Y"``) when ``read_headers`` (the default with a root).

Without a root, ``vinbigdata-train.csv.gz`` shipped with torchxrayvision (the Kaggle
VinBigData release of the 15,000 training images: one row per radiologist finding with
``class_name`` and ``rad_id``) gives a pixel-less cohort of the 14 Kaggle findings plus
"No finding"; it carries no age or sex.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ._common import (check_files, finish, normalise_sex, read_table, require_columns,
                      require_root, shipped_file)
from .base import Cohort, register_cohort
from .splits import add_age_group, patient_split

AGGREGATES = ("majority", "any", "all")


def aggregate_labels(per_rad: pd.DataFrame, labels, how: str = "majority") -> pd.DataFrame:
    """One row per ``image_id``: each label aggregated over the image's radiologists."""
    if how not in AGGREGATES:
        raise ConfigError(f"vindr-cxr: unknown aggregate {how!r} (allowed: {', '.join(AGGREGATES)})")
    g = per_rad.groupby("image_id", sort=True)[list(labels)]
    mean = g.mean()
    out = {"majority": (mean >= 0.5), "any": (mean > 0), "all": (mean == 1)}[how].astype(float)
    out["n_readers"] = g.size()
    return out.reset_index()


def _age(value) -> float:
    m = re.fullmatch(r"0*(\d+)([YMWD]?)", str(value).strip().upper()) if value is not None else None
    if not m:
        return np.nan
    n, unit = float(m.group(1)), m.group(2) or "Y"
    return n / {"Y": 1, "M": 12, "W": 52.18, "D": 365.25}[unit]


def read_headers(paths, root: Path) -> pd.DataFrame:
    """``sex`` and ``age`` from DICOM headers (pixel data not read)."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from tqdm.auto import tqdm

    rows = []
    for p in tqdm(list(paths), desc="DICOM headers", disable=None):
        try:
            ds = pydicom.dcmread(root / p, stop_before_pixels=True)
        except (InvalidDicomError, OSError) as exc:
            raise InputError(f"vindr-cxr: cannot read DICOM {root / p}: {exc}") from None
        rows.append({"sex": getattr(ds, "PatientSex", None), "age": _age(getattr(ds, "PatientAge", None))})
    out = pd.DataFrame(rows, columns=["sex", "age"])
    out["sex"] = normalise_sex(out["sex"]).to_numpy()
    return out


@register_cohort("vindr-cxr", description="VinDr-CXR: radiologist labels aggregated per image, DICOM age/sex",
                 source="real-metadata")
def build_vindr(*, root: str | Path | None = None, seed: int = 0, aggregate: str = "majority",
                read_dicom_headers: bool = True, drop_missing: bool = False,
                val_fraction: float = 0.1, age_scheme: str = "paper_a") -> Cohort:
    """Build the VinDr-CXR cohort (one row per image).

    Every VinDr image is its own patient (the release has no patient id), so patient-wise
    equals image-wise; ``val`` is carved from the official training images.
    """
    if root is None:
        raw = read_table(shipped_file("vinbigdata-train.csv.gz"), "vindr-cxr")
        require_columns(raw, ("image_id", "class_name", "rad_id"), "vindr-cxr", "vinbigdata-train")
        labels = tuple(sorted(raw["class_name"].unique()))
        wide = pd.crosstab([raw["image_id"], raw["rad_id"]], raw["class_name"]).clip(upper=1)
        per_rad = wide.reindex(columns=list(labels), fill_value=0).reset_index()
        table = aggregate_labels(per_rad, labels, aggregate)
        table["split"] = ""
        table["image_path"] = np.nan
        table["age"], table["sex"] = np.nan, np.nan
        notes = [f"no root: vinbigdata-train.csv.gz shipped by torchxrayvision; {aggregate} of "
                 "radiologists; no pixels, no age or sex"]
        rootp, source, pixel_column = None, "real-metadata", None
    else:
        rootp = require_root(root, "vindr-cxr", hint="; VinDr-CXR needs PhysioNet credentials")
        parts = []
        notes = [f"labels: {aggregate} of radiologists (train); consensus (test)"]
        for split, fname in (("train", "image_labels_train.csv"), ("test", "image_labels_test.csv")):
            path = rootp / "annotations" / fname
            if not path.is_file():
                continue
            raw = read_table(path, "vindr-cxr")
            require_columns(raw, ("image_id",), "vindr-cxr", fname)
            labels = tuple(c for c in raw.columns if c not in ("image_id", "rad_id", "rad_ID"))
            raw = raw.rename(columns={"rad_ID": "rad_id"})
            agg = aggregate_labels(raw, labels, aggregate)
            agg["split"] = split
            agg["image_path"] = [f"{split}/{i}.dicom" for i in agg["image_id"]]
            parts.append(agg)
        if not parts:
            raise InputError(f"vindr-cxr: no annotations/image_labels_train.csv or _test.csv under {rootp}")
        label_sets = [tuple(c for c in p.columns if c not in ("image_id", "n_readers", "split", "image_path")) for p in parts]
        labels = label_sets[0]
        table = pd.concat(parts, ignore_index=True)
        table = check_files(table, "image_path", rootp, "vindr-cxr", drop_missing=drop_missing)
        if read_dicom_headers:
            h = read_headers(table["image_path"], rootp)
            table["sex"], table["age"] = h["sex"].to_numpy(), h["age"].to_numpy()
        else:
            table["sex"], table["age"] = np.nan, np.nan
        train = table[table["split"] == "train"]
        if val_fraction > 0 and len(train) > 1:
            cut = patient_split(train.assign(patient_id=train["image_id"]),
                                (1 - val_fraction, val_fraction, 0.0), seed=seed)
            table.loc[cut.index, "split"] = cut["split"]
        source, pixel_column = "real", "image_path"
    table["sample_id"] = table["image_id"]
    table["patient_id"] = table["image_id"]
    table["race"] = np.nan
    table = add_age_group(table, age_scheme)
    labels = tuple(labels)
    return Cohort(name="vindr-cxr", table=finish(table, labels), labels=labels, source=source,
                  pixel_column=pixel_column, root=str(rootp) if rootp else None,
                  task="multilabel", report="\n".join(notes))
