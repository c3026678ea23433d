"""Bias knobs of the synthetic world: what differs between demographic groups, and by how much.

The synthetic world is fair by construction: with no knobs set, a patient's sex, age and race
have **no** influence on their labels, pixels, reports or EHR.  Every disparity the world
shows comes from a knob, so its size and direction are known.  Knobs are set per group,
keyed by ``"<column>=<value>"`` (for example ``"sex=F"``, ``"race=Black"``;
for a numeric column a range: ``"age=18-39"``, ``"age=80+"``); a row in several keyed groups gets the sum of their effects.
The key ``"all"`` applies to every row: it sets the world's overall difficulty (for example
fainter signs for everyone), not a disparity, and it is how a notebook calibrates the world
to a paper's operating point.

================== ======= ==============================================================
knob               neutral meaning
================== ======= ==============================================================
``prevalence``     0.0     added to the log-odds of every finding (synthetic cohorts only;
                           the labels of real-metadata cohorts are kept as they are)
``sign_strength``  0.0     fraction by which every visible sign is weakened
                           (0.3 = signs 30 % fainter; PE filling defects smaller)
``soft_tissue``    0.0     density of a soft-tissue overlay over the lung bases (breast-
                           shadow like) that compresses contrast there and hides basal
                           signs (effusion, atelectasis); 0.5 hides about half
``noise``          0.0     extra acquisition noise (standard deviation, intensity 0..1)
``contrast``       0.0     fraction by which the image contrast is reduced
``ap_portable``    0.0     extra probability of an AP portable acquisition (magnified
                           heart, lower inspiration, 'PORTABLE' marker, more noise)
``anatomy``        0.0     relative change of thorax and heart size (-0.06 = 6 % smaller);
                           makes the group recognisable from pixels
``underdiagnosis`` 0.0     probability that a true positive finding is recorded (label
                           column and report) as negative: label noise that under-diagnoses
``ehr_missing``    0.0     extra probability that an EHR measurement is not taken
``report_style``   0.0     probability that a reported finding is written in a phrasing
                           that reads as a negation ("no change in the known effusion"):
                           label noise of rule-based report labellers (Paper C)
``mislabel``       0.0     probability that a row of a multi-class cohort is recorded
                           with another class than the one its image shows (label noise
                           of text-mined labels; the image shows a class drawn uniformly
                           from the others)
================== ======= ==============================================================

:func:`default_knobs` gives the world's documented default disparities; ``BiasKnobs()``
(no groups) gives none.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..config import Spec
from ..errors import ConfigError, InputError

#: Knob names, in the order of the table above.
KNOB_NAMES = ("prevalence", "sign_strength", "soft_tissue", "noise", "contrast",
              "ap_portable", "anatomy", "underdiagnosis", "ehr_missing", "report_style",
              "mislabel")

#: One-line meaning of each knob (used by the notebook's knobs table).
KNOB_MEANING = {
    "prevalence": "added to the log-odds of every finding (synthetic labels only)",
    "sign_strength": "fraction by which visible signs are weakened (PE defects smaller)",
    "soft_tissue": "density of a basal soft-tissue overlay hiding basal signs",
    "noise": "extra acquisition noise (std, intensity 0..1)",
    "contrast": "fraction by which image contrast is reduced",
    "ap_portable": "extra probability of an AP portable acquisition",
    "anatomy": "relative change of thorax and heart size (group visible in pixels)",
    "underdiagnosis": "probability a true positive is recorded as negative (label + report)",
    "ehr_missing": "extra probability an EHR measurement is not taken",
    "mislabel": "probability a multi-class row's image shows another class than its label",
    "report_style": "probability a reported finding is phrased like a negation (rule labellers misread it)",
}

#: Age bands used by the synthetic world (``age_group`` column).
AGE_BANDS = ((0, 18, "<18"), (18, 40, "18-39"), (40, 60, "40-59"), (60, 80, "60-79"),
             (80, 200, "80+"))


@dataclasses.dataclass(frozen=True)
class GroupKnobs(Spec):
    """The knobs of one group (all neutral by default); see the module table."""

    prevalence: float = 0.0
    sign_strength: float = 0.0
    soft_tissue: float = 0.0
    noise: float = 0.0
    contrast: float = 0.0
    ap_portable: float = 0.0
    anatomy: float = 0.0
    underdiagnosis: float = 0.0
    ehr_missing: float = 0.0
    report_style: float = 0.0
    mislabel: float = 0.0

    def __post_init__(self) -> None:
        for name in ("sign_strength", "soft_tissue", "contrast", "ap_portable",
                     "underdiagnosis", "ehr_missing", "report_style", "mislabel"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"knob {name} must lie in [0, 1], got {v!r}")
        if self.noise < 0:
            raise ConfigError(f"knob noise must be >= 0, got {self.noise!r}")
        if not -0.3 <= self.anatomy <= 0.3:
            raise ConfigError(f"knob anatomy must lie in [-0.3, 0.3], got {self.anatomy!r}")


@dataclasses.dataclass(frozen=True)
class BiasKnobs(Spec):
    """Per-group bias knobs of the synthetic world.

    Parameters
    ----------
    groups : dict
        ``"<column>=<value>"`` -> :class:`GroupKnobs` (or a plain mapping of knob values).
        An empty mapping (the default) means no disparity at all.

    Examples
    --------
    >>> k = BiasKnobs.from_dict({"groups": {"sex=F": {"soft_tissue": 0.5}}})
    >>> k.groups["sex=F"].soft_tissue
    0.5
    >>> BiasKnobs().is_zero()
    True
    """

    groups: dict[str, GroupKnobs] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in self.groups:
            _split_key(key)

    def is_zero(self) -> bool:
        """True when no knob of any group moves away from neutral (``all`` included)."""
        return all(getattr(g, k) == 0.0 for g in self.groups.values() for k in KNOB_NAMES)

    def is_fair(self) -> bool:
        """True when no *group* knob moves away from neutral: the world may be harder for
        everyone (``all``) but treats every group alike."""
        return all(getattr(g, k) == 0.0 for key, g in self.groups.items() if key != ALL_ROWS
                   for k in KNOB_NAMES)

    def per_row(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each knob's value for every row of ``table`` (sum over the row's keyed groups).

        A key whose column is missing from the table raises :class:`InputError`.
        """
        n = len(table)
        out = {k: np.zeros(n) for k in KNOB_NAMES}
        for key, g in self.groups.items():
            if key == ALL_ROWS:
                member = np.ones(n, bool)
            else:
                col, val = _split_key(key)
                if col not in table.columns:
                    raise InputError(f"bias knob group {key!r}: the cohort has no column {col!r}")
                member = _members(table[col], val)
            for k in KNOB_NAMES:
                out[k] = out[k] + member * getattr(g, k)
        for k in ("sign_strength", "soft_tissue", "contrast", "ap_portable",
                  "underdiagnosis", "ehr_missing", "report_style", "mislabel"):
            out[k] = np.clip(out[k], 0.0, 1.0)
        return out

    def table(self) -> pd.DataFrame:
        """One row per (group, knob) that is not neutral, with its meaning."""
        rows = [
            {"group": key, "knob": k, "value": getattr(g, k), "meaning": KNOB_MEANING[k]}
            for key, g in self.groups.items() for k in KNOB_NAMES if getattr(g, k) != 0.0
        ]
        return pd.DataFrame(rows, columns=["group", "knob", "value", "meaning"])


_RANGE = re.compile(r"^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?)|\+)$")


def _members(values: pd.Series, val: str) -> np.ndarray:
    """Rows whose value equals ``val``; for a numeric column ``"18-39"`` (inclusive integer
    range, i.e. 18 <= x < 40) and ``"80+"`` select ranges."""
    m = _RANGE.match(val)
    if m and pd.api.types.is_numeric_dtype(values):
        x = values.to_numpy(dtype=float)
        lo = float(m.group(1))
        hi = float(m.group(2)) + 1 if m.group(2) else np.inf
        with np.errstate(invalid="ignore"):
            return (x >= lo) & (x < hi)
    return (values.astype(str) == val).to_numpy()


#: The knobs key that applies to every row (the world's overall difficulty).
ALL_ROWS = "all"


def _split_key(key: str) -> tuple[str, str]:
    if key == ALL_ROWS:
        return ALL_ROWS, ""
    if not isinstance(key, str) or key.count("=") != 1 or not all(key.split("=")):
        raise ConfigError(f"bias knob group {key!r} must look like 'column=value' (e.g. 'sex=F') "
                          f"or be {ALL_ROWS!r} (every row)")
    col, val = key.split("=")
    return col.strip(), val.strip()


def default_knobs() -> BiasKnobs:
    """The synthetic world's documented default disparities (modest, known).

    ======================  ==================================================================
    group                   knobs
    ======================  ==================================================================
    ``sex=F``               ``soft_tissue=0.5`` (basal overlay hides effusion/atelectasis),
                            ``anatomy=-0.06`` (smaller thorax: sex visible in pixels)
    ``race=Black``          ``underdiagnosis=0.2`` (a fifth of positives recorded negative),
                            ``ehr_missing=0.15``
    ``age=80+``             ``ap_portable=0.35``, ``noise=0.02``, ``prevalence=0.5``
    ``age=18-39``           ``sign_strength=0.3`` (subtler signs in the young, cf. Paper B)
    ======================  ==================================================================
    """
    return BiasKnobs(groups={
        "sex=F": GroupKnobs(soft_tissue=0.5, anatomy=-0.06),
        "race=Black": GroupKnobs(underdiagnosis=0.2, ehr_missing=0.15),
        "age=80+": GroupKnobs(ap_portable=0.35, noise=0.02, prevalence=0.5),
        "age=18-39": GroupKnobs(sign_strength=0.3),
    })


#: How a notebook parameter names bias knobs: a preset (``"default"``, ``"zero"``) or a mapping
#: ``{"sex=F": {"soft_tissue": 0.5}, ...}`` (``{}``: none), optionally with a ``preset`` key to start
#: from; see :func:`resolve_knobs`.
Knobs = str | dict[str, dict[str, float] | str]


def resolve_knobs(knobs: BiasKnobs | Mapping[str, Any] | str | None) -> BiasKnobs:
    """Turn the accepted spellings into a :class:`BiasKnobs`.

    ``None`` or ``"default"`` -> :func:`default_knobs`; ``"zero"`` / ``"none"`` -> no knobs;
    a mapping is either ``{"groups": {...}}`` or directly ``{"sex=F": {...}, ...}``; in the
    latter a ``preset`` key starts from that preset and the other keys add or replace groups
    (``{"preset": "default", "all": {"sign_strength": 0.5}}``: the default disparities in a
    world with fainter signs for everyone).

    >>> k = resolve_knobs({"preset": "default", "all": {"sign_strength": 0.5}})
    >>> sorted(k.groups)[:2], k.groups["all"].sign_strength
    (['age=18-39', 'age=80+'], 0.5)
    """
    if knobs is None or (isinstance(knobs, str) and knobs.lower() == "default"):
        return default_knobs()
    if isinstance(knobs, BiasKnobs):
        return knobs
    if isinstance(knobs, str):
        if knobs.lower() in ("zero", "none", "off"):
            return BiasKnobs()
        raise ConfigError(f"unknown knobs preset {knobs!r} (allowed: default, zero)")
    if isinstance(knobs, Mapping):
        data = dict(knobs)
        if set(data) <= {"groups"}:
            return BiasKnobs.from_dict(data, where="knobs")
        base: dict[str, Any] = {}
        if "preset" in data:
            preset = data.pop("preset")
            if not isinstance(preset, str) or preset.lower() not in (
                    "default", "zero", "none", "off"):
                raise ConfigError(f"knobs: unknown preset {preset!r} (allowed: default, zero)")
            base = {k: dataclasses.asdict(g) for k, g in resolve_knobs(preset).groups.items()}
        return BiasKnobs.from_dict({"groups": {**base, **data}}, where="knobs")
    raise ConfigError(f"knobs must be a mapping, 'default' or 'zero', got {type(knobs).__name__}")


def age_group(age: Any) -> pd.Series:
    """Age band labels of :data:`AGE_BANDS` (missing age -> NaN)."""
    a = pd.to_numeric(pd.Series(age), errors="coerce")
    out = pd.Series(np.nan, index=a.index, dtype=object)
    for lo, hi, name in AGE_BANDS:
        out[(a >= lo) & (a < hi)] = name
    return out
