"""Spec of ``notebooks/synthetic_world.ipynb``: a tour of the synthetic world."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook


def _default_knobs() -> dict[str, dict[str, float]]:
    from ..synthetic.knobs import default_knobs

    return {k: {n: v for n, v in g.to_dict().items() if v} for k, g in default_knobs().groups.items()}


@register_notebook("synthetic_world", title="The synthetic world",
                   description="gallery, bias knobs, reports, EHR and CT of the synthetic world")
@dataclass(frozen=True)
class SyntheticWorldSpec(NotebookSpec):
    #: rows of the synthetic-cxr cohort used for the tables and the EHR figure
    n: int = 600
    #: image side in pixels
    image_size: int = 128
    #: synthetic patients per group in the knob-effect measurement
    n_sign: int = 60
    #: CT volume side and depth (voxels)
    ct_size: int = 64
    ct_depth: int = 32
    #: per-group bias knobs ("column=value" -> {knob: value}); {} means none
    bias_knobs: dict[str, dict[str, float]] = field(default_factory=_default_knobs)

    def check(self) -> None:
        from ..synthetic.knobs import resolve_knobs

        if self.n < 20 or self.n_sign < 5:
            raise ConfigError("synthetic_world: n must be >= 20 and n_sign >= 5")
        resolve_knobs(self.bias_knobs)
