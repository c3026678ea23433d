"""Spec of ``notebooks/glossary.ipynb``: the metric glossary and a worked audit example."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..notebook import NotebookSpec, register_notebook


@register_notebook(
    "glossary", title="Metric glossary",
    description="Every audit metric with its formula (generated from the package), and an "
                "audit of simulated predictions with a known injected TPR gap.")
@dataclass(frozen=True)
class GlossarySpec(NotebookSpec):
    """Parameters of the glossary notebook (all synthetic: no data or weights needed)."""

    SYNTHETIC_ONLY = True

    #: rows of simulated predictions (split evenly between groups A and B)
    n_rows: int = ranged(4000, lo=20, hi=10_000_000)
    #: true-positive rate simulated in group A
    tpr_a: float = ranged(0.85, lo=0, hi=1)
    #: true-positive rate simulated in group B (tpr_a - tpr_b is the injected TPR gap)
    tpr_b: float = ranged(0.70, lo=0, hi=1)
    #: false-positive rate simulated in both groups
    fpr: float = ranged(0.20, lo=0, hi=1)
    #: bootstrap resamples of every interval
    n_bootstrap: int = ranged(1000, lo=0, hi=1_000_000)
    #: permutations of every gap test
    n_permutations: int = ranged(1000, lo=0, hi=1_000_000)
    #: groups smaller than this are flagged as small
    min_group_size: int = ranged(30, lo=0, hi=10_000_000)
    #: simulated data sets per design of the interval coverage table (Monte-Carlo standard
    #: error of a 95% coverage: 0.22 / sqrt(coverage_sims))
    coverage_sims: int = ranged(1000, lo=10, hi=1_000_000)
    #: bootstrap resamples of every interval of the coverage table
    coverage_bootstrap: int = ranged(1000, lo=50, hi=1_000_000)
    #: simulated groups per design of the table of one group's ECE and AUPRC intervals (each
    #: an audit with coverage_bootstrap resamples)
    group_metric_sims: int = ranged(200, lo=5, hi=1_000_000)
    #: rows from which that table's true ECE and AUPRC of each design are computed
    group_metric_truth_rows: int = ranged(400_000, lo=1000, hi=100_000_000)
