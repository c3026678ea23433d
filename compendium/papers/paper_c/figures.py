"""Paper C's figure (top: FPR of "No Finding" per group; bottom: signed gaps with 95 %
intervals, CheXpert labels solid, LLM labels hatched) and the Open-i label audit figure.
Each takes the table it plots."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..plots import interval_points
from .spec import PAIRS

_TITLES = {"race": "Race: Black - White", "sex": "Sex: Female - Male",
           "age_group": "Age: 18-40 - 80+"}
_HATCH = {"chexpert": "", "llm": "///"}
_SOURCE = {"chexpert": "CheXpert labels", "llm": "LLM labels"}


def gaps_figure(rates: pd.DataFrame, gaps: pd.DataFrame):
    """The paper's figure: two rows, one column per comparison."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    models = list(dict.fromkeys(gaps["model_label"]))
    sources = list(dict.fromkeys(gaps["source"]))
    attrs = [a for a in PAIRS if a in set(gaps["attribute"])]
    fig, axes = plt.subplots(2, len(attrs), figsize=(4.6 * len(attrs), 7.0), squeeze=False)
    x = np.arange(len(models))
    colours = ("#4c72b0", "#dd8452")
    for j, attr in enumerate(attrs):
        ax = axes[0, j]
        pair = PAIRS[attr]
        n_bars = len(pair) * len(sources)
        w = 0.8 / n_bars
        k = 0
        for gi, grp in enumerate(pair):
            for source in sources:
                d = rates[(rates["attribute"] == attr) & (rates["group"] == grp)
                          & (rates["source"] == source)].set_index("model_label").reindex(models)
                pos = x - 0.4 + w * (k + 0.5)
                ax.bar(pos, d["estimate"], w, color=colours[gi], hatch=_HATCH.get(source, ""),
                       edgecolor="white" if not _HATCH.get(source) else "black", linewidth=0.4,
                       yerr=[d["estimate"] - d["ci_low"], d["ci_high"] - d["estimate"]],
                       error_kw={"elinewidth": 0.7, "capsize": 1.5})
                k += 1
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=20, ha="right", fontsize=7)
        ax.set_title(f"FPR of 'No Finding' - {_TITLES[attr].split(':')[0]}", fontsize=9)
        ax.legend(handles=[Patch(color=colours[i], label=g) for i, g in enumerate(pair)],
                  fontsize=7, loc="upper right")
        if j == 0:
            ax.set_ylabel("false-positive rate (95 % CI)")
        ax = axes[1, j]
        w = 0.8 / max(1, len(sources))
        for k, source in enumerate(sources):
            d = gaps[(gaps["attribute"] == attr) & (gaps["source"] == source)
                     ].set_index("model_label").reindex(models)
            pos = x - 0.4 + w * (k + 0.5)
            ax.bar(pos, d["gap"], w, color="#55a868", hatch=_HATCH.get(source, ""),
                   edgecolor="black", linewidth=0.4,
                   yerr=[d["gap"] - d["ci_low"], d["ci_high"] - d["gap"]],
                   error_kw={"elinewidth": 0.8, "capsize": 2}, label=_SOURCE.get(source, source))
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(x)
        ax.set_xticklabels(models, rotation=20, ha="right", fontsize=7)
        ax.set_title(f"FPR gap, {_TITLES[attr]}", fontsize=9)
        if j == 0:
            ax.set_ylabel("signed FPR gap (95 % CI)")
            ax.legend(fontsize=7)
    fig.suptitle("(Top) False-positive rate of 'No Finding' by group.  (Bottom) Fairness gaps "
                 "with 95 % intervals: CheXpert labels solid, LLM labels hatched", fontsize=9)
    fig.tight_layout()
    return fig


def openi_figure(agreement: pd.DataFrame):
    """Open-i: false-normal and false-abnormal rate of each labeller against the MeSH
    indexing, per age band and sex, with 95 % intervals."""
    import matplotlib.pyplot as plt

    a = agreement[agreement["measure"].isin(["false_normal", "false_abnormal"])
                  & (agreement["attribute"] != "all")].copy()
    a["where"] = a["attribute"] + "=" + a["group"].astype(str)
    labellers = list(dict.fromkeys(a["labeller"]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    for ax, measure in zip(axes, ("false_normal", "false_abnormal")):
        d = a[a["measure"] == measure]
        rank = {"age_band=<40": 0, "age_band=40-59": 1, "age_band=60-79": 2,
                "age_band=80+": 3, "age_band=unknown": 4}
        order = sorted(dict.fromkeys(d["where"]), key=lambda w: (rank.get(w, 9), w))
        interval_points(ax, d, "where", "labeller", order, labellers, step=0.25, ms=4)
        ax.set_xticklabels(order, rotation=30, ha="right", fontsize=7)
        ax.set_title({"false_normal": "labelled normal, MeSH not normal (share of MeSH abnormal)",
                      "false_abnormal": "labelled abnormal, MeSH normal (share of MeSH normal)"
                      }[measure], fontsize=8)
        ax.set_ylabel("rate (95 % CI)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["gaps_figure", "openi_figure"]
