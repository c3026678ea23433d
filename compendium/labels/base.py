"""What every report labeller shares: the observations, the value codes, the registry.

A labeller turns report texts into one row per report and one column per observation, with
the CheXpert value codes:

======  ===========================================================
``1``   mentioned as present
``0``   mentioned as absent (negated)
``-1``  mentioned with uncertainty (hedged: "cannot be excluded")
NaN     not mentioned
======  ===========================================================

and a ``No Finding`` column derived as CheXpert derives it (:func:`no_finding`): 1 when no
pathology (every observation but *Support Devices*) is present or uncertain, else 0.
A labeller that predicts "No Finding" directly (a trained head) fills that column itself.

Labellers are registered in :data:`LABELLERS` (``create_labeller(name, **params)``), so the
``compendium labels`` command and every notebook build them the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from ..registry import Registry

#: CheXpert's thirteen observations besides "No Finding" (the MIMIC-CXR-JPG label columns).
OBSERVATIONS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity",
                "Pleural Effusion", "Pleural Other", "Pneumonia", "Pneumothorax",
                "Support Devices")
NO_FINDING = "No Finding"
#: Every column a labeller writes, in order.
COLUMNS = (*OBSERVATIONS, NO_FINDING)
#: How an uncertain (-1) label is made binary (the CheXpert paper's U-Ones / U-Zeros).
UNCERTAIN_POLICIES = {"ones": 1.0, "zeros": 0.0}


class Labeller:
    """Base class: ``label(texts)`` gives the table described in the module docstring.

    Subclasses set ``name`` and ``trainable``; a trainable labeller must be ``fit`` on
    labelled reports first (``fit(texts, labels)``, ``labels`` a table with the columns it
    learns) and raises :class:`ConfigError` otherwise.
    """

    name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    #: what the labeller is, in one line (the chapters and ``compendium labels --list``)
    description: ClassVar[str] = ""

    def label(self, texts: Sequence[str]) -> pd.DataFrame:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, texts: Sequence[str], labels: pd.DataFrame) -> "Labeller":
        raise ConfigError(f"labeller {self.name!r} is rule-based and takes no training")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


LABELLERS: Registry[Any] = Registry("labeller")


def register_labeller(name: str):
    """Decorator registering a :class:`Labeller` subclass (or factory) under ``name``."""
    return LABELLERS.register(name)


def create_labeller(name: str, **params: Any) -> Labeller:
    """Build labeller ``name`` with ``params`` (an unknown parameter is a ConfigError)."""
    from . import encoder, rules  # noqa: F401  (register the built-in labellers)

    factory = LABELLERS.get(name)
    try:
        return factory(**params)
    except TypeError as exc:
        raise ConfigError(f"labeller {name!r}: {exc}") from None


def list_labellers() -> list[str]:
    from . import encoder, rules  # noqa: F401

    return LABELLERS.names()


def describe_labellers() -> pd.DataFrame:
    """Name, kind (rules / trained head) and description of every registered labeller."""
    from . import encoder, rules  # noqa: F401

    rows = [{"labeller": n, "trainable": bool(getattr(f, "trainable", False)),
             "description": getattr(f, "description", "")} for n, f in LABELLERS.items()]
    return pd.DataFrame(rows)


def no_finding(table: pd.DataFrame) -> pd.Series:
    """CheXpert's "No Finding": 1.0 when no observation but *Support Devices* is 1 or -1.

    >>> t = pd.DataFrame({"Edema": [1.0, 0.0, -1.0, np.nan], "Support Devices": [np.nan, 1.0, 0.0, 1.0]})
    >>> no_finding(t).tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    cols = [c for c in table.columns if c in OBSERVATIONS and c != "Support Devices"]
    v = table[cols].to_numpy(dtype=float) if cols else np.zeros((len(table), 0))
    found = ((v == 1) | (v == -1)).any(axis=1)
    return pd.Series(np.where(found, 0.0, 1.0), index=table.index, name=NO_FINDING)


def binarise(values: Any, *, uncertain: str = "ones", missing: float = 0.0) -> np.ndarray:
    """0/1 labels from CheXpert codes: -1 by the ``uncertain`` policy, NaN as ``missing``.

    >>> binarise([1, 0, -1, float("nan")]).tolist()
    [1.0, 0.0, 1.0, 0.0]
    >>> binarise([-1], uncertain="zeros").tolist()
    [0.0]
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise ConfigError(f"uncertain policy {uncertain!r} (allowed: "
                          f"{', '.join(UNCERTAIN_POLICIES)})")
    v = np.asarray(values, dtype=float).copy()
    bad = np.isfinite(v) & ~np.isin(v, (-1.0, 0.0, 1.0))
    if bad.any():
        raise InputError(f"label values must be 1, 0, -1 or empty; found {v[bad][0]:g}")
    v[v == -1] = UNCERTAIN_POLICIES[uncertain]
    v[~np.isfinite(v)] = missing
    return v


__all__ = ["COLUMNS", "LABELLERS", "Labeller", "NO_FINDING", "OBSERVATIONS",
           "UNCERTAIN_POLICIES", "binarise", "create_labeller", "describe_labellers",
           "list_labellers", "no_finding", "register_labeller"]
