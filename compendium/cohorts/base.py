"""The cohort table and the registry of cohort builders.

A cohort is one table, one row per sample, with the standard columns of DESIGN.md:

=============  =================================================================
``sample_id``  unique string id of the image / volume / stay
``patient_id`` string id of the patient (splits are patient-wise)
``split``      ``"train"``, ``"val"`` or ``"test"`` (or ``""`` before splitting)
``age``        age in years (float, NaN when unknown)
``sex``        ``"M"``, ``"F"`` (NaN when unknown)
``race``       the source's race/ethnicity category where it has one (NaN otherwise)
derived        group columns such as ``age_group`` (see :mod:`compendium.cohorts.splits`)
labels         one float column per finding: 1.0 positive, 0.0 negative, NaN unknown
pixels         ``image_path`` (real file) or ``synthetic_key`` (the generator's key)
=============  =================================================================

Builders are plain functions ``builder(*, root=None, seed=0, **options) -> Cohort``
registered with :func:`register_cohort`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd

from ..errors import InputError
from ..registry import Registry

STANDARD_COLUMNS = ("sample_id", "patient_id", "split", "age", "sex", "race")
SPLITS = ("train", "val", "test")
Source = Literal["real", "real-metadata", "synthetic", "real-metadata+synthetic-pixels"]


@dataclasses.dataclass(frozen=True)
class Cohort:
    """A validated cohort table plus what is needed to read it.

    Attributes
    ----------
    name : registry name of the builder that made it
    table : the cohort table (see module docstring)
    labels : names of the label columns, in order
    source : where rows and pixels come from (``"real"``, ``"synthetic"``, ...)
    pixel_column : ``"image_path"``, ``"volume_path"``, ``"synthetic_key"`` or ``None``
    root : dataset root the paths are relative to (``None`` for absolute/synthetic)
    task : ``"multiclass"`` (exactly one label per row), ``"multilabel"`` or ``"binary"``
    report : builder's notes (e.g. which diseases qualified and why), shown to users
    meta : free-form extras (e.g. the bias knobs of a synthetic cohort)
    """

    name: str
    table: pd.DataFrame
    labels: tuple[str, ...]
    source: Source
    pixel_column: str | None = None
    root: str | None = None
    task: Literal["multiclass", "multilabel", "binary"] = "multilabel"
    report: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_table(self.table, self.labels, self.pixel_column, name=self.name)

    def label_matrix(self) -> np.ndarray:
        """Row-aligned float matrix (n_samples, n_labels) with NaN for unknown."""
        return self.table[list(self.labels)].to_numpy(dtype=float)

    def split(self, which: str) -> "Cohort":
        """The rows of one split as a cohort of their own."""
        if which not in SPLITS:
            raise InputError(f"unknown split {which!r} (allowed: {', '.join(SPLITS)})")
        sub = self.table[self.table["split"] == which].reset_index(drop=True)
        return dataclasses.replace(self, table=sub)

    def composition(self, by: tuple[str, ...] = ("sex",)) -> pd.DataFrame:
        """Counts of samples and patients per group (for composition tables)."""
        g = self.table.groupby(list(by), dropna=False, observed=True)
        return pd.DataFrame({"samples": g.size(), "patients": g["patient_id"].nunique()})


CohortBuilder = Callable[..., Cohort]


@dataclasses.dataclass(frozen=True)
class CohortEntry:
    name: str
    builder: CohortBuilder
    description: str
    source: Source
    needs_root: bool


COHORTS: Registry[CohortEntry] = Registry("cohort")


def register_cohort(name: str, *, description: str, source: Source,
                    needs_root: bool = False) -> Callable[[CohortBuilder], CohortBuilder]:
    """Decorator registering a cohort builder under ``name``."""

    def decorator(fn: CohortBuilder) -> CohortBuilder:
        COHORTS.add(name, CohortEntry(name, fn, description, source, needs_root), replace=True)
        return fn

    return decorator


def load_builders() -> Registry[CohortEntry]:
    """Import every module of :mod:`compendium.cohorts` so that its builders register."""
    import importlib
    import pkgutil

    from .. import cohorts

    for mod in pkgutil.iter_modules(cohorts.__path__):
        if not mod.name.startswith("_") and mod.name != "base":
            importlib.import_module(f"{cohorts.__name__}.{mod.name}")
    return COHORTS


def build_cohort(name: str, /, **kwargs: Any) -> Cohort:
    """Build the cohort registered as ``name`` (unknown names raise ConfigError)."""
    return load_builders().get(name).builder(**kwargs)


def validate_table(table: pd.DataFrame, labels: tuple[str, ...] | list[str],
                   pixel_column: str | None = None, *, name: str = "cohort") -> None:
    """Check the standard columns, unique sample ids, label values and split names."""
    missing = [c for c in (*STANDARD_COLUMNS, *labels) if c not in table.columns]
    if pixel_column and pixel_column not in table.columns:
        missing.append(pixel_column)
    if missing:
        raise InputError(f"{name}: missing column(s) {', '.join(missing)}")
    if table["sample_id"].duplicated().any():
        dup = table.loc[table["sample_id"].duplicated(), "sample_id"].iloc[0]
        raise InputError(f"{name}: duplicate sample_id {dup!r}")
    bad_split = set(table["split"].dropna().unique()) - {*SPLITS, ""}
    if bad_split:
        raise InputError(f"{name}: unknown split value(s) {sorted(bad_split)}")
    for lab in labels:
        vals = pd.to_numeric(table[lab], errors="coerce")
        ok = vals.isna() | vals.isin([0.0, 1.0])
        if not ok.all():
            raise InputError(f"{name}: label column {lab!r} must hold 0, 1 or NaN")
    leaks = table[table["split"].isin(SPLITS)].groupby("patient_id")["split"].nunique()
    if (leaks > 1).any():
        raise InputError(f"{name}: patient {leaks[leaks > 1].index[0]!r} is in two splits")
