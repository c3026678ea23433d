"""Paper E's figures: Fig. 1 (the comparison of models and pretraining strategies), the
subgroup gaps and the EHR-missingness experiment.  Each takes the table it plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plots import whiskers
from .spec import DATASET_NAMES, STRATEGIES
from .tables import TABLE2, TABLE4

GROUP_COLOURS = {"Supervised": "#8c8c8c", "Image-EHR": "#c44e52", "Image-Only": "#4c72b0",
                 "Image-EHR Adaptation": "#55a868", "Image-Text": "#8172b2"}


def comparison_figure(long: pd.DataFrame, reported: pd.DataFrame, *, pixels: str = "synthetic"):
    """Fig. 1: MIMIC-CXR macro AUROC of every model and pretraining strategy; (a) as the
    paper reports it, (b) this run (95 % intervals), bars coloured by strategy."""
    import matplotlib.pyplot as plt

    order = [s for s in (*TABLE2, *TABLE4[:-1])]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=False)
    for ax, (title, t) in zip(axes, (("(a) reported (Tables 2 and 4)", reported),
                                     ("(b) this run" + ("" if pixels == "real" else
                                                        " (synthetic world, stand-ins)"), long))):
        t = t[(t["dataset"] == "mimic-cxr") & (t["metric"] == "auroc")].set_index("model")
        names = [s for s in order if s in t.index]
        est = t.loc[names, "estimate"].to_numpy(float)
        lo = t.loc[names, "ci_low"].to_numpy(float)
        hi = t.loc[names, "ci_high"].to_numpy(float)
        err = whiskers(est, lo, hi)
        colours = [GROUP_COLOURS[STRATEGIES[s][0]] for s in names]
        ax.bar(range(len(names)), est, color=colours, yerr=err, capsize=2)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([STRATEGIES[s][1] + (" (text)" if STRATEGIES[s][0] == "Image-Text"
                                                and s == "convirt" else "")
                            for s in names], rotation=60, ha="right", fontsize=8)
        ax.set_ylim(max(0.0, np.nanmin(lo if np.isfinite(lo).any() else est) - 0.05), 1.0)
        ax.set_ylabel("macro AUROC, MIMIC-CXR")
        ax.set_title(title, fontsize=10)
        ax.axhline(0.5, color="k", lw=0.5, ls=":")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in GROUP_COLOURS.values()]
    fig.legend(handles, list(GROUP_COLOURS), loc="upper center", ncol=5, fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def subgroup_figure(audit: pd.DataFrame, strategies=("barlowtwins-cxr", "medcam")):
    """Macro AUROC gap (95 % interval) per attribute and dataset, MedCAM beside its backbone."""
    import matplotlib.pyplot as plt

    a = audit[(audit["kind"] == "gap") & (audit["label"] == "macro")
              & audit["strategy"].isin(strategies)]
    attrs = list(dict.fromkeys(a["attribute"]))
    fig, axes = plt.subplots(1, max(1, len(attrs)), figsize=(4.0 * max(1, len(attrs)), 3.4),
                             squeeze=False, sharey=True)
    for ax, attr in zip(axes[0], attrs):
        sub = a[a["attribute"] == attr]
        ds = list(dict.fromkeys(sub["dataset"]))
        for j, s in enumerate(strategies):
            t = sub[sub["strategy"] == s].set_index("dataset").reindex(ds)
            x = np.arange(len(ds)) + (j - 0.5) * 0.35
            err = whiskers(t["estimate"], t["ci_low"], t["ci_high"])
            ax.bar(x, t["estimate"], width=0.35, yerr=err,
                   capsize=2, label=STRATEGIES[s][1], color=GROUP_COLOURS[STRATEGIES[s][0]])
        ax.set_xticks(range(len(ds)))
        ax.set_xticklabels([DATASET_NAMES[d] for d in ds], rotation=30, fontsize=8)
        ax.set_title(f"AUROC gap by {attr}", fontsize=10)
    axes[0][0].set_ylabel("largest - smallest group AUROC")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def missingness_figure(miss: pd.DataFrame, group: str):
    """AUROC gap (rest - group) against the group's EHR missingness, per alignment variant;
    the unaligned backbone as a horizontal reference."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    ctrl = miss[miss["ehr_missing"].isna()]
    for v, sub in miss.dropna(subset=["ehr_missing"]).groupby("variant", sort=False):
        ax.plot(sub["ehr_missing"], sub["gap"], marker="o", label=v)
    if len(ctrl):
        ax.axhline(float(ctrl["gap"].iloc[0]), color="k", ls="--", lw=1,
                   label="no alignment (control)")
    ax.axhline(0, color="k", lw=0.5, ls=":")
    ax.set_xlabel(f"probability an EHR measurement of {group} is not taken")
    ax.set_ylabel(f"AUROC gap (rest - {group})")
    ax.legend(fontsize=8)
    ax.set_title("Does EHR missingness reach the image-only predictions?", fontsize=10)
    fig.tight_layout()
    return fig


__all__ = ["comparison_figure", "missingness_figure", "subgroup_figure"]
