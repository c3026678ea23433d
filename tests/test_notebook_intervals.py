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


#: Tables of the book that print a gap of two groups, and whether their gap is the absolute
#: value of the signed difference printed beside it (Paper A's macro F1 gap is a mean of
#: per-class gaps: its signed cell is the difference of the groups' macro F1s).
SIGNED_TABLES = {("paper_a", "gaps"): False, ("paper_b", "gaps"): True,
                 ("paper_b", "pooling_gaps"): True, ("paper_e", "subgroups"): True,
                 ("paper_e", "gap_change"): True}
SIGNED_CELL = r"^(?P<a>\S.*) - (?P<b>\S.*): (?P<d>[+-]\d+\.\d{3})( \[[+-]\d+\.\d{3}, [+-]\d+\.\d{3}\]| \(no interval\))$"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted({n for n, _ in SIGNED_TABLES}))
def test_every_two_group_gap_shows_its_signed_difference(name, smoke_runs):
    """Every table of a smoke run with a gap column and rows of a two-group attribute (sex)
    shows the signed difference, which group minus which, beside the gap; in the tables
    where the gap is the absolute difference, |signed| equals the gap."""
    out = smoke_runs[name]
    checked = 0
    for path in sorted((out / "tables").glob("*.csv")):
        table = pd.read_csv(path, keep_default_na=False, na_values=[""])
        if "attribute" not in table or "kind" in table:   # an audit table: its own pair rows
            continue
        rows = table[table["attribute"] == "sex"]
        if "metric" in table:      # a long table: the gap rows' estimates
            rows = rows[rows["metric"].astype(str).str.endswith("_gap")]
            gap_cols = ["estimate"] if "estimate" in table else []
        else:
            gap_cols = [c for c in table.columns if "gap" in str(c).lower() and "ci" not in
                        str(c).lower() and pd.api.types.is_numeric_dtype(table[c])]
        if not gap_cols or rows.empty:
            continue
        signed = [c for c in table.columns if "signed" in str(c).lower()]
        assert signed, f"{path.name} prints a two-group gap without its signed difference"
        cells = rows[signed[0]].fillna("").astype(str)
        parsed = cells.str.extract(SIGNED_CELL)
        assert parsed["d"].notna().all(), (path.name, cells[parsed["d"].isna()].tolist())
        assert set(parsed["a"]) | set(parsed["b"]) <= {"F", "M"}, (path.name, set(parsed["a"]))
        if SIGNED_TABLES.get((name, path.stem)):
            gap = pd.to_numeric(rows[gap_cols[0]], errors="coerce").to_numpy(float)
            d = parsed["d"].astype(float).to_numpy()
            ok = np.isfinite(gap)
            assert np.allclose(np.abs(d[ok]), gap[ok], atol=6e-4), (path.name, d, gap)
        checked += 1
    assert checked, f"{name}: no table of a two-group gap found"
