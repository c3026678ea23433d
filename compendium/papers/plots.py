"""Plot pieces the papers' figures share: a colour-blind palette, grouped bars with interval
whiskers (never clipped: an interval that excludes its estimate is an error), two-line tick
labels."""

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


def whiskers(estimate, ci_low, ci_high, *, tol: float = 1e-9) -> np.ndarray:
    """Error-bar lengths ``[[estimate - ci_low], [ci_high - estimate]]`` (2, n) for
    matplotlib's ``yerr``; an undefined bound draws no whisker.  ValueError when a finite
    interval excludes its estimate: the audit's intervals hold their estimates, so a
    whisker is never clipped to hide one that does not."""
    est = np.asarray(estimate, dtype=float)
    lo = est - np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float) - est
    bad = (lo < -tol) | (hi < -tol)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} interval(s) exclude their estimate (first: "
                         f"{est[bad][0]:.4g} outside [{np.asarray(ci_low, float)[bad][0]:.4g}, "
                         f"{np.asarray(ci_high, float)[bad][0]:.4g}]): not drawn as whiskers")
    return np.vstack([np.where(np.isfinite(lo), np.maximum(lo, 0), 0),
                      np.where(np.isfinite(hi), np.maximum(hi, 0), 0)])


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
        err = whiskers(est, sub["ci_low"], sub["ci_high"])
        hi = err[1]
        ax.bar(pos, est, width, color=colors[h], label=h, yerr=err, capsize=2,
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
        ax.errorbar(pos, est, yerr=whiskers(est, r["ci_low"], r["ci_high"]),
                    fmt="o", ms=ms, capsize=2, label=h)
    ax.set_xticks(np.arange(len(order)))


__all__ = ["interval_bars", "interval_points", "palette", "whiskers", "wrap"]
