"""Decision-threshold policies and the threshold sweep.

Policies (the ``threshold`` argument of :func:`compendium.audit.audit` and of
``compendium audit --threshold``):

============== ==============================================================
``auto``       the table's prediction columns when present, else ``0.5`` (binary,
               multi-label) or ``argmax`` (multi-class)
``argmax``     the highest-scoring class (multi-class)
a number       a fixed threshold on every label's score, e.g. ``0.5``
``youden``     per label, maximises TPR - FPR (Youden's J) on a validation table
``f1``         per label, maximises F1 on a validation table
``spec=0.9``   per label, the lowest threshold whose specificity is at least 0.9 on a
               validation table
============== ==============================================================
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError

CHOSEN = ("youden", "f1", "spec")


def parse_policy(policy: str | float) -> tuple[str, float | None]:
    """Normalise a policy: returns (kind, value) with kind in auto/argmax/fixed/youden/f1/spec."""
    if isinstance(policy, (int, float)) and not isinstance(policy, bool):
        value = float(policy)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"threshold {value:g} must lie in [0, 1]")
        return "fixed", value
    text = str(policy).strip().lower()
    if text in ("auto", "argmax", "youden", "f1"):
        return text, None
    if text.startswith(("spec=", "specificity=")):
        try:
            value = float(text.split("=", 1)[1])
        except ValueError:
            raise ConfigError(f"threshold policy {policy!r}: specificity must be a number") from None
        if not 0.0 < value < 1.0:
            raise ConfigError(f"threshold policy {policy!r}: specificity must lie in (0, 1)")
        return "spec", value
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"unknown threshold policy {policy!r} (use auto, argmax, a number "
                          "in [0, 1], youden, f1 or spec=0.9)") from None
    return parse_policy(value)  # a number: its range error must reach the user


def _roc_points(y: np.ndarray, s: np.ndarray):
    """Candidate thresholds (distinct scores, descending) with TP/FP counts at ``s >= t``."""
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order].astype(float)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tp = np.cumsum(y)[last]
    fp = np.cumsum(1.0 - y)[last]
    return s[last], tp, fp


def choose_threshold(y_true, y_score, policy: str, *, value: float | None = None) -> float:
    """Threshold on ``y_score`` chosen on a validation set.

    Parameters
    ----------
    y_true : array of 0/1
    y_score : array of float
    policy : {"youden", "f1", "spec"}
    value : float
        Target specificity for ``spec``.

    Examples
    --------
    >>> choose_threshold([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], "youden")
    0.8
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    if y.all() or not y.any():
        raise InputError("cannot choose a threshold on a validation set with one class only")
    t, tp, fp = _roc_points(y, s)
    p, n = y.sum(), (~y).sum()
    if policy == "youden":
        j = tp / p - fp / n
        return float(t[int(np.argmax(j))])
    if policy == "f1":
        f1 = 2 * tp / (2 * tp + fp + (p - tp))
        return float(t[int(np.argmax(f1))])
    if policy == "spec":
        spec = 1.0 - fp / n
        ok = np.flatnonzero(spec >= value)
        # thresholds descend: the last admissible one is the lowest (most sensitive)
        return float(t[ok[-1]]) if len(ok) else float(np.nextafter(s.max(), np.inf))
    raise ConfigError(f"unknown threshold policy {policy!r}")


def threshold_sweep(y_true, y_score, *, thresholds: Sequence[float] | None = None,
                    sensitive_features=None) -> pd.DataFrame:
    """Each threshold-dependent metric as a function of the threshold (binary scores).

    Parameters
    ----------
    y_true : array of 0/1
    y_score : array of float
    thresholds : sequence of float, optional
        Default: 101 values from 0 to 1.
    sensitive_features : array-like, optional
        When given, one curve per group (column ``group``; ``all`` for everyone).

    Returns
    -------
    DataFrame
        Columns ``group, threshold, accuracy, tpr, fpr, udr, f1, precision, n``.
    """
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(y_score, dtype=float)
    t = np.linspace(0, 1, 101) if thresholds is None else np.asarray(thresholds, dtype=float)
    sets = [("all", np.arange(len(y)))]
    if sensitive_features is not None:
        g = np.asarray(sensitive_features).astype(str)
        sets += [(str(v), np.flatnonzero(g == v)) for v in np.unique(g)]
    frames = []
    for name, rows in sets:
        pred = s[rows][:, None] >= t[None, :]
        yy = y[rows][:, None]
        tp = (pred & yy).sum(0).astype(float)
        fp = (pred & ~yy).sum(0).astype(float)
        fn = (~pred & yy).sum(0).astype(float)
        tn = (~pred & ~yy).sum(0).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
            frames.append(pd.DataFrame({
                "group": name, "threshold": t,
                "accuracy": (tp + tn) / max(len(rows), 1),
                "tpr": tpr, "fpr": np.where(fp + tn > 0, fp / (fp + tn), np.nan),
                "udr": 1.0 - tpr,
                "f1": np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan),
                "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
                "n": len(rows)}))
    return pd.concat(frames, ignore_index=True)
