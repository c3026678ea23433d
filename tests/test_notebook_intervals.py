"""No interval in any executed notebook excludes its point estimate: every table of every
smoke run with ``ci_low``/``ci_high`` columns is scanned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.runner import list_notebooks

#: The point-estimate column of a table with an interval, in order of preference.
ESTIMATES = ("estimate", "gap", "difference", "change", "gain", "auroc", "value", "mean")
TOL = 1e-9


def intervals_excluding_their_estimate(table: pd.DataFrame) -> pd.DataFrame:
    """Rows whose finite interval ``[ci_low, ci_high]`` excludes the finite estimate."""
    est_col = next((c for c in ESTIMATES if c in table.columns), None)
    if est_col is None or not {"ci_low", "ci_high"} <= set(table.columns):
        return table.iloc[0:0]
    est = pd.to_numeric(table[est_col], errors="coerce").to_numpy(float)
    lo = pd.to_numeric(table["ci_low"], errors="coerce").to_numpy(float)
    hi = pd.to_numeric(table["ci_high"], errors="coerce").to_numpy(float)
    ok = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
    bad = ok & ((est < lo - TOL) | (est > hi + TOL))
    return table[bad]


def test_the_scan_finds_an_interval_that_excludes_its_estimate():
    t = pd.DataFrame({"metric": ["eqodds", "tpr"], "estimate": [0.037, 0.5],
                      "ci_low": [0.043, 0.4], "ci_high": [0.119, 0.6]})
    assert intervals_excluding_their_estimate(t)["metric"].tolist() == ["eqodds"]
    t = pd.DataFrame({"gap": [0.1], "ci_low": [np.nan], "ci_high": [np.nan]})
    assert intervals_excluding_their_estimate(t).empty


@pytest.mark.slow
@pytest.mark.parametrize("name", list_notebooks())
def test_no_interval_of_a_smoke_run_excludes_its_estimate(name, smoke_runs):
    out = smoke_runs[name]
    scanned, bad = 0, []
    for path in sorted((out / "tables").glob("*.csv")):
        table = pd.read_csv(path)
        if {"ci_low", "ci_high"} <= set(table.columns):
            scanned += 1
        excl = intervals_excluding_their_estimate(table)
        if len(excl):
            bad.append(f"{path.name}: {len(excl)} row(s), first {excl.iloc[0].to_dict()}")
    assert not bad, "\n".join(bad)
    if name in ("glossary", "paper_a", "paper_b", "paper_c"):
        assert scanned, f"{name}: no table with an interval was scanned"
