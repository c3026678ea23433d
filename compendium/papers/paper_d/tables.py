"""Paper D's tables (Table 1 reproduced and as printed, stability, augmentation, cohorts) and
the key numbers the chapter quotes."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from .pipeline import CVResults, EmbeddingSpace, Pool
from .spec import LABELS, PAPER_MODELS, PaperDSpec


#: How Table 1's "± 95 % CI" is built from the fold values (the ``ci_reading`` parameter):
#: the multiplier of the standard error of the fold mean, sd / sqrt(k).
CI_MULTIPLIERS = {"t_folds": "t", "z_folds": 1.959963984540054, "se_folds": 1.0}


def mean_ci(values: Sequence[float], level: float = 0.95, *,
            reading: str = "t_folds") -> tuple[float, float]:
    """Mean of the fold values and the half-width of its interval under ``reading``:
    ``t_folds`` the ``level`` t-interval (t quantile x sd / sqrt(k)), ``z_folds`` the normal
    one (1.96 x sd / sqrt(k) at 95 %), ``se_folds`` one standard error (sd / sqrt(k)).  NaN
    values (e.g. a fold where AUROC is undefined) are left out; one value: NaN half-width.

    >>> m, h = mean_ci([0.8, 0.9])
    >>> round(m, 3), round(h, 3)
    (0.85, 0.635)
    >>> round(mean_ci([0.8, 0.9], reading="se_folds")[1], 3)
    0.05
    """
    from scipy import stats

    if reading not in CI_MULTIPLIERS:
        from ...errors import ConfigError

        raise ConfigError(f"ci_reading {reading!r} (allowed: {', '.join(CI_MULTIPLIERS)})")
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan")
    if len(v) == 1:
        return float(v[0]), float("nan")
    mult = CI_MULTIPLIERS[reading]
    if mult == "t":
        mult = stats.t.ppf(0.5 + level / 2, len(v) - 1)
    elif level != 0.95 and reading == "z_folds":
        mult = stats.norm.ppf(0.5 + level / 2)
    return float(v.mean()), float(mult * v.std(ddof=1) / np.sqrt(len(v)))


def cohorts_table(pools: Sequence[Pool]) -> pd.DataFrame:
    """Per dataset x label: positives, negatives, patients, train and test images, source."""
    rows = []
    for pool in pools:
        for label, t in pool.tasks.groupby("label", sort=False):
            rows.append({"dataset": pool.label, "label": label,
                         "positives": int(t["y"].sum()), "negatives": int((t["y"] == 0).sum()),
                         "patients": int(t["patient_id"].nunique()),
                         "train images": int((t["split"] == "train").sum()),
                         "test images": int((t["split"] == "test").sum()),
                         "source": pool.cohort.source})
    return pd.DataFrame(rows)


def settings_table(cfg: PaperDSpec) -> pd.DataFrame:
    """The run's sampling, cross-validation, augmentation and LightGBM settings (the chapter
    glues these instead of retyping them)."""
    from ...imaging.augment import N_VIEWS

    rows = [("images per label and class", cfg.n_per_class),
            ("held-out share of patients", cfg.test_fraction),
            ("cross-validation folds (patient-wise)", cfg.n_splits),
            ("augmented views per training image", N_VIEWS if cfg.augment else 0),
            *((f"LightGBM {k}", v) for k, v in cfg.lightgbm.items()),
            ("k-means restarts per k", cfg.kmeans_n_init),
            ("k tried", f"{min(cfg.k_range)}-{max(cfg.k_range)}"),
            ("UMAP neighbours", cfg.umap_neighbors)]
    return pd.DataFrame(rows, columns=["setting", "value"]).astype({"value": str})


def table1_long(cv: CVResults, cfg: PaperDSpec) -> pd.DataFrame:
    """Table 1 as numbers: per label x dataset x model, the mean over folds of AUROC and F1
    and the half-width of its interval under ``ci_reading`` (folds of the run's ``augment``
    variant)."""
    folds = cv.folds[cv.folds["augmented"] == cfg.augment]
    rows = []
    for (dataset, model, paper_model, label), g in folds.groupby(
            ["dataset", "model", "paper_model", "label"], sort=False):
        for metric in ("auroc", "f1"):
            m, h = mean_ci(g[metric].to_numpy(), reading=cfg.ci_reading)
            rows.append({"label": label, "dataset": dataset, "model": model,
                         "paper_model": PAPER_MODELS.get(paper_model, paper_model),
                         "registry_model": paper_model, "metric": metric, "mean": m,
                         "ci_half": h, "ci_low": m - h, "ci_high": m + h,
                         "folds": int(g[metric].notna().sum())})
    return pd.DataFrame(rows)


def table1_wide(long: pd.DataFrame, labels: Sequence[str] = LABELS, *, model: str = "model",
                dataset: str = "dataset") -> pd.DataFrame:
    """Paper D's Table 1 layout: one row per label x dataset, AUROC then F1 per model, as
    ``mean ± half``."""
    models = list(dict.fromkeys(long[model]))
    rows = []
    for label in labels:
        for ds in dict.fromkeys(long[dataset]):
            sub = long[(long["label"] == label) & (long[dataset] == ds)]
            if sub.empty:
                continue
            row = {"Disease": label, "Dataset": ds}
            for metric, name in (("auroc", "AUROC"), ("f1", "F1")):
                for m in models:
                    r = sub[(sub[model] == m) & (sub["metric"] == metric)]
                    row[f"{name} {m}"] = (f"{r['mean'].iloc[0]:.3f} ± {r['ci_half'].iloc[0]:.3f}"
                                          if len(r) else "")
            rows.append(row)
    return pd.DataFrame(rows)


def reported_long(reported: pd.DataFrame) -> pd.DataFrame:
    """``reported.yaml``'s Table 1 in :func:`table1_long`'s columns (dataset as Table 1 names
    it, model as the paper names it)."""
    from .pipeline import DATASET_NAMES

    t = reported[reported["where"] == "Table 1"]
    return pd.DataFrame({"label": t["label"], "dataset": t["dataset"].map(DATASET_NAMES),
                         "model": t["model"].map(PAPER_MODELS), "paper_model":
                         t["model"].map(PAPER_MODELS), "registry_model": t["model"],
                         "metric": t["metric"], "mean": t["value"],
                         "ci_half": t["value"] - t["ci_low"]}).reset_index(drop=True)


def reproduced_values(long: pd.DataFrame, pools: Sequence[Pool]) -> pd.DataFrame:
    """Table 1's reproduced numbers under the keys of ``reported.yaml`` (for
    :func:`~compendium.papers.reported.compare_reported`)."""
    registry = {p.label: p.dataset for p in pools}
    return pd.DataFrame({"metric": long["metric"], "model": long["registry_model"],
                         "dataset": long["dataset"].map(registry), "label": long["label"],
                         "estimate": long["mean"], "ci_low": long["ci_low"],
                         "ci_high": long["ci_high"],
                         "reproduced_with": long["model"] + " on " + long["dataset"]})


def comparison_table(compared: pd.DataFrame) -> pd.DataFrame:
    """:func:`~compendium.papers.reported.compare_reported` in the chapter's layout."""
    return pd.DataFrame({
        "label": compared["label"], "dataset": compared["dataset"],
        "paper model": compared["model"].map(PAPER_MODELS), "metric": compared["metric"],
        "reported": compared["value"], "reported ± ": compared["value"] - compared["ci_low"],
        "reproduced": compared["reproduced"],
        "reproduced ±": compared["reproduced"] - compared["reproduced_low"],
        "reproduced_with": compared["reproduced_with"]}).round(3)


def augmentation_table(cv: CVResults) -> pd.DataFrame:
    """With vs without views: means and the paired (same folds) difference with its 95 %
    t-interval."""
    rows = []
    folds = cv.folds
    if folds["augmented"].nunique() < 2:
        return pd.DataFrame()
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


def stability_table(long: pd.DataFrame, reported: pd.DataFrame) -> pd.DataFrame:
    """AUROC on NIH vs MIMIC per model and label, for the reported and the reproduced Table 1
    (a model run on one dataset only has no row)."""
    rep = reported_long(reported).assign(source="reported")
    ours = long.assign(source="reproduced")
    both = pd.concat([rep, ours], ignore_index=True)
    both = both[both["metric"] == "auroc"].copy()
    both["dataset"] = both["dataset"].map(lambda d: "mimic" if d.startswith("MIMIC") else
                                          ("nih" if d.startswith("NIH") else d))
    wide = both.pivot_table(index=["source", "paper_model", "model", "label"], columns="dataset",
                            values="mean", sort=False).reset_index()
    for col in ("mimic", "nih"):
        if col not in wide.columns:
            wide[col] = np.nan
    wide = wide.dropna(subset=["mimic", "nih"]).copy()
    wide["abs_difference"] = (wide["nih"] - wide["mimic"]).abs()
    wide.columns.name = None
    return wide[["source", "paper_model", "model", "label", "mimic", "nih", "abs_difference"]]


def stability_summary(stability: pd.DataFrame) -> pd.DataFrame:
    """Mean and largest |AUROC(NIH) - AUROC(MIMIC)| over labels, per source and model."""
    g = stability.groupby(["source", "paper_model", "model"], sort=False)["abs_difference"]
    return g.agg(mean_abs_difference="mean", max_abs_difference="max",
                 labels="count").reset_index()


# ----------------------------------------------------------------------------- values


def interval_values(evidence: pd.DataFrame) -> dict[str, Any]:
    """The printed and simulated mean half-widths of Table 1's AUROC, per reading."""
    out: dict[str, Any] = {}
    for r in evidence.itertuples():
        if r.metric == "auroc":
            out["printed_auroc_half"] = (r.printed_mean_half, ".4f")
            out[f"simulated_auroc_half_{r.reading}"] = (r.simulated_median, ".4f")
    return out


def settings_values(cfg: PaperDSpec) -> dict[str, Any]:
    """Sampling and cross-validation settings the chapter quotes."""
    from ...imaging.augment import N_VIEWS

    return {"n_per_class": cfg.n_per_class, "n_splits": cfg.n_splits,
            "n_views": N_VIEWS if cfg.augment else 0,
            "test_percent": (100 * cfg.test_fraction, ".0f"),
            "train_percent": (100 * (1 - cfg.test_fraction), ".0f")}


def opacity_values(evidence: pd.DataFrame) -> dict[str, Any]:
    chosen = evidence[evidence["chosen"]].iloc[0]
    return {"google_images": evidence.attrs["n_google_images"],
            "google_positive": evidence.attrs["google_positive"],
            "google_positive_patients": evidence.attrs["google_positive_patients"],
            "opacity_kappa": (float(chosen["kappa_vs_google"]), ".3f"),
            "opacity_patients": int(chosen["positive_patients"]),
            "opacity_images": int(chosen["positive_images"])}


def space_values(space: EmbeddingSpace) -> dict[str, Any]:
    return {f"umap_{k}": v for k, v in space.info.items()}


def chosen_k(space: EmbeddingSpace) -> pd.DataFrame:
    """The k the silhouette chose per dataset and model."""
    s = space.silhouette
    return s[s["best"]][["dataset", "model", "k", "silhouette"]].round(3)


def augmentation_values(aug: pd.DataFrame) -> dict[str, Any]:
    if aug.empty:
        return {}
    d = aug[aug["metric"] == "auroc"]["difference"]
    return {"augmentation_mean_auroc_difference": (float(d.mean()), "+.3f"),
            "augmentation_max_abs_auroc_difference": (float(d.abs().max()), ".3f")}


def stability_values(summary: pd.DataFrame) -> dict[str, Any]:
    return {f"stability_{r.source}_{r.paper_model.lower().replace('-', '_')}":
            (float(r.mean_abs_difference), ".3f") for r in summary.itertuples()}


__all__ = ["CI_MULTIPLIERS", "augmentation_table", "augmentation_values", "chosen_k",
           "cohorts_table", "interval_values",
           "comparison_table", "mean_ci", "opacity_values", "reported_long",
           "reproduced_values", "settings_table", "settings_values", "space_values",
           "stability_summary", "stability_table", "stability_values", "table1_long",
           "table1_wide"]


# ----------------------------------------------------------------------------- claims


def claim_checks(long: pd.DataFrame, agreement: pd.DataFrame | None = None) -> dict[str, Any]:
    """One check per claim of ``claims.yaml`` on a Table 1 in long form (this run's
    :func:`table1_long`, or the paper's :func:`reported_long`); models by ``registry_model``,
    datasets whose name starts with MIMIC or NIH.  ``agreement`` (the run's cluster-label
    agreement, :class:`~.pipeline.EmbeddingSpace`) decides the clustering claim; without it
    (the paper's numbers) that claim is not testable."""
    from ..claims import judged, not_testable

    auc = long[long["metric"] == "auroc"].assign(
        ds=lambda t: t["dataset"].map(lambda d: "mimic" if d.startswith("MIMIC") else
                                      ("nih" if d.startswith("NIH") else d)))
    wide = auc.pivot_table(index=["label", "ds"], columns="registry_model", values="mean")
    both = {"medimageinsight", "cxr-foundation"} <= set(wide.columns)

    def mii_higher():
        if not both:
            return not_testable("needs both models")
        w = wide.dropna(subset=["medimageinsight", "cxr-foundation"])
        n = int((w["medimageinsight"] > w["cxr-foundation"]).sum())
        d = (w["medimageinsight"] - w["cxr-foundation"])
        return judged(n > len(w) / 2, f"{n} of {len(w)} cells; mean difference {d.mean():+.3f}",
                      f"differences from {d.min():+.3f} to {d.max():+.3f}")

    def above_090():
        n = int((auc["mean"] > 0.90).sum())
        return judged(n > len(auc) / 2, f"{n} of {len(auc)} AUROC cells above 0.90",
                      f"AUROC from {auc['mean'].min():.3f} to {auc['mean'].max():.3f}")

    def cxrf_stable():
        if not both or not {"mimic", "nih"} <= set(auc["ds"]):
            return not_testable("needs both models on both datasets")
        diff = {}
        for m in ("medimageinsight", "cxr-foundation"):
            s = wide[m].unstack("ds").dropna()
            diff[m] = float((s["nih"] - s["mimic"]).abs().mean())
        return judged(diff["cxr-foundation"] < diff["medimageinsight"],
                      f"CXR-Foundation {diff['cxr-foundation']:.3f}, MedImageInsight "
                      f"{diff['medimageinsight']:.3f} (mean |NIH - MIMIC|)")

    def effusion_opacity():
        first = next(iter(dict.fromkeys(auc["registry_model"])))
        m = auc[(auc["ds"] == "mimic") & (auc["registry_model"] == first)].set_index("label")
        if not {"Effusion", "Opacity"} <= set(m.index) or len(m) < 3:
            return not_testable("needs Effusion, Opacity and another label on MIMIC")
        best, worst = m["mean"].idxmax(), m["mean"].idxmin()
        return judged(best == "Effusion" and worst == "Opacity",
                      f"highest {best} {m.loc[best, 'mean']:.3f}, lowest {worst} "
                      f"{m.loc[worst, 'mean']:.3f} ({first})")

    def coherent_clusters():
        if agreement is None or agreement.empty:
            return not_testable("the paper prints no cluster-label agreement")
        first = next(iter(dict.fromkeys(agreement["paper_model"])))
        a = agreement[agreement["paper_model"] == first]
        n = int((a["p_value"] < 0.05).sum())
        return judged(n == len(a), f"{n} of {len(a)} dataset x label pairs beyond chance "
                      f"({first}, k chosen by the silhouette)",
                      f"adjusted Rand from {a['adjusted_rand'].min():.3f} to "
                      f"{a['adjusted_rand'].max():.3f}")

    return {"medimageinsight-higher": mii_higher, "auroc-above-0.90": above_090,
            "cxr-foundation-stable": cxrf_stable, "effusion-best-opacity-worst": effusion_opacity,
            "coherent-clusters": coherent_clusters}
