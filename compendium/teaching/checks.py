"""Auto-checked answers: each exercise of the course is one :class:`Exercise` entry, and
:func:`check` says whether a student's answer is right, with a hint when it is not.

The expected answer is never stored: it is computed from the student's own run (the tables
the lesson function returned), so a check works for any parameters and never prints the
answer.  Numbers are compared with a tolerance; choices are compared case-insensitively.

>>> import pandas as pd
>>> result = {"gaps": pd.DataFrame({"metric": ["tpr_gap"], "estimate": [0.1], "p_adjusted": [0.2]})}
>>> check("metrics-tpr-gap", 0.1, result).correct
True
>>> check("metrics-tpr-gap", 0.3, result).correct
False
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from ..errors import ConfigError
from .world import MECHANISMS

Result = Mapping[str, pd.DataFrame]


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``correct`` is ``None`` when there is no answer yet."""

    exercise: str
    correct: bool | None
    message: str

    def __str__(self) -> str:
        return f"[{self.exercise}] {self.message}"

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        mark = {True: "**Right.**", False: "**Not yet.**", None: "**No answer yet.**"}[self.correct]
        return f"{mark} `{self.exercise}`: {self.message}"


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One auto-checked exercise.

    ``expected(result)`` computes the answer from the lesson's tables; ``kind`` is
    ``number`` (within ``tol``), ``choice`` (one of ``choices``) or ``set`` (a subset of
    ``choices``, in any order); ``hint`` is shown on a wrong answer.
    """

    lesson: str
    question: str
    kind: str
    expected: Callable[[Result], Any]
    hint: str
    tol: float = 0.0
    choices: tuple[str, ...] = ()


def _row(table: pd.DataFrame, **match) -> pd.Series:
    t = table
    for k, v in match.items():
        t = t[t[k] == v]
    if len(t) != 1:
        raise ConfigError(f"expected one row with {match}, found {len(t)}")
    return t.iloc[0]


def _power_size(result: Result) -> str:
    s = result["summary"]
    ok = s[(s["world"] == "injected") & (s["share_p_below_005"] >= 0.8)]
    return str(int(ok["size"].min())) if len(ok) else "none"


def _visible_in_cohort(result: Result) -> set[str]:
    t = result["signatures"]
    t = t[t["mechanism"] != "none"]
    return set(t[(t["ap_share"].abs() > 0.1) | (t["ehr_measured"].abs() > 1.0)]["mechanism"])


def _gap_direction(result: Result) -> str:
    g = result["gaps"].set_index("labels")["estimate"]
    return "grows" if g["report labeller"] > g["recorded"] else "shrinks"


def _gap_change(result: Result) -> float:
    m = result["methods"]
    adapted = m[m["method"] == "adapted"]
    last = adapted.loc[adapted["share_B_in_training"].idxmax()]
    return float(_row(m, method="zero-shot")["gap_A_minus_B"] - last["gap_A_minus_B"])


#: Every exercise of the course, by id (``<lesson>-<what>``).
EXERCISES: dict[str, Exercise] = {
    "metrics-tpr-gap": Exercise(
        "teaching_metrics", "the TPR gap between the groups (higher minus lower)", "number",
        lambda r: _row(r["gaps"], metric="tpr_gap")["estimate"],
        "a gap is computed from the two groups' TPR rows of the per-group table, not from the "
        "overall TPR", tol=0.005),
    "metrics-fpr-significant": Exercise(
        "teaching_metrics", "is the FPR gap significant after Holm's correction at 0.05? (yes/no)",
        "choice", lambda r: "yes" if _row(r["gaps"], metric="fpr_gap")["p_adjusted"] < 0.05
        else "no",
        "read the adjusted p-value of the fpr_gap row, and remember what the simulation "
        "injected (a TPR difference only)", choices=("yes", "no")),
    "noise-ci-covers-zero": Exercise(
        "teaching_noise", "the share of fair runs whose bootstrap interval of the TPR gap "
        "contains 0", "number",
        lambda r: float(((r["runs"]["ci_low"] <= 0) & (r["runs"]["ci_high"] >= 0))
                        [r["runs"]["world"] == "fair"].mean()),
        "count the fair rows whose ci_low <= 0 <= ci_high; the runs table's interval column "
        "says how each interval was formed",
        tol=0.01),
    "noise-false-positive": Exercise(
        "teaching_noise", "the share of fair runs (all sizes) with a permutation p-value below "
        "0.05", "number",
        lambda r: float((r["runs"][r["runs"]["world"] == "fair"]["p_value"] < 0.05).mean()),
        "use the runs table, fair world only, every size; the p-values are not adjusted",
        tol=0.01),
    "noise-power-size": Exercise(
        "teaching_noise", "the smallest test-set size at which the injected gap is found "
        "(p < 0.05) in at least 80% of runs ('none' if no size reaches it)", "choice",
        _power_size,
        "look at the injected rows of the summary table, size by size", choices=()),
    "knobs-fpr-mechanism": Exercise(
        "teaching_knobs", "the mechanism that raises the group's FPR (against the recorded "
        "labels) the most", "choice",
        lambda r: str(r["signatures"].set_index("mechanism")["fpr"].drop("none").idxmax()),
        "a false positive is counted against the recorded label: which mechanism changes the "
        "recorded labels of sick patients?", choices=tuple(MECHANISMS)),
    "knobs-cohort-visible": Exercise(
        "teaching_knobs", "the mechanisms that show in the cohort table itself (its view and "
        "ehr_measured columns), not only in the predictions", "set", _visible_in_cohort,
        "compare the ap_share and ehr_measured panels with the 'none' row",
        choices=tuple(MECHANISMS)),
    "labels-differs-group": Exercise(
        "teaching_labels", "the share of the group's rows whose 'No Finding' label differs "
        "between the recorded labels and the report labeller", "number",
        lambda r: float(r["agreement"].iloc[0]["share_differs"]),
        "the agreement table has one row per group; the first is the group whose reports "
        "the knob changed", tol=0.005),
    "labels-gap-direction": Exercise(
        "teaching_labels", "does the 'No Finding' FPR gap grow or shrink when the labels "
        "come from the report labeller instead of the recorded labels? (grows/shrinks)",
        "choice", _gap_direction,
        "compare the two estimates of the gaps table (and look at their intervals before "
        "you believe the difference)", choices=("grows", "shrinks")),
    "mitigation-smallest-gap": Exercise(
        "teaching_mitigation", "the method with the smallest AUROC gap", "choice",
        lambda r: str(r["methods"].set_index("method")["auroc_gap"].idxmin()),
        "read the auroc_gap column; a mitigation can overshoot and open the gap the other way",
        choices=("none", "importance_weighting", "group_resampling")),
    "mitigation-cost": Exercise(
        "teaching_mitigation", "the overall AUROC lost by importance weighting (AUROC of none "
        "minus AUROC of importance_weighting)", "number",
        lambda r: float(r["methods"].set_index("method").loc["none", "auroc"]
                        - r["methods"].set_index("method").loc["importance_weighting", "auroc"]),
        "subtract in the order asked (a gain is a negative loss)", tol=0.003),
    "adaptation-zero-shot-favours": Exercise(
        "teaching_adaptation", "which group the zero-shot score favours (A or B)", "choice",
        lambda r: "A" if _row(r["methods"], method="zero-shot")["gap_A_minus_B"] > 0 else "B",
        "compare the zero-shot row's per-group AUROCs", choices=("A", "B")),
    "adaptation-gap-change": Exercise(
        "teaching_adaptation", "how much the AUROC gap A - B falls from zero-shot to the probe "
        "adapted on the set with the largest share of B (zero-shot gap minus adapted gap)",
        "number", _gap_change,
        "use the signed gap column, the zero-shot row and the adapted row with the largest "
        "share_B_in_training", tol=0.005),
    "claims-exceed": Exercise(
        "teaching_claims", "how many of Paper A's reported sex gaps exceed what a fair "
        "classifier exceeds 5% of the time at the paper's test size", "number",
        lambda r: int(r["gaps"]["exceeds"].sum()),
        "compare each reported value with the fair model's 95th percentile of the same metric",
        tol=0.0),
    "claims-bonferroni": Exercise(
        "teaching_claims", "the per-test level Bonferroni uses to keep a 0.05 family-wise error "
        "over the gaps of the table", "number",
        lambda r: 0.05 / len(r["gaps"]),
        "Bonferroni divides the family-wise level by the number of tests in the family",
        tol=1e-4),
}


def exercises(lesson: str | None = None) -> list[str]:
    """Exercise ids, of one lesson (notebook name) or all."""
    return [k for k, e in EXERCISES.items() if lesson is None or e.lesson == lesson]


def _normalise(value: Any) -> str:
    return str(value).strip().lower().replace(" ", "_")


def check(exercise: str, answer: Any, result: Result) -> Verdict:
    """Check ``answer`` to ``exercise`` against the run's tables ``result``.

    ``answer`` is ``None`` before the student answers.  The message never contains the
    expected answer.
    """
    if exercise not in EXERCISES:
        raise ConfigError(f"unknown exercise {exercise!r} (known: {', '.join(EXERCISES)})")
    ex = EXERCISES[exercise]
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        return Verdict(exercise, None, f"write your answer to: {ex.question}")
    expected = ex.expected(result)
    if ex.kind == "number":
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return Verdict(exercise, False, f"expected a number, got {answer!r}")
        if not math.isfinite(value):
            return Verdict(exercise, False, "expected a finite number")
        ok = abs(value - float(expected)) <= ex.tol + 1e-12
    elif ex.kind == "choice":
        ok = _normalise(answer) == _normalise(expected)
        allowed = ex.choices or None
        if not ok and allowed and _normalise(answer) not in {_normalise(c) for c in allowed}:
            return Verdict(exercise, False, f"answer one of: {', '.join(allowed)}")
    elif ex.kind == "set":
        items = [answer] if isinstance(answer, str) else list(answer)
        ok = {_normalise(a) for a in items} == {_normalise(e) for e in expected}
    else:  # pragma: no cover - guarded by the table above
        raise ConfigError(f"exercise {exercise}: unknown kind {ex.kind!r}")
    if ok:
        return Verdict(exercise, True, "right.")
    return Verdict(exercise, False, f"not yet. Hint: {ex.hint}.")


def check_all(answers: Mapping[str, Any], result: Result) -> list[Verdict]:
    """:func:`check` for several exercises of one lesson."""
    return [check(k, v, result) for k, v in answers.items()]


__all__: Sequence[str] = ("EXERCISES", "Exercise", "Verdict", "check", "check_all", "exercises")
