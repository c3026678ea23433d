"""Paper D's figures: Fig. 1 (UMAP), the silhouette curve and the per-group AUROC.  Each takes
the table it plots, so what is drawn is what the notebook publishes."""

from __future__ import annotations

import pandas as pd

from ..plots import interval_points


def umap_figure(umap: pd.DataFrame, info: dict[str, str]):
    """Fig. 1: two UMAP panels (best and worst label), positives vs negatives."""
    import matplotlib.pyplot as plt

    labels = list(dict.fromkeys(umap["label"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(4.2 * len(labels), 4.0), squeeze=False)
    for ax, (letter, label) in zip(axes[0], zip("ab", labels)):
        d = umap[umap["label"] == label]
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


def silhouette_figure(silhouette: pd.DataFrame):
    """Mean silhouette of cosine k-means against k, one line per dataset x model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for (dataset, model), g in silhouette.groupby(["dataset", "model"], sort=False):
        line, = ax.plot(g["k"], g["silhouette"], marker="o", ms=3, label=f"{model} / {dataset}")
        b = g[g["best"]]
        ax.scatter(b["k"], b["silhouette"], s=70, facecolors="none", edgecolors=line.get_color())
    ax.set_xlabel("number of clusters k")
    ax.set_ylabel("mean silhouette (cosine)")
    ax.legend(fontsize=7)
    ax.set_title("k-means (cosine, circled: k chosen)", fontsize=10)
    fig.tight_layout()
    return fig


def groups_figure(groups: pd.DataFrame):
    """Out-of-fold AUROC per sex and age band with 95 % intervals, per dataset and label."""
    import matplotlib.pyplot as plt

    g = groups[(groups["metric"] == "auroc") & (groups["attribute"] != "all")].copy()
    g["where"] = g["attribute"] + "=" + g["group"]
    panels = list(dict.fromkeys(zip(g["dataset"], g["model"])))
    ncols = min(2, max(1, len(panels)))
    nrows = max(1, -(-len(panels) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.4 * nrows), squeeze=False,
                             sharey=True)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (dataset, model) in zip(axes.ravel(), panels):
        d = g[(g["dataset"] == dataset) & (g["model"] == model)]
        order = list(dict.fromkeys(d["where"]))
        labels = list(dict.fromkeys(d["label"]))
        interval_points(ax, d, "where", "label", order, labels)
        ax.set_xticklabels(order, rotation=30, fontsize=7)
        ax.set_title(f"{model}\n{dataset}", fontsize=8)
    for row in axes:
        row[0].set_ylabel("out-of-fold AUROC (95 % CI)")
    axes.ravel()[max(0, len(panels) - 1)].legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["groups_figure", "silhouette_figure", "umap_figure"]
