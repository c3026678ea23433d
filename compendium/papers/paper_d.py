"""Paper D (Shin, Marshall, Komorowski): CXR-Foundation vs MedImageInsight on MIMIC-CXR and NIH.

The pipeline, one function per arrow of DESIGN.md's data flow:

1. :func:`pool_cohort`: the dataset's frontal images with Paper D's four labels as columns
   (``Atelectasis``, ``Edema``, ``Effusion``, ``Opacity``; see :data:`LABEL_SOURCES` and the
   NIH "Opacity" decision, :func:`opacity_evidence`).  ``pixels="synthetic"`` (demo, smoke):
   NIH keeps its real metadata rows and gets synthetic pixels; MIMIC-CXR, whose metadata is
   credentialed, is replaced by the synthetic world's own cohort.
2. :func:`sample_tasks`: per label 1,000 positive and 1,000 negative images, one per patient
   (:func:`~compendium.cohorts.splits.balanced_sample`); the union of the sampled images is
   split 80/20 by patient, so every label's experiment has the same held-out patients.
3. :func:`embed_images`: frozen embeddings of every sampled image and of five augmented views
   of every *training* image (:mod:`compendium.imaging.augment`).  Models whose release is a
   vendor tool (``embeddings-file``) read both from the tool's ``.npz``; the views must be in
   it under the ids of :func:`~compendium.imaging.augment.view_ids`.
4. :func:`cross_validate`: LightGBM, 5-fold patient-wise cross-validation on the 80 %
   training images; augmented views join the training folds only (never a validation fold:
   views share their image's patient).  Table 1 reports, as the paper does, the mean over
   folds +- the half-width of the 95 % t-interval of that mean; F1 at the 0.5 threshold.
5. The held-out 20 % (fit on all training images) and the out-of-fold predictions are
   audited with :func:`compendium.audit.audit` (patient bootstrap): overall AUROC/F1 with
   intervals, and per sex and age band AUROC (beyond the paper).
6. Embedding space: cosine k-means with k chosen by the silhouette, and UMAP of the best and
   worst label (Fig. 1) -- :mod:`compendium.embedding_space`.

:func:`run_paper_d` runs all of it and returns a :class:`PaperDResult`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, InputError

log = logging.getLogger(__name__)

#: Paper D's labels, in the order of its Table 1.
PAPER_LABELS = ("Atelectasis", "Edema", "Effusion", "Opacity")
#: The two datasets (registry names) and how Table 1 names them.
DATASETS = {"mimic-cxr": "MIMIC", "nih": "NIH"}
#: The two models of the paper, in the order of Table 1's columns.
PAPER_MODELS = {"medimageinsight": "MedImageInsight", "cxr-foundation": "CXR-Foundation"}
#: Source column of each Paper D label per dataset (NIH's Opacity is derived, see below).
LABEL_SOURCES = {
    "mimic-cxr": {"Atelectasis": "Atelectasis", "Edema": "Edema", "Effusion": "Pleural Effusion",
                  "Opacity": "Lung Opacity"},
    "nih": {"Atelectasis": "Atelectasis", "Edema": "Edema", "Effusion": "Effusion",
            "Opacity": None},
}
#: NIH findings taken as "Opacity" (decision documented in the Paper D chapter): the airspace
#: findings of NIH's label set that are not themselves Paper D labels.
NIH_OPACITY = ("Infiltration", "Consolidation", "Pneumonia")
#: Candidate NIH label sets for "Opacity", compared with Google's 2019 adjudicated
#: "Airspace opacity" by :func:`opacity_evidence`.
OPACITY_CANDIDATES = (
    ("Infiltration",),
    ("Infiltration", "Consolidation"),
    ("Infiltration", "Consolidation", "Pneumonia"),
    ("Infiltration", "Consolidation", "Pneumonia", "Edema"),
    ("Infiltration", "Consolidation", "Pneumonia", "Edema", "Atelectasis"),
    ("Consolidation", "Pneumonia"),
)
GOOGLE_2019 = "google2019_nih-chest-xray-labels.csv.gz"

#: Paper D's Table 1 as printed (mean and 95 % half-width), copied from the paper's text:
#: (label, dataset, model, AUROC mean, AUROC +-, F1 mean, F1 +-).  Only used to compare;
#: the chapter shows the same numbers in its "reported" table (a test keeps them equal).
REPORTED_TABLE1 = (
    ("Atelectasis", "MIMIC", "MedImageInsight", 0.833, 0.007, 0.755, 0.007),
    ("Atelectasis", "MIMIC", "CXR-Foundation", 0.823, 0.013, 0.751, 0.008),
    ("Atelectasis", "NIH", "MedImageInsight", 0.863, 0.008, 0.782, 0.015),
    ("Atelectasis", "NIH", "CXR-Foundation", 0.822, 0.012, 0.744, 0.014),
    ("Edema", "MIMIC", "MedImageInsight", 0.918, 0.011, 0.841, 0.014),
    ("Edema", "MIMIC", "CXR-Foundation", 0.924, 0.014, 0.847, 0.014),
    ("Edema", "NIH", "MedImageInsight", 0.921, 0.012, 0.853, 0.016),
    ("Edema", "NIH", "CXR-Foundation", 0.911, 0.006, 0.831, 0.013),
    ("Effusion", "MIMIC", "MedImageInsight", 0.958, 0.011, 0.906, 0.013),
    ("Effusion", "MIMIC", "CXR-Foundation", 0.941, 0.014, 0.877, 0.010),
    ("Effusion", "NIH", "MedImageInsight", 0.901, 0.012, 0.828, 0.014),
    ("Effusion", "NIH", "CXR-Foundation", 0.901, 0.006, 0.826, 0.008),
    ("Opacity", "MIMIC", "MedImageInsight", 0.782, 0.019, 0.702, 0.016),
    ("Opacity", "MIMIC", "CXR-Foundation", 0.775, 0.017, 0.704, 0.023),
    ("Opacity", "NIH", "MedImageInsight", 0.922, 0.012, 0.851, 0.019),
    ("Opacity", "NIH", "CXR-Foundation", 0.955, 0.006, 0.889, 0.013),
)


def reported_table1() -> pd.DataFrame:
    """:data:`REPORTED_TABLE1` as a long table (one row per label x dataset x model x metric)."""
    rows = []
    for label, dataset, model, am, ah, fm, fh in REPORTED_TABLE1:
        for metric, m, h in (("auroc", am, ah), ("f1", fm, fh)):
            rows.append({"label": label, "dataset": dataset, "paper_model": model,
                         "metric": metric, "mean": m, "ci_half": h})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- models


def model_display(name: str) -> str:
    """Table 1's name of a model: the paper's name, or ``toy (for PaperName)`` for a stand-in."""
    if name in PAPER_MODELS:
        return PAPER_MODELS[name]
    paper = paper_model_of(name)
    return f"{name} (for {paper})" if paper else name


def paper_model_of(name: str) -> str | None:
    """Which of the paper's models ``name`` is, or stands in for (None if neither)."""
    from ..encoders import get_entry

    if name in PAPER_MODELS:
        return PAPER_MODELS[name]
    for real, shown in PAPER_MODELS.items():
        if get_entry(real).demo_standin == name:
            return shown
    return None


def dataset_display(dataset: str, pixels: str) -> str:
    """Table 1's name of a dataset; flags synthetic stand-ins."""
    base = DATASETS.get(dataset, dataset)
    if pixels == "real":
        return base
    return "MIMIC (synthetic world)" if dataset == "mimic-cxr" else f"{base} (synthetic pixels)"


# ----------------------------------------------------------------------------- cohorts


def google_airspace_opacity(path: Any = None) -> pd.DataFrame:
    """Google's 2019 NIH relabelling (Majkowska et al.): ``sample_id``, ``patient_id`` and the
    adjudicated ``airspace_opacity`` (0/1) of its 4,376 images (shipped by torchxrayvision)."""
    from ..cohorts._common import read_table, require_columns, shipped_file

    p = shipped_file(GOOGLE_2019) if path is None else path
    raw = read_table(p, "nih-google2019")
    require_columns(raw, ("Image Index", "Patient ID", "Airspace opacity"), "nih-google2019",
                    GOOGLE_2019)
    return pd.DataFrame({"sample_id": raw["Image Index"].astype(str),
                         "patient_id": raw["Patient ID"].astype(str),
                         "airspace_opacity": (raw["Airspace opacity"] == "YES").astype(float)})


def opacity_evidence(nih: pd.DataFrame | None = None, google: pd.DataFrame | None = None,
                     candidates: Sequence[Sequence[str]] = OPACITY_CANDIDATES) -> pd.DataFrame:
    """How well each NIH label set agrees with Google's adjudicated "Airspace opacity".

    For every candidate set (an image is positive when any of its labels is), on the images
    that Google relabelled: Cohen's kappa, sensitivity and positive predictive value against
    Google's label; on the whole NIH table (frontal views): positive images, positive
    patients, and whether the set includes another of Paper D's labels (which would make
    the "Opacity" task overlap Atelectasis/Edema/Effusion).

    Parameters
    ----------
    nih : DataFrame, optional
        An NIH cohort table (:func:`compendium.cohorts.nih.nih_table`); default: the shipped one.
    google : DataFrame, optional
        :func:`google_airspace_opacity` (default: the shipped file).
    """
    from sklearn.metrics import cohen_kappa_score

    from ..cohorts.nih import nih_table, read_nih_metadata

    nih = nih_table(read_nih_metadata()) if nih is None else nih
    nih = nih[nih["view"].isin(["PA", "AP"])]
    google = google_airspace_opacity() if google is None else google
    both = nih.merge(google[["sample_id", "airspace_opacity"]], on="sample_id", how="inner")
    if both.empty:
        raise InputError("no image of the NIH table is in Google's 2019 relabelling")
    g = both["airspace_opacity"].to_numpy(dtype=int)
    rows = []
    for cand in candidates:
        cols = list(cand)
        x = (both[cols].to_numpy(dtype=float).max(axis=1) > 0).astype(int)
        pos = nih[cols].to_numpy(dtype=float).max(axis=1) > 0
        rows.append({
            "nih_labels": " | ".join(cols),
            "kappa_vs_google": float(cohen_kappa_score(g, x)),
            "sensitivity": float(x[g == 1].mean()) if (g == 1).any() else float("nan"),
            "ppv": float(g[x == 1].mean()) if (x == 1).any() else float("nan"),
            "positive_images": int(pos.sum()),
            "positive_patients": int(nih.loc[pos, "patient_id"].nunique()),
            "overlaps_paper_d_label": bool(set(cols) & set(PAPER_LABELS)),
            "chosen": tuple(cols) == NIH_OPACITY,
        })
    out = pd.DataFrame(rows)
    out.attrs["n_google_images"] = int(len(both))
    out.attrs["google_positive"] = int(g.sum())
    out.attrs["google_positive_patients"] = int(both.loc[g == 1, "patient_id"].nunique())
    return out


def pool_cohort(dataset: str, *, pixels: str = "synthetic", root: str | None = None,
                mimic_iv: str | None = None, nih_opacity: Sequence[str] = NIH_OPACITY,
                synthetic_rows: int = 8000, knobs: Any = None, world_seed: int = 0,
                age_scheme: str = "paper_a", presample: int | None = None,
                labels: Sequence[str] = PAPER_LABELS):
    """The frontal images of ``dataset`` with Paper D's labels as columns.

    ``pixels="real"`` reads the dataset at ``root``; ``"synthetic"`` keeps NIH's real
    metadata rows with synthetic pixels and replaces MIMIC-CXR by the synthetic world
    (``synthetic_rows`` images; bias ``knobs``).  Every label column is 1, 0 or NaN
    (unknown: never sampled).

    ``presample`` (synthetic NIH only): before the synthetic world records its labels (its
    ``underdiagnosis`` knob turns some positives negative), keep only the images of a
    patient-wise balanced pre-sample of ``presample`` positives and negatives per label of
    the real table, instead of all 112,120 rows: the final sample is then drawn from this
    pool.  It saves the demo half a minute; with ``None`` the whole table is used.
    """
    from ..cohorts import build_cohort
    from ..cohorts.nih import NIH_FINDINGS
    from ..cohorts.splits import add_age_group
    from ..synthetic import synthetic_cxr, with_synthetic_pixels

    if dataset not in DATASETS:
        raise ConfigError(f"paper_d: unknown dataset {dataset!r} (allowed: {', '.join(DATASETS)})")
    if pixels not in ("real", "synthetic"):
        raise ConfigError(f"pixels must be 'real' or 'synthetic', got {pixels!r}")
    bad = [lab for lab in nih_opacity if lab not in NIH_FINDINGS]
    if bad or not nih_opacity:
        raise ConfigError(f"nih_opacity: {bad[0] if bad else 'empty'!r} is not an NIH finding "
                          f"(allowed: {', '.join(NIH_FINDINGS)})")
    if dataset == "nih":
        cohort = build_cohort("nih", root=root if pixels == "real" else None, views=("PA", "AP"),
                              seed=world_seed)
        if pixels == "synthetic":
            if presample:
                from ..cohorts.splits import balanced_sample

                t = cohort.table.assign(
                    Opacity=cohort.table[list(nih_opacity)].to_numpy(dtype=float).max(axis=1))
                keep: set[str] = set()
                for j, label in enumerate(labels):
                    s = balanced_sample(t, label, presample, presample,
                                        seed=np.random.default_rng([int(world_seed), 5, j]))
                    keep |= set(s["sample_id"].astype(str))
                sub = cohort.table[cohort.table["sample_id"].astype(str).isin(keep)]
                cohort = dataclasses.replace(cohort, table=sub.reset_index(drop=True))
            cohort = with_synthetic_pixels(cohort, knobs=knobs, seed=world_seed)
        table = cohort.table.copy()
        table["Opacity"] = table[list(nih_opacity)].to_numpy(dtype=float).max(axis=1)
    elif pixels == "real":
        cohort = build_cohort("mimic-cxr", root=root, mimic_iv=mimic_iv, frontal_only=True,
                              uncertainty="ignore", seed=world_seed)
        table = cohort.table.copy()
        for label, src in LABEL_SOURCES["mimic-cxr"].items():
            table[label] = table[src]
    else:
        if not isinstance(synthetic_rows, int) or synthetic_rows < 100:
            raise ConfigError(f"synthetic_rows must be an integer >= 100, got {synthetic_rows!r}")
        cohort = synthetic_cxr(n=synthetic_rows, seed=world_seed, knobs=knobs,
                               name="mimic-cxr-synthetic")
        table = cohort.table.copy()
    table = add_age_group(table, age_scheme)
    return dataclasses.replace(cohort, table=table)


def sample_tasks(table: pd.DataFrame, labels: Sequence[str] = PAPER_LABELS, *,
                 n_per_class: int = 1000, test_fraction: float = 0.2,
                 seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Paper D's per-label samples and the patient-wise 80/20 split.

    Returns
    -------
    tasks : DataFrame
        One row per (label, sampled image): ``label``, ``sample_id``, ``patient_id``, ``y``
        (0/1) and ``split`` (``train``/``test``).
    images : DataFrame
        The rows of ``table`` drawn for any label (each image once, in ``table``'s order),
        with their ``split``.
    """
    from ..cohorts.splits import balanced_sample, patient_split

    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    parts = []
    for j, label in enumerate(labels):
        if label not in table.columns:
            raise InputError(f"paper_d: the cohort has no {label!r} column")
        rng = np.random.default_rng([int(seed), 4, j])
        s = balanced_sample(table, label, n_per_class, n_per_class, seed=rng)
        parts.append(pd.DataFrame({"label": label, "sample_id": s["sample_id"].astype(str),
                                   "patient_id": s["patient_id"].astype(str),
                                   "y": s[label].to_numpy(dtype=int)}))
    tasks = pd.concat(parts, ignore_index=True)
    images = table[table["sample_id"].astype(str).isin(set(tasks["sample_id"]))].copy()
    images = patient_split(images.drop(columns=["split"], errors="ignore"),
                           (1.0 - test_fraction, 0.0, test_fraction), seed=seed)
    images = images.reset_index(drop=True)
    tasks["split"] = tasks["sample_id"].map(dict(zip(images["sample_id"].astype(str),
                                                     images["split"])))
    return tasks, images


# ----------------------------------------------------------------------------- embeddings


def load_encoder(name: str, *, weights_path: str | None = None, tiny: bool = False,
                 seed: int = 0):
    """Build encoder ``name``; ``tiny`` random-init toys are seeded without touching the
    global torch generator."""
    import torch

    from ..encoders import create_model, get_entry

    entry = get_entry(name)
    kwargs: dict[str, Any] = {}
    if weights_path:
        kwargs["weights_path"] = weights_path
    if tiny:
        kwargs["tiny"] = True
    if entry.kind == "toy":
        kwargs["progress"] = True
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return create_model(name, **kwargs)


def embed_images(encoder, cohort, images: pd.DataFrame, *, augment: bool, aug_seed: int = 0,
                 pixel_cache: dict | None = None, batch_size: int = 64
                 ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Embeddings of ``images`` (rows of ``cohort``) and of the training images' views.

    Returns ``(X, X_views, train_ids)``: ``X`` aligned with ``images``; ``X_views`` aligned
    with :func:`~compendium.imaging.augment.view_ids` of ``train_ids`` (five rows per
    training image), ``None`` without ``augment``.
    """
    from ..encoders.cache import extract_embeddings
    from ..imaging.augment import augment_views, view_ids

    ids = images["sample_id"].astype(str).tolist()
    train_ids = images.loc[images["split"] == "train", "sample_id"].astype(str).tolist()
    if encoder.entry.kind == "embeddings-file":
        X = np.asarray(encoder.encode_samples(ids), dtype=np.float32)
        Xv = None
        if augment:
            vids = view_ids(train_ids)
            known = set(encoder.sample_ids)
            missing = [v for v in vids if v not in known]
            if missing:
                raise DataNotFoundError(
                    f"{encoder.name}: the embeddings file lacks {len(missing)} of the "
                    f"{len(vids)} augmented views of the training images (e.g. "
                    f"{missing[0]!r}); embed the views of compendium.imaging.augment with the "
                    "vendor tool under those ids, or set augment: false")
            Xv = np.asarray(encoder.encode_samples(vids), dtype=np.float32)
        return X, Xv, train_ids
    size = int(encoder.entry.preprocess.size)
    cache = pixel_cache if pixel_cache is not None else {}
    if size not in cache:
        cache[size] = _pixels(cohort, images, size)
    pix = cache[size]
    X = np.array(extract_embeddings(encoder, pix, batch_size=batch_size).array, dtype=np.float32)
    Xv = None
    if augment:
        is_train = (images["split"] == "train").to_numpy()
        views = augment_views(pix[is_train], train_ids, seed=aug_seed, progress=True)
        flat = views.reshape(-1, *views.shape[2:])
        Xv = np.array(extract_embeddings(encoder, flat, batch_size=batch_size).array,
                      dtype=np.float32)
    return X, Xv, train_ids


def _pixels(cohort, images: pd.DataFrame, size: int) -> np.ndarray:
    """uint8 (n, size, size) pixels of ``images`` (synthetic: rendered; real: decoded)."""
    if cohort.pixel_column == "synthetic_key":
        from ..synthetic import render_rows

        pos = pd.Index(cohort.table["sample_id"].astype(str)).get_indexer(
            images["sample_id"].astype(str))
        return render_rows(cohort, pos, size)
    from ..imaging.cache import cached_pixels

    sub = dataclasses.replace(cohort, table=cohort.table[cohort.table["sample_id"].astype(str).isin(
        set(images["sample_id"].astype(str)))].set_index("sample_id", drop=False)
        .loc[images["sample_id"].astype(str)].reset_index(drop=True))
    return np.asarray(cached_pixels(sub, size))


# ----------------------------------------------------------------------------- probes


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of its ``level`` t-interval (NaN half-width for one value).

    >>> m, h = mean_ci([0.8, 0.9])
    >>> round(m, 3), round(h, 3)
    (0.85, 0.635)
    """
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return float(v.mean()), float(half)


def patient_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int):
    """Patient-wise stratified folds (scikit-learn's ``StratifiedGroupKFold``, shuffled)."""
    import warnings

    from sklearn.model_selection import StratifiedGroupKFold

    if len(np.unique(groups)) < n_folds:
        raise InputError(f"{len(np.unique(groups))} patients cannot fill {n_folds} folds")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        cv = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=int(seed))
        return list(cv.split(np.zeros((len(y), 1)), y, groups))


def fit_predict(X: np.ndarray, y: np.ndarray, X_new: np.ndarray, *, seed: int = 0,
                params: Mapping[str, Any] | None = None) -> np.ndarray:
    """Fit the LightGBM probe on (X, y); probability of the positive class for ``X_new``."""
    from ..adapt.probes import create_probe

    est = create_probe("lightgbm", random_state=int(seed), **dict(params or {}))
    est.fit(X, y)
    proba = est.predict_proba(X_new)
    classes = list(np.asarray(est.classes_).astype(int))
    return proba[:, classes.index(1)] if 1 in classes else np.zeros(len(X_new))


def cross_validate(X: np.ndarray, y: np.ndarray, groups: np.ndarray, *, n_folds: int = 5,
                   seed: int = 0, X_views: np.ndarray | None = None,
                   view_owner: np.ndarray | None = None,
                   params: Mapping[str, Any] | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """LightGBM with patient-wise k-fold cross-validation (Paper D, section 2.5).

    ``X_views`` (augmented views) with ``view_owner`` (the row of ``X`` each view comes
    from) join a fold's training data when their image is in it; validation folds hold
    original images only.  Returns per-fold ``auroc`` and ``f1`` (threshold 0.5) and the
    out-of-fold scores of every row.
    """
    from ..audit import auroc, f1

    y = np.asarray(y, dtype=int)
    folds = patient_folds(y, np.asarray(groups), n_folds, seed)
    oof = np.full(len(y), np.nan)
    rows = []
    for f, (tr, va) in enumerate(folds):
        Xtr, ytr = X[tr], y[tr]
        if X_views is not None:
            keep = np.isin(view_owner, tr)
            Xtr = np.vstack([Xtr, X_views[keep]])
            ytr = np.concatenate([ytr, y[view_owner[keep]]])
        s = fit_predict(Xtr, ytr, X[va], seed=seed, params=params)
        oof[va] = s
        ok = len(np.unique(y[va])) == 2
        rows.append({"fold": f, "n_train": len(ytr), "n_val": len(va),
                     "auroc": float(auroc(y[va], s)) if ok else float("nan"),
                     "f1": float(f1(y[va], (s >= 0.5).astype(int)))})
    return pd.DataFrame(rows), oof


# ----------------------------------------------------------------------------- the run


@dataclasses.dataclass
class PaperDResult:
    """Everything :func:`run_paper_d` produced (tables are tidy DataFrames)."""

    cohorts: pd.DataFrame          # per dataset x label: images, patients, train/test
    folds: pd.DataFrame            # per dataset x model x label x augmented x fold: auroc, f1
    table1: pd.DataFrame           # Paper D's layout, "mean ± half" strings
    table1_long: pd.DataFrame      # the same as numbers (mean, ci_half, ci_low, ci_high)
    augmentation: pd.DataFrame     # with vs without views: paired fold differences
    heldout: pd.DataFrame          # the 20 % test split: AUROC and F1 with bootstrap CIs
    groups: pd.DataFrame           # out-of-fold AUROC per sex and age band, bootstrap CIs
    stability: pd.DataFrame        # NIH vs MIMIC AUROC per model and label, reported too
    silhouette: pd.DataFrame       # per dataset x model x k: silhouette (cosine k-means)
    umap: pd.DataFrame             # Fig. 1: x, y, label, y_true for the best and worst label
    umap_info: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)


def _audit_rows(pred: pd.DataFrame, *, attributes: list[str], metrics: list[str],
                n_bootstrap: int, seed: int) -> pd.DataFrame:
    from ..audit import audit

    attrs = [a for a in attributes if a in pred and pred[a].notna().any()]
    overall_only = not attrs
    if overall_only:                  # the audit needs an attribute; its overall rows suffice
        pred = pred.assign(everyone="all")
        attrs = ["everyone"]
    quiet = logging.getLogger("compendium.audit")
    level = quiet.level
    quiet.setLevel(logging.ERROR)     # small-group notices: the table's flag column has them
    try:
        table = audit(pred, task="binary", attributes=attrs, n_bootstrap=n_bootstrap,
                      n_permutations=0, seed=seed, metrics=metrics, threshold=0.5)
    finally:
        quiet.setLevel(level)
    table = table[table["metric"].isin(metrics)]
    return table[table["attribute"] == "all"] if overall_only else table


def run_paper_d(*, datasets: Sequence[str] = ("mimic-cxr", "nih"),
                models: Sequence[str] = ("medimageinsight", "cxr-foundation"),
                labels: Sequence[str] = PAPER_LABELS, pixels: str = "synthetic",
                roots: Mapping[str, str] | None = None, mimic_iv: str | None = None,
                weights: Mapping[str, str] | None = None, tiny_encoders: bool = False,
                n_per_class: int = 1000, test_fraction: float = 0.2, n_folds: int = 5,
                augment: bool = True, n_bootstrap: int = 1000, seed: int = 0,
                nih_opacity: Sequence[str] = NIH_OPACITY, synthetic_rows: int = 8000,
                knobs: Any = None, age_scheme: str = "paper_a",
                k_range: Sequence[int] = tuple(range(2, 11)), kmeans_n_init: int = 50,
                umap_neighbors: int = 15, lightgbm: Mapping[str, Any] | None = None,
                batch_size: int = 64) -> PaperDResult:
    """Paper D end to end (see the module docstring); every argument is a notebook parameter."""
    from tqdm.auto import tqdm

    from ..adapt.predictions import predictions_table
    from ..embedding_space import silhouette_curve

    roots, weights = dict(roots or {}), dict(weights or {})
    unknown = [lab for lab in labels if lab not in PAPER_LABELS]
    if unknown or not labels:
        raise ConfigError(f"labels: {unknown[0] if unknown else 'empty'!r} is not a Paper D "
                          f"label (allowed: {', '.join(PAPER_LABELS)})")
    variants = (True, False) if augment else (False,)
    cohort_rows, fold_rows, group_rows, heldout_rows, sil_rows = [], [], [], [], []
    notes: list[str] = []
    kept: dict[tuple[str, str], tuple[np.ndarray, pd.DataFrame, pd.DataFrame]] = {}
    encoders = {m: load_encoder(m, weights_path=weights.get(m), tiny=tiny_encoders, seed=seed)
                for m in models}
    for dataset in datasets:
        shown = dataset_display(dataset, pixels)
        pool = pool_cohort(dataset, pixels=pixels, root=roots.get(dataset), mimic_iv=mimic_iv,
                           nih_opacity=nih_opacity, synthetic_rows=synthetic_rows, knobs=knobs,
                           world_seed=seed, age_scheme=age_scheme, labels=labels,
                           presample=int(np.ceil(1.5 * n_per_class)) if pixels == "synthetic"
                           else None)
        tasks, images = sample_tasks(pool.table, labels, n_per_class=n_per_class,
                                     test_fraction=test_fraction, seed=seed)
        for label, t in tasks.groupby("label", sort=False):
            cohort_rows.append({"dataset": shown, "label": label,
                                "positives": int(t["y"].sum()), "negatives": int((t["y"] == 0).sum()),
                                "patients": int(t["patient_id"].nunique()),
                                "train": int((t["split"] == "train").sum()),
                                "test": int((t["split"] == "test").sum()),
                                "source": pool.source})
        pixel_cache: dict = {}
        pos_of = {s: i for i, s in enumerate(images["sample_id"].astype(str))}
        for model in models:
            enc = encoders[model]
            X, Xv, train_ids = embed_images(enc, pool, images, augment=augment, aug_seed=seed,
                                            pixel_cache=pixel_cache, batch_size=batch_size)
            train_pos = {s: i for i, s in enumerate(train_ids)}
            kept[(dataset, model)] = (X, images, tasks)
            mshown = model_display(model)
            for label in tqdm(list(labels), desc=f"{shown} / {mshown}: LightGBM", leave=False):
                t = tasks[tasks["label"] == label]
                tr, te = t[t["split"] == "train"], t[t["split"] == "test"]
                rows_tr = images.iloc[[pos_of[s] for s in tr["sample_id"]]].reset_index(drop=True)
                rows_te = images.iloc[[pos_of[s] for s in te["sample_id"]]].reset_index(drop=True)
                Xtr = X[[pos_of[s] for s in tr["sample_id"]]]
                Xte = X[[pos_of[s] for s in te["sample_id"]]]
                ytr, yte = tr["y"].to_numpy(int), te["y"].to_numpy(int)
                groups = tr["patient_id"].to_numpy(str)
                owner = views = None
                if Xv is not None:
                    img = np.array([train_pos[s] for s in tr["sample_id"]])
                    views = Xv[(img[:, None] * 5 + np.arange(5)).ravel()]
                    owner = np.repeat(np.arange(len(tr)), 5)
                for aug in variants:
                    fd, oof = cross_validate(Xtr, ytr, groups, n_folds=n_folds, seed=seed,
                                             X_views=views if aug else None,
                                             view_owner=owner if aug else None, params=lightgbm)
                    fold_rows.append(fd.assign(dataset=shown, model=mshown, label=label,
                                               augmented=aug))
                    if aug != augment:
                        continue
                    pred = predictions_table(rows_tr, oof, [label], "binary")
                    g = _audit_rows(pred, attributes=["sex", "age_group"], metrics=["auroc"],
                                    n_bootstrap=n_bootstrap, seed=seed)
                    group_rows.append(g.assign(dataset=shown, model=mshown, label=label))
                    Xfit, yfit = Xtr, ytr
                    if aug:
                        Xfit, yfit = np.vstack([Xtr, views]), np.concatenate([ytr, ytr[owner]])
                    s = fit_predict(Xfit, yfit, Xte, seed=seed, params=lightgbm)
                    pred_te = predictions_table(rows_te, s, [label], "binary")
                    h = _audit_rows(pred_te, attributes=[], metrics=["auroc", "f1"],
                                    n_bootstrap=n_bootstrap, seed=seed)
                    heldout_rows.append(h.assign(dataset=shown, model=mshown, label=label))
            sil = silhouette_curve(X, [k for k in k_range if k < len(X)], n_init=kmeans_n_init,
                                   seed=seed, progress=True)
            sil_rows.append(sil.assign(dataset=shown, model=mshown))
    folds = pd.concat(fold_rows, ignore_index=True)
    long = _table1_long(folds[folds["augmented"] == augment])
    result = PaperDResult(
        cohorts=pd.DataFrame(cohort_rows), folds=folds, table1=_table1_wide(long, labels),
        table1_long=long, augmentation=_augmentation(folds) if augment else pd.DataFrame(),
        heldout=_tidy(pd.concat(heldout_rows, ignore_index=True)),
        groups=_tidy(pd.concat(group_rows, ignore_index=True)),
        stability=_stability(long), silhouette=pd.concat(sil_rows, ignore_index=True),
        umap=pd.DataFrame(), notes=notes)
    _umap(result, kept, datasets, models, pixels, seed=seed, n_neighbors=umap_neighbors)
    return result


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["dataset", "model", "label", "metric", "attribute", "group", "estimate", "ci_low",
            "ci_high", "n", "flag"]
    out = table[cols].copy()
    out["group"] = out["group"].astype(str)
    return out.reset_index(drop=True)


def _table1_long(folds: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (dataset, model, label), g in folds.groupby(["dataset", "model", "label"], sort=False):
        for metric in ("auroc", "f1"):
            m, h = mean_ci(g[metric].to_numpy())
            rows.append({"label": label, "dataset": dataset, "model": model,
                         "paper_model": paper_model_of(_model_name(model)) or model,
                         "metric": metric, "mean": m, "ci_half": h, "ci_low": m - h,
                         "ci_high": m + h, "folds": int(g[metric].notna().sum())})
    return pd.DataFrame(rows)


def _model_name(shown: str) -> str:
    for real, name in PAPER_MODELS.items():
        if shown == name:
            return real
    return shown.split(" (for ")[0]


def _table1_wide(long: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Paper D's Table 1 layout: one row per label x dataset, AUROC then F1 per model."""
    models = list(dict.fromkeys(long["model"]))
    rows = []
    for label in labels:
        for dataset in dict.fromkeys(long["dataset"]):
            sub = long[(long["label"] == label) & (long["dataset"] == dataset)]
            if sub.empty:
                continue
            row = {"Disease": label, "Dataset": dataset}
            for metric, name in (("auroc", "AUROC"), ("f1", "F1")):
                for model in models:
                    r = sub[(sub["model"] == model) & (sub["metric"] == metric)]
                    row[f"{name} {model}"] = (f"{r['mean'].iloc[0]:.3f} ± {r['ci_half'].iloc[0]:.3f}"
                                              if len(r) else "")
            rows.append(row)
    return pd.DataFrame(rows)


def _augmentation(folds: pd.DataFrame) -> pd.DataFrame:
    """With vs without augmented views: means and the paired (same folds) difference."""
    rows = []
    for (dataset, model, label), g in folds.groupby(["dataset", "model", "label"], sort=False):
        w = g[g["augmented"]].set_index("fold")
        wo = g[~g["augmented"]].set_index("fold")
        for metric in ("auroc", "f1"):
            d = (w[metric] - wo[metric]).dropna()
            dm, dh = mean_ci(d.to_numpy())
            rows.append({"dataset": dataset, "model": model, "label": label, "metric": metric,
                         "without_views": float(wo[metric].mean()),
                         "with_views": float(w[metric].mean()), "difference": dm,
                         "diff_ci_low": dm - dh, "diff_ci_high": dm + dh})
    return pd.DataFrame(rows)


def _stability(long: pd.DataFrame) -> pd.DataFrame:
    """AUROC on NIH vs MIMIC per model and label, for the reproduced and the reported table."""
    rep = reported_table1()
    rep = rep[rep["metric"] == "auroc"].assign(source="reported", model=rep["paper_model"])
    rep["dataset"] = rep["dataset"].map({"MIMIC": "mimic", "NIH": "nih"})
    ours = long[long["metric"] == "auroc"].assign(source="reproduced")
    ours["dataset"] = ours["dataset"].map(lambda d: "mimic" if d.startswith("MIMIC") else
                                          ("nih" if d.startswith("NIH") else d))
    both = pd.concat([rep, ours], ignore_index=True)
    wide = both.pivot_table(index=["source", "paper_model", "model", "label"], columns="dataset",
                            values="mean", sort=False).reset_index()
    for col in ("mimic", "nih"):
        if col not in wide.columns:
            wide[col] = np.nan
    wide = wide.dropna(subset=["mimic", "nih"]).copy()    # a model run on one dataset only
    wide["abs_difference"] = (wide["nih"] - wide["mimic"]).abs()
    wide.columns.name = None
    return wide[["source", "paper_model", "model", "label", "mimic", "nih", "abs_difference"]]


def stability_summary(stability: pd.DataFrame) -> pd.DataFrame:
    """Mean and largest |AUROC(NIH) - AUROC(MIMIC)| over labels, per source and model."""
    g = stability.groupby(["source", "paper_model", "model"], sort=False)["abs_difference"]
    return g.agg(mean_abs_difference="mean", max_abs_difference="max",
                 labels="count").reset_index()


def _umap(result: PaperDResult, kept, datasets, models, pixels: str, *, seed: int,
          n_neighbors: int) -> None:
    """Fig. 1: UMAP of the first model's embeddings on MIMIC (else the first dataset), for the
    labels with the highest and the lowest cross-validated AUROC."""
    from ..embedding_space import umap_2d

    dataset = "mimic-cxr" if "mimic-cxr" in datasets else datasets[0]
    model = models[0]
    X, images, tasks = kept[(dataset, model)]
    shown, mshown = dataset_display(dataset, pixels), model_display(model)
    auc = result.table1_long[(result.table1_long["dataset"] == shown)
                             & (result.table1_long["model"] == mshown)
                             & (result.table1_long["metric"] == "auroc")].set_index("label")["mean"]
    best, worst = auc.idxmax(), auc.idxmin()
    pos_of = {s: i for i, s in enumerate(images["sample_id"].astype(str))}
    parts = []
    for which, label in (("highest AUROC", best), ("lowest AUROC", worst)):
        t = tasks[tasks["label"] == label]
        xy = umap_2d(X[[pos_of[s] for s in t["sample_id"]]], seed=seed, n_neighbors=n_neighbors)
        parts.append(pd.DataFrame({"label": label, "which": which, "sample_id": t["sample_id"],
                                   "y_true": t["y"].to_numpy(int), "umap_1": xy[:, 0],
                                   "umap_2": xy[:, 1]}))
    result.umap = pd.concat(parts, ignore_index=True)
    result.umap_info = {"dataset": shown, "model": mshown, "best": str(best), "worst": str(worst),
                        "best_auroc": f"{auc[best]:.3f}", "worst_auroc": f"{auc[worst]:.3f}"}


# ----------------------------------------------------------------------------- figures


def umap_figure(result: PaperDResult):
    """Fig. 1: two UMAP panels (best and worst label), positives vs negatives."""
    import matplotlib.pyplot as plt

    info = result.umap_info
    labels = list(dict.fromkeys(result.umap["label"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 4.0), squeeze=False)
    for ax, (letter, label) in zip(axes[0], zip("ab", labels)):
        d = result.umap[result.umap["label"] == label]
        for y, colour in ((0, "#4c72b0"), (1, "#dd8452")):
            s = d[d["y_true"] == y]
            ax.scatter(s["umap_1"], s["umap_2"], s=6, alpha=0.6, color=colour, label=str(y),
                       linewidths=0)
        auc = info["best_auroc"] if label == info["best"] else info["worst_auroc"]
        ax.set_title(f"({letter}) {label} (CV AUROC {auc})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(title=label, markerscale=2, fontsize=8, title_fontsize=8)
    fig.suptitle(f"UMAP of {info['model']} embeddings, {info['dataset']}", fontsize=10)
    fig.tight_layout()
    return fig


def silhouette_figure(result: PaperDResult):
    """Mean silhouette of cosine k-means against k, one line per dataset x model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (dataset, model), g in result.silhouette.groupby(["dataset", "model"], sort=False):
        line, = ax.plot(g["k"], g["silhouette"], marker="o", ms=3, label=f"{model} / {dataset}")
        b = g[g["best"]]
        ax.scatter(b["k"], b["silhouette"], s=70, facecolors="none", edgecolors=line.get_color())
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("mean silhouette (cosine)")
    ax.legend(fontsize=7)
    ax.set_title("k-means (cosine, circled: k chosen)", fontsize=10)
    fig.tight_layout()
    return fig


def groups_figure(result: PaperDResult):
    """Out-of-fold AUROC per sex and age band with 95 % intervals, per dataset and label."""
    import matplotlib.pyplot as plt

    g = result.groups[(result.groups["metric"] == "auroc")
                      & (result.groups["attribute"] != "all")].copy()
    panels = list(dict.fromkeys(zip(g["dataset"], g["model"])))
    ncols = min(2, max(1, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False,
                             sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (dataset, model) in zip(axes.ravel(), panels):
        d = g[(g["dataset"] == dataset) & (g["model"] == model)]
        groups = list(dict.fromkeys(d["attribute"] + "=" + d["group"]))
        for j, label in enumerate(dict.fromkeys(d["label"])):
            r = d[d["label"] == label].set_index(d[d["label"] == label]["attribute"] + "="
                                                  + d[d["label"] == label]["group"])
            r = r.reindex(groups)
            x = np.arange(len(groups)) + (j - 1.5) * 0.18
            ax.errorbar(x, r["estimate"], yerr=[r["estimate"] - r["ci_low"],
                                                r["ci_high"] - r["estimate"]],
                        fmt="o", ms=3, capsize=2, label=label)
        ax.set_xticks(np.arange(len(groups)))
        ax.set_xticklabels(groups, rotation=30, fontsize=7)
        ax.set_title(f"{model}\n{dataset}", fontsize=8)
    for row in axes:
        row[0].set_ylabel("out-of-fold AUROC (95 % CI)")
    axes.ravel()[max(0, len(panels) - 1)].legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["DATASETS", "LABEL_SOURCES", "NIH_OPACITY", "OPACITY_CANDIDATES", "PAPER_LABELS",
           "PAPER_MODELS", "PaperDResult", "REPORTED_TABLE1", "cross_validate", "embed_images",
           "fit_predict", "google_airspace_opacity", "groups_figure", "load_encoder", "mean_ci",
           "model_display", "opacity_evidence", "paper_model_of", "pool_cohort",
           "reported_table1", "run_paper_d", "sample_tasks", "silhouette_figure",
           "stability_summary", "umap_figure"]
