"""Registered synthetic cohorts (the generator lives in :mod:`compendium.synthetic`)."""

from __future__ import annotations

from typing import Any

from .base import Cohort, register_cohort


@register_cohort("synthetic-cxr", source="synthetic",
                 description="synthetic chest X-rays, 8 findings + No Finding, NIH age/sex")
def build_synthetic_cxr(*, root: Any = None, n: int = 600, seed: int = 0, knobs: Any = None,
                        demographics: str = "nih", **_: Any) -> Cohort:
    from ..synthetic import synthetic_cxr

    return synthetic_cxr(n=n, seed=seed, knobs=knobs, demographics=demographics)


@register_cohort("synthetic-inspect", source="synthetic",
                 description="synthetic CTPA volumes (HU), PE + 7 prognostic outcomes")
def build_synthetic_inspect(*, root: Any = None, n: int = 200, seed: int = 0, knobs: Any = None,
                            **_: Any) -> Cohort:
    from ..synthetic import synthetic_inspect

    return synthetic_inspect(n=n, seed=seed, knobs=knobs)


@register_cohort("synthetic-ehr", source="synthetic",
                 description="synthetic chest X-rays paired with 76-feature EHR (render_ehr)")
def build_synthetic_ehr(*, root: Any = None, n: int = 600, seed: int = 0, knobs: Any = None,
                        **_: Any) -> Cohort:
    from ..synthetic import synthetic_cxr

    return synthetic_cxr(n=n, seed=seed, knobs=knobs, name="synthetic-ehr")
