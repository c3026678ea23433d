"""The predictions table: the hand-off from every adaptation method to the audit.

One row per sample, in the order of the cohort rows given:

* ids: ``sample_id``, ``patient_id``;
* attribute columns (``sex``, ``age_group``, ``race``... those present in the rows);
* ``task="multiclass"``: ``y_true`` (class name), ``score_<class>`` per class (probabilities
  summing to 1), ``y_pred`` (class name of the highest score);
* ``task="binary"``: ``y_true`` (0/1), ``y_score`` (probability of the positive class),
  ``y_pred`` (0/1 at ``threshold``);
* ``task="multilabel"``: ``true_<label>`` (0/1, NaN when unknown), ``score_<label>``,
  ``pred_<label>`` (0/1 at ``threshold``).

Every method of :mod:`compendium.adapt` builds its table with :func:`predictions_table`, so
that the table any method returns can be audited by the same code.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

Task = Literal["multiclass", "binary", "multilabel"]

#: Attribute columns copied from the cohort rows when present (in this order).
ATTRIBUTE_COLUMNS = ("sex", "age_group", "race", "age")


def attribute_columns(rows: pd.DataFrame, extra: str | Sequence[str] | None = None) -> list[str]:
    """The :data:`ATTRIBUTE_COLUMNS` present in ``rows`` plus ``extra`` (e.g. the attribute a
    mitigation used)."""
    extra = [extra] if isinstance(extra, str) else list(extra or [])
    cols = [c for c in ATTRIBUTE_COLUMNS if c in rows.columns]
    return cols + [c for c in extra if c not in cols]


def labels_from_rows(rows: pd.DataFrame, classes: Sequence[str], task: Task) -> np.ndarray:
    """Targets from the cohort's label columns.

    Returns class indices (``multiclass``: the one positive label per row), 0/1 integers
    (``binary``: the single column ``classes[-1]``) or a float matrix with NaN for unknown
    (``multilabel``).
    """
    classes = list(classes)
    missing = [c for c in classes if c not in rows.columns]
    if task == "binary":
        col = classes[-1]
        if col not in rows.columns:
            raise InputError(f"label column {col!r} is not in the cohort rows")
        y = pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float)
        if np.isnan(y).any():
            raise InputError(f"label column {col!r} has unknown (NaN) values")
        return y.astype(int)
    if missing:
        raise InputError(f"label column(s) {', '.join(missing)} not in the cohort rows")
    mat = rows[classes].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    if task == "multilabel":
        return mat
    if task != "multiclass":
        raise InputError(f"unknown task {task!r} (allowed: multiclass, binary, multilabel)")
    ok = np.nansum(mat, axis=1) == 1
    if not ok.all():
        bad = rows["sample_id"].iloc[int(np.flatnonzero(~ok)[0])] if "sample_id" in rows else "?"
        raise InputError(f"multiclass rows need exactly one positive label (sample {bad!r})")
    return np.nanargmax(mat, axis=1)


def predictions_table(rows: pd.DataFrame, scores: np.ndarray, classes: Sequence[str],
                      task: Task, *, y_true: np.ndarray | None = None,
                      threshold: float = 0.5,
                      attributes: Sequence[str] | None = None) -> pd.DataFrame:
    """Build the predictions table of DESIGN.md from cohort rows and scores.

    Parameters
    ----------
    rows : DataFrame
        Cohort rows (``sample_id``, ``patient_id``, attributes, label columns), aligned with
        ``scores``.
    scores : array
        ``multiclass``: (n, C) probabilities; ``binary``: (n,) or (n, 2) probabilities of the
        positive class; ``multilabel``: (n, L) per-label probabilities.
    classes : sequence of str
        Class names (``multiclass``), label column names (``multilabel``) or ``[label]``
        (``binary``).
    task : {"multiclass", "binary", "multilabel"}
    y_true : array, optional
        Targets (class indices, 0/1, or a label matrix); read from ``rows`` by default.
    threshold : float
        Decision threshold of ``binary`` and ``multilabel`` predictions.
    attributes : sequence of str, optional
        Attribute columns to copy (default: those of :data:`ATTRIBUTE_COLUMNS` present).

    Examples
    --------
    >>> rows = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["p", "q"],
    ...                      "sex": ["F", "M"], "x": [1.0, 0.0], "y": [0.0, 1.0]})
    >>> t = predictions_table(rows, np.array([[0.8, 0.2], [0.6, 0.4]]), ["x", "y"], "multiclass")
    >>> t[["y_true", "y_pred"]].values.tolist()
    [['x', 'x'], ['y', 'x']]
    """
    classes = [str(c) for c in classes]
    for col in ("sample_id", "patient_id"):
        if col not in rows.columns:
            raise InputError(f"cohort rows lack the {col!r} column")
    scores = np.asarray(scores, dtype=float)
    n = len(rows)
    if scores.shape[0] != n:
        raise InputError(f"{scores.shape[0]} score rows for {n} cohort rows")
    if y_true is None:
        y_true = labels_from_rows(rows, classes, task)
    y_true = np.asarray(y_true)
    attrs = [a for a in (attributes if attributes is not None else ATTRIBUTE_COLUMNS)
             if a in rows.columns]
    if attributes is not None:
        missing = [a for a in attributes if a not in rows.columns]
        if missing:
            raise InputError(f"attribute column(s) {', '.join(missing)} not in the cohort rows")
    out = {"sample_id": rows["sample_id"].astype(str).to_numpy(),
           "patient_id": rows["patient_id"].astype(str).to_numpy()}
    for a in attrs:
        out[a] = rows[a].to_numpy()
    if task == "multiclass":
        if scores.ndim != 2 or scores.shape[1] != len(classes):
            raise InputError(f"multiclass scores must be (n, {len(classes)}), got {scores.shape}")
        if np.any(scores < 0) or not np.allclose(scores.sum(axis=1), 1.0, atol=1e-4):
            raise InputError("multiclass scores must be probabilities summing to 1 per row")
        names = np.asarray(classes, dtype=object)
        out["y_true"] = names[y_true.astype(int)]
        for j, c in enumerate(classes):
            out[f"score_{c}"] = scores[:, j]
        out["y_pred"] = names[np.argmax(scores, axis=1)]
    elif task == "binary":
        if scores.ndim == 2:
            if scores.shape[1] != 2:
                raise InputError(f"binary scores must be (n,) or (n, 2), got {scores.shape}")
            scores = scores[:, 1]
        out["y_true"] = y_true.astype(int)
        out["y_score"] = scores
        out["y_pred"] = (scores >= threshold).astype(int)
    elif task == "multilabel":
        if scores.ndim != 2 or scores.shape[1] != len(classes):
            raise InputError(f"multilabel scores must be (n, {len(classes)}), got {scores.shape}")
        y_true = y_true.astype(float).reshape(n, len(classes))
        for j, c in enumerate(classes):
            out[f"true_{c}"] = y_true[:, j]
        for j, c in enumerate(classes):
            out[f"score_{c}"] = scores[:, j]
        for j, c in enumerate(classes):
            out[f"pred_{c}"] = (scores[:, j] >= threshold).astype(int)
    else:
        raise InputError(f"unknown task {task!r} (allowed: multiclass, binary, multilabel)")
    return pd.DataFrame(out)
