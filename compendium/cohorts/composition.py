"""Composition tables and figures of cohorts (for the ``data`` notebook and the CLI).

All functions are pure: cohorts in, tables (or a matplotlib figure) out.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .base import Cohort
from .splits import age_bands

ATTRIBUTES = ("sex", "age_band", "race")


def composition_overview(cohorts: Mapping[str, Cohort], *, age_scheme: str = "paper_a") -> pd.DataFrame:
    """Long table: one row per (cohort, attribute, group) with samples, patients and share.

    ``group`` is ``"unknown"`` where the attribute is missing; an attribute the source does
    not record at all appears as a single ``unknown`` row, so absence is visible.

    >>> import pandas as pd
    >>> from compendium.cohorts.base import Cohort
    >>> t = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["1", "2"], "split": "",
    ...                   "age": [30.0, 70.0], "sex": ["F", "F"], "race": [None, None]})
    >>> composition_overview({"toy": Cohort("toy", t, (), "real")}).query("attribute == 'sex'")[["group", "samples"]].values.tolist()
    [['F', 2]]
    """
    bands = age_bands(age_scheme)
    rows = []
    for name, c in cohorts.items():
        t = c.table
        groups = {"sex": t["sex"], "age_band": bands.assign(t["age"]), "race": t["race"]}
        for attr in ATTRIBUTES:
            g = pd.Series(groups[attr], index=t.index).astype(object).where(pd.notna(groups[attr]), "unknown")
            stats = pd.DataFrame({"group": g.to_numpy(), "patient_id": t["patient_id"].to_numpy()})
            agg = stats.groupby("group").agg(samples=("patient_id", "size"), patients=("patient_id", "nunique"))
            for grp, r in agg.iterrows():
                rows.append({"cohort": name, "source": c.source, "attribute": attr, "group": str(grp),
                             "samples": int(r["samples"]), "patients": int(r["patients"]),
                             "share": float(r["samples"]) / max(len(t), 1)})
    return pd.DataFrame(rows, columns=["cohort", "source", "attribute", "group", "samples",
                                       "patients", "share"])


def cohort_sources(cohorts: Mapping[str, Cohort]) -> pd.DataFrame:
    """One row per cohort: source, rows, patients, labels, and how much of age/sex/race is known."""
    rows = []
    for name, c in cohorts.items():
        t = c.table
        rows.append({"cohort": name, "source": c.source, "pixels": c.pixel_column or "none",
                     "samples": len(t), "patients": int(t["patient_id"].nunique()),
                     "labels": len(c.labels), "age_known": float(t["age"].notna().mean()),
                     "sex_known": float(t["sex"].notna().mean()),
                     "race_known": float(t["race"].notna().mean())})
    return pd.DataFrame(rows)


def plot_composition(overview: pd.DataFrame):
    """Stacked horizontal bars: each cohort's share per group, one panel per attribute."""
    import matplotlib.pyplot as plt

    attrs = [a for a in ATTRIBUTES if a in set(overview["attribute"])]
    cohorts = list(dict.fromkeys(overview["cohort"]))
    fig, axes = plt.subplots(1, len(attrs), figsize=(4.2 * len(attrs), 0.6 * len(cohorts) + 1.6),
                             squeeze=False, sharey=True)
    for ax, attr in zip(axes[0], attrs):
        sub = overview[overview["attribute"] == attr]
        wide = sub.pivot_table(index="cohort", columns="group", values="share", aggfunc="sum").reindex(cohorts).fillna(0)
        order = [c for c in wide.columns if c != "unknown"] + (["unknown"] if "unknown" in wide.columns else [])
        left = np.zeros(len(wide))
        cmap = plt.get_cmap("tab10")
        for k, grp in enumerate(order):
            colour = "0.85" if grp == "unknown" else cmap(k % 10)
            ax.barh(wide.index, wide[grp], left=left, color=colour, label=grp, edgecolor="white")
            left += wide[grp].to_numpy()
        ax.set_title(attr.replace("_", " "))
        ax.set_xlim(0, 1)
        ax.set_xlabel("share of images")
        ax.legend(fontsize=7, loc="lower right", framealpha=0.8)
        ax.invert_yaxis()
    fig.tight_layout()
    return fig


def nih6x200_tables(cohort: Cohort) -> dict[str, pd.DataFrame]:
    """The tables of the NIH 6x200 construction: ``qualification`` (disease x group
    available single-label images and verdict), ``composition`` (disease x group drawn)
    and ``splits`` (split x disease, with patients)."""
    qual = cohort.meta["qualification"].reset_index()
    t = cohort.table
    comp = t.pivot_table(index="disease", columns="group", values="sample_id", aggfunc="count", fill_value=0)
    comp = comp.reindex(columns=["young-M", "young-F", "old-M", "old-F"])
    comp["total"] = comp.sum(axis=1)
    splits = t.pivot_table(index="split", columns="disease", values="sample_id", aggfunc="count", fill_value=0)
    splits = splits.reindex(["train", "val", "test"])
    splits["images"] = splits.sum(axis=1)
    splits["patients"] = t.groupby("split")["patient_id"].nunique().reindex(splits.index)
    return {"qualification": qual, "composition": comp.reset_index(), "splits": splits.reset_index()}
