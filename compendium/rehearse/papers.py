"""What each paper's ``full`` profile reads, written small, and its budget shrunk.

One preparer per paper (registered in :data:`compendium.rehearse.core.PREPARERS`).  Each
returns the run's parameters: only the data folders, the weights and the budget parameters
(epochs, sample counts, bootstrap sizes) differ from ``params/<paper>/full.yaml``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..cohorts.base import Cohort
from .core import Prepared, preparer
from .layouts import write_embeddings, write_mimic_cxr, write_nih

#: Pixel size of the miniature images (the decoders resize to each encoder's size).
IMAGE_SIZE = 128


# ----------------------------------------------------------------------------- shared parts


def nih_rows(wanted: dict[str, Sequence[str]], per_label: int, *, seed: int,
             negatives: int | None = None, views=("PA", "AP")) -> pd.DataFrame:
    """Rows of the real ``Data_Entry_2017_v2020`` table (shipped by torchxrayvision): per
    entry of ``wanted`` (name -> NIH findings, any of them positive) ``per_label`` patients'
    first images, plus ``negatives`` "No Finding" patients; one image per patient."""
    from ..cohorts.nih import nih_table, read_nih_metadata

    raw = read_nih_metadata()
    table = nih_table(raw)
    first = table[table["view"].isin(views)].drop_duplicates("patient_id")
    rng = np.random.default_rng([seed, 24])
    keep: list[str] = []
    for findings in wanted.values():
        pos = first[(first[list(findings)].to_numpy() == 1).any(axis=1)
                    & ~first["sample_id"].isin(keep)]
        keep += list(rng.choice(pos["sample_id"].to_numpy(), per_label, replace=False))
    neg = first[(first["No Finding"] == 1) & ~first["sample_id"].isin(keep)]
    keep += list(rng.choice(neg["sample_id"].to_numpy(), negatives or per_label, replace=False))
    return raw[raw["Image Index"].isin(set(keep))].reset_index(drop=True)


def synthetic_pixels_of(raw_nih: pd.DataFrame, *, seed: int) -> np.ndarray:
    """Synthetic-world pixels of real NIH rows (what each row's findings look like)."""
    from ..cohorts.nih import NIH_LABELS, nih_table
    from ..synthetic import render_rows, with_synthetic_pixels

    t = nih_table(raw_nih).reset_index(drop=True).assign(split="")
    c = Cohort(name="nih", table=t, labels=NIH_LABELS, source="real-metadata",
               pixel_column=None, task="multilabel")
    return render_rows(with_synthetic_pixels(c, seed=seed), None, size=IMAGE_SIZE)


def synthetic_cxr_rows(labels: Sequence[str], per_label: int, *, seed: int,
                       pool: int = 3000) -> tuple[Cohort, np.ndarray]:
    """Synthetic-world rows (MIMIC-CXR stand-ins): ``per_label`` positives of each label and
    as many "No Finding" rows, with their pixels."""
    from ..synthetic import render_rows, synthetic_cxr

    c = synthetic_cxr(n=pool, seed=seed, name="mimic-cxr-rehearsal")
    t = c.table
    rng = np.random.default_rng([seed, 25])
    keep: list[int] = []
    for lab in [*labels, "No Finding"]:
        pos = np.flatnonzero((t[lab] == 1).to_numpy() & ~t.index.isin(keep))
        keep += list(rng.choice(pos, min(per_label, len(pos)), replace=False))
    keep = sorted(keep)
    sub = dataclasses.replace(c, table=t.iloc[keep].reset_index(drop=True))
    return sub, render_rows(c, keep, size=IMAGE_SIZE)


def nih_identifiers(raw: pd.DataFrame) -> set[str]:
    names = raw["Image Index"].astype(str)
    return set(names) | {n.rsplit(".", 1)[0] for n in names}


def mimic_identifiers(ids: pd.DataFrame) -> set[str]:
    return (set(ids["dicom_id"].astype(str)) | set(ids["subject_id"].astype(str))
            | set(ids["study_id"].astype(str)))


# ----------------------------------------------------------------------------- Paper D


@preparer("paper_d")
def prepare_paper_d(out: Path, *, seed: int = 0, device: str = "cpu") -> Prepared:
    """Paper D: MIMIC-CXR-JPG (+ MIMIC-IV hosp tables) and NIH in their layouts; the two
    vendors' embeddings files over every image and its five augmented views."""
    from ..imaging.augment import augment_views, view_ids

    per_label = 24
    data = out / "data"
    raw = nih_rows({"Atelectasis": ["Atelectasis"], "Edema": ["Edema"],
                    "Effusion": ["Effusion"],
                    "Opacity": ["Infiltration", "Consolidation", "Pneumonia"]},
                   per_label, seed=seed)
    nih_pix = synthetic_pixels_of(raw, seed=seed)
    rng = np.random.default_rng([seed, 26])
    patients = raw["Patient ID"].astype(str).unique()
    nih = write_nih(data / "nih-cxr14", raw, nih_pix,
                    test_patients=rng.choice(patients, len(patients) // 5, replace=False))
    cohort, mimic_pix = synthetic_cxr_rows(["Atelectasis", "Edema", "Effusion", "Opacity"],
                                           per_label, seed=seed)
    mimic, ids = write_mimic_cxr(data / "mimic-cxr-jpg", cohort, mimic_pix, seed=seed,
                                 mimic_iv=data / "mimic-iv")
    all_ids = [*raw["Image Index"].astype(str), *ids["dicom_id"]]
    pix = np.concatenate([nih_pix, mimic_pix])
    views = augment_views(pix, all_ids, seed=seed)
    vids = view_ids(all_ids)
    every, every_pix = [*all_ids, *vids], np.concatenate([pix, views.reshape(-1, *pix.shape[1:])])
    weights = {
        "medimageinsight": str(write_embeddings(out / "weights" / "medimageinsight.npz", every,
                                                every_pix, dim=1024, seed=seed)),
        "cxr-foundation": str(write_embeddings(out / "weights" / "cxr-foundation.npz", every,
                                               every_pix, dim=768, tokens=32, seed=seed))}
    params = {"data_roots": {"mimic-cxr": str(mimic), "nih": str(nih),
                             "mimic-iv": str(data / "mimic-iv")},
              "weights": weights,
              # budget: samples per class, bootstrap, k-means restarts and k range, UMAP
              # neighbours, boosting rounds
              "n_per_class": 20, "n_bootstrap": 20, "kmeans_n_init": 2, "k_range": [2, 3],
              "umap_neighbors": 5, "lightgbm": {"n_estimators": 20}}
    return Prepared(
        params=params, identifiers=nih_identifiers(raw) | mimic_identifiers(ids),
        covers=["NIH ChestX-ray14 layout (Data_Entry_2017_v2020.csv of real rows, "
                "images_001/images/*.png, train_val_list.txt/test_list.txt) read by the nih "
                "builder",
                "MIMIC-CXR-JPG layout (files/pXX/p<subject>/s<study>/<dicom>.jpg, metadata, "
                "split, CheXpert and NegBio tables) with MIMIC-IV hosp/patients.csv and "
                "admissions.csv for sex, age and race",
                "both vendors' .npz embeddings files (MedImageInsight (n, 1024); CXR "
                "Foundation (n, 32, 768) tokens, mean-pooled) including the ids "
                "'<sample_id>#aug1..5' of the augmented views",
                "sampling, patient-wise CV, LightGBM, held-out test, UMAP, k-means, per-group "
                "AUROC, augmentation comparison, tables and figures, full's small-cell rule"],
        skips=["the vendor tools themselves (they run outside the compendium): the .npz "
               "holds a fixed random projection of each image's pixels",
               "image decoding: with embeddings files the run never reads the JPEG/PNG pixels"])
