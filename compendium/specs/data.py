"""Spec of ``notebooks/data.ipynb``: cohorts and their composition."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..config import ranged
from ..errors import DataNotFoundError
from ..notebook import NotebookSpec, register_notebook


@register_notebook("data", title="Data: cohorts and their composition",
                   description="Composition by age, sex and race of every real cohort (from public "
                               "metadata where available) and the construction of NIH 6x200.")
@dataclass(frozen=True)
class DataSpec(NotebookSpec):
    #: cohorts whose composition is shown (registry names)
    cohorts: list[str] = ranged(default_factory=lambda: ["nih", "chexpert", "vindr-cxr", "openi"],
                                min_items=1)
    #: dataset root per cohort (full profile); a cohort without one uses shipped metadata
    roots: dict[str, str] = field(default_factory=dict)
    #: age banding of the composition table (see compendium.cohorts.splits.AGE_BANDS)
    age_scheme: str = "paper_a"
    #: NIH 6x200: images per disease and age/sex group, and the shortfall one sex may have
    n_per_group: int = ranged(50, lo=1, hi=100_000)
    #: full profile: counts below this are shown as "<N" (PhysioNet-style agreements: 10)
    min_cell_count: int = ranged(10, lo=1, hi=1000)
    #: NIH 6x200: how many images fewer than n_per_group one sex may have in a group
    max_shortfall: int = ranged(5, lo=0, hi=100_000)

    def check(self) -> None:
        from ..cohorts import load_builders
        from ..cohorts.splits import age_bands

        registry = load_builders()
        for name in [*self.cohorts, *self.roots]:
            registry.get(name)
        age_bands(self.age_scheme)
        for name, root in self.roots.items():
            if not Path(root).expanduser().is_dir():
                raise DataNotFoundError(f"data: root of {name} not found: {root} "
                                        "(see book/reference/data.md for how to get it)")
