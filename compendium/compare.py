"""``compendium compare RUN_A RUN_B``: two runs of one notebook side by side.

The comparison has three parts, written to one CSV (column ``section``) and summarised on
the screen:

* ``parameter``: every parameter whose value differs between the runs;
* ``value``: every published value (``values.json``) of either run, with the difference;
* ``table``: every number of every table (``tables/*.csv``), the rows of both runs joined on
  the table's keys, with both estimates, their intervals (``ci_low``/``ci_high``) and
  p-values where the table has them, and the difference B - A.  A text cell that changed
  (a verdict, a flag) is listed too.

A table's keys are its leading text columns, as many as it takes to tell its rows apart in
both runs (with none enough, the row's position among equal keys is added).  Where a table
has p-values (``p_adjusted``, else ``p_value``), a result that is significant at ``--alpha``
in one run and not in the other is flagged.  Runs of different profiles of one notebook
(demo vs full) compare like any two runs; runs of different notebooks do not.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataNotFoundError

#: Columns folded into the row of the estimate they qualify.
INTERVAL = ("ci_low", "ci_high")
P_COLUMNS = ("p_adjusted", "p_value")
COLUMNS = ["section", "table", "row", "column", "a", "b", "difference", "a_ci_low",
           "a_ci_high", "b_ci_low", "b_ci_high", "a_p", "b_p", "change"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _change(a: Any, b: Any) -> str:
    if _missing(a) and _missing(b):
        return ""
    if _missing(a):
        return "only in B"
    if _missing(b):
        return "only in A"
    if _is_number(a) and _is_number(b):
        return "" if a == b else "differs"
    return "" if str(a) == str(b) else "differs"


def _row(section, table="", keys="", column="", a=None, b=None, **extra) -> dict[str, Any]:
    diff = b - a if _is_number(a) and _is_number(b) else None
    row = {"section": section, "table": table, "row": keys, "column": column,
           "a": a, "b": b, "difference": diff, "change": _change(a, b)}
    row.update(extra)
    return row


def compare_parameters(a, b) -> list[dict[str, Any]]:
    pa, pb = a.parameters, b.parameters
    rows = []
    for k in sorted(set(pa) | set(pb)):
        va, vb = pa.get(k), pb.get(k)
        if va != vb:
            rows.append(_row("parameter", column=k, a=json.dumps(va, default=str),
                             b=json.dumps(vb, default=str)))
            rows[-1]["change"] = "differs"
    return rows


def compare_values(a, b) -> list[dict[str, Any]]:
    from .results import read_values

    va, vb = read_values(a.path), read_values(b.path)
    return [_row("value", column=k, a=va.get(k), b=vb.get(k)) for k in sorted(set(va) | set(vb))]


#: How a paper run labels a model's toy stand-in (:func:`compendium.papers.base.plan_model`):
#: ``"toy-clip-vit (stand-in for MedCLIP-ViT)"``.  A demo run's stand-in and a full run's
#: model are matched on the paper's model.
STAND_IN = re.compile(r"^.+ \(stand-in for (?P<model>.+)\)$")


def _canonical(values):
    return values.astype(str).str.replace(STAND_IN, r"\g<model>", regex=True)


def table_keys(ta, tb) -> list[str]:
    """The leading text columns of two versions of a table that tell their rows apart.

    A column whose values the two runs share none of (a demo run's stand-in encoder against
    a full run's model) is left out when the other columns still tell the rows apart, and a
    model label is matched on the paper's model (:data:`STAND_IN`); see :func:`align_keys`.
    """
    import pandas as pd

    common = [c for c in ta.columns if c in tb.columns]
    text = [c for c in common
            if not pd.api.types.is_numeric_dtype(ta[c]) and not pd.api.types.is_numeric_dtype(tb[c])
            and not pd.api.types.is_bool_dtype(ta[c]) and c not in (*INTERVAL, *P_COLUMNS)]

    def unique(keys):
        return bool(keys) and not ta.duplicated(keys).any() and not tb.duplicated(keys).any()

    def disjoint(c):
        return not set(_canonical(ta[c].dropna())) & set(_canonical(tb[c].dropna())) \
            and len(ta) > 0 and len(tb) > 0

    for candidates in ([c for c in text if not disjoint(c)], text):
        keys: list[str] = []
        for c in candidates:
            keys.append(c)
            if unique(keys):
                return keys
    return text


def align_keys(ta, tb, keys):
    """Key columns as text in both tables; a key column whose raw values the runs share
    none of but whose paper-model values they do (stand-ins against models) is matched on
    the latter."""
    ta, tb = ta.copy(), tb.copy()
    for k in keys:
        a, b = ta[k].astype(str).where(ta[k].notna(), ""), tb[k].astype(str).where(tb[k].notna(), "")
        if not set(a) & set(b) and set(_canonical(a)) & set(_canonical(b)):
            a, b = _canonical(a), _canonical(b)
        ta[k], tb[k] = a, b
    return ta, tb


def _with_position(df, keys):
    """``df`` with a ``#`` column: the row's position among rows with equal keys."""
    df = df.copy()
    df["#"] = df.groupby(keys, dropna=False, sort=False).cumcount() if keys else range(len(df))
    return df


def _p_column(df) -> str | None:
    return next((c for c in P_COLUMNS if c in df.columns), None)


def compare_table(name: str, ta, tb, alpha: float) -> list[dict[str, Any]]:
    """Rows of the comparison of one table (``ta``: run A's, ``tb``: run B's)."""
    keys = table_keys(ta, tb)
    if ta.duplicated(keys).any() or tb.duplicated(keys).any() or not keys:
        ta, tb = _with_position(ta, keys), _with_position(tb, keys)
        keys = [*keys, "#"]
    ta, tb = align_keys(ta, tb, keys)
    ta = ta.assign(**{"\0order": range(len(ta))})
    tb = tb.assign(**{"\0order": range(len(tb))})
    merged = ta.merge(tb, on=keys, how="outer", suffixes=("\0a", "\0b"), indicator=True)
    # A's rows in A's order, then the rows only B has in B's order
    merged = merged.sort_values(["\0order\0a", "\0order\0b"], na_position="last",
                                kind="stable")
    pa, pb = _p_column(ta), _p_column(tb)
    p_col = pa if pa == pb else None
    has_ci = all(c in ta.columns and c in tb.columns for c in INTERVAL)
    folded = {*keys, *INTERVAL, *P_COLUMNS, "\0order"}
    columns = [c for c in ta.columns if c not in folded] + \
              [c for c in tb.columns if c not in folded and c not in ta.columns]

    own = {"a": set(ta.columns), "b": set(tb.columns)}

    def get(rec, col, side):
        if f"{col}\0{side}" in rec:
            v = rec[f"{col}\0{side}"]
        elif col in own[side] and col in rec:
            v = rec[col]
        else:
            return None
        return None if _missing(v) else (v.item() if hasattr(v, "item") else v)

    rows = []
    for rec in merged.to_dict("records"):
        key_text = "; ".join(f"{k}={rec[k]}" for k in keys)
        for col in columns:
            a, b = get(rec, col, "a"), get(rec, col, "b")
            if rec["_merge"] == "left_only":
                b = None
            elif rec["_merge"] == "right_only":
                a = None
            extra: dict[str, Any] = {}
            if col == "estimate":
                if has_ci:
                    extra.update(a_ci_low=get(rec, "ci_low", "a"), a_ci_high=get(rec, "ci_high", "a"),
                                 b_ci_low=get(rec, "ci_low", "b"), b_ci_high=get(rec, "ci_high", "b"))
                if p_col:
                    extra.update(a_p=get(rec, p_col, "a"), b_p=get(rec, p_col, "b"))
            row = _row("table", name, key_text, col, a, b, **extra)
            if rec["_merge"] == "left_only":
                row["change"] = "only in A"
            elif rec["_merge"] == "right_only":
                row["change"] = "only in B"
            elif col == "estimate" and p_col and _is_number(extra.get("a_p")) \
                    and _is_number(extra.get("b_p")):
                sig_a, sig_b = extra["a_p"] < alpha, extra["b_p"] < alpha
                if sig_a and not sig_b:
                    row["change"] = "became non-significant"
                elif sig_b and not sig_a:
                    row["change"] = "became significant"
            if a is None and b is None:
                continue
            rows.append(row)
    return rows


def compare_runs(a, b, *, alpha: float = 0.05, skip_missing: bool = False):
    """The comparison of two :class:`~compendium.runs.RunInfo` as a DataFrame
    (:data:`COLUMNS`).  Raises a one-line error for runs of different notebooks or a table
    that one run lacks (with ``skip_missing``, such a table gets one row, ``change`` saying
    which run has it)."""
    import pandas as pd

    if a.notebook != b.notebook:
        raise ConfigError(f"runs of different notebooks cannot be compared: {a.ref} is "
                          f"{a.notebook}, {b.ref} is {b.notebook}")
    tables_a = {p.stem: p for p in sorted((a.path / "tables").glob("*.csv"))}
    tables_b = {p.stem: p for p in sorted((b.path / "tables").glob("*.csv"))}
    missing = []
    for name in sorted(set(tables_a) ^ set(tables_b)):
        has, lacks = (a, b) if name in tables_a else (b, a)
        if not skip_missing:
            raise DataNotFoundError(
                f"table {name}.csv is in run {has.ref} but missing from run {lacks.ref} "
                f"({lacks.path / 'tables'}); re-run it, or pass --skip-missing to compare the "
                "tables both runs have")
        missing.append({"section": "table", "table": name,
                        "change": f"table only in {'A' if has is a else 'B'}"})
    rows = compare_parameters(a, b) + compare_values(a, b) + missing
    for name in sorted(set(tables_a) & set(tables_b)):
        try:
            ta, tb = pd.read_csv(tables_a[name]), pd.read_csv(tables_b[name])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataNotFoundError(f"table {name}.csv cannot be read: "
                                    f"{' '.join(str(exc).split())}") from None
        rows += compare_table(name, ta, tb, alpha)
    return pd.DataFrame(rows, columns=COLUMNS)


def _fmt(v: Any) -> str:
    if _is_number(v):
        return f"{v:.3g}"
    return "-" if _missing(v) else str(v)


def summary(df, a, b, *, alpha: float, limit: int = 10) -> str:
    """The short text ``compendium compare`` prints."""
    lines = [f"compare {a.ref} (A) with {b.ref} (B)"]
    params = df[df.section == "parameter"]
    if len(params):
        lines.append("parameters that differ: " + ", ".join(
            f"{r.column} {r.a} -> {r.b}" for r in params.itertuples()))
    else:
        lines.append("parameters that differ: none")
    for section, what in (("value", "published values"), ("table", "table cells")):
        part = df[(df.section == section)
                  & ~df.change.astype(str).str.startswith("table only in")]
        differ = part[part.change != ""]
        lines.append(f"{what}: {len(part)} compared, {len(differ)} differ"
                     + (f" ({(part.change == 'only in A').sum()} only in A, "
                        f"{(part.change == 'only in B').sum()} only in B)"
                        if section == "table" else ""))
    only = df[df.change.astype(str).str.startswith("table only in")]
    if len(only):
        lines.append("tables one run lacks: " + ", ".join(
            f"{r.table} ({r.change.removeprefix('table ')})" for r in only.itertuples()))
    flips = df[df.change.isin(["became significant", "became non-significant"])]
    lines.append(f"significance changed (p < {alpha:g}): {len(flips)}")
    for r in flips.head(limit).itertuples():
        lines.append(f"  {r.table}: {r.row}: {_fmt(r.a)} [{_fmt(r.a_ci_low)}, {_fmt(r.a_ci_high)}] "
                     f"p={_fmt(r.a_p)} -> {_fmt(r.b)} [{_fmt(r.b_ci_low)}, {_fmt(r.b_ci_high)}] "
                     f"p={_fmt(r.b_p)} ({r.change})")
    if len(flips) > limit:
        lines.append(f"  ... and {len(flips) - limit} more in the CSV")
    return "\n".join(lines)


def default_out(a, b, results: str | Path | None = None) -> Path:
    from .runner import results_root

    return Path(results or results_root()) / "comparisons" / f"{a.ref.replace('/', '.')}--{b.ref.replace('/', '.')}.csv"


# ----------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    from .config import cli_number

    parser.add_argument("run_a", metavar="RUN_A", help="NB/PROFILE, NB/PROFILE/NAME or a run folder")
    parser.add_argument("run_b", metavar="RUN_B", help="the run compared with RUN_A")
    parser.add_argument("--out", metavar="FILE",
                        help="the comparison CSV (default: results/comparisons/A--B.csv)")
    parser.add_argument("--alpha", type=cli_number(float, lo=0, hi=1, lo_open=True, hi_open=True),
                        default=0.05, help="significance level of the flags (default 0.05)")
    parser.add_argument("--skip-missing", action="store_true",
                        help="compare the tables both runs have (runs of two profiles may "
                             "publish different tables); default: a missing table is an error")
    parser.add_argument("--results", metavar="DIR",
                        help="the results folder (default: results/ or $COMPENDIUM_RESULTS)")


def run(args) -> int:
    from .atomic import atomic_write, check_output
    from .runs import resolve_run

    a = resolve_run(args.run_a, args.results)
    b = resolve_run(args.run_b, args.results)
    out = Path(args.out) if args.out else default_out(a, b, args.results)
    check_output(out)
    df = compare_runs(a, b, alpha=args.alpha, skip_missing=args.skip_missing)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as fh:
        df.to_csv(fh, index=False, float_format="%.6g", lineterminator="\n")
    print(summary(df, a, b, alpha=args.alpha))
    print(f"wrote {out}")
    return 0


def highlights(df, *, tables=(), limit: int = 12):
    """The rows of a comparison worth reading first: the parameters that differ, the
    estimates whose significance changed, the estimates that moved most, then other table
    cells that differ (in table order), ``limit`` table rows at most, of ``tables`` only
    when given."""
    import pandas as pd

    params = df[df.section == "parameter"]
    cells = df[(df.section == "table") & df.change.notna() & (df.change != "")].copy()
    if tables:
        cells = cells[cells.table.isin(list(tables))]
    cells["size"] = pd.to_numeric(cells.difference, errors="coerce").abs()
    flips = cells[cells.change.isin(["became significant", "became non-significant"])]
    est = cells[(cells.column == "estimate") & ~cells.index.isin(flips.index)]
    est = est.dropna(subset=["size"]).sort_values("size", ascending=False, kind="stable")
    other = cells[~cells.index.isin(flips.index) & ~cells.index.isin(est.index)]
    shown = pd.concat([flips, est, other]).head(limit)
    return pd.concat([params, shown]).drop(columns=["size"]).reset_index(drop=True)


def counts(df) -> dict[str, int]:
    """Key numbers of a comparison (read back from its CSV or as built): table cells that
    differ and estimates whose significance changed."""
    changed = df.change.notna() & (df.change.astype(str) != "")
    return {"n_cells_differ": int((changed & (df.section == "table")).sum()),
            "n_significance_changes": int(df.change.isin(["became significant",
                                                          "became non-significant"]).sum())}
