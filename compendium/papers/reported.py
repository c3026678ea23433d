"""The numbers a paper prints, in one schema for every paper, and how they compare.

Each paper package holds ``reported.yaml``::

    paper: "Sun et al., ISBI 2025 (arXiv 2501.19086)"
    text: 000_a75ae238e2ab85ae.txt        # the paper's text in shared/papers/
    numbers:
      - id: acc-zs-medclip-vit             # unique within the paper
        where: "Section 3.2"               # table, figure or section
        metric: accuracy
        model: medclip-vit                 # registry name of the paper's model
        method: zero-shot                  # optional keys: method, dataset, attribute,
        value: 0.494                       #   group, label
        quote: "... accuracy of 49.4%."    # verbatim from the paper's text

An interval the paper prints goes in ``interval: [low, high]`` or ``half_width: h``.
Values are typed from the paper, never computed; a test checks every quote against the text.

:func:`load_reported` validates the file and returns a tidy table; :func:`compare_reported`
sets a table of reproduced values beside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import Spec, load_yaml
from ..errors import ConfigError, InputError

#: Columns that locate a number (besides ``metric`` and ``model``); empty string when unused.
KEYS = ("metric", "model", "method", "dataset", "attribute", "group", "label")


@dataclasses.dataclass(frozen=True)
class ReportedNumber(Spec):
    id: str
    where: str
    metric: str
    value: float
    quote: str
    model: str = ""
    method: str = ""
    dataset: str = ""
    attribute: str = ""
    group: str = ""
    label: str = ""
    interval: list[float] | None = None
    half_width: float | None = None


@dataclasses.dataclass(frozen=True)
class ReportedFile(Spec):
    paper: str
    text: str
    numbers: list[ReportedNumber]


def reported_path(paper: str) -> Path:
    """``compendium/papers/<paper>/reported.yaml``."""
    path = Path(__file__).with_name(paper) / "reported.yaml"
    if not path.is_file():
        known = sorted(p.parent.name for p in Path(__file__).parent.glob("*/reported.yaml"))
        raise ConfigError(f"no reported numbers for paper {paper!r} (known: {', '.join(known)})")
    return path


def load_reported(paper: str) -> pd.DataFrame:
    """The validated reported numbers of ``paper``: one row per number, columns ``id``,
    ``where``, :data:`KEYS`, ``value``, ``ci_low``/``ci_high`` (from ``interval`` or
    ``half_width``; NaN when the paper prints none) and ``quote``.  ``attrs`` carry the
    citation (``paper``) and the text file (``text``)."""
    path = reported_path(paper)
    doc = ReportedFile.from_dict(load_yaml(path), where=str(path))
    rows = []
    for n in doc.numbers:
        lo = hi = float("nan")
        if n.interval is not None and n.half_width is not None:
            raise ConfigError(f"{path}: {n.id}: give interval or half_width, not both")
        if n.interval is not None:
            if len(n.interval) != 2 or n.interval[0] > n.interval[1]:
                raise ConfigError(f"{path}: {n.id}: interval must be [low, high]")
            lo, hi = n.interval
        elif n.half_width is not None:
            lo, hi = n.value - n.half_width, n.value + n.half_width
        rows.append({"id": n.id, "where": n.where, **{k: getattr(n, k) for k in KEYS},
                     "value": n.value, "ci_low": lo, "ci_high": hi, "quote": n.quote})
    table = pd.DataFrame(rows, columns=["id", "where", *KEYS, "value", "ci_low", "ci_high",
                                        "quote"])
    dup = table["id"][table["id"].duplicated()]
    if len(dup):
        raise ConfigError(f"{path}: duplicate id {dup.iloc[0]!r}")
    table.attrs.update(paper=doc.paper, text=doc.text)
    return table


def reported_values(reported: pd.DataFrame, fmt: str = ".3f") -> dict[str, tuple[float, str]]:
    """Every reported number as a value to glue, named ``reported_<id>`` (``id`` with ``-``
    turned into ``_``), so that a chapter quotes the paper's numbers without retyping them."""
    return {f"reported_{i.replace('-', '_')}": (float(v), fmt)
            for i, v in zip(reported["id"], reported["value"])}


def compare_reported(reported: pd.DataFrame, reproduced: pd.DataFrame) -> pd.DataFrame:
    """Every reported number beside its reproduced counterpart.

    ``reproduced`` has the :data:`KEYS` columns it locates numbers by (missing ones are
    treated as ``""``), ``estimate`` and optionally ``ci_low``/``ci_high`` and
    ``reproduced_with`` (what produced it, e.g. a stand-in's label).  Rows match on all
    :data:`KEYS`; a reported number nobody reproduced keeps NaN and ``reproduced_with`` =
    ``"not run"``.  ``inside`` says whether the reported value lies in the reproduced
    interval (NaN without one).
    """
    rep = reported.copy()
    got = reproduced.copy()
    for k in KEYS:
        for t in (rep, got):
            if k not in t.columns:
                t[k] = ""
            t[k] = t[k].fillna("").astype(str)
    for c in ("ci_low", "ci_high"):
        if c not in got.columns:
            got[c] = np.nan
    if "reproduced_with" not in got.columns:
        got["reproduced_with"] = ""
    dup = got.duplicated(list(KEYS)).to_numpy()
    if dup.any():
        first = got.iloc[int(np.argmax(dup))]
        raise InputError("reproduced values: two rows for "
                         + ", ".join(f"{k}={first[k]}" for k in KEYS if first[k]))
    got = got[[*KEYS, "estimate", "ci_low", "ci_high", "reproduced_with"]].rename(
        columns={"estimate": "reproduced", "ci_low": "reproduced_low",
                 "ci_high": "reproduced_high"})
    out = rep.merge(got, on=list(KEYS), how="left", validate="one_to_one")
    out["reproduced_with"] = out["reproduced_with"].fillna("not run")
    out["difference"] = out["reproduced"] - out["value"]
    has = out["reproduced_low"].notna() & out["reproduced_high"].notna()
    inside = (out["value"] >= out["reproduced_low"]) & (out["value"] <= out["reproduced_high"])
    out["inside"] = inside.where(has)
    return out


__all__ = ["KEYS", "ReportedFile", "ReportedNumber", "compare_reported", "load_reported",
           "reported_path", "reported_values"]
