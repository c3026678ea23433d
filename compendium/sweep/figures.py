"""Figures and summaries drawn from a sweep's table (:func:`compendium.sweep.execute.sweep_table`
or :func:`compendium.sweep.execute.point_rows`): how a number spreads over seeds, per
setting of another parameter, and what a single seed shows of it.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import pandas as pd

from ..errors import InputError


def _select(table: pd.DataFrame, value: str, by: str, seed: str,
            where: Mapping[str, Any] | None) -> pd.DataFrame:
    missing = [c for c in (value, by, seed, *(where or {})) if c not in table.columns]
    if missing:
        raise InputError(f"the sweep table has no column {missing[0]!r} (columns: "
                         f"{', '.join(map(str, table.columns))})")
    rows = table
    for col, want in (where or {}).items():
        rows = rows[rows[col].astype(str) == str(want)]
    if "status" in rows.columns:
        rows = rows[rows["status"].isin(["done", "skipped"])]
    rows = rows[list(dict.fromkeys([by, seed, value]))].dropna(subset=[value])
    if rows.empty:
        raise InputError(f"no finished point of the sweep has a value of {value!r}"
                         + (f" where {dict(where)}" if where else ""))
    return rows


def seed_spread(table: pd.DataFrame, value: str, *, by: str, seed: str = "seed",
                where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per setting of ``by``: the number of seeds, mean, standard deviation (ddof 1), least
    and largest value of ``value``, and the value at the lowest seed (what a single run
    with the default seed shows).

    >>> t = pd.DataFrame({"knobs": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2,
    ...                   "gap": [0.1, 0.3, 0.2, 0.0, 0.02, -0.02]})
    >>> seed_spread(t, "gap", by="knobs").round(3).to_dict("records")[0]
    {'knobs': 'a', 'seeds': 3, 'mean': 0.2, 'sd': 0.1, 'min': 0.1, 'max': 0.3, 'first_seed': 0, 'at_first_seed': 0.1}
    """
    rows = _select(table, value, by, seed, where)
    out = []
    for key, g in rows.groupby(by, sort=False):
        g = g.sort_values(seed)
        v = g[value].astype(float)
        out.append({by: key, "seeds": len(g), "mean": v.mean(),
                    "sd": v.std(ddof=1) if len(g) > 1 else float("nan"),
                    "min": v.min(), "max": v.max(), "first_seed": g[seed].iloc[0],
                    "at_first_seed": v.iloc[0]})
    return pd.DataFrame(out)


def spread_values(spread: pd.DataFrame, *, by: str, prefix: str | None = None
                  ) -> dict[str, Any]:
    """The numbers a chapter quotes from :func:`seed_spread`, named
    ``<prefix><setting>_<mean|sd|min|max|at_first_seed>`` (formatted ``.3f``) and
    ``<prefix><setting>_seeds``; the prefix is ``<by>_`` unless given, the setting reduced
    to letters, digits and ``_`` (``tpr_b`` 0.7: ``tpr_b_0_7_mean``)."""
    values: dict[str, Any] = {}
    prefix = f"{re.sub(r'[^a-z0-9]+', '_', by.lower())}_" if prefix is None else prefix
    for row in spread.to_dict("records"):
        key = prefix + re.sub(r"[^a-z0-9]+", "_", str(row[by]).lower()).strip("_")
        values[f"{key}_seeds"] = int(row["seeds"])
        for stat in ("mean", "sd", "min", "max", "at_first_seed"):
            values[f"{key}_{stat}"] = (float(row[stat]), ".3f")
    return values


def seed_spread_figure(table: pd.DataFrame, value: str, *, by: str, seed: str = "seed",
                       where: Mapping[str, Any] | None = None, ylabel: str | None = None,
                       title: str | None = None, labels: Mapping[str, str] | None = None,
                       truth: str | None = None):
    """One column of points per setting of ``by``: every seed's ``value`` (grey), their
    mean and standard deviation (black bar), and the lowest seed's value alone (a red
    diamond: what one run shows); ``truth`` names a column holding the true value of each
    setting (a simulation's injected gap), drawn as a dashed line."""
    import matplotlib.pyplot as plt
    import numpy as np

    rows = _select(table, value, by, seed, where)
    if truth:
        truths = _select(table, truth, by, seed, where).groupby(by, sort=False)[truth].mean()
    groups = list(dict.fromkeys(rows[by]))
    fig, ax = plt.subplots(figsize=(1.6 + 1.5 * len(groups), 3.4))
    rng = np.random.default_rng(0)                   # jitter only, fixed for byte-identical PNGs
    for i, key in enumerate(groups):
        g = rows[rows[by] == key].sort_values(seed)
        v = g[value].astype(float).to_numpy()
        x = i + rng.uniform(-0.12, 0.12, size=len(v))
        ax.scatter(x, v, s=16, color="0.55", zorder=2,
                   label="one seed each" if i == 0 else None)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        ax.errorbar(i + 0.28, v.mean(), yerr=sd, fmt="o", color="black", capsize=4, zorder=3,
                    label="mean ± SD over seeds" if i == 0 else None)
        ax.scatter(x[0], v[0], marker="D", s=42, color="C3", zorder=4,
                   label=f"{seed} {g[seed].iloc[0]} alone" if i == 0 else None)
        if truth and key in truths.index:
            ax.hlines(truths[key], i - 0.3, i + 0.4, colors="C0", linestyles="--", zorder=1,
                      label="true value" if i == 0 else None)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([(labels or {}).get(str(k), str(k)) for k in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(ylabel or value)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig
