"""Spec of ``notebooks/synthetic_world.ipynb``: a tour of the synthetic world."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ranged
from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook
from ..synthetic.knobs import Knobs


@register_notebook("synthetic_world", title="The synthetic world",
                   description="gallery, bias knobs, reports, EHR and CT of the synthetic world")
@dataclass(frozen=True)
class SyntheticWorldSpec(NotebookSpec):
    SYNTHETIC_ONLY = True

    #: rows of the synthetic-cxr cohort used for the tables and the EHR figure
    n: int = ranged(600, lo=20, hi=1_000_000)
    #: image side in pixels
    image_size: int = ranged(128, lo=16, hi=2048)
    #: synthetic patients per group in the knob-effect measurement
    n_sign: int = ranged(60, lo=5, hi=100_000)
    #: CT volume side and depth (voxels)
    ct_size: int = ranged(64, lo=16, hi=512)
    ct_depth: int = ranged(32, lo=8, hi=512)
    #: per-group bias knobs: "default", "zero" or {"column=value": {knob: value}} ({}: none)
    knobs: Knobs = "default"

    def check(self) -> None:
        from ..synthetic.knobs import resolve_knobs

        if self.n < 20 or self.n_sign < 5:
            raise ConfigError("synthetic_world: n must be >= 20 and n_sign >= 5")
        resolve_knobs(self.knobs)
