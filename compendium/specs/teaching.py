"""Specs of the course's lesson notebooks (``notebooks/teaching/teaching_<lesson>.ipynb``).

Every lesson runs on a laptop CPU in minutes under ``demo`` and in seconds under ``smoke``;
all data are synthetic (lesson 6 also reads the numbers Paper A reports).  The ``full``
profile of a lesson is a larger synthetic run: there is no real data to a lesson.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook


@register_notebook("teaching_metrics", title="Lesson 1: metrics and their readings",
                   description="per-group rates, gaps, intervals and p-values of a simulated "
                               "predictions table (synthetic)")
@dataclass(frozen=True)
class TeachingMetricsSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: rows of the simulated predictions table (half group A, half group B)
    n: int = ranged(600, lo=40, hi=10_000_000)
    #: population true-positive rate of group A and of group B at the threshold 0.5
    tpr_a: float = ranged(0.85, lo=0.0, hi=1.0)
    tpr_b: float = ranged(0.70, lo=0.0, hi=1.0)
    #: population false-positive rate of both groups
    fpr: float = ranged(0.2, lo=0.0, hi=1.0)
    #: bootstrap resamples of the intervals and permutations of the p-values
    n_bootstrap: int = ranged(1000, lo=0, hi=1_000_000)
    n_permutations: int = ranged(1000, lo=0, hi=1_000_000)


@register_notebook("teaching_noise", title="Lesson 2: noise, intervals and permutation tests",
                   description="repeated audits of fair and biased simulated worlds: what a "
                               "gap, its interval and its p-value do by chance (synthetic)")
@dataclass(frozen=True)
class TeachingNoiseSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: test-set sizes (rows) of the simulated audits
    sizes: list[int] = ranged(default_factory=lambda: [400, 1600, 6400], lo=20, hi=10_000_000,
                              min_items=1)
    #: simulated audits per size and world
    n_sims: int = ranged(30, lo=2, hi=100_000)
    #: groups of the attribute (A, B, ...)
    n_groups: int = ranged(4, lo=2, hi=26)
    #: every group's TPR in the fair world; the last group's is lower by gap in the other
    tpr: float = ranged(0.8, lo=0.0, hi=1.0)
    gap: float = ranged(0.1, lo=0.0, hi=1.0)
    #: bootstrap resamples and permutations of each audit
    n_bootstrap: int = ranged(200, lo=0, hi=1_000_000)
    n_permutations: int = ranged(200, lo=0, hi=1_000_000)

    def check(self) -> None:
        if self.gap > self.tpr:
            raise ConfigError(f"gap ({self.gap}) must not exceed tpr ({self.tpr})")


def _check_group(key: str, value: str) -> None:
    from ..teaching.world import GROUPS

    if value not in GROUPS:
        raise ConfigError(f"{key} {value!r} is not a teaching group (allowed: {', '.join(GROUPS)})")


@register_notebook("teaching_knobs", title="Lesson 3: where bias comes from",
                   description="the synthetic world's mechanisms one at a time, and what each "
                               "moves in an audit (synthetic)")
@dataclass(frozen=True)
class TeachingKnobsSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: rows of each synthetic world
    n: int = ranged(3000, lo=200, hi=1_000_000)
    #: the group each mechanism is put on, as column=value
    group: str = "sex=F"
    #: the strength of every mechanism: moderate or strong
    strength: str = "strong"

    def check(self) -> None:
        from ..teaching.world import STRENGTHS

        _check_group("group", self.group)
        if self.strength not in STRENGTHS:
            raise ConfigError(f"strength {self.strength!r} (allowed: {', '.join(STRENGTHS)})")


@register_notebook("teaching_labels", title="Lesson 4: label noise and label sources",
                   description="recorded labels against labels read from reports, and what "
                               "the label source does to a gap (synthetic; cf. Paper C)")
@dataclass(frozen=True)
class TeachingLabelsSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: rows of the synthetic chest-X-ray cohort (with reports)
    n: int = ranged(2000, lo=100, hi=1_000_000)
    #: probability that a finding in the group's reports is phrased like a negation
    report_style: float = ranged(0.5, lo=0.0, hi=1.0)
    #: the group whose reports the knob changes, and the group it is compared with
    group: str = "race=Black"
    reference: str = "race=White"
    #: bootstrap resamples of the gaps' intervals
    n_bootstrap: int = ranged(500, lo=0, hi=1_000_000)

    def check(self) -> None:
        _check_group("group", self.group)
        _check_group("reference", self.reference)
        if self.group.partition("=")[0] != self.reference.partition("=")[0] \
                or self.group == self.reference:
            raise ConfigError("group and reference must be two values of one column "
                              f"(got {self.group!r} and {self.reference!r})")


@register_notebook("teaching_mitigation", title="Lesson 5: mitigation and its costs",
                   description="importance weighting and group resampling of a probe on "
                               "synthetic embeddings with a known disparity (synthetic)")
@dataclass(frozen=True)
class TeachingMitigationSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: synthetic embeddings drawn (80% train, 20% test)
    n: int = ranged(3000, lo=300, hi=10_000_000)
    #: share of the minority group B
    minority: float = ranged(0.2, lo=0.05, hi=0.5)


@register_notebook("teaching_claims", title="Lesson 6: reading a paper's claims critically",
                   description="Paper A's reported gaps against the gaps of a fair model at "
                               "its test-set size, and its claims ledger")
@dataclass(frozen=True)
class TeachingClaimsSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: accuracy of the simulated fair classifier (Paper A's models lie around 0.5-0.6)
    accuracy: float = ranged(0.6, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    #: test images per class and classes (Paper A: 40 x 6 = 240)
    n_per_class: int = ranged(40, lo=2, hi=1_000_000)
    n_classes: int = ranged(6, lo=2, hi=100)
    #: fair classifiers simulated for the 95th percentile
    n_sims: int = ranged(2000, lo=20, hi=10_000_000)


@register_notebook("teaching_adaptation", title="Lesson 7: adaptation and fairness",
                   description="a zero-shot direction against probes adapted on sets with "
                               "more or less of the minority group (synthetic; cf. Paper A)")
@dataclass(frozen=True)
class TeachingAdaptationSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: synthetic embeddings drawn (both groups equally common; 80% pool, 20% test)
    n: int = ranged(4000, lo=400, hi=10_000_000)
    #: rows of each adaptation (training) set
    n_train: int = ranged(600, lo=20, hi=10_000_000)
    #: shares of group B in the adaptation sets compared
    shares: list[float] = ranged(default_factory=lambda: [0.02, 0.1, 0.25, 0.5], lo=0.0,
                                 hi=1.0, min_items=1)

    def check(self) -> None:
        if self.n_train > 0.3 * self.n:
            raise ConfigError(f"n_train ({self.n_train}) must be at most 30% of n ({self.n}): "
                              "each group's pool holds about 40% of the rows")
