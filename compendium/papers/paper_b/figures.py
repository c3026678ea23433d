"""Paper B's figures: Fig. 2 (PE AUROC by subgroup), Fig. 3 (min-max UDR gap by mitigation
and attribute), the female-male threshold sweep and the pooling study.  Each takes the table
it plots, so what is drawn is what the notebook publishes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plots import palette, whiskers, wrap
from .spec import ATTRIBUTES


def fig2(groups: pd.DataFrame):
    """Diagnostic AUROC per subgroup (95 % intervals), one colour per model; small groups
    (left out of the gaps) hollow and marked with a dagger."""
    import matplotlib.pyplot as plt

    g = groups[(groups["metric"] == "auroc") & (groups["group"] != "unknown")].copy()
    models = list(dict.fromkeys(g["model"]))
    colours = palette(models)
    attrs = [a for a in ATTRIBUTES if a in set(g["attribute"])]
    sizes = [g[g["attribute"] == a]["group"].nunique() for a in attrs]
    fig, axes = plt.subplots(1, len(attrs), figsize=(3.2 + 1.1 * sum(sizes), 4.0), sharey=True,
                             gridspec_kw={"width_ratios": sizes}, squeeze=False)
    for ax, a in zip(axes[0], attrs):
        d = g[g["attribute"] == a]
        order = list(dict.fromkeys(d["group"]))
        for j, m in enumerate(models):
            r = d[d["model"] == m].set_index("group").reindex(order)
            x = np.arange(len(order)) + (j - (len(models) - 1) / 2) * 0.22
            est = r["estimate"].to_numpy(float)
            err = whiskers(est, r["ci_low"], r["ci_high"])
            small = r["small_group"].fillna(False).to_numpy(bool)
            ax.errorbar(x, est, yerr=err, fmt="none", ecolor=colours[m], capsize=2, lw=0.8)
            ax.scatter(x[~small], est[~small], color=colours[m], s=22, zorder=3,
                       label=wrap(m) if a == attrs[0] else None)
            ax.scatter(x[small], est[small], facecolors="white", edgecolors=colours[m], s=22,
                       zorder=3)
        labels = [f"{o}†" if d[(d["group"] == o)]["small_group"].any() else o for o in order]
        ax.set_xticks(np.arange(len(order)), labels, rotation=30, fontsize=8)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_title(ATTRIBUTES[a], fontsize=9)
    axes[0][0].set_ylabel("PE AUROC (95 % CI)")
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.suptitle("Diagnostic AUROC by subgroup († small group: hollow, left out of the gaps)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def fig3(mitigation: pd.DataFrame):
    """Min-max UDR gap of each targeted attribute: no mitigation, importance weighting and
    adversarial debiasing (group resampling left out, as in the paper)."""
    import matplotlib.pyplot as plt

    t = mitigation[mitigation["mitigation"] != "resampling"]
    models = list(dict.fromkeys(t["model"]))
    attrs = [a for a in ATTRIBUTES if a in set(t["target"])]
    bars = ["none", "importance_weighting", "adversarial"]
    colours = palette(bars)
    fig, axes = plt.subplots(1, len(models), figsize=(3.6 * len(models), 3.4), sharey=True,
                             squeeze=False)
    w = 0.26
    for ax, m in zip(axes[0], models):
        d = t[t["model"] == m]
        for i, a in enumerate(attrs):
            da = d[d["target"] == a]
            vals = {"none": da["before"].iloc[0] if len(da) else np.nan}
            stars = {}
            for mit in bars[1:]:
                r = da[da["mitigation"] == mit]
                vals[mit] = r["after"].iloc[0] if len(r) else np.nan
                stars[mit] = bool(len(r) and r["p_value"].iloc[0] < 0.05)
            for j, b in enumerate(bars):
                x = i + (j - 1) * w
                ax.bar(x, vals[b], w, color=colours[b], label=b if i == 0 else None)
                if stars.get(b):
                    ax.text(x, vals[b], "*", ha="center", va="bottom", fontsize=10)
        ax.set_xticks(np.arange(len(attrs)), [ATTRIBUTES[a] for a in attrs], fontsize=8)
        ax.set_title(wrap(m), fontsize=8)
    axes[0][0].set_ylabel("min-max UDR gap (targeted attribute)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("UDR gap by mitigation (* paired bootstrap p < 0.05 for the change)",
                 fontsize=9)
    fig.tight_layout()
    return fig


def sweep_figure(sweep: pd.DataFrame):
    """Female minus male UDR (PE) at every threshold; thresholds where a group's TPR is 0
    or 1 are drawn faint."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(sweep["model"]))
    colours = palette(models)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for m in models:
        d = sweep[sweep["model"] == m]
        ax.plot(d["threshold"], d["difference"], color=colours[m], alpha=0.25, lw=0.8)
        inf = d["difference"].where(d["informative"])
        ax.plot(d["threshold"], inf, color=colours[m], lw=1.4, label=wrap(m))
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("decision threshold")
    ax.set_ylabel("UDR(female) - UDR(male)")
    ax.legend(fontsize=6)
    ax.set_title("Threshold sweep of the female-male underdiagnosis gap (PE)", fontsize=9)
    fig.tight_layout()
    return fig


def defect_figure(defect: pd.DataFrame):
    """PE AUROC against the filling-defect size of the positives (synthetic world), one line
    per pooling, one panel per model; an empty table (real data, no defect sizes) gives a
    figure that says so."""
    import matplotlib.pyplot as plt

    if defect.empty:
        # real data (INSPECT) records no filling-defect size: say so instead of a blank panel
        fig, ax = plt.subplots(figsize=(4.2, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "Filling-defect sizes are known only in the synthetic world;\n"
                "this run's data records none.", ha="center", va="center", fontsize=9)
        return fig
    models = list(dict.fromkeys(defect["model"]))
    poolings = list(dict.fromkeys(defect["pooling"]))
    colours = palette(poolings)
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.2), sharey=True,
                             squeeze=False)
    for ax, m in zip(axes[0], models):
        d = defect[defect["model"] == m]
        for p in poolings:
            r = d[d["pooling"] == p]
            ax.plot(r["defect_voxels_median"], r["auroc"], marker="o", color=colours[p], label=p)
        ax.axhline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_xlabel("filling-defect size (voxels, bin median)")
        ax.set_title(wrap(m), fontsize=8)
    axes[0][0].set_ylabel("PE AUROC (positives of the bin)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Synthetic world: PE AUROC by defect size and pooling", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["defect_figure", "fig2", "fig3", "sweep_figure"]
