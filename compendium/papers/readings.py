"""Readings: where a paper is ambiguous, the ambiguity is a named parameter with candidates.

Each paper package may hold ``readings.yaml``::

    readings:
      - parameter: gap_reading          # the spec field that holds the choice
        what: "F1 gap and EqOdds over the six classes"
        where: "Section 2.4, eqs. 2-3"
        quote: "..."                     # the paper's own words, verbatim (" ... " joins)
        candidates:
          mean_of_gaps: "per-class gap between the groups, averaged over the classes"
          gap_of_macro: "gap between the groups' class-averaged rates"
        default: gap_of_macro
        basis: evidence                  # evidence | words | ours
        why: "..."

``basis: evidence`` means the paper's own numbers decide (the notebook shows the simulation);
``words`` that the paper's words (the quote) favour one candidate though its numbers cannot
decide; ``ours`` that nothing in the paper decides and the default is the compendium's choice.
:class:`~compendium.papers.base.PaperSpec` checks, before a kernel starts, that every reading's
parameter holds one of its candidates; :func:`readings_table` is the chapter's table.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..config import Spec, load_yaml
from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Reading(Spec):
    parameter: str
    what: str
    where: str
    quote: str
    candidates: dict[str, str]
    default: str
    basis: Literal["evidence", "words", "ours"]
    why: str


@dataclasses.dataclass(frozen=True)
class ReadingsFile(Spec):
    readings: list[Reading]


def readings_path(paper: str) -> Path:
    return Path(__file__).with_name(paper) / "readings.yaml"


def load_readings(paper: str) -> list[Reading]:
    """The validated readings of ``paper`` (an empty list when it declares none)."""
    path = readings_path(paper)
    if not path.is_file():
        return []
    readings = ReadingsFile.from_dict(load_yaml(path), where=str(path)).readings
    for r in readings:
        if r.default not in r.candidates:
            raise ConfigError(f"{path}: {r.parameter}: default {r.default!r} is not a "
                              f"candidate ({', '.join(r.candidates)})")
    names = [r.parameter for r in readings]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: a parameter has two readings")
    return readings


def candidate_name(value: Any) -> str:
    """A parameter value as a candidate name (booleans as ``true`` / ``false``)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def check_readings(paper: str, cfg: Any) -> None:
    """Every reading's parameter is a field of ``cfg`` holding one of its candidates."""
    for r in load_readings(paper):
        if not hasattr(cfg, r.parameter):
            raise ConfigError(f"readings of {paper}: {r.parameter!r} is not a parameter")
        value = candidate_name(getattr(cfg, r.parameter))
        if value not in r.candidates:
            raise ConfigError(f"{r.parameter}: {value!r} is not a reading of {r.what} "
                              f"(allowed: {', '.join(r.candidates)})")


def readings_table(paper: str, cfg: Any) -> pd.DataFrame:
    """The chapter's readings table: the paper's words, each candidate, the default and why,
    and the reading this run used."""
    rows = []
    for r in load_readings(paper):
        rows.append({"parameter": r.parameter, "what": r.what, "where": r.where,
                     "the paper's words": r.quote,
                     "readings": "; ".join(f"{k}: {v}" for k, v in r.candidates.items()),
                     "default": r.default, "decided by": r.basis, "why": r.why,
                     "this run": candidate_name(getattr(cfg, r.parameter))})
    return pd.DataFrame(rows)


__all__ = ["Reading", "ReadingsFile", "candidate_name", "check_readings", "load_readings", "readings_path",
           "readings_table"]
