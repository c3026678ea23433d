"""NIH ChestX-ray14 (Wang et al., CVPR 2017), from its own files.

Layout under ``--root`` (as downloaded from the NIH Box or Kaggle)::

    Data_Entry_2017_v2020.csv      (or Data_Entry_2017.csv)
    images_001/images/00000001_000.png ... images_012/images/...   (or images/*.png)
    train_val_list.txt, test_list.txt                               (official split, optional)

Without a root, the metadata table shipped in the ``torchxrayvision`` wheel is used and the
cohort has no pixels (``source="real-metadata"``, ``image_path`` NaN): enough for
composition tables and for building subsets such as NIH 6x200.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ._common import (check_files, finish, read_table, require_columns, require_root,
                      shipped_file)
from .base import Cohort, register_cohort
from .splits import add_age_group, patient_split

log = logging.getLogger(__name__)

#: The fourteen findings of ChestX-ray14, spelled as in ``Finding Labels``.
NIH_FINDINGS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule",
                "Pneumonia", "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis",
                "Pleural_Thickening", "Hernia")
NIH_LABELS = NIH_FINDINGS + ("No Finding",)
COLUMNS = ("Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age",
           "Patient Gender", "View Position")
SHIPPED = "Data_Entry_2017_v2020.csv.gz"


def read_nih_metadata(path: str | Path | None = None) -> pd.DataFrame:
    """The raw ``Data_Entry_2017*.csv`` table (default: the copy shipped by torchxrayvision)."""
    path = Path(path) if path is not None else shipped_file(SHIPPED)
    if not path.is_file():
        read_table(path, "nih")  # raises the one-line DataNotFoundError
    stat = path.stat()
    df = _read_cached(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    require_columns(df, COLUMNS, "nih", path.name)
    return df.copy()


@functools.lru_cache(maxsize=2)
def _read_cached(path: str, mtime_ns: int, size: int) -> pd.DataFrame:
    """The table at ``path``, read once per (path, modification time, size)."""
    return read_table(path, "nih")


GOOGLE_2019 = "google2019_nih-chest-xray-labels.csv.gz"


def google2019_airspace_opacity(path: str | Path | None = None) -> pd.DataFrame:
    """Google's 2019 NIH relabelling (Majkowska et al., Radiology 2020): ``sample_id``,
    ``patient_id`` and the radiologist-adjudicated ``airspace_opacity`` (0/1) of its 4,376
    images (default: the table shipped with torchxrayvision)."""
    p = shipped_file(GOOGLE_2019) if path is None else path
    raw = read_table(p, "nih-google2019")
    require_columns(raw, ("Image Index", "Patient ID", "Airspace opacity"), "nih-google2019",
                    GOOGLE_2019)
    return pd.DataFrame({"sample_id": raw["Image Index"].astype(str),
                         "patient_id": raw["Patient ID"].astype(str),
                         "airspace_opacity": (raw["Airspace opacity"] == "YES").astype(float)})


def nih_table(raw: pd.DataFrame) -> pd.DataFrame:
    """Cohort columns from the raw NIH metadata: ids, age, sex, one 0/1 column per finding.

    ``Finding Labels`` is split on ``|``; every label column is 0 or 1 (NIH labels have
    no "uncertain" state).  ``finding_labels`` keeps the raw string and ``n_findings`` the
    number of findings (0 for "No Finding").
    """
    dummies = raw["Finding Labels"].astype(str).str.replace(" ", "", regex=False).str.get_dummies(sep="|")
    table = pd.DataFrame({
        "sample_id": raw["Image Index"].astype(str),
        "patient_id": raw["Patient ID"].astype(str),
        "age": pd.to_numeric(raw["Patient Age"], errors="coerce"),
        "sex": raw["Patient Gender"].where(raw["Patient Gender"].isin(["M", "F"])),
        "race": np.nan,
        "view": raw["View Position"].astype(str),
        "follow_up": pd.to_numeric(raw["Follow-up #"], errors="coerce"),
        "finding_labels": raw["Finding Labels"].astype(str),
    })
    for lab in NIH_LABELS:
        key = lab.replace(" ", "")
        table[lab] = dummies[key].to_numpy(dtype=float) if key in dummies else 0.0
    table["n_findings"] = table[list(NIH_FINDINGS)].sum(axis=1).astype(int)
    return table


def _image_index(root: Path) -> dict[str, str]:
    """File name -> path relative to ``root`` for every PNG in ``images*/`` folders."""
    index: dict[str, str] = {}
    for folder in sorted(root.glob("images*")):
        if folder.is_dir():
            for p in folder.rglob("*.png"):
                index.setdefault(p.name, p.relative_to(root).as_posix())
    return index


def _official_split(root: Path, table: pd.DataFrame, val_fraction: float,
                    seed: int) -> pd.Series | None:
    test_list, trainval_list = root / "test_list.txt", root / "train_val_list.txt"
    if not (test_list.is_file() and trainval_list.is_file()):
        return None
    test = set(test_list.read_text().split())
    split = pd.Series(np.where(table["sample_id"].isin(test), "test", "train"), index=table.index)
    trainval = table[split == "train"]
    if val_fraction > 0 and len(trainval):
        cut = patient_split(trainval, (1 - val_fraction, val_fraction, 0.0), seed=seed)
        split.loc[cut.index] = cut["split"]
    return split


@register_cohort("nih", description="NIH ChestX-ray14: 14 findings, age, sex (metadata shipped)",
                 source="real-metadata")
def build_nih(*, root: str | Path | None = None, seed: int = 0, metadata: str | Path | None = None,
              views: tuple[str, ...] | None = None, drop_missing: bool = False,
              val_fraction: float = 0.1, age_scheme: str = "paper_a") -> Cohort:
    """Build the NIH ChestX-ray14 cohort.

    Parameters
    ----------
    root : path, optional
        Dataset folder (layout in the module docstring).  Without it the shipped metadata
        gives a pixel-less cohort.
    metadata : path, optional
        A ``Data_Entry_2017*.csv``; default: the one in ``root``, else the shipped copy.
    views : tuple of str, optional
        Keep only these ``View Position`` values (e.g. ``("PA",)``).
    drop_missing : bool
        Drop rows whose PNG is absent instead of raising :class:`DataNotFoundError`.
    val_fraction : float
        Share of the official train_val patients held out as ``val`` (patient-wise).
    age_scheme : str
        Banding for the ``age_group`` column (see :mod:`compendium.cohorts.splits`).
    """
    root_path = require_root(root, "nih") if root is not None else None
    if metadata is None and root_path is not None:
        hits = sorted(root_path.glob("Data_Entry_2017*.csv*"))
        metadata = hits[0] if hits else None
        if metadata is None:
            log.info("nih: no Data_Entry_2017*.csv under %s; using the shipped copy", root_path)
    raw = read_nih_metadata(metadata)
    table = nih_table(raw)
    if views:
        bad = set(views) - {"PA", "AP"}
        if bad:
            raise ConfigError(f"nih: unknown view(s) {sorted(bad)} (allowed: PA, AP)")
        table = table[table["view"].isin(views)].reset_index(drop=True)
    table = add_age_group(table, age_scheme)
    notes = [f"metadata: {Path(metadata).name if metadata else SHIPPED + ' (shipped by torchxrayvision)'}"]
    if root_path is None:
        table["image_path"] = np.nan
        table["split"] = ""
        source, pixel_column = "real-metadata", None
        notes.append("no root: rows only, no pixels; split left empty")
    else:
        index = _image_index(root_path)
        table["image_path"] = [index.get(s, f"images/{s}") for s in table["sample_id"]]
        table = check_files(table, "image_path", root_path, "nih", drop_missing=drop_missing)
        split = _official_split(root_path, table, val_fraction, seed)
        if split is None:
            table["split"] = ""
            notes.append("no train_val_list.txt/test_list.txt: split left empty")
        else:
            table["split"] = split.to_numpy()
            notes.append("official test_list.txt; val carved patient-wise from train_val")
        source, pixel_column = "real", "image_path"
    return Cohort(name="nih", table=finish(table, NIH_LABELS), labels=NIH_LABELS, source=source,
                  pixel_column=pixel_column, root=str(root_path) if root_path else None,
                  task="multilabel", report="\n".join(notes))
