"""Reading and validating a predictions table: the hand-off between modelling and auditing.

A predictions table has one row per sample.  Its columns depend on the task:

========== ===================================== ==================================
task       truth                                 scores / predictions
========== ===================================== ==================================
binary     ``y_true`` (0/1)                      ``y_score`` in [0, 1]; optional ``y_pred`` (0/1)
multiclass ``y_true`` (class name)               ``score_<class>`` per class, rows sum to 1;
                                                 optional ``y_pred`` (class name)
multilabel ``true_<label>`` (0/1) per label      ``score_<label>`` per label in [0, 1];
                                                 optional ``pred_<label>`` (0/1)
========== ===================================== ==================================

plus an optional ``patient_id`` and the attribute columns named on the command line.

Every task is turned into the same one-vs-rest arrays (:class:`TaskData`): an ``(n, K)``
truth indicator, an ``(n, K)`` score matrix and an ``(n, K)`` predicted indicator, where ``K``
is 1 for a binary task (the positive class, label ``"1"``), the number of classes for a
multi-class task and the number of labels for a multi-label task.  Calibration (ECE) of
binary and multi-label tasks uses, per label, the positive-class probability ``p`` against
the truth by default (reading ``positive``); reading ``predicted`` uses the confidence of
the predicted value (``p`` when predicted positive, ``1 - p`` otherwise) against whether the
prediction is right.  Multi-class tasks use the score of the predicted class (top-label).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, InputError

log = logging.getLogger(__name__)

TASKS = ("binary", "multiclass", "multilabel")
#: Readings of the confidence of binary and multi-label ECE: the positive-class probability
#: (FairMedFM, MEDFAIR and most fairness work; the default) or the confidence of the
#: predicted value, ``max(p, 1 - p)`` at a 0.5 threshold.  Multi-class ECE is top-label.
CONFIDENCES = ("positive", "predicted")
#: Tolerance on the row sums of multi-class scores.
SUM_TOLERANCE = 1e-3
#: Separator of attribute names in an intersection ("sex+age_group") ...
INTERSECTION_SEP = "+"
#: ... and of group values in an intersection's group names ("F/80+").
GROUP_SEP = "/"


@dataclasses.dataclass(frozen=True)
class TaskData:
    """One-vs-rest arrays of a predictions table (see the module docstring).

    Attributes
    ----------
    task : str
        ``"binary"``, ``"multiclass"`` or ``"multilabel"``.
    labels : tuple of str
        The ``K`` class or label names (``("1",)`` for a binary task).
    y : ndarray of bool, shape (n, K)
        Truth indicator.
    score : ndarray of float, shape (n, K)
        Scores (probabilities).
    pred : ndarray of bool, shape (n, K)
        Predicted indicator.
    conf : ndarray of float, shape (n, E)
        Predicted-class confidence used by ECE (``E = K``, or 1 for multi-class).
    correct : ndarray of bool, shape (n, E)
        Whether the predicted class is right, row-aligned with ``conf``.
    """

    task: str
    labels: tuple[str, ...]
    y: np.ndarray
    score: np.ndarray
    pred: np.ndarray
    conf: np.ndarray
    correct: np.ndarray
    confidence: str = "positive"

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def ece_conf(self) -> np.ndarray:
        """Confidence binned by ECE: the positive-class score (reading ``positive``) or the
        predicted-value confidence (``predicted``; always for multi-class, top-label)."""
        if self.task == "multiclass" or self.confidence == "predicted":
            return self.conf
        return self.score

    @property
    def ece_hit(self) -> np.ndarray:
        """What ECE compares the confidence with: the truth of the positive class (reading
        ``positive``) or whether the prediction is right (``predicted``, multi-class)."""
        if self.task == "multiclass" or self.confidence == "predicted":
            return self.correct
        return self.y

    def with_confidence(self, reading: str) -> "TaskData":
        """The same arrays with ECE confidence ``reading`` (see :data:`CONFIDENCES`)."""
        if reading not in CONFIDENCES:
            raise ConfigError(f"unknown ECE confidence {reading!r} "
                              f"(choose from {', '.join(CONFIDENCES)})")
        return dataclasses.replace(self, confidence=reading)

    @property
    def ece_labels(self) -> tuple[str, ...]:
        """Labels of the ECE axis: the labels, or ``("all",)`` for top-label ECE."""
        return ("all",) if self.task == "multiclass" else self.labels

    @property
    def accuracy_labels(self) -> tuple[str, ...]:
        """Labels of the accuracy axis: per label for multi-label, else ``("all",)``."""
        return self.labels if self.task == "multilabel" else ("all",)

    def take(self, rows: np.ndarray) -> "TaskData":
        """The same arrays restricted to ``rows``."""
        return dataclasses.replace(
            self, y=self.y[rows], score=self.score[rows], pred=self.pred[rows],
            conf=self.conf[rows], correct=self.correct[rows])


def task_data(task: str, labels: Sequence[str], y: np.ndarray, score: np.ndarray,
              pred: np.ndarray | None = None, *, threshold: float | np.ndarray = 0.5) -> TaskData:
    """Build :class:`TaskData` from one-vs-rest arrays.

    Parameters
    ----------
    task : {"binary", "multiclass", "multilabel"}
    labels : sequence of str
        ``K`` names.
    y : array of shape (n, K)
        Truth indicator (for multi-class, exactly one 1 per row).
    score : array of shape (n, K)
        Scores.
    pred : array of shape (n, K), optional
        Predicted indicator.  Default: ``score >= threshold`` per label (binary,
        multi-label) or the arg-max one-hot (multi-class).
    threshold : float or array of shape (K,)
        Decision threshold(s) when ``pred`` is not given (binary, multi-label).
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    y = np.asarray(y, dtype=bool).reshape(len(y), -1)
    score = np.asarray(score, dtype=float).reshape(len(score), -1)
    if pred is None:
        if task == "multiclass":
            pred = np.zeros_like(y)
            if len(score):
                pred[np.arange(len(score)), np.argmax(score, axis=1)] = True
        else:
            pred = score >= np.asarray(threshold, dtype=float)
    pred = np.asarray(pred, dtype=bool).reshape(len(y), -1)
    if task == "multiclass":
        top = np.argmax(pred, axis=1) if len(pred) else np.zeros(0, dtype=int)
        conf = score[np.arange(len(score)), top][:, None]
        correct = y[np.arange(len(y)), top][:, None]
    else:
        conf = np.where(pred, score, 1.0 - score)
        correct = pred == y
    return TaskData(task, tuple(str(c) for c in labels), y, score, pred, conf, correct)


# ----------------------------------------------------------------------------- tables


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions CSV (attribute and id columns are read as strings)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"predictions file not found: {path}")
    try:
        head = pd.read_csv(path, nrows=0)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    numeric = [c for c in head.columns
               if c == "y_score" or c.startswith(("score_", "true_", "pred_"))]
    dtypes = {c: (float if c in numeric else str) for c in head.columns}
    if "y_true" in dtypes:
        dtypes["y_true"] = str
    try:
        return pd.read_csv(path, dtype=dtypes, keep_default_na=True)
    except ValueError as exc:
        # name the column (pandas' message does not): read as text and find it
        text = pd.read_csv(path, dtype=str, keep_default_na=True)
        for c in numeric:
            values = pd.to_numeric(text[c], errors="coerce")
            bad = values.isna() & text[c].notna()
            if bad.any():
                row = int(np.argmax(bad.to_numpy()))
                raise InputError(f"{path}: column {c!r} must be numeric: row {row + 1} holds "
                                 f"{text[c].iloc[row]!r}") from None
        raise InputError(f"{path}: {str(exc).splitlines()[0]}") from None


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"missing column {missing[0]!r} ({what}); "
                         f"columns present: {', '.join(map(str, df.columns))}")


def _no_nan(df: pd.DataFrame, columns: Sequence[str]) -> None:
    for c in columns:
        bad = int(df[c].isna().sum())
        if bad:
            raise InputError(f"column {c!r} has {bad} missing value(s) (NaN); "
                             "drop or fill those rows before auditing")


def _numeric(df: pd.DataFrame, c: str) -> np.ndarray:
    try:
        return pd.to_numeric(df[c], errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError):
        values = pd.to_numeric(df[c], errors="coerce")
        bad = (values.isna() & df[c].notna()).to_numpy()
        where = f": row {int(np.argmax(bad)) + 1} holds {df[c].iloc[int(np.argmax(bad))]!r}" \
            if bad.any() else ""
        raise InputError(f"column {c!r} must be numeric{where}") from None


def _binary01(df: pd.DataFrame, c: str) -> np.ndarray:
    values = _numeric(df, c)
    if not np.isin(values, (0.0, 1.0)).all():
        bad = values[~np.isin(values, (0.0, 1.0))][0]
        raise InputError(f"column {c!r} must hold 0/1 values (found {bad:g})")
    return values.astype(bool)


def _scores(df: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    score = np.column_stack([_numeric(df, c) for c in columns]) if columns else np.zeros((len(df), 0))
    out = (score < 0) | (score > 1)
    if out.any():
        col = columns[int(np.argwhere(out)[0, 1])]
        raise InputError(f"scores must lie in [0, 1]: column {col!r} has "
                         f"{int(out.sum())} value(s) outside (e.g. {score[out][0]:g})")
    return score


def parse_predictions(df: pd.DataFrame, *, task: str, threshold: float | np.ndarray = 0.5,
                      use_pred: bool = True) -> TaskData:
    """Validate a predictions table and turn it into :class:`TaskData`.

    Parameters
    ----------
    df : DataFrame
        The predictions table (see the module docstring for its columns).
    task : {"binary", "multiclass", "multilabel"}
    threshold : float or array of shape (K,)
        Threshold(s) used when the table has no prediction column (binary, multi-label).
    use_pred : bool
        Use the table's ``y_pred`` / ``pred_<label>`` columns when present.

    Raises
    ------
    InputError
        Missing column, NaN, scores outside [0, 1], multi-class scores that do not sum to 1,
        truth values that are not 0/1 or not a known class.
    ConfigError
        Unknown task.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r} (choose from {', '.join(TASKS)})")
    if len(df) == 0:
        raise InputError("the predictions table has no rows")
    if task == "binary":
        _require(df, ["y_true", "y_score"], "binary task")
        has_pred = use_pred and "y_pred" in df.columns
        _no_nan(df, ["y_true", "y_score"] + (["y_pred"] if has_pred else []))
        y = _binary01(df, "y_true")[:, None]
        score = _scores(df, ["y_score"])
        pred = _binary01(df, "y_pred")[:, None] if has_pred else None
        return task_data(task, ("1",), y, score, pred, threshold=threshold)
    if task == "multiclass":
        classes = [c[len("score_"):] for c in df.columns if str(c).startswith("score_")]
        if len(classes) < 2:
            raise InputError("missing columns 'score_<class>' (multiclass task needs one "
                             "score column per class, at least two)")
        _require(df, ["y_true"], "multiclass task")
        cols = [f"score_{c}" for c in classes]
        has_pred = use_pred and "y_pred" in df.columns
        _no_nan(df, ["y_true"] + cols + (["y_pred"] if has_pred else []))
        score = _scores(df, cols)
        sums = score.sum(axis=1)
        bad = np.abs(sums - 1.0) > SUM_TOLERANCE
        if bad.any():
            raise InputError(f"multiclass scores must sum to 1 in every row: {int(bad.sum())} "
                             f"row(s) do not (first: row {int(np.argmax(bad))}, "
                             f"sum {sums[bad][0]:.4g})")
        y = _class_indicator(df["y_true"], classes, "y_true")
        pred = _class_indicator(df["y_pred"], classes, "y_pred") if has_pred else None
        return task_data(task, classes, y, score, pred)
    labels = [c[len("true_"):] for c in df.columns if str(c).startswith("true_")]
    if not labels:
        raise InputError("missing columns 'true_<label>' (multilabel task needs one truth "
                         "column per label)")
    _require(df, [f"score_{lab}" for lab in labels], "multilabel task")
    has_pred = use_pred and all(f"pred_{lab}" in df.columns for lab in labels)
    cols = [f"true_{lab}" for lab in labels] + [f"score_{lab}" for lab in labels]
    _no_nan(df, cols + ([f"pred_{lab}" for lab in labels] if has_pred else []))
    y = np.column_stack([_binary01(df, f"true_{lab}") for lab in labels])
    score = _scores(df, [f"score_{lab}" for lab in labels])
    pred = (np.column_stack([_binary01(df, f"pred_{lab}") for lab in labels])
            if has_pred else None)
    return task_data(task, labels, y, score, pred, threshold=threshold)


def _class_indicator(values: pd.Series, classes: Sequence[str], column: str) -> np.ndarray:
    text = values.astype(str).to_numpy()
    known = np.isin(text, np.asarray(classes, dtype=str))
    if not known.all():
        raise InputError(f"column {column!r} has value {text[~known][0]!r} that is not a class "
                         f"with a score column (classes: {', '.join(classes)})")
    return text[:, None] == np.asarray(classes, dtype=str)[None, :]


# ------------------------------------------------------------------------- attributes


@dataclasses.dataclass(frozen=True)
class Attribute:
    """Group membership of the rows for one attribute (or an intersection).

    Attributes
    ----------
    name : str
        Column name, or names joined by ``+`` for an intersection.
    codes : ndarray of int, shape (n,)
        Group index of every row.
    groups : tuple of str
        Group names (a group may have no rows: categories declared but unused).
    """

    name: str
    codes: np.ndarray
    groups: tuple[str, ...]

    def rows(self, g: int) -> np.ndarray:
        return np.flatnonzero(self.codes == g)


def parse_attributes(df: pd.DataFrame, attributes: Sequence[str | Sequence[str]]) -> list[Attribute]:
    """Group memberships for each attribute; ``"a+b"`` or ``("a", "b")`` is an intersection.

    Categories of a categorical column are kept even when unused, so that an empty group
    is reported (with undefined estimates) rather than silently dropped.
    """
    if not attributes:
        raise ConfigError("no attributes given: name at least one attribute column")
    out = []
    for attr in attributes:
        parts = attr.split(INTERSECTION_SEP) if isinstance(attr, str) else list(attr)
        parts = [p.strip() for p in parts if p.strip()]
        if not parts:
            raise ConfigError(f"empty attribute name in {attr!r}")
        _require(df, parts, "attribute")
        _no_nan(df, parts)
        cats = []
        for p in parts:
            col = df[p]
            if isinstance(col.dtype, pd.CategoricalDtype):
                cat = col.cat.rename_categories([str(c) for c in col.cat.categories])
                cat = cat.astype(pd.CategoricalDtype([str(c) for c in col.cat.categories]))
            else:
                cat = col.astype(str).astype("category")
            cats.append(cat)
        if len(cats) == 1:
            codes = cats[0].cat.codes.to_numpy().astype(np.int64)
            groups = tuple(cats[0].cat.categories)
        else:
            levels = [list(c.cat.categories) for c in cats]
            combos = pd.MultiIndex.from_product(levels)
            codes = np.zeros(len(df), dtype=np.int64)
            for c, lev in zip(cats, levels):
                codes = codes * len(lev) + c.cat.codes.to_numpy()
            groups = tuple(GROUP_SEP.join(map(str, t)) for t in combos)
            # an intersection keeps only combinations that occur: the product of many
            # attributes is mostly empty by construction and not a user mistake
            present = np.unique(codes)
            remap = -np.ones(len(groups), dtype=np.int64)
            remap[present] = np.arange(len(present))
            codes = remap[codes]
            groups = tuple(groups[i] for i in present)
        out.append(Attribute(INTERSECTION_SEP.join(parts), codes, groups))
    return out
