"""Patient-wise utilities: age bands, train/val/test and k-fold splits, balanced sampling.

Everything here keeps all images of one patient on the same side of a split.  The splitting
itself is scikit-learn's (:class:`~sklearn.model_selection.StratifiedGroupKFold`,
:class:`~sklearn.model_selection.GroupShuffleSplit`, :class:`~sklearn.model_selection.GroupKFold`);
this module only turns cohort tables into their inputs and their folds into ``split`` columns.

Age banding schemes of the papers
---------------------------------
=================  ===================================================  ==========
scheme             bands                                                 paper
=================  ===================================================  ==========
``paper_a``        ``<60``, ``>=60``                                     A (NIH 6x200)
``paper_b``        ``18-40``, ``40-60``, ``60-75``, ``75-90``            B (INSPECT)
``paper_c``        ``18-40``, ``80+`` (ages in between are left out)     C (MIMIC-CXR)
``decades``        ``0-20``, ``20-40``, ``40-60``, ``60-80``, ``80+``    general use
=================  ===================================================  ==========

Bands are half-open ``[low, high)``: 40 belongs to ``40-60``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError


@dataclasses.dataclass(frozen=True)
class AgeBands:
    """A named age banding: ``edges[i] <= age < edges[i + 1]`` gets ``names[i]``.

    Bands whose name is ``None`` (gaps, e.g. 40-80 in Paper C) map to NaN.
    """

    name: str
    edges: tuple[float, ...]
    names: tuple[str | None, ...]
    paper: str = ""

    def __post_init__(self) -> None:
        if len(self.edges) != len(self.names) + 1:
            raise ValueError("AgeBands needs one more edge than names")

    @property
    def labels(self) -> list[str]:
        """The band names in order (without gaps)."""
        return [n for n in self.names if n is not None]

    def assign(self, age) -> pd.Series:
        """Band name of each age (NaN outside every band or for unknown age).

        >>> AGE_BANDS["paper_a"].assign([30, 59.9, 60, None]).tolist()
        ['<60', '<60', '>=60', nan]
        """
        age = pd.to_numeric(pd.Series(age), errors="coerce").astype(float)
        idx = np.searchsorted(np.asarray(self.edges, dtype=float), age.to_numpy(), side="right") - 1
        out = np.full(len(age), np.nan, dtype=object)
        for i, label in enumerate(self.names):
            if label is not None:
                out[(idx == i) & age.notna().to_numpy()] = label
        return pd.Series(out, index=age.index, dtype=object)


AGE_BANDS: dict[str, AgeBands] = {
    b.name: b for b in (
        AgeBands("paper_a", (-math.inf, 60, math.inf), ("<60", ">=60"), paper="A"),
        AgeBands("paper_b", (18, 40, 60, 75, 90), ("18-40", "40-60", "60-75", "75-90"), paper="B"),
        AgeBands("paper_c", (18, 40, 80, math.inf), ("18-40", None, "80+"), paper="C"),
        AgeBands("decades", (-math.inf, 20, 40, 60, 80, math.inf),
                 ("0-20", "20-40", "40-60", "60-80", "80+")),
    )
}


def age_bands(scheme: str) -> AgeBands:
    """The banding scheme called ``scheme`` (ConfigError listing the known ones)."""
    try:
        return AGE_BANDS[scheme]
    except KeyError:
        raise ConfigError(f"unknown age banding {scheme!r} (allowed: {', '.join(AGE_BANDS)})") from None


def add_age_group(table: pd.DataFrame, scheme: str = "paper_a", *,
                  column: str = "age_group") -> pd.DataFrame:
    """A copy of ``table`` with ``column`` holding each row's age band under ``scheme``."""
    out = table.copy()
    out[column] = age_bands(scheme).assign(out["age"]).to_numpy()
    return out


# ---------------------------------------------------------------------------- splits


def _strata(table: pd.DataFrame, stratify: Sequence[str] | str | None) -> np.ndarray | None:
    if stratify is None or (not isinstance(stratify, str) and len(stratify) == 0):
        return None
    cols = [stratify] if isinstance(stratify, str) else list(stratify)
    missing = [c for c in cols if c not in table]
    if missing:
        raise InputError(f"cannot stratify by missing column(s) {', '.join(missing)}")
    key = table[cols].astype(str).agg("|".join, axis=1)
    return pd.factorize(key)[0]


def _seed(seed: int | np.random.Generator) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**31 - 1))
    return int(seed)


def patient_folds(groups: Sequence[Any], n_splits: int = 5, *, y: Sequence[Any] | None = None,
                  seed: int | np.random.Generator = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-wise k-fold: ``[(train_idx, test_idx), ...]`` positional indices, sorted.

    No patient (``groups`` value) is in two folds.  With ``y`` (class labels or strata),
    :class:`~sklearn.model_selection.StratifiedGroupKFold` (shuffled, seeded) keeps each
    fold's class proportions as close as whole patients allow; without, the patients' order is
    shuffled (seeded) before :class:`~sklearn.model_selection.GroupKFold`.

    Raises :class:`~compendium.errors.InputError` when there are fewer patients than folds.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    if n_splits < 2:
        raise ConfigError(f"n_splits must be at least 2, got {n_splits}")
    groups = np.asarray(groups).astype(str)
    n_patients = len(np.unique(groups))
    if n_patients < n_splits:
        raise InputError(f"{n_patients} patients cannot fill {n_splits} folds")
    x = np.zeros((len(groups), 1))
    if y is None:
        rng = np.random.default_rng(_seed(seed))
        uniq = np.unique(groups)
        perm = dict(zip(uniq, rng.permutation(len(uniq))))
        shuffled = np.array([perm[g] for g in groups])
        folds = list(GroupKFold(n_splits=n_splits).split(x, groups=shuffled))
    else:
        y = np.asarray(y)
        if len(y) != len(groups):
            raise InputError(f"y has {len(y)} rows, groups {len(groups)}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The least populated class",
                                    category=UserWarning)
            cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=_seed(seed))
            folds = list(cv.split(x, y, groups=groups))
    return [(np.sort(tr), np.sort(te)) for tr, te in folds]


def kfold_indices(table: pd.DataFrame, n_splits: int = 5, *,
                  stratify: Sequence[str] | str | None = None, group: str = "patient_id",
                  seed: int | np.random.Generator = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`patient_folds` of a cohort table: patients from ``group``, strata from the
    ``stratify`` columns (their combined values)."""
    return patient_folds(table[group].astype(str).to_numpy(), n_splits,
                         y=_strata(table, stratify), seed=seed)


def patient_split(table: pd.DataFrame, fractions: Sequence[float] = (0.7, 0.1, 0.2), *,
                  stratify: Sequence[str] | str | None = None, group: str = "patient_id",
                  seed: int | np.random.Generator = 0, column: str = "split") -> pd.DataFrame:
    """A copy of ``table`` with a patient-wise ``train``/``val``/``test`` column.

    With ``stratify``, the fractions are written as ``k / n`` (e.g. 7:1:2 as 7, 1, 2 of 10
    folds) and the folds of a seeded :class:`~sklearn.model_selection.StratifiedGroupKFold`
    are assigned to the splits, so each split keeps the strata's proportions as closely as
    whole patients allow.  Without it, two :class:`~sklearn.model_selection.GroupShuffleSplit`
    draws cut off test and then validation patients.
    """
    from sklearn.model_selection import GroupShuffleSplit

    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or not math.isclose(sum(fr), 1.0, abs_tol=1e-6):
        raise ConfigError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
    out = table.copy()
    names = np.array(["train", "val", "test"], dtype=object)
    if stratify is not None:
        parts = [Fraction(f).limit_denominator(20) for f in fr]
        n = math.lcm(*[p.denominator for p in parts])
        counts = [int(p * n) for p in parts]
        folds = kfold_indices(table, n, stratify=stratify, group=group, seed=seed)
        assign = np.empty(len(table), dtype=object)
        fold_names = np.repeat(names, counts)
        for (_, te), name in zip(folds, fold_names):
            assign[te] = name
        out[column] = assign
        return out
    groups = table[group].astype(str).to_numpy()
    rs = _seed(seed)
    assign = np.full(len(table), "train", dtype=object)
    idx = np.arange(len(table))
    if fr[2] > 0:
        tr, te = next(GroupShuffleSplit(n_splits=1, test_size=fr[2], random_state=rs)
                      .split(idx, groups=groups))
        assign[te] = "test"
        idx = tr
    if fr[1] > 0:
        rel = fr[1] / (fr[0] + fr[1])
        tr, va = next(GroupShuffleSplit(n_splits=1, test_size=rel, random_state=rs + 1)
                      .split(idx, groups=groups[idx]))
        assign[idx[va]] = "val"
    out[column] = assign
    return out


def balanced_sample(table: pd.DataFrame, label: str, n_pos: int, n_neg: int | None = None, *,
                    seed: int | np.random.Generator = 0, group: str = "patient_id",
                    one_per_patient: bool = True) -> pd.DataFrame:
    """``n_pos`` positive and ``n_neg`` negative rows of ``label`` (Paper D: 1000 / 1000).

    Patient-wise: negatives come only from patients with no positive row for ``label``
    (so the label is never decided by which image of one patient was drawn) and, with
    ``one_per_patient``, at most one image per patient is drawn on each side.  Rows with
    an unknown (NaN) label are never drawn.  Returns the rows in a seeded random order,
    positives first.
    """
    if label not in table:
        raise InputError(f"balanced_sample: no label column {label!r}")
    n_neg = n_pos if n_neg is None else n_neg
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    y = pd.to_numeric(table[label], errors="coerce")
    pos = table[y == 1]
    pos_patients = set(pos[group].astype(str))
    neg = table[(y == 0) & ~table[group].astype(str).isin(pos_patients)]
    picked = []
    for side, rows, n in (("positive", pos, n_pos), ("negative", neg, n_neg)):
        if one_per_patient:
            order = rng.permutation(len(rows))
            rows = rows.iloc[order].drop_duplicates(group)
        if len(rows) < n:
            raise InputError(f"balanced_sample: {label!r} has only {len(rows)} eligible {side} "
                             f"{'patients' if one_per_patient else 'rows'}, {n} requested")
        picked.append(rows.iloc[np.sort(rng.choice(len(rows), size=n, replace=False))])
    return pd.concat(picked).reset_index(drop=True)


def stratified_subset(table: pd.DataFrame, n: int | None, *, stratify: Sequence[str] | str,
                      seed: int = 0) -> np.ndarray:
    """Positions (sorted) of at most ``n`` rows of ``table``, drawn with ``seed`` in
    proportion to the strata of ``stratify`` (every stratum kept while ``n`` allows).

    ``None``, or ``n`` at least the table's length: every row.  Used as a budget (e.g. the
    rehearsal's cap on the images LoRA and fine-tuning train on), never by a paper's recipe.
    """
    if n is None or n >= len(table):
        return np.arange(len(table))
    strata = _strata(table, stratify)
    codes = np.zeros(len(table), dtype=int) if strata is None else np.asarray(strata)
    levels, counts = np.unique(codes, return_counts=True)
    if n < len(levels):
        raise ConfigError(f"a subset of {n} rows cannot hold each of the {len(levels)} strata "
                          f"of {stratify!r}; ask for at least {len(levels)}")
    share = n * counts / len(table)
    quota = np.minimum(counts, np.maximum(1, np.floor(share).astype(int)))
    while quota.sum() < n:                 # largest remainders first
        room = np.where(quota < counts, share - quota, -np.inf)
        quota[int(np.argmax(room))] += 1
    while quota.sum() > n:                 # the largest strata give back
        quota[int(np.argmax(np.where(quota > 1, quota - share, -np.inf)))] -= 1
    rng = np.random.default_rng([_seed(seed), 7919])
    keep = [rng.choice(np.flatnonzero(codes == lv), q, replace=False)
            for lv, q in zip(levels, quota)]
    return np.sort(np.concatenate(keep))
