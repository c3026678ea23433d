"""Paper D's steps, one per arrow of DESIGN.md's data flow; each takes the validated spec
(:class:`~.spec.PaperDSpec`) and returns typed, tidy results.

1. :func:`build_pools` - per dataset, its frontal images with Paper D's four labels as
   columns, then per label ``n_per_class`` positives and negatives, one image per patient
   (:func:`~compendium.cohorts.splits.balanced_sample`); the union of the sampled images is
   split 80/20 by patient, so every label's experiment has the same held-out patients.
   ``pixels: synthetic``: NIH keeps its real metadata rows with synthetic pixels; MIMIC-CXR,
   whose metadata is credentialed, is replaced by the synthetic world's own cohort.
2. :func:`embed_pools` - frozen embeddings of every sampled image and of the augmented views
   of every *training* image (:mod:`compendium.imaging.augment`).  Vendor models
   (``embeddings-file``) read both from their tool's ``.npz``.
3. :func:`cross_validate_all` - LightGBM with patient-wise k-fold cross-validation on the
   training images (:func:`compendium.adapt.probes.cross_validate`); views join training
   folds only.  Table 1 is the mean over folds +- the interval of ``ci_reading`` (decided
   by :func:`interval_evidence`); F1 at the 0.5 threshold.  Out-of-fold predictions are audited per sex and age.
4. :func:`held_out` - fit on all training images, audited once on the held-out patients.
5. :func:`embedding_space` - cosine k-means with k chosen by the silhouette, and UMAP of the
   best and worst label (Fig. 1).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ...errors import InputError
from ..base import ModelPlan, audit_predictions, load_plan_encoder
from .spec import LABELS, PaperDSpec

#: Source column of each Paper D label in MIMIC-CXR's CheXpert labels.
MIMIC_LABELS = {"Atelectasis": "Atelectasis", "Edema": "Edema",
                "Effusion": "Pleural Effusion", "Opacity": "Lung Opacity"}
#: How Table 1 names the datasets.
DATASET_NAMES = {"mimic-cxr": "MIMIC", "nih": "NIH"}
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


def dataset_label(dataset: str, pixels: str) -> str:
    """Table 1's name of a dataset; flags synthetic stand-ins."""
    base = DATASET_NAMES.get(dataset, dataset)
    if pixels == "real":
        return base
    return "MIMIC (synthetic world)" if dataset == "mimic-cxr" else f"{base} (synthetic pixels)"


# ----------------------------------------------------------------------------- NIH Opacity


def opacity_evidence(cfg: PaperDSpec, nih: pd.DataFrame | None = None,
                     google: pd.DataFrame | None = None,
                     candidates: Sequence[Sequence[str]] = OPACITY_CANDIDATES) -> pd.DataFrame:
    """How well each NIH label set agrees with Google's adjudicated "Airspace opacity".

    For every candidate set (an image is positive when any of its labels is), on the images
    Google relabelled: Cohen's kappa, sensitivity and positive predictive value against
    Google's label; on the whole NIH table (frontal views): positive images, positive
    patients, and whether the set includes another Paper D label (the "Opacity" task would
    then overlap Atelectasis/Edema/Effusion).  ``chosen`` marks ``cfg.nih_opacity``.
    ``attrs``: ``n_google_images``, ``google_positive``, ``google_positive_patients``.
    """
    from sklearn.metrics import cohen_kappa_score

    from ...cohorts.nih import google2019_airspace_opacity, nih_table, read_nih_metadata

    nih = nih_table(read_nih_metadata()) if nih is None else nih
    nih = nih[nih["view"].isin(["PA", "AP"])]
    google = google2019_airspace_opacity() if google is None else google
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
            "overlaps_paper_d_label": bool(set(cols) & set(LABELS)),
            "chosen": tuple(cols) == tuple(cfg.nih_opacity),
        })
    out = pd.DataFrame(rows)
    out.attrs["n_google_images"] = int(len(both))
    out.attrs["google_positive"] = int(g.sum())
    out.attrs["google_positive_patients"] = int(both.loc[g == 1, "patient_id"].nunique())
    return out


# ----------------------------------------------------------------------------- pools


@dataclasses.dataclass
class Pool:
    """One dataset's sampled images: ``tasks`` has one row per (label, image) with ``y`` and
    ``split``; ``images`` the sampled rows of the cohort (each once) with their ``split``."""

    dataset: str
    label: str                     # how Table 1 names it
    cohort: Any
    tasks: pd.DataFrame
    images: pd.DataFrame

    def rows_of(self, sample_ids: Sequence[str]) -> np.ndarray:
        """Positions in :attr:`images` of ``sample_ids``."""
        pos = pd.Index(self.images["sample_id"].astype(str)).get_indexer(list(sample_ids))
        if (pos < 0).any():
            raise InputError(f"{self.dataset}: {int((pos < 0).sum())} sampled ids not in images")
        return pos


def pool_cohort(dataset: str, cfg: PaperDSpec):
    """The frontal images of ``dataset`` with Paper D's labels as columns (1, 0 or NaN)."""
    from ...cohorts import build_cohort
    from ...cohorts.splits import add_age_group
    from ...synthetic import synthetic_cxr, with_synthetic_pixels

    if dataset == "nih":
        real = cfg.pixels == "real"
        cohort = build_cohort("nih", root=cfg.data_roots["nih"] if real else None,
                              views=("PA", "AP"), seed=cfg.world_seed)
        if not real:
            cohort = with_synthetic_pixels(_presample(cohort, cfg), knobs=cfg.knobs,
                                           seed=cfg.world_seed)
        table = cohort.table.copy()
        table["Opacity"] = table[list(cfg.nih_opacity)].to_numpy(dtype=float).max(axis=1)
    elif cfg.pixels == "real":
        cohort = build_cohort("mimic-cxr", root=cfg.data_roots["mimic-cxr"],
                              mimic_iv=cfg.data_roots.get("mimic-iv") or None,
                              frontal_only=True, uncertainty="ignore", seed=cfg.world_seed,
                              unmentioned={"explicit": "unknown",
                                           "unmentioned_too": "negative"}[cfg.mimic_negatives])
        table = cohort.table.copy()
        for label, src in MIMIC_LABELS.items():
            table[label] = table[src]
    else:
        cohort = synthetic_cxr(n=cfg.synthetic_rows, seed=cfg.world_seed, knobs=cfg.knobs,
                               name="mimic-cxr-synthetic")
        table = cohort.table.copy()
    return dataclasses.replace(cohort, table=add_age_group(table, cfg.age_scheme))


def _presample(cohort, cfg: PaperDSpec):
    """Synthetic NIH only: before the synthetic world records its labels (its
    ``underdiagnosis`` knob turns some positives negative), keep the images of a patient-wise
    balanced pre-sample of 1.5 x ``n_per_class`` positives and negatives per label of the real
    table instead of all 112,120 rows; the final sample is drawn from this pool."""
    from ...cohorts.splits import balanced_sample

    n = int(np.ceil(1.5 * cfg.n_per_class))
    t = cohort.table.assign(
        Opacity=cohort.table[list(cfg.nih_opacity)].to_numpy(dtype=float).max(axis=1))
    keep: set[str] = set()
    for j, label in enumerate(cfg.labels):
        s = balanced_sample(t, label, n, n, seed=np.random.default_rng([int(cfg.world_seed), 5, j]))
        keep |= set(s["sample_id"].astype(str))
    sub = cohort.table[cohort.table["sample_id"].astype(str).isin(keep)]
    return dataclasses.replace(cohort, table=sub.reset_index(drop=True))


def sample_tasks(table: pd.DataFrame, cfg: PaperDSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per label ``n_per_class`` positives and negatives (one image per patient) and the
    patient-wise ``1 - test_fraction`` / ``test_fraction`` split of their union."""
    from ...cohorts.splits import balanced_sample, patient_split

    parts = []
    for j, label in enumerate(cfg.labels):
        if label not in table.columns:
            raise InputError(f"paper_d: the cohort has no {label!r} column")
        rng = np.random.default_rng([int(cfg.seed), 4, j])
        s = balanced_sample(table, label, cfg.n_per_class, cfg.n_per_class, seed=rng)
        parts.append(pd.DataFrame({"label": label, "sample_id": s["sample_id"].astype(str),
                                   "patient_id": s["patient_id"].astype(str),
                                   "y": s[label].to_numpy(dtype=int)}))
    tasks = pd.concat(parts, ignore_index=True)
    images = table[table["sample_id"].astype(str).isin(set(tasks["sample_id"]))].copy()
    images = patient_split(images.drop(columns=["split"], errors="ignore"),
                           (1.0 - cfg.test_fraction, 0.0, cfg.test_fraction), seed=cfg.seed)
    images = images.reset_index(drop=True)
    tasks["split"] = tasks["sample_id"].map(dict(zip(images["sample_id"].astype(str),
                                                     images["split"])))
    return tasks, images


def build_pools(cfg: PaperDSpec) -> list[Pool]:
    """:func:`pool_cohort` and :func:`sample_tasks` of every dataset of ``cfg``."""
    pools = []
    for dataset in cfg.datasets:
        cohort = pool_cohort(dataset, cfg)
        tasks, images = sample_tasks(cohort.table, cfg)
        pools.append(Pool(dataset, dataset_label(dataset, cfg.pixels), cohort, tasks, images))
    return pools


# ----------------------------------------------------------------------------- embeddings


@dataclasses.dataclass
class Embedded:
    """Embeddings of a pool's images (``X``, aligned with ``pool.images``) and of the views of
    its training images (``views``: ``N_VIEWS`` rows per training image, in the order of
    ``train_ids``; ``None`` without ``augment``)."""

    dataset: str
    plan: ModelPlan
    X: np.ndarray
    views: np.ndarray | None
    train_ids: list[str]


def embed_pools(pools: Sequence[Pool], cfg: PaperDSpec, *, progress: bool = True
                ) -> list[Embedded]:
    """Every model's embeddings of every pool (each encoder built once), dataset by dataset
    and, within a dataset, in the order of ``cfg.models``."""
    from ...runtime import torch_threads

    out = []
    with torch_threads(cfg.threads):
        encoders = [(plan, load_plan_encoder(plan, cfg, progress=progress))
                    for plan in cfg.model_plans()]
        for pool in pools:
            for plan, enc in encoders:
                X, V, ids = embed_images(enc, pool, cfg, progress=progress)
                out.append(Embedded(pool.dataset, plan, X, V, ids))
    return out


def embed_images(encoder, pool: Pool, cfg: PaperDSpec, *, progress: bool = True
                 ) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """``(X, views, train_ids)`` of one pool (see :class:`Embedded`)."""
    from ...encoders.cache import extract_embeddings
    from ...imaging import pixels
    from ...imaging.augment import augment_views, view_ids

    ids = pool.images["sample_id"].astype(str).tolist()
    train_ids = pool.images.loc[pool.images["split"] == "train", "sample_id"].astype(str).tolist()
    if encoder.entry.kind == "embeddings-file":
        from ...errors import DataNotFoundError

        X = np.asarray(encoder.encode_samples(ids), dtype=np.float32)
        if not cfg.augment:
            return X, None, train_ids
        vids = view_ids(train_ids)
        missing = [v for v in vids if v not in set(encoder.sample_ids)]
        if missing:
            raise DataNotFoundError(
                f"{encoder.name}: the embeddings file lacks {len(missing)} of the {len(vids)} "
                f"augmented views of the training images (e.g. {missing[0]!r}); embed the views "
                "of compendium.imaging.augment with the vendor tool under those ids, or set "
                "augment: false")
        return X, np.asarray(encoder.encode_samples(vids), dtype=np.float32), train_ids
    pix = pixels(pool.cohort, int(encoder.entry.preprocess.size), sample_ids=ids,
                 progress=progress)
    X = np.array(extract_embeddings(encoder, pix, batch_size=cfg.batch_size,
                                    progress=progress).array, dtype=np.float32)
    if not cfg.augment:
        return X, None, train_ids
    is_train = (pool.images["split"] == "train").to_numpy()
    views = augment_views(pix[is_train], train_ids, seed=cfg.seed, progress=progress)
    flat = views.reshape(-1, *views.shape[2:])
    V = np.array(extract_embeddings(encoder, flat, batch_size=cfg.batch_size,
                                    progress=progress).array, dtype=np.float32)
    return X, V, train_ids


# ----------------------------------------------------------------------------- probes


@dataclasses.dataclass
class LabelData:
    """One label's training and held-out data of one (pool, embeddings)."""

    X_train: np.ndarray
    y_train: np.ndarray
    patients: np.ndarray
    rows_train: pd.DataFrame
    X_test: np.ndarray
    y_test: np.ndarray
    rows_test: pd.DataFrame
    views: np.ndarray | None      # the training images' views
    view_owner: np.ndarray | None  # the training row each view comes from


def label_data(pool: Pool, emb: Embedded, label: str) -> LabelData:
    """Slice :class:`LabelData` for ``label`` out of a pool and its embeddings."""
    from ...imaging.augment import N_VIEWS

    t = pool.tasks[pool.tasks["label"] == label]
    tr, te = t[t["split"] == "train"], t[t["split"] == "test"]
    p_tr, p_te = pool.rows_of(tr["sample_id"]), pool.rows_of(te["sample_id"])
    views = owner = None
    if emb.views is not None:
        img = pd.Index(emb.train_ids).get_indexer(tr["sample_id"].astype(str))
        views = emb.views[(img[:, None] * N_VIEWS + np.arange(N_VIEWS)).ravel()]
        owner = np.repeat(np.arange(len(tr)), N_VIEWS)
    return LabelData(emb.X[p_tr], tr["y"].to_numpy(int), tr["patient_id"].to_numpy(str),
                     pool.images.iloc[p_tr].reset_index(drop=True), emb.X[p_te],
                     te["y"].to_numpy(int), pool.images.iloc[p_te].reset_index(drop=True),
                     views, owner)


def _fold_metrics() -> dict[str, Any]:
    from ...audit import auroc, f1

    return {"auroc": lambda y, s: auroc(y, s[:, 1]),
            "f1": lambda y, s: f1(y, (s[:, 1] >= 0.5).astype(int))}


@dataclasses.dataclass
class CVResults:
    """``folds``: per dataset x model x label x augmented x fold, AUROC and F1 (and the fold's
    flag); ``groups``: out-of-fold AUROC per sex and age band with bootstrap intervals."""

    folds: pd.DataFrame
    groups: pd.DataFrame


def cross_validate_all(pools: Sequence[Pool], embedded: Sequence[Embedded], cfg: PaperDSpec,
                       *, progress: bool = True) -> CVResults:
    """Patient-wise k-fold LightGBM for every dataset x model x label, with and without the
    augmented views (with ``augment``); the out-of-fold predictions of the run's variant
    audited per sex and age band."""
    from tqdm.auto import tqdm

    from ...adapt.predictions import predictions_table
    from ...adapt.probes import cross_validate

    by_dataset = {p.dataset: p for p in pools}
    variants = (True, False) if cfg.augment else (False,)
    fold_rows, group_rows = [], []
    for emb in embedded:
        pool = by_dataset[emb.dataset]
        for label in tqdm(list(cfg.labels), desc=f"{pool.label} / {emb.plan.label}: LightGBM",
                          leave=False, disable=not progress):
            d = label_data(pool, emb, label)
            for aug in variants:
                cv = cross_validate("lightgbm", d.X_train, d.y_train, d.patients,
                                    n_splits=cfg.n_splits, seed=cfg.seed, params=cfg.lightgbm,
                                    views=d.views if aug else None,
                                    view_owner=d.view_owner if aug else None, n_classes=2)
                fold_rows.append(cv.per_fold(d.y_train, _fold_metrics()).assign(
                    dataset=pool.label, model=emb.plan.label, paper_model=emb.plan.model,
                    label=label, augmented=aug))
                if aug == cfg.augment:
                    pred = predictions_table(d.rows_train, cv.scores[:, 1], [label], "binary")
                    g = audit_predictions(pred, task="binary", attributes=["sex", "age_group"],
                                          metrics=["auroc"], n_bootstrap=cfg.n_bootstrap,
                                          seed=cfg.seed)
                    group_rows.append(g.assign(dataset=pool.label, model=emb.plan.label,
                                               label=label))
    return CVResults(pd.concat(fold_rows, ignore_index=True),
                     _tidy(pd.concat(group_rows, ignore_index=True)))


def held_out(pools: Sequence[Pool], embedded: Sequence[Embedded], cfg: PaperDSpec
             ) -> pd.DataFrame:
    """LightGBM fitted on all training images (and their views with ``augment``), audited
    once on the held-out patients: AUROC and F1 (threshold 0.5) with patient-bootstrap
    intervals."""
    from ...adapt.predictions import predictions_table
    from ...adapt.probes import fit_predict_proba

    by_dataset = {p.dataset: p for p in pools}
    rows = []
    for emb in embedded:
        pool = by_dataset[emb.dataset]
        for label in cfg.labels:
            d = label_data(pool, emb, label)
            X, y = d.X_train, d.y_train
            if cfg.augment and d.views is not None:
                X, y = np.vstack([X, d.views]), np.concatenate([y, y[d.view_owner]])
            s = fit_predict_proba("lightgbm", X, y, d.X_test, n_classes=2, seed=cfg.seed,
                                  params=cfg.lightgbm,
                                  where=f"{pool.label} {label} training images")[:, 1]
            pred = predictions_table(d.rows_test, s, [label], "binary")
            h = audit_predictions(pred, task="binary", attributes=[], metrics=["auroc", "f1"],
                                  n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
            rows.append(h.assign(dataset=pool.label, model=emb.plan.label, label=label))
    return _tidy(pd.concat(rows, ignore_index=True))


def _tidy(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["dataset", "model", "label", "metric", "attribute", "group", "estimate", "ci_low",
            "ci_high", "n", "flag"]
    out = table[cols].copy()
    out["group"] = out["group"].astype(str)
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------- space


@dataclasses.dataclass
class EmbeddingSpace:
    """``silhouette``: per dataset x model x k the mean cosine silhouette (``best`` marks the
    chosen k); ``umap``: Fig. 1's points; ``info``: which model, dataset and labels Fig. 1
    shows, and their cross-validated AUROC; ``agreement``: per dataset x model x label, the
    adjusted Rand index between the chosen clustering and the label on that label's sampled
    images, with its permutation p-value."""

    silhouette: pd.DataFrame
    umap: pd.DataFrame
    info: dict[str, str]
    agreement: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)


def embedding_space(pools: Sequence[Pool], embedded: Sequence[Embedded], table1_long: pd.DataFrame,
                    cfg: PaperDSpec, *, progress: bool = True) -> EmbeddingSpace:
    """Cosine k-means over ``k_range`` (every sampled image of a dataset, no views) and the
    UMAP of Fig. 1: the first model on MIMIC-CXR (else the first dataset), for the labels with
    the highest and the lowest cross-validated AUROC."""
    from ...embedding_space import (cluster_label_agreement, cosine_kmeans, silhouette_curve,
                                    umap_2d)

    by_dataset = {p.dataset: p for p in pools}
    sil, agree = [], []
    for emb in embedded:
        s = silhouette_curve(emb.X, [k for k in cfg.k_range if k < len(emb.X)],
                             n_init=cfg.kmeans_n_init, seed=cfg.seed, progress=progress)
        pool = by_dataset[emb.dataset]
        sil.append(s.assign(dataset=pool.label, model=emb.plan.label))
        k = int(s.loc[s["best"], "k"].iloc[0])
        clusters = cosine_kmeans(emb.X, k, n_init=cfg.kmeans_n_init, seed=cfg.seed)
        for label in cfg.labels:
            t = pool.tasks[pool.tasks["label"] == label]
            ari, p = cluster_label_agreement(clusters[pool.rows_of(t["sample_id"])],
                                             t["y"].to_numpy(int), seed=cfg.seed)
            agree.append({"dataset": pool.label, "model": emb.plan.label,
                          "paper_model": emb.plan.model, "k": k, "label": label,
                          "adjusted_rand": ari, "p_value": p})
    dataset = "mimic-cxr" if "mimic-cxr" in cfg.datasets else cfg.datasets[0]
    emb = next(e for e in embedded if e.dataset == dataset
               and e.plan.model == cfg.model_plans()[0].model)
    pool = by_dataset[dataset]
    auc = table1_long[(table1_long["dataset"] == pool.label)
                      & (table1_long["model"] == emb.plan.label)
                      & (table1_long["metric"] == "auroc")].set_index("label")["mean"]
    best, worst = auc.idxmax(), auc.idxmin()
    parts = []
    for which, label in (("highest AUROC", best), ("lowest AUROC", worst)):
        t = pool.tasks[pool.tasks["label"] == label]
        xy = umap_2d(emb.X[pool.rows_of(t["sample_id"])], seed=cfg.seed,
                     n_neighbors=cfg.umap_neighbors)
        parts.append(pd.DataFrame({"label": label, "which": which, "sample_id": t["sample_id"],
                                   "y_true": t["y"].to_numpy(int), "umap_1": xy[:, 0],
                                   "umap_2": xy[:, 1]}))
    info = {"dataset": pool.label, "model": emb.plan.label, "best": str(best),
            "worst": str(worst), "best_auroc": f"{auc[best]:.3f}",
            "worst_auroc": f"{auc[worst]:.3f}"}
    return EmbeddingSpace(pd.concat(sil, ignore_index=True), pd.concat(parts, ignore_index=True),
                          info, pd.DataFrame(agree))


def interval_evidence(reported: pd.DataFrame, cfg: PaperDSpec, *, n_sims: int | None = None,
                      progress: bool = True) -> pd.DataFrame:
    """Which construction of Table 1's "± 95 % CI" gives the widths the paper prints?

    For every Table 1 cell, ``n_sims`` (default: the spec's ``interval_sims``) replicates of the paper's cross-validation (its
    ``1 - test_fraction`` of 2 x 1,000 images, 5 patient-wise folds) of a classifier whose
    scores are binormal with the cell's reported AUROC (F1 at the balanced threshold); in each
    replicate the fold values give a half-width under every candidate of ``ci_reading``.  Per
    reading and metric: the mean of the paper's printed half-widths and where it falls among
    the replicates' means over the same cells (``share_at_most``).  The replicates hold the
    scores fixed (no refitting), so they understate the folds' spread: a reading whose
    replicates are already *wider* than the paper's widths (share under 2.5 %) cannot give
    them and is ``ruled_out``; printed widths above the replicates are what refitting adds.
    """
    from scipy import stats
    from tqdm.auto import tqdm

    from ...audit import auroc, f1
    from .spec import PAPER_N_PER_CLASS, PAPER_N_SPLITS, PAPER_TEST_FRACTION
    from .tables import CI_MULTIPLIERS, mean_ci

    n_sims = cfg.interval_sims if n_sims is None else n_sims
    cells = reported[(reported["where"] == "Table 1")].copy()
    cells["half"] = cells["value"] - cells["ci_low"]
    n = int(round(PAPER_N_PER_CLASS * (1 - PAPER_TEST_FRACTION)))
    y = np.repeat([0, 1], n)
    rng = np.random.default_rng([cfg.seed, 11])
    halves = {(r, m): np.zeros((n_sims, 0)) for r in CI_MULTIPLIERS for m in ("auroc", "f1")}
    aucs = cells[cells["metric"] == "auroc"].set_index(["label", "dataset", "model"])["value"]
    for (label, dataset, model), a in tqdm(list(aucs.items()), desc="Table 1 intervals",
                                           disable=not progress):
        d = np.sqrt(2) * stats.norm.ppf(a)
        per = {k: np.empty(n_sims) for k in halves}
        for s in range(n_sims):
            score = rng.normal(size=2 * n) + d * y
            folds = np.array_split(rng.permutation(2 * n), PAPER_N_SPLITS)
            values = {"auroc": [auroc(y[f], score[f]) for f in folds],
                      "f1": [f1(y[f], (score[f] > d / 2).astype(int)) for f in folds]}
            for r, m in halves:
                per[(r, m)][s] = mean_ci(values[m], reading=r)[1]
        for k in halves:
            halves[k] = np.column_stack([halves[k], per[k]])
    rows = []
    for (r, m), h in halves.items():
        printed = cells.loc[cells["metric"] == m, "half"]
        sim_means = h.mean(axis=1)
        rows.append({"reading": r, "metric": m, "cells": int(len(printed)),
                     "printed_mean_half": float(printed.mean()),
                     "simulated_low": float(np.quantile(sim_means, 0.025)),
                     "simulated_median": float(np.median(sim_means)),
                     "simulated_high": float(np.quantile(sim_means, 0.975)),
                     "share_at_most": float((sim_means <= printed.mean()).mean())})
    out = pd.DataFrame(rows)
    # one-sided: the replicates understate the spread, so only printed widths *narrower*
    # than nearly all replicates rule a reading out
    out["ruled_out"] = out["share_at_most"] < 0.025
    return out


__all__ = ["CVResults", "DATASET_NAMES", "EmbeddingSpace", "Embedded", "LabelData",
           "MIMIC_LABELS", "OPACITY_CANDIDATES", "Pool", "build_pools", "cross_validate_all",
           "dataset_label", "embed_images", "embed_pools", "embedding_space",
           "held_out", "interval_evidence", "label_data", "opacity_evidence",
           "pool_cohort", "sample_tasks"]
