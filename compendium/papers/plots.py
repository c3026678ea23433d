"""Plot pieces the papers' figures share: a colour-blind palette, grouped bars with interval
whiskers, two-line tick labels."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd


def palette(labels: Sequence[str]) -> dict[str, Any]:
    """One colour-blind-safe colour per label (seaborn's ``colorblind``)."""
    import seaborn as sns

    return dict(zip(labels, sns.color_palette("colorblind", len(labels))))


def wrap(label: str) -> str:
    """Tick label on two lines: ``toy-clip-vit`` over ``(stand-in for MedCLIP-ViT)``."""
    return str(label).replace(" (", "\n(")


def interval_bars(ax, table: pd.DataFrame, x: str, hue: str, order: Sequence[str],
                  hue_order: Sequence[str], *, y: str = "estimate",
                  star: str | None = None) -> None:
    """Grouped bars of ``table[y]`` with whiskers from ``ci_low``/``ci_high`` (and ``*`` over
    the bars whose ``star`` column is true)."""
    colors = palette(hue_order)
    width = 0.8 / max(1, len(hue_order))
    for j, h in enumerate(hue_order):
        sub = table[table[hue] == h].set_index(x).reindex(order)
        pos = np.arange(len(order)) - 0.4 + width * (j + 0.5)
        est = sub[y].to_numpy(float)
        lo = np.clip(est - sub["ci_low"].to_numpy(float), 0, None)
        hi = np.clip(sub["ci_high"].to_numpy(float) - est, 0, None)
        ax.bar(pos, est, width, color=colors[h], label=h, yerr=[lo, hi], capsize=2,
               error_kw={"lw": 0.8})
        if star:
            for p, e, s, top in zip(pos, est, sub[star].to_numpy(), est + hi):
                if bool(s) and np.isfinite(e):
                    ax.text(p, top, "*", ha="center", va="bottom", fontsize=10)
    ax.set_xticks(np.arange(len(order)), [wrap(o) for o in order])


def interval_points(ax, table: pd.DataFrame, x: str, hue: str, order: Sequence[str],
                    hue_order: Sequence[str], *, y: str = "estimate", step: float = 0.18,
                    ms: float = 3) -> None:
    """Points of ``table[y]`` with whiskers from ``ci_low``/``ci_high``, one series per
    ``hue`` dodged by ``step`` around each ``x`` position of ``order``."""
    for j, h in enumerate(hue_order):
        r = table[table[hue] == h].set_index(x).reindex(order)
        pos = np.arange(len(order)) + (j - (len(hue_order) - 1) / 2) * step
        est = r[y].to_numpy(float)
        ax.errorbar(pos, est, yerr=[np.clip(est - r["ci_low"].to_numpy(float), 0, None),
                                    np.clip(r["ci_high"].to_numpy(float) - est, 0, None)],
                    fmt="o", ms=ms, capsize=2, label=h)
    ax.set_xticks(np.arange(len(order)))


__all__ = ["interval_bars", "interval_points", "palette", "wrap"]
