"""Simulated predictions tables with a known, injected fairness gap (synthetic).

Used to validate the audit (its intervals should cover the injected gap) and to teach it.
Scores are ``sigmoid(z)`` with ``z ~ N(mu, 1)``; ``mu`` is set per group and class so that
the population TPR and FPR at threshold 0.5 are exactly the requested values, so the true
TPR gap between the groups is known.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm

from .stats import as_generator


def simulate_binary(n: int, *, tpr: Mapping[str, float], fpr: float | Mapping[str, float] = 0.2,
                    prevalence: float = 0.5, attribute: str = "group",
                    patients_per_row: float = 1.0,
                    seed: int | np.random.Generator | None = 0) -> pd.DataFrame:
    """A binary predictions table whose population TPR per group is ``tpr[group]``.

    Parameters
    ----------
    n : int
        Rows (split evenly across the groups).
    tpr : mapping
        Group -> true-positive rate at threshold 0.5 (e.g. ``{"F": 0.7, "M": 0.8}``: a true
        TPR gap of 0.1).
    fpr : float or mapping
        False-positive rate at threshold 0.5 (per group when a mapping).
    prevalence : float
        Share of positives.
    attribute : str
        Name of the group column.
    patients_per_row : float
        Below 1, several rows share a ``patient_id`` (e.g. 0.5: two images per patient).
    seed : int or Generator

    Returns
    -------
    DataFrame
        Columns ``patient_id, y_true, y_score, <attribute>``; labelled synthetic.

    Examples
    --------
    >>> df = simulate_binary(1000, tpr={"A": 0.9, "B": 0.6}, seed=0)
    >>> sorted(df.columns)
    ['group', 'patient_id', 'y_score', 'y_true']
    """
    rng = as_generator(seed)
    groups = list(tpr)
    g = np.array(groups)[np.arange(n) % len(groups)]
    y = rng.random(n) < prevalence
    tpr_row = np.array([tpr[v] for v in g])
    fpr_row = np.array([fpr[v] for v in g]) if isinstance(fpr, Mapping) else np.full(n, fpr)
    mu = np.where(y, norm.ppf(tpr_row), norm.ppf(fpr_row))  # P(z >= 0) = rate
    z = rng.normal(mu, 1.0)
    n_patients = max(1, int(round(n * patients_per_row)))
    patient = np.arange(n) % n_patients
    return pd.DataFrame({"patient_id": [f"P{p:06d}" for p in patient], "y_true": y.astype(int),
                         "y_score": expit(z), attribute: g})
