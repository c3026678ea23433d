"""Paper A's figures (Fig. 2a/b, 3a-d), the fairness trajectory and the noise thresholds.
Each takes the table it plots, so what is drawn is what the notebook publishes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plots import interval_bars, palette, whiskers, wrap
from .pipeline import ATTRIBUTES, GAP_METRICS, GROUPS
from .spec import METHODS
from .tables import ATTRIBUTE_LABELS, GAP_LABELS, GROUP_LABELS, METHOD_LABELS


def _bars_by_model(t: pd.DataFrame, hue: str, hue_order, *, ylabel: str, ncol: int,
                   height: float, chance: float | None = None):
    """Bars per model (x) and ``hue`` with interval whiskers, the layout of Fig. 2(a)/3(b),
    with an optional dotted chance level."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(t["model_label"]))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) + 2), height))
    interval_bars(ax, t, "model_label", hue, models, hue_order)
    if chance is not None:
        ax.axhline(chance, color="grey", ls=":", lw=1, label=f"chance (1/{round(1 / chance)})")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.12)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def fig_accuracy(acc: pd.DataFrame, *, n_classes: int):
    """Fig. 2(a): accuracy per model and method (bars: estimate, whiskers: 95% CI), with the
    chance level ``1 / n_classes``."""
    t = acc.assign(method=acc["method"].astype(str).map(METHOD_LABELS))
    methods = [METHOD_LABELS[m] for m in METHODS if METHOD_LABELS[m] in set(t["method"])]
    return _bars_by_model(t, "method", methods, ylabel="accuracy (test)", ncol=3, height=3.6,
                          chance=1 / n_classes)


def fig_classwise_f1(cls: pd.DataFrame):
    """Fig. 2(b): class-wise F1 after full fine-tuning."""
    import matplotlib.pyplot as plt

    classes = list(dict.fromkeys(cls["label"]))
    models = list(dict.fromkeys(cls["model_label"]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    interval_bars(ax, cls, "label", "model_label", classes, models)
    ax.set_ylabel("F1 (test, after FT)")
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=7, frameon=False, ncol=len(models), loc="upper center")
    fig.tight_layout()
    return fig


def fig_var_f1(var: pd.DataFrame, method: str = "finetune"):
    """Fig. 3(a): Var_F1 per model (after full fine-tuning)."""
    import matplotlib.pyplot as plt

    v = var[var["method"].astype(str) == method]
    models = list(dict.fromkeys(v["model_label"]))
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(models) + 1), 3.2))
    colors = palette(models)
    est = v.set_index("model_label").reindex(models)
    ax.bar(range(len(models)), est["estimate"], color=[colors[m] for m in models],
           yerr=whiskers(est["estimate"], est["ci_low"], est["ci_high"]), capsize=3)
    ax.set_xticks(range(len(models)), [wrap(m) for m in models], fontsize=8)
    ax.set_ylabel("Var_F1 (after FT)")
    fig.tight_layout()
    return fig


def fig_group_f1(groups: pd.DataFrame):
    """Fig. 3(b): mean (macro) F1 per age x sex group after full fine-tuning."""
    t = groups.assign(group=groups["group"].astype(str).map(GROUP_LABELS))
    return _bars_by_model(t, "group", [GROUP_LABELS[g] for g in GROUPS],
                          ylabel="macro F1 (test, after FT)", ncol=4, height=3.4)


def fig_gaps(gaps: pd.DataFrame, method: str, *, alpha: float = 0.05):
    """Fig. 3(c) (``finetune``) / 3(d) (``zero-shot``): F1 gap, EqOdds and ECE gap for sex
    and age per model; whiskers are 95% bootstrap intervals, * marks a gap whose adjusted
    permutation p-value is below ``alpha``."""
    import matplotlib.pyplot as plt

    g = gaps[gaps["method"].astype(str) == method].copy()
    g["significant"] = g["p_adjusted"] < alpha
    models = list(dict.fromkeys(g["model_label"]))
    fig, axes = plt.subplots(1, len(GAP_METRICS), figsize=(4 * len(GAP_METRICS), 3.4),
                             sharey=False)
    for ax, metric in zip(np.atleast_1d(axes), GAP_METRICS):
        sub = g[g["metric"] == metric]
        interval_bars(ax, sub, "attribute_label", "model_label",
                      [ATTRIBUTE_LABELS[a] for a in ATTRIBUTES], models, star="significant")
        ax.set_title(GAP_LABELS[metric])
        ax.set_ylim(bottom=0)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), fontsize=7,
               frameon=False)
    fig.suptitle(f"after {METHOD_LABELS[method]}; * adjusted p < {alpha:g}", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def fig_trajectory(gaps: pd.DataFrame):
    """How each fairness metric moves from ZS through LP, MLP, LoRA to FT, per model."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(gaps["model_label"]))
    colors = palette(models)
    fig, axes = plt.subplots(len(ATTRIBUTES), len(GAP_METRICS),
                             figsize=(4 * len(GAP_METRICS), 3 * len(ATTRIBUTES)), sharex=True,
                             squeeze=False)
    for i, attr in enumerate(ATTRIBUTES):
        for j, metric in enumerate(GAP_METRICS):
            ax = axes[i, j]
            for k, m in enumerate(models):
                sub = gaps[(gaps["model_label"] == m) & (gaps["metric"] == metric)
                           & (gaps["attribute"] == attr)].sort_values("method")
                xs = [METHODS.index(str(v)) + (k - (len(models) - 1) / 2) * 0.06
                      for v in sub["method"]]
                ax.errorbar(xs, sub["estimate"],
                            yerr=whiskers(sub["estimate"], sub["ci_low"], sub["ci_high"]),
                            marker="o", ms=4, lw=1.2, capsize=2, color=colors[m], label=m)
            ax.set_title(f"{GAP_LABELS[metric]} ({ATTRIBUTE_LABELS[attr]})", fontsize=9)
            ax.set_xticks(range(len(METHODS)), [METHOD_LABELS[m] for m in METHODS])
            ax.set_ylim(bottom=0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def fig_noise(thresholds: pd.DataFrame, versus: pd.DataFrame):
    """Noise thresholds vs accuracy, with the paper's reported gaps as points."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, metric in zip(axes, ("f1_gap", "eqodds")):
        t = thresholds[thresholds["metric"] == metric].sort_values("accuracy")
        ax.plot(t["accuracy"], t["critical_value"], "k-", label="95% of fair models stay below")
        ax.plot(t["accuracy"], t["null_mean"], "k:", label="mean gap of a fair model")
        v = versus[versus["gap"].str.startswith(GAP_LABELS[metric])]
        for _, r in v.iterrows():
            ax.scatter(r["at_accuracy"], r["reported"], marker="o" if r["distinguishable"] else "x",
                       color="C3" if r["distinguishable"] else "C0")
            ax.annotate(f"{r['paper_model']} {r['method']} {r['gap'].split('(')[1][:-1]}",
                        (r["at_accuracy"], r["reported"]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_title(f"{GAP_LABELS[metric]} at n = {int(t['n_test'].iloc[0])}")
        ax.set_xlabel("accuracy of the classifier")
    axes[0].set_ylabel("gap")
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["fig_accuracy", "fig_classwise_f1", "fig_gaps", "fig_group_f1", "fig_noise",
           "fig_trajectory", "fig_var_f1"]
