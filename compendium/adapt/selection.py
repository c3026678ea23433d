"""Choosing among candidates (learning rates, prompt families, adversary strengths, ...) on
validation data, and keeping the whole selection table.

>>> sel = select_by_validation([0.1, 0.01], lambda lr: (abs(lr - 0.01), f"model@{lr}", {}),
...                            metric="loss", describe=lambda lr: f"lr={lr:g}")
>>> sel.winner
'model@0.01'
>>> sel.table[["candidate", "val_score", "chosen"]].to_dict("records")
[{'candidate': 'lr=0.1', 'val_score': 0.09, 'chosen': False}, {'candidate': 'lr=0.01', 'val_score': 0.0, 'chosen': True}]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import pandas as pd

from ..errors import ConfigError, InputError


@dataclasses.dataclass
class Selection:
    """The chosen candidate's payload and one row per candidate tried."""

    winner: Any
    table: pd.DataFrame


def select_by_validation(grid: Sequence[Any], fit: Callable[[Any], tuple[float, Any, dict]], *,
                         metric: str, lower_is_better: bool = True,
                         describe: Callable[[Any], str] = str) -> Selection:
    """Fit every candidate of ``grid`` and keep the one with the best validation score.

    Parameters
    ----------
    grid : sequence
        Candidates (e.g. learning rates).  Must not be empty.
    fit : callable
        ``fit(candidate) -> (validation score, payload, extra columns)``; the payload of the
        winner is returned (e.g. its test predictions), the extra columns (e.g.
        ``best_epoch``) go into the table.
    metric : str
        Name of the validation score (``"loss"``, ``"accuracy"``), a column of the table.
    lower_is_better : bool
        ``True`` for a loss.  Ties go to the earlier candidate.
    describe : callable
        Text of a candidate in the table's ``candidate`` column.

    A candidate whose score is NaN cannot win; when every score is NaN nothing can be chosen
    and :class:`~compendium.errors.InputError` says so.
    """
    grid = list(grid)
    if not grid:
        raise ConfigError("select_by_validation: the grid of candidates is empty")
    rows, payloads = [], []
    for cand in grid:
        score, payload, extra = fit(cand)
        rows.append({"candidate": describe(cand), "val_metric": metric,
                     "val_score": float(score), **dict(extra), "chosen": False})
        payloads.append(payload)
    scores = [r["val_score"] for r in rows]
    finite = [i for i, v in enumerate(scores) if not math.isnan(v)]
    if not finite:
        raise InputError(f"no candidate of {[r['candidate'] for r in rows]} has a validation "
                         f"{metric}: nothing to choose")
    best = (min if lower_is_better else max)(finite, key=lambda i: scores[i])
    rows[best]["chosen"] = True
    return Selection(payloads[best], pd.DataFrame(rows))
