"""Spec of ``notebooks/paper_d.ipynb``: CXR-Foundation vs MedImageInsight (Paper D)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError, DataNotFoundError
from ..notebook import NotebookSpec, register_notebook

_LABELS = ("Atelectasis", "Edema", "Effusion", "Opacity")
_DATASETS = {"mimic-cxr": "the MIMIC-CXR-JPG v2 folder (PhysioNet, credentialed)",
             "nih": "the NIH ChestX-ray14 folder (Data_Entry_2017*.csv and images*/)"}


def _default_knobs() -> dict[str, dict[str, float]]:
    from ..synthetic.knobs import default_knobs

    return {k: {n: v for n, v in g.to_dict().items() if v} for k, g in default_knobs().groups.items()}


@register_notebook(
    "paper_d", title="Paper D: CXR-Foundation vs MedImageInsight",
    description="Frozen embeddings + LightGBM on Atelectasis, Edema, Effusion and Opacity "
                "(MIMIC-CXR, NIH): Table 1, UMAP, k-means silhouette, per-group AUROC and the "
                "effect of augmented views.")
@dataclass(frozen=True)
class PaperDSpec(NotebookSpec):
    #: cohorts (registry names): Paper D's two datasets
    datasets: list[str] = field(default_factory=lambda: ["mimic-cxr", "nih"])
    #: encoders (registry names), Table 1's columns in this order; the first one is Fig. 1's
    models: list[str] = field(default_factory=lambda: ["medimageinsight", "cxr-foundation"])
    #: Paper D labels to run (Table 1's rows)
    labels: list[str] = field(default_factory=lambda: list(_LABELS))
    #: "real": the datasets at ``roots``; "synthetic": NIH rows with synthetic pixels and the
    #: synthetic world in place of MIMIC-CXR (demo, smoke)
    pixels: Literal["real", "synthetic"] = "synthetic"
    #: dataset root per cohort (pixels: real)
    roots: dict[str, str] = field(default_factory=dict)
    #: MIMIC-IV folder (patients/admissions) for MIMIC-CXR's sex and age; "" for none
    mimic_iv: str = ""
    #: weights path per model: the vendor tool's .npz for medimageinsight / cxr-foundation
    weights: dict[str, str] = field(default_factory=dict)
    #: random-init toy encoders (smoke: no pretraining)
    tiny_encoders: bool = False
    #: positives and negatives sampled per label (one image per patient)
    n_per_class: int = 1000
    #: held-out share of patients
    test_fraction: float = 0.2
    #: patient-wise cross-validation folds
    n_folds: int = 5
    #: five augmented views per training image (and the with/without comparison)
    augment: bool = True
    #: bootstrap resamples of the intervals of the held-out and per-group tables
    n_bootstrap: int = 1000
    #: NIH findings whose union is "Opacity" (see the chapter for the evidence)
    nih_opacity: list[str] = field(default_factory=lambda: ["Infiltration", "Consolidation",
                                                            "Pneumonia"])
    #: images of the synthetic world standing in for MIMIC-CXR (pixels: synthetic)
    synthetic_rows: int = 8000
    #: per-group bias knobs of the synthetic pixels ("column=value" -> {knob: value})
    bias_knobs: dict[str, dict[str, float]] = field(default_factory=_default_knobs)
    #: age banding of the per-group table (compendium.cohorts.splits.AGE_BANDS)
    age_scheme: str = "paper_a"
    #: cluster numbers tried by k-means; restarts per k (Paper D: 50)
    k_range: list[int] = field(default_factory=lambda: list(range(2, 11)))
    kmeans_n_init: int = 50
    #: UMAP neighbours (Fig. 1)
    umap_neighbors: int = 15
    #: images per encoder batch
    batch_size: int = 64

    def check(self) -> None:
        from ..cohorts.nih import NIH_FINDINGS
        from ..cohorts.splits import age_bands
        from ..encoders import get_entry
        from ..synthetic.knobs import resolve_knobs

        for what, values, allowed in (("datasets", self.datasets, tuple(_DATASETS)),
                                      ("labels", self.labels, _LABELS),
                                      ("nih_opacity", self.nih_opacity, NIH_FINDINGS)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"paper_d: {what}: {bad[0] if bad else 'empty'!r} is not "
                                  f"allowed (allowed: {', '.join(allowed)})")
        if not self.models:
            raise ConfigError("paper_d: models is empty")
        entries = [get_entry(m) for m in self.models]
        age_bands(self.age_scheme)
        resolve_knobs(self.bias_knobs)
        if self.n_per_class < 10 or self.n_folds < 2 or self.kmeans_n_init < 1:
            raise ConfigError("paper_d: need n_per_class >= 10, n_folds >= 2, kmeans_n_init >= 1")
        if not self.k_range or min(self.k_range) < 2:
            raise ConfigError(f"paper_d: k_range must hold cluster numbers >= 2, got {self.k_range}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"paper_d: test_fraction must lie in (0, 1), got {self.test_fraction}")
        if self.pixels == "synthetic":
            for e in entries:
                if e.kind == "embeddings-file":
                    raise ConfigError(
                        f"paper_d: {e.name} reads its vendor tool's embeddings of real images; "
                        f"with pixels: synthetic use its stand-in {e.demo_standin!r}")
            return
        missing = [f"roots.{d} ({_DATASETS[d]})" for d in self.datasets
                   if not (self.roots.get(d) and Path(self.roots[d]).expanduser().is_dir())]
        for e in entries:
            path = self.weights.get(e.name)
            if e.kind == "embeddings-file" and not (path and Path(path).expanduser().is_file()):
                missing.append(f"weights.{e.name} (the .npz its vendor tool wrote for every "
                               "sampled image" + (" and its five augmented views" if self.augment
                                                  else "") + ")")
            elif path and not Path(path).expanduser().exists():
                missing.append(f"weights.{e.name} ({path} does not exist)")
        if self.mimic_iv and not Path(self.mimic_iv).expanduser().is_dir():
            missing.append(f"mimic_iv ({self.mimic_iv} is not a folder)")
        if missing:
            raise DataNotFoundError(
                f"paper_d (pixels: real) is missing {'; '.join(missing)}; set them in a params "
                "file (--params FILE) or with --set (see book/papers/paper_d.md)")
