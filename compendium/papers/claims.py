"""A paper's headline claims as checked statements, with a verdict in every run.

Each paper package holds ``claims.yaml`` (the claim in the paper's words, verbatim, where it
stands, and how the compendium checks it) and, in its ``tables`` module, the checks: one
function per claim id returning a :class:`Verdict` from the run's tables (and, where the
paper's own numbers allow, from its reported values too)::

    claims:
      - id: fine-tuning-helps
        where: "Section 3.2"
        quote: "all the fine-tuning methods led to performance improvement"
        checked_as: "every trained method's test accuracy above the model's zero-shot accuracy"

:func:`claims_table` joins the two; a claim without a check (or a check without a claim) is
an error, so no claim is silently left unchecked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Literal, Mapping

import pandas as pd

from ..config import Spec, load_yaml
from ..errors import ConfigError

VERDICTS = ("holds", "does not hold", "not testable here")


@dataclasses.dataclass(frozen=True)
class Claim(Spec):
    id: str
    where: str
    quote: str
    checked_as: str


@dataclasses.dataclass(frozen=True)
class ClaimsFile(Spec):
    claims: list[Claim]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of checking one claim on one source of numbers."""

    verdict: Literal["holds", "does not hold", "not testable here"]
    value: str            # the quantity as computed, e.g. "5 of 8 cells"
    interval: str = ""    # its uncertainty where the run has one, e.g. "[0.02, 0.09]"
    detail: str = ""      # why not testable, or what decided

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ConfigError(f"verdict {self.verdict!r} (allowed: {', '.join(VERDICTS)})")


def not_testable(why: str) -> Verdict:
    return Verdict("not testable here", "", "", why)


def judged(holds: bool, value: str, interval: str = "", detail: str = "") -> Verdict:
    return Verdict("holds" if holds else "does not hold", value, interval, detail)


def load_claims(paper: str) -> list[Claim]:
    path = Path(__file__).with_name(paper) / "claims.yaml"
    if not path.is_file():
        return []
    claims = ClaimsFile.from_dict(load_yaml(path), where=str(path)).claims
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{path}: duplicate claim id")
    return claims


def claims_table(paper: str, checks: Mapping[str, Mapping[str, Callable[[], Verdict]]]
                 ) -> pd.DataFrame:
    """One row per claim and source of numbers (``checks``: source -> claim id -> check).

    Sources are e.g. ``"this run"`` and ``"the paper's numbers"``; every claim must have a
    check in the first source, and no check may name an unknown claim.
    """
    claims = load_claims(paper)
    known = {c.id for c in claims}
    sources = list(checks)
    if not sources:
        raise ConfigError("claims_table needs at least one source of numbers")
    for source, fns in checks.items():
        unknown = set(fns) - known
        if unknown:
            raise ConfigError(f"{paper}: check for unknown claim {sorted(unknown)[0]!r}")
    missing = known - set(checks[sources[0]])
    if missing:
        raise ConfigError(f"{paper}: claim {sorted(missing)[0]!r} has no check")
    rows = []
    for c in claims:
        for source in sources:
            fn = checks[source].get(c.id)
            if fn is None:
                continue
            v = fn()
            rows.append({"claim": c.id, "where": c.where, "the paper's words": c.quote,
                         "checked as": c.checked_as, "numbers": source, "verdict": v.verdict,
                         "value": v.value, "interval": v.interval, "detail": v.detail})
    return pd.DataFrame(rows)


def verdict_counts(table: pd.DataFrame, source: str) -> dict[str, int]:
    """How many claims hold, do not hold, or cannot be tested, for one source of numbers
    (``claims_holds``, ``claims_does_not_hold``, ``claims_not_testable_here`` and
    ``claims_total``)."""
    t = table[table["numbers"] == source]
    out = {f"claims_{v.replace(' ', '_')}": int((t["verdict"] == v).sum()) for v in VERDICTS}
    out["claims_total"] = int(len(t))
    return out


__all__ = ["Claim", "Verdict", "claims_table", "judged", "load_claims", "not_testable",
           "verdict_counts"]
