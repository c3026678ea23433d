"""Helpers shared by the real-data cohort builders (not a builder module itself).

Every check here turns a user mistake into a one-line :mod:`compendium.errors` exception:
a missing dataset root, a missing or renamed column, files listed in a table but absent
on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import DataNotFoundError, InputError

log = logging.getLogger(__name__)

#: How many missing paths an error message names.
SHOW_MISSING = 3


def shipped_file(name: str) -> Path:
    """Path of a metadata file shipped inside the installed ``torchxrayvision`` package.

    Raises :class:`DataNotFoundError` when torchxrayvision (or the file) is not installed.
    """
    try:
        import importlib.util

        spec = importlib.util.find_spec("torchxrayvision")
    except (ImportError, ValueError):  # pragma: no cover - broken installs
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            f"{name}: torchxrayvision is not installed; pass the dataset's own metadata file")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / name
    if not path.is_file():
        raise DataNotFoundError(f"{name} is not shipped by this torchxrayvision version ({path.parent})")
    return path


def require_root(root: str | Path | None, dataset: str, *, hint: str = "") -> Path:
    """The dataset root as a Path, or :class:`DataNotFoundError` if it is not a folder."""
    if root is None:
        raise DataNotFoundError(f"{dataset}: no dataset root given (pass root=PATH / --root PATH){hint}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataNotFoundError(f"{dataset}: dataset root {str(path)!r} is not a folder{hint}")
    return path


def find_file(root: Path, patterns: Sequence[str], dataset: str, what: str) -> Path:
    """The first file under ``root`` matching one of the glob ``patterns`` (sorted)."""
    for pattern in patterns:
        hits = sorted(root.glob(pattern))
        hits = [h for h in hits if h.is_file()]
        if hits:
            return hits[0]
    raise DataNotFoundError(
        f"{dataset}: {what} not found under {root} (looked for {', '.join(patterns)})")


def read_table(path: str | Path, dataset: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` with a one-line error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{dataset}: table {str(path)!r} not found")
    try:
        return pd.read_csv(path, low_memory=False, **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise InputError(f"{dataset}: cannot read {path.name}: {str(exc).splitlines()[0]}") from None


def require_columns(df: pd.DataFrame, columns: Iterable[str], dataset: str, what: str) -> None:
    """Raise :class:`InputError` naming the columns of ``what`` that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, list(df.columns)[:12]))
        raise InputError(f"{dataset}: {what} lacks column(s) {', '.join(map(repr, missing))} "
                         f"(found: {have}{', ...' if df.shape[1] > 12 else ''})")


def check_files(table: pd.DataFrame, column: str, root: Path, dataset: str, *,
                drop_missing: bool) -> pd.DataFrame:
    """Check that every ``root / table[column]`` exists.

    Missing files raise :class:`DataNotFoundError` with their count and the first few paths,
    or, with ``drop_missing=True``, are dropped (with a logged warning).
    """
    exists = np.fromiter(((root / p).is_file() for p in table[column]), dtype=bool,
                         count=len(table))
    if exists.all():
        return table
    missing = table.loc[~exists, column].tolist()
    if drop_missing:
        log.warning("%s: dropped %d of %d rows whose file is missing (first: %s)", dataset,
                    len(missing), len(table), ", ".join(missing[:SHOW_MISSING]))
        return table.loc[exists].reset_index(drop=True)
    raise DataNotFoundError(
        f"{dataset}: {len(missing)} of {len(table)} listed files are missing under {root} "
        f"(first: {', '.join(missing[:SHOW_MISSING])}); pass drop_missing=True to drop them")


def normalise_sex(values: pd.Series) -> pd.Series:
    """Map the sources' spellings of sex to ``"M"`` / ``"F"`` (others become NaN)."""
    mapping = {"m": "M", "male": "M", "f": "F", "female": "F"}
    out = values.astype("string").str.strip().str.lower().map(mapping)
    return out.astype(object).where(out.notna(), np.nan)


def finish(table: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Order the standard columns first and give them their dtypes."""
    table = table.copy()
    table["sample_id"] = table["sample_id"].astype(str)
    table["patient_id"] = table["patient_id"].astype(str)
    table["age"] = pd.to_numeric(table["age"], errors="coerce").astype(float)
    for col in ("split", "sex", "race"):
        if col not in table:
            table[col] = "" if col == "split" else np.nan
    table["split"] = table["split"].fillna("").astype(str)
    for lab in labels:
        table[lab] = pd.to_numeric(table[lab], errors="coerce").astype(float)
    first = ["sample_id", "patient_id", "split", "age", "sex", "race"]
    rest = [c for c in table.columns if c not in first and c not in labels]
    return table[first + list(labels) + rest].reset_index(drop=True)


def composition_summary(table: pd.DataFrame) -> str:
    """A few lines describing the cohort's size and composition by split, sex and age."""
    lines = [f"{len(table)} samples from {table['patient_id'].nunique()} patients"]
    for col in ("split", "sex", "age_group", "race"):
        if col in table and table[col].notna().any() and (table[col].astype(str) != "").any():
            counts = table[col].fillna("unknown").replace("", "unassigned").value_counts()
            lines.append(f"  {col}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    if table["age"].notna().any():
        a = table["age"]
        lines.append(f"  age: median {a.median():.0f}, range {a.min():.0f}-{a.max():.0f}, "
                     f"unknown {int(a.isna().sum())}")
    return "\n".join(lines)


def coarse_race(values: pd.Series) -> pd.Series:
    """Map free-text race/ethnicity categories (MIMIC-IV, CheXpert, OMOP source values) to
    ``White``, ``Black``, ``Asian``, ``Hispanic``, ``Other``; unknown/declined become NaN.

    Hispanic/Latino takes precedence (MIMIC-IV's "HISPANIC/LATINO - ..." and CheXpert's
    ethnicity both mark it); "Native Hawaiian or Other Pacific Islander" and "American
    Indian" fall in ``Other`` (too few in these sources to form a group of their own).
    """
    s = values.astype("string").str.upper().str.strip()
    out = pd.Series(np.nan, index=values.index, dtype=object)
    rules = [("OTHER", "Other"), ("ASIAN", "Asian"), ("BLACK", "Black"), ("AFRICAN", "Black"),
             ("WHITE", "White"), ("CAUCASIAN", "White"), ("HISPANIC", "Hispanic"),
             ("LATINO", "Hispanic"), ("LATINA", "Hispanic")]
    for key, name in rules:  # later rules win
        out[s.str.contains(key, regex=False).fillna(False).to_numpy()] = name
    unknown = s.str.contains("UNKNOWN|UNABLE|DECLINED|PATIENT REFUSED|NOT SPECIFIED", regex=True)
    out[unknown.fillna(True).to_numpy() & out.isna().to_numpy()] = np.nan
    return out


UNCERTAINTY_POLICIES = ("ones", "zeros", "ignore")
UNMENTIONED_POLICIES = ("unknown", "negative")


def apply_uncertainty(df: pd.DataFrame, labels, policy: str, dataset: str, *,
                      unmentioned: str = "unknown") -> pd.DataFrame:
    """CheXpert-style labels (1 positive, 0 negative, -1 uncertain, blank unmentioned):
    U-ones maps -1 to 1, U-zeros to 0, ``ignore`` to NaN.  Blank stays NaN (``unmentioned=
    "unknown"``) or becomes 0 (``"negative"``: a finding the report does not mention is
    absent, as for a dataset whose labels list only the findings present)."""
    from ..errors import ConfigError

    if policy not in UNCERTAINTY_POLICIES:
        raise ConfigError(f"{dataset}: unknown uncertainty policy {policy!r} "
                          f"(allowed: {', '.join(UNCERTAINTY_POLICIES)})")
    if unmentioned not in UNMENTIONED_POLICIES:
        raise ConfigError(f"{dataset}: unknown unmentioned policy {unmentioned!r} "
                          f"(allowed: {', '.join(UNMENTIONED_POLICIES)})")
    out = df.copy()
    repl = {"ones": 1.0, "zeros": 0.0, "ignore": np.nan}[policy]
    for lab in labels:
        v = pd.to_numeric(out[lab], errors="coerce").astype(float)
        bad = v.notna() & ~v.isin([-1.0, 0.0, 1.0])
        if bad.any():
            raise InputError(f"{dataset}: label {lab!r} holds {v[bad].iloc[0]!r} (expected 1, 0, -1 or blank)")
        if unmentioned == "negative":
            v = v.fillna(0.0)
        out[lab] = v.where(v != -1.0, repl)
    return out
