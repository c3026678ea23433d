"""Per-group error rates, signed gaps between two named groups, and the paired difference of a
gap between two label sources or models, with patient-level bootstrap intervals.

Paper C's statistics, usable by any paper: the false-positive rate of a binary prediction per
group (``fpr``: predicted positive among the true negatives; also ``fnr``, ``error``), the
signed gap ``rate(a) - rate(b)``, and whether a change of label source changes that gap (the
same bootstrap resamples of patients for both arms, so the difference is paired).  Rows of one
patient are resampled together (:func:`~compendium.audit.stats.iter_resample_counts`).

The percentile interval is used throughout; the paired test's p-value is the two-sided
bootstrap p-value ``min(1, 2 min(P*(d <= 0), P*(d >= 0)))`` with the ``(k + 1) / (B + 1)``
convention, so it is never 0.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from .stats import iter_resample_counts

#: rate -> (which rows count in the numerator, which in the denominator), from (y, yhat)
RATES = {
    "fpr": (lambda y, p: (y == 0) & (p == 1), lambda y, p: y == 0),
    "fnr": (lambda y, p: (y == 1) & (p == 0), lambda y, p: y == 1),
    "error": (lambda y, p: y != p, lambda y, p: np.ones_like(y, dtype=bool)),
    "positive_rate": (lambda y, p: p == 1, lambda y, p: np.ones_like(y, dtype=bool)),
}


def _labels(values) -> np.ndarray:
    """Group labels as strings; a missing value is the group ``"missing"``."""
    return np.array(["missing" if pd.isna(v) else str(v) for v in
                     np.asarray(values, dtype=object).ravel()], dtype=object)


def _arrays(y_true, y_pred, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise InputError(f"y_true and y_pred must be 1-d and of one length ({y.shape}, {p.shape})")
    if n is not None and len(y) != n:
        raise InputError(f"{len(y)} rows, expected {n}")
    for name, v in (("y_true", y), ("y_pred", p)):
        if not np.isin(v, (0.0, 1.0)).all():
            raise InputError(f"{name} must hold only 0 and 1")
    return y.astype(int), p.astype(int)


def _parts(rate: str, y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if rate not in RATES:
        raise ConfigError(f"unknown rate {rate!r} (allowed: {', '.join(RATES)})")
    num, den = RATES[rate]
    return num(y, p).astype(float), den(y, p).astype(float)


def _boot(n: int, clusters, n_bootstrap: int, seed) -> list[np.ndarray]:
    if n_bootstrap <= 0:
        return []
    return list(iter_resample_counts(n_bootstrap, n, clusters=None if clusters is None
                                     else np.asarray(clusters), seed=seed))


def _ratio(num: np.ndarray, den: np.ndarray, member: np.ndarray, chunks: list[np.ndarray]
           ) -> tuple[float, np.ndarray]:
    """Point estimate and bootstrap replicates of sum(num * member) / sum(den * member)."""
    a, b = num * member, den * member
    est = float(a.sum() / b.sum()) if b.sum() > 0 else float("nan")
    if not chunks:
        return est, np.zeros(0)
    reps = np.concatenate([(a @ c) / np.where((b @ c) > 0, b @ c, np.nan) for c in chunks])
    return est, reps


def group_rates(y_true, y_pred, *, sensitive_features, rate: str = "fpr", clusters=None,
                n_bootstrap: int = 1000, seed=0, level: float = 0.95) -> pd.DataFrame:
    """``rate`` per group with a (patient) bootstrap interval.

    Returns one row per group (sorted): ``group``, ``estimate``, ``ci_low``, ``ci_high``,
    ``n`` (rows), ``denominator`` (rows counted below the line, e.g. true negatives for FPR).

    >>> t = group_rates([0, 0, 0, 0], [1, 0, 0, 0], sensitive_features=["a", "a", "b", "b"],
    ...                 n_bootstrap=0)
    >>> t["estimate"].tolist()
    [0.5, 0.0]
    """
    y, p = _arrays(y_true, y_pred)
    g = _labels(sensitive_features)
    if len(g) != len(y):
        raise InputError("sensitive_features has another length than y_true")
    num, den = _parts(rate, y, p)
    chunks = _boot(len(y), clusters, n_bootstrap, seed)
    rows = []
    for grp in sorted(set(g)):
        m = (g == grp).astype(float)
        est, reps = _ratio(num, den, m, chunks)
        rows.append({"group": grp, "estimate": est, **_interval(reps, level),
                     "n": int(m.sum()), "denominator": int((den * m).sum())})
    return pd.DataFrame(rows)


def _gap_reps(y, p, g, pair, rate, chunks):
    a, b = (str(x) for x in pair)
    present = set(g)
    for x in (a, b):
        if x not in present:
            raise InputError(f"group {x!r} not found (groups: {', '.join(sorted(present))})")
    num, den = _parts(rate, y, p)
    ea, ra = _ratio(num, den, (g == a).astype(float), chunks)
    eb, rb = _ratio(num, den, (g == b).astype(float), chunks)
    return ea - eb, ra - rb


def signed_gap(y_true, y_pred, *, sensitive_features, pair: Sequence[str], rate: str = "fpr",
               clusters=None, n_bootstrap: int = 1000, seed=0, level: float = 0.95
               ) -> dict[str, float]:
    """``rate(pair[0]) - rate(pair[1])`` with its bootstrap interval (``estimate``,
    ``ci_low``, ``ci_high``).

    >>> signed_gap([0, 0, 0, 0], [1, 0, 0, 0], sensitive_features=["a", "a", "b", "b"],
    ...            pair=("a", "b"), n_bootstrap=0)["estimate"]
    0.5
    """
    y, p = _arrays(y_true, y_pred)
    g = _labels(sensitive_features)
    chunks = _boot(len(y), clusters, n_bootstrap, seed)
    est, reps = _gap_reps(y, p, g, pair, rate, chunks)
    return {"estimate": est, **_interval(reps, level)}


def _interval(reps: np.ndarray, level: float) -> dict[str, float]:
    r = reps[np.isfinite(reps)]
    if not len(r):
        return {"ci_low": float("nan"), "ci_high": float("nan")}
    lo, hi = np.quantile(r, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"ci_low": float(lo), "ci_high": float(hi)}


def paired_gap_difference(arms: Mapping[str, tuple[Sequence, Sequence]], *,
                          sensitive_features, pair: Sequence[str], rate: str = "fpr",
                          clusters=None, n_bootstrap: int = 1000, seed=0,
                          level: float = 0.95) -> dict[str, float]:
    """Difference of the signed gap between two arms (e.g. label sources) on the same rows.

    ``arms`` maps two names to ``(y_true, y_pred)`` of the same rows (same order), first the
    reference arm.  The same resamples of patients serve both arms.  Returns
    ``gap_<arm>`` for both, ``difference`` (second minus first), ``relative_change``
    (difference / |first gap|), its interval ``ci_low``/``ci_high`` and the two-sided
    bootstrap ``p_value`` of "no difference".
    """
    if len(arms) != 2:
        raise ConfigError(f"paired_gap_difference takes two arms, got {len(arms)}")
    (na, (ya, pa)), (nb, (yb, pb)) = arms.items()
    ya, pa = _arrays(ya, pa)
    yb, pb = _arrays(yb, pb, len(ya))
    g = _labels(sensitive_features)
    if len(g) != len(ya):
        raise InputError("sensitive_features has another length than the arms")
    chunks = _boot(len(ya), clusters, n_bootstrap, seed)
    ea, ra = _gap_reps(ya, pa, g, pair, rate, chunks)
    eb, rb = _gap_reps(yb, pb, g, pair, rate, chunks)
    d, dr = eb - ea, rb - ra
    ok = dr[np.isfinite(dr)]
    if len(ok):
        k = min((ok <= 0).sum(), (ok >= 0).sum())
        p = float(min(1.0, 2 * (k + 1) / (len(ok) + 1)))
    else:
        p = float("nan")
    return {f"gap_{na}": ea, f"gap_{nb}": eb, "difference": d,
            "relative_change": d / abs(ea) if ea != 0 else float("nan"),
            **_interval(dr, level), "p_value": p}


__all__ = ["RATES", "group_rates", "paired_gap_difference", "signed_gap"]
