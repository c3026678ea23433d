"""Spec of ``notebooks/paper_d.ipynb``: CXR-Foundation vs MedImageInsight (Paper D)."""

from __future__ import annotations

from dataclasses import field
from typing import Any, ClassVar, Mapping

from ...config import Range
from ...errors import ConfigError
from ..base import PaperSpec

#: Paper D's labels, in the order of its Table 1.
LABELS = ("Atelectasis", "Edema", "Effusion", "Opacity")
#: The two models of the paper, in the order of Table 1's columns.
PAPER_MODELS = {"medimageinsight": "MedImageInsight", "cxr-foundation": "CXR-Foundation"}
#: The paper's sampling and cross-validation (section 2.1 and 2.5): the spec's defaults.
PAPER_N_PER_CLASS, PAPER_TEST_FRACTION, PAPER_N_SPLITS = 1000, 0.2, 5
#: What ``pixels: real`` reads, per dataset.
DATASETS = {
    "mimic-cxr": "the MIMIC-CXR-JPG v2 folder (PhysioNet, credentialed)",
    "nih": "the NIH ChestX-ray14 folder (Data_Entry_2017*.csv and images*/)",
    "mimic-iv": "the MIMIC-IV folder (patients, admissions): MIMIC-CXR's sex and age; optional"}
#: NIH findings taken as "Opacity" (decision documented in the Paper D chapter).
NIH_OPACITY = ("Infiltration", "Consolidation", "Pneumonia")


def _lightgbm_defaults() -> dict[str, Any]:
    """The LightGBM probe's settings (those of ``compendium.adapt.probes``'s factory)."""
    import inspect

    from ...adapt.probes import PROBES

    sig = inspect.signature(PROBES.get("lightgbm"))
    return {k: p.default for k, p in sig.parameters.items()
            if k not in ("random_state", "kw") and p.default is not inspect.Parameter.empty}


class PaperDSpec(PaperSpec, notebook="paper_d", paper_models=PAPER_MODELS, datasets=DATASETS,
                 title="Paper D: CXR-Foundation vs MedImageInsight",
                 description="Frozen embeddings + LightGBM on Atelectasis, Edema, Effusion "
                             "and Opacity (MIMIC-CXR, NIH): Table 1, UMAP, k-means silhouette, "
                             "per-group AUROC and the effect of augmented views."):
    """Parameters of Paper D.  Shared parameters: :class:`~compendium.papers.base.PaperSpec`;
    under ``pixels: synthetic`` NIH keeps its real metadata rows with synthetic pixels and the
    synthetic world stands in for MIMIC-CXR."""

    RANGES: ClassVar[Mapping[str, Range]] = {
        **PaperSpec.RANGES, "datasets": Range(min_items=1), "labels": Range(min_items=1),
        "nih_opacity": Range(min_items=1), "n_per_class": Range(10, 1_000_000),
        "interval_sims": Range(10, 1_000_000),
        "test_fraction": Range(0, 1, lo_open=True, hi_open=True), "n_splits": Range(2, 100),
        "synthetic_rows": Range(100, 10_000_000), "k_range": Range(2, 1000, min_items=1),
        "kmeans_n_init": Range(1, 1000), "umap_neighbors": Range(2, 1000)}

    #: cohorts (registry names): Paper D's two datasets
    datasets: list[str] = field(default_factory=lambda: ["mimic-cxr", "nih"])
    #: Table 1's columns in this order; the first one is Fig. 1's
    models: list[str] = field(default_factory=lambda: list(PAPER_MODELS))
    #: Paper D labels to run (Table 1's rows)
    labels: list[str] = field(default_factory=lambda: list(LABELS))
    #: positives and negatives sampled per label (one image per patient)
    n_per_class: int = PAPER_N_PER_CLASS
    #: held-out share of patients
    test_fraction: float = PAPER_TEST_FRACTION
    #: patient-wise cross-validation folds
    n_splits: int = PAPER_N_SPLITS
    #: how Table 1's "mean ± 95 % CI" is built from the folds (readings.yaml), and the
    #: simulated replicates of the paper's cross-validation that weigh the candidates
    ci_reading: str = "se_folds"
    interval_sims: int = 200
    #: which MIMIC-CXR images count as negatives (readings.yaml)
    mimic_negatives: str = "unmentioned_too"
    #: augmented views of every training image (and the with/without comparison)
    augment: bool = True
    #: NIH findings whose union is "Opacity" (see the chapter for the evidence)
    nih_opacity: list[str] = field(default_factory=lambda: list(NIH_OPACITY))
    #: images of the synthetic world standing in for MIMIC-CXR (pixels: synthetic)
    synthetic_rows: int = 8000
    #: age banding of the per-group table (compendium.cohorts.splits.AGE_BANDS)
    age_scheme: str = "paper_a"
    #: cluster numbers tried by k-means; restarts per k (Paper D: 50)
    k_range: list[int] = field(default_factory=lambda: list(range(2, 11)))
    kmeans_n_init: int = 50
    #: UMAP neighbours (Fig. 1)
    umap_neighbors: int = 15
    #: LightGBM settings (the paper does not print its own)
    lightgbm: dict[str, Any] = field(default_factory=_lightgbm_defaults)

    def datasets_needed(self) -> list[str]:
        return [*self.datasets, *(["mimic-iv"] if self.data_roots.get("mimic-iv") else [])]

    def check_paper(self) -> None:
        from ...cohorts.nih import NIH_FINDINGS
        from ...cohorts.splits import age_bands
        from ...encoders import get_entry

        for what, values, allowed in (("datasets", self.datasets, ("mimic-cxr", "nih")),
                                      ("labels", self.labels, LABELS),
                                      ("nih_opacity", self.nih_opacity, NIH_FINDINGS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"{what}: {bad[0] if bad else 'empty'!r} is not allowed "
                                  f"(allowed: {', '.join(allowed)})")
        age_bands(self.age_scheme)
        unknown = set(self.lightgbm) - set(_lightgbm_defaults())
        if unknown:
            raise ConfigError(f"lightgbm: unknown setting {sorted(unknown)[0]!r} "
                              f"(allowed: {', '.join(_lightgbm_defaults())})")
        if self.pixels == "synthetic":
            for p in self.model_plans():
                if get_entry(p.encoder).kind == "embeddings-file":
                    raise ConfigError(
                        f"{p.encoder} reads its vendor tool's embeddings of real images; with "
                        "pixels: synthetic set use_stand_ins: true (its stand-in: "
                        f"{get_entry(p.encoder).demo_standin})")
