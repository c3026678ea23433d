"""Reading reports and label tables, with one-line errors a user can act on.

Reports (:func:`read_reports`): a CSV with an id column (``study_id``, ``report_id``,
``sample_id`` or ``id``) and a text column (``report`` or ``text``), or a folder of ``.txt``
files (searched recursively, as MIMIC-CXR's ``files/p10/p10000032/s50414267.txt``: the id is
the file name without ``.txt`` and a leading ``s``).

Label tables (:func:`read_label_csv`): the schema of a user-supplied label file, for
instance the LLM-extracted labels of Paper C's full profile: an id column (as above) and one
or more label columns named as CheXpert's observations (``No Finding``, ...), each holding
1, 0, -1 (uncertain) or empty; ids unique.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError, InputError
from .base import COLUMNS

ID_COLUMNS = ("study_id", "report_id", "sample_id", "id")
TEXT_COLUMNS = ("report", "text")


def _pick(df: pd.DataFrame, wanted: str | None, candidates: Sequence[str], what: str,
          source: str) -> str:
    if wanted:
        if wanted not in df.columns:
            raise InputError(f"{source}: no column {wanted!r} (found: "
                             f"{', '.join(map(str, df.columns[:12]))})")
        return wanted
    for c in candidates:
        if c in df.columns:
            return c
    raise InputError(f"{source}: no {what} column (expected one of {', '.join(candidates)}; "
                     f"found: {', '.join(map(str, df.columns[:12]))})")


def _read_csv(path: Path, source: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataNotFoundError(f"{source}: {str(path)!r} not found")
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{source}: cannot read {path.name}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _ids(values: pd.Series, source: str) -> pd.Series:
    ids = values.astype("string").str.strip()
    if ids.isna().any() or (ids == "").any():
        raise InputError(f"{source}: {int((ids.isna() | (ids == '')).sum())} row(s) have no id")
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"{source}: id {dup.iloc[0]!r} appears more than once "
                         f"({dup.nunique()} duplicated id(s))")
    return ids.astype(str)


def read_reports(source: str | Path, *, id_column: str | None = None,
                 text_column: str | None = None) -> pd.DataFrame:
    """``DataFrame(id, text)`` of the reports at ``source`` (CSV or folder of .txt)."""
    path = Path(source).expanduser()
    name = f"reports {path.name}"
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        if not files:
            raise DataNotFoundError(f"{name}: no .txt reports under {path}")
        ids = [f.stem[1:] if f.stem[:1] == "s" and f.stem[1:].isdigit() else f.stem
               for f in files]
        texts = []
        for f in files:
            try:
                texts.append(f.read_text(encoding="utf-8", errors="replace"))
            except OSError as exc:
                raise InputError(f"{name}: cannot read {f.name}: {exc.strerror}") from None
        df = pd.DataFrame({"id": ids, "text": texts})
        df["id"] = _ids(df["id"], name)
        return df
    df = _read_csv(path, name)
    idc = _pick(df, id_column, ID_COLUMNS, "id", name)
    txc = _pick(df, text_column, TEXT_COLUMNS, "text", name)
    if df.empty:
        raise InputError(f"{name}: no rows")
    return pd.DataFrame({"id": _ids(df[idc], name),
                         "text": df[txc].fillna("").astype(str).to_numpy()})


def read_label_csv(source: str | Path, *, columns: Sequence[str] | None = None,
                   id_column: str | None = None) -> pd.DataFrame:
    """``DataFrame(id, <label columns>)`` of a label file, validated (module docstring).

    ``columns``: the label columns required (default: every column named as an
    observation, at least one).  Values become floats 1, 0, -1 or NaN.
    """
    path = Path(source).expanduser()
    name = f"labels {path.name}"
    df = _read_csv(path, name)
    idc = _pick(df, id_column, ID_COLUMNS, "id", name)
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise InputError(f"{name}: no column(s) {', '.join(map(repr, missing))} "
                             f"(found: {', '.join(map(str, df.columns[:12]))})")
        cols = list(columns)
    else:
        cols = [c for c in COLUMNS if c in df.columns]
        if not cols:
            raise InputError(f"{name}: no label column (expected one of: "
                             f"{', '.join(COLUMNS)})")
    if df.empty:
        raise InputError(f"{name}: no rows")
    out = pd.DataFrame({"id": _ids(df[idc], name)})
    for c in cols:
        raw = df[c].astype("string").str.strip()
        v = pd.to_numeric(raw, errors="coerce")
        bad = raw.notna() & (v.isna() | ~v.isin([1, 0, -1]))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{name}: column {c!r} row {i + 2} holds {raw.iloc[i]!r} "
                             "(allowed: 1, 0, -1 or empty)")
        out[c] = v.astype(float).to_numpy()
    return out


__all__ = ["ID_COLUMNS", "TEXT_COLUMNS", "read_label_csv", "read_reports"]
