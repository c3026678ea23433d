"""Spec of ``notebooks/glossary.ipynb``: the metric glossary and a worked audit example."""

from __future__ import annotations

from dataclasses import dataclass

from ..notebook import NotebookSpec, register_notebook


@register_notebook(
    "glossary", title="Metric glossary",
    description="Every audit metric with its formula (generated from the package), and an "
                "audit of simulated predictions with a known injected TPR gap.")
@dataclass(frozen=True)
class GlossarySpec(NotebookSpec):
    """Parameters of the glossary notebook (all synthetic: no data or weights needed)."""

    n_rows: int = 4000
    tpr_a: float = 0.85
    tpr_b: float = 0.70
    fpr: float = 0.20
    n_bootstrap: int = 1000
    n_permutations: int = 1000
    min_group_size: int = 30
