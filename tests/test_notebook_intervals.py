"""No interval in any executed notebook excludes its point estimate: every table of every
smoke run with ``ci_low``/``ci_high`` columns is scanned."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.runner import list_notebooks

#: The point-estimate column of a table with columns ``ci_low``/``ci_high``, in order of
#: preference; ``<x>_ci_low``/``<x>_ci_high`` qualify column ``<x>`` (``ALIASES`` when named
#: otherwise).
ESTIMATES = ("estimate", "gap", "difference", "change", "gain", "auroc", "reproduced", "value",
             "mean")
ALIASES = {"diff": "difference"}
TOL = 1e-9


def interval_columns(table: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(estimate, low, high) column names of every interval of a table."""
    out = []
    for low in [c for c in table.columns if str(c).endswith("ci_low")]:
        prefix = str(low)[: -len("ci_low")]
        high = f"{prefix}ci_high"
        if high not in table.columns:
            continue
        if prefix:
            name = prefix.rstrip("_")
            est = ALIASES.get(name, name)
        elif {"quote", "value", "reproduced"} <= set(table.columns):
            est = "value"   # reported beside reproduced: ci_* is the paper's, of its value
        else:
            est = next((c for c in ESTIMATES if c in table.columns), None)
        if est in table.columns:
            out.append((est, low, high))
    return out


def intervals_excluding_their_estimate(table: pd.DataFrame) -> pd.DataFrame:
    """Rows where some finite interval excludes its finite estimate."""
    bad = np.zeros(len(table), dtype=bool)
    for est_col, low, high in interval_columns(table):
        est = pd.to_numeric(table[est_col], errors="coerce").to_numpy(float)
        lo = pd.to_numeric(table[low], errors="coerce").to_numpy(float)
        hi = pd.to_numeric(table[high], errors="coerce").to_numpy(float)
        ok = np.isfinite(est) & np.isfinite(lo) & np.isfinite(hi)
        bad |= ok & ((est < lo - TOL) | (est > hi + TOL))
    return table[bad]


def test_the_scan_finds_an_interval_that_excludes_its_estimate():
    t = pd.DataFrame({"metric": ["eqodds", "tpr"], "estimate": [0.037, 0.5],
                      "ci_low": [0.043, 0.4], "ci_high": [0.119, 0.6]})
    assert intervals_excluding_their_estimate(t)["metric"].tolist() == ["eqodds"]
    t = pd.DataFrame({"gap": [0.1], "ci_low": [np.nan], "ci_high": [np.nan]})
    assert intervals_excluding_their_estimate(t).empty
    t = pd.DataFrame({"udr_gap": [0.1, 0.2], "udr_gap_ci_low": [0.0, 0.25],
                      "udr_gap_ci_high": [0.3, 0.4], "difference": [0.0, 0.0],
                      "diff_ci_low": [-0.1, -0.1], "diff_ci_high": [0.1, 0.1]})
    assert intervals_excluding_their_estimate(t).index.tolist() == [1]
    assert interval_columns(t) == [("udr_gap", "udr_gap_ci_low", "udr_gap_ci_high"),
                                   ("difference", "diff_ci_low", "diff_ci_high")]
    # a reported-beside-reproduced table: the interval is the paper's, of its value
    t = pd.DataFrame({"value": [0.071], "ci_low": [0.055], "ci_high": [0.088],
                      "quote": ["0.071, 95% CI: 0.055-0.088"], "reproduced": [0.3],
                      "difference": [0.229]})
    assert interval_columns(t) == [("value", "ci_low", "ci_high")]
    assert intervals_excluding_their_estimate(t).empty


@pytest.mark.slow
@pytest.mark.parametrize("name", list_notebooks())
def test_no_interval_of_a_smoke_run_excludes_its_estimate(name, smoke_runs):
    out = smoke_runs[name]
    scanned, bad = 0, []
    for path in sorted((out / "tables").glob("*.csv")):
        table = pd.read_csv(path)
        if interval_columns(table):
            scanned += 1
        excl = intervals_excluding_their_estimate(table)
        if len(excl):
            bad.append(f"{path.name}: {len(excl)} row(s), first {excl.iloc[0].to_dict()}")
    assert not bad, "\n".join(bad)
    if name in ("glossary", "paper_a", "paper_b", "paper_c", "paper_d", "mitigation_demo"):
        assert scanned, f"{name}: no table with an interval was scanned"
