"""Spec of ``notebooks/paper_e.ipynb``: MedCAM, CXR-EHR alignment of a pretrained image
encoder, its baselines and a subgroup audit (Paper E)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, ClassVar

from ...config import Range
from ...errors import ConfigError
from ..base import PaperSpec

#: The registry encoders of the paper's models (what ``full`` builds), as the paper prints them.
PAPER_MODELS = {
    "resnet50-random": "ResNet-50", "resnet50-barlowtwins-cxr": "BarlowTwins-CXR",
    "eva-x-tiny": "EVA-X-T", "eva-x-small": "EVA-X-S", "convirt": "ConVIRT",
    "gloria": "GLoRIA", "medclip-rn50": "MedCLIP-ResNet", "medclip-vit": "MedCLIP-ViT"}

#: Every row of Tables 2-4: id -> (group as printed, model as printed, pretraining, encoder).
#: ``pretraining``: ``supervised`` (none), ``image`` (image-only self-supervised),
#: ``image-ehr:<objective>`` (trained from scratch on the image-EHR pairs), ``medcam``
#: (MedCAM's alignment of BarlowTwins-CXR), ``image-text:<objective>``.
STRATEGIES: dict[str, tuple[str, str, str, str]] = {
    "supervised": ("Supervised", "ResNet-50", "supervised", "resnet50-random"),
    "convirt-ehr": ("Image-EHR", "ConVIRT", "image-ehr:convirt", "resnet50-random"),
    "vicreg-ehr": ("Image-EHR", "VICReg", "image-ehr:vicreg", "resnet50-random"),
    "align-ehr": ("Image-EHR", "ALIGN", "image-ehr:align", "resnet50-random"),
    "barlowtwins-cxr": ("Image-Only", "BarlowTwins-CXR", "image", "resnet50-barlowtwins-cxr"),
    "eva-x-t": ("Image-Only", "EVA-X-T", "image", "eva-x-tiny"),
    "eva-x-s": ("Image-Only", "EVA-X-S", "image", "eva-x-small"),
    "medcam": ("Image-EHR Adaptation", "MedCAM", "medcam", "resnet50-barlowtwins-cxr"),
    "convirt": ("Image-Text", "ConVIRT", "image-text:convirt", "convirt"),
    "gloria": ("Image-Text", "GLoRIA", "image-text:gloria", "gloria"),
    "medclip-rn50": ("Image-Text", "MedCLIP-ResNet", "image-text:medclip", "medclip-rn50"),
    "medclip-vit": ("Image-Text", "MedCLIP-ViT", "image-text:medclip", "medclip-vit"),
}
#: Strategies Tables 3-4 show on the out-of-distribution datasets (the paper reports no OOD
#: numbers for the others).
OOD_STRATEGIES = ("barlowtwins-cxr", "eva-x-t", "eva-x-s", "medcam", "convirt", "gloria",
                  "medclip-rn50", "medclip-vit")
#: Table 1's splits (train, val, test) per dataset.
SPLITS = {"mimic-cxr": (0.60, 0.20, 0.20), "nih": (0.70, 0.10, 0.20),
          "vindr": (0.67, 0.16, 0.17), "chexpert": (0.996, 0.003, 0.001)}
DATASET_NAMES = {"mimic-cxr": "MIMIC-CXR", "nih": "NIH", "vindr": "VinDr-CXR",
                 "chexpert": "CheXpert"}
#: Each dataset's findings that the synthetic world draws (label_set: dataset).
DATASET_LABELS = {
    "mimic-cxr": ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
                  "Pneumothorax", "Opacity", "Pneumonia"),
    "nih": ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
            "Pneumothorax", "Pneumonia", "Nodule", "Mass"),
    "vindr": ("Atelectasis", "Cardiomegaly", "Consolidation", "Effusion", "Pneumothorax",
              "Opacity", "Nodule"),
    "chexpert": ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion"),
}
#: The findings all four datasets label (label_set: shared).
SHARED_LABELS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Effusion", "Pneumothorax")
DATASETS = {
    "mimic-cxr": "the MIMIC-CXR-JPG v2 folder (PhysioNet, credentialed)",
    "mimic-iv-ehr": "the MIMIC-IV benchmark extraction (<subject_id>/stays.csv, "
                    "episode<k>_timeseries.csv; PhysioNet, credentialed)",
    "nih": "the NIH ChestX-ray14 folder (Data_Entry_2017*.csv and images*/)",
    "vindr": "the VinDr-CXR folder (PhysioNet, credentialed)",
    "chexpert": "the CheXpert-v1.0 folder (Stanford AIMI)"}


def _default_shift() -> dict[str, dict[str, float]]:
    """Acquisition and prevalence shifts of the synthetic out-of-distribution worlds."""
    return {"nih": {"noise": 0.02, "contrast": 0.1},
            "vindr": {"noise": 0.03, "contrast": 0.2, "prevalence": -0.3},
            "chexpert": {"noise": 0.01, "ap_portable": 0.2, "prevalence": 0.3}}


class PaperESpec(PaperSpec, notebook="paper_e", paper_models=PAPER_MODELS, datasets=DATASETS,
                 title="Paper E: MedCAM, CXR-EHR alignment",
                 description="Global (InfoNCE) and top-k local alignment of a pretrained "
                             "chest-X-ray encoder with EHR time series, fine-tuned on "
                             "MIMIC-CXR, NIH, VinDr-CXR and CheXpert against image-only, "
                             "image-EHR and image-text baselines (Tables 2-4, Fig. 1); "
                             "ablations and a subgroup audit."):
    """Parameters of Paper E.  Shared parameters: :class:`~compendium.papers.base.PaperSpec`.

    Under ``pixels: synthetic`` every dataset is a synthetic world (MIMIC-CXR with linked
    76-feature EHR; NIH and CheXpert over their real metadata rows' ages and sexes, VinDr
    parametric) and every model is a small tower pretrained on the synthetic world by the
    model's recipe (see the chapter)."""

    RANGES: ClassVar[Mapping[str, Range]] = {
        **PaperSpec.RANGES, "strategies": Range(min_items=1), "datasets": Range(min_items=1),
        "image_size": Range(16, 1024),
        "n_pretrain": Range(50, 10_000_000), "min_eval_rows": Range(0, 100_000),
        "ehr_hours": Range(2, 10_000), "tau": Range(0, 10, lo_open=True),
        "k": Range(1, 10_000), "align_epochs": Range(1, 10_000), "align_lr": Range(0, 1, lo_open=True),
        "ehr_hidden": Range(1, 4096), "proj_dim": Range(1, 4096), "pretrain_epochs": Range(1, 10_000),
        "pretrain_lr": Range(0, 1, lo_open=True), "cnn_width": Range(1, 512),
        "lrs": Range(0, 1, lo_open=True, min_items=1), "max_epochs": Range(1, 100_000),
        "eval_every": Range(1, 10_000), "patience": Range(1, 10_000),
        "ft_batch_size": Range(2, 65_536), "ablation_k": Range(1, 10_000),
        "ablation_tau": Range(0, 10, lo_open=True), "missing_levels": Range(0, 1, min_items=2),
        "n_permutations": Range(0, 1_000_000), "min_group_rows": Range(2, 1_000_000)}

    #: rows of Tables 2-4 to run (ids of compendium.papers.paper_e.spec.STRATEGIES)
    strategies: list[str] = field(default_factory=lambda: list(STRATEGIES))
    #: of those, the ones also fine-tuned on the out-of-distribution datasets (Tables 3-4;
    #: empty: all of OOD_STRATEGIES; ours: a subset is a budget, e.g. the rehearsal's)
    ood_strategies: list[str] = field(default_factory=list)
    #: registry encoders of the paper's models (full; the synthetic world uses small towers)
    models: list[str] = field(default_factory=lambda: list(PAPER_MODELS))
    #: datasets, MIMIC-CXR first (the only one with EHR)
    datasets: list[str] = field(default_factory=lambda: list(SPLITS))
    #: label set of each dataset's multi-label task (readings.yaml)
    label_set: str = "dataset"
    #: pixels: real: CheXpert's uncertain (-1) labels of MIMIC-CXR and CheXpert as positive
    #: (ones) or negative (zeros) (readings.yaml); an unmentioned finding is negative
    uncertain_labels: str = "ones"
    #: image side: of the synthetic world's images; under pixels: real, of the uint8 pixel
    #: cache the images stream from (each model's preprocessing resizes from it)
    image_size: int = 32
    #: rows of each synthetic dataset
    n_rows: dict[str, int] = field(default_factory=lambda: {
        "mimic-cxr": 600, "nih": 360, "vindr": 360, "chexpert": 360})
    #: images (and reports) of the synthetic pretraining corpus (image-only and image-text)
    n_pretrain: int = 1200
    #: least rows of a validation or test split (Table 1's CheXpert 0.1 % is empty at demo size)
    min_eval_rows: int = 0
    #: acquisition / prevalence shift (knob values for everyone) of each synthetic OOD world
    ood_shift: dict[str, dict[str, float]] = field(default_factory=_default_shift)
    #: hours of EHR before the image (2-hour bins)
    ehr_hours: int = 48
    #: MedCAM: temperature, top-k (section 4.1: 10), attention and what alignment updates
    tau: float = 0.1
    k: int = 10
    attention: str = "similarity"
    update: str = "full"
    align_epochs: int = 10
    align_lr: float = 1e-3
    ehr_hidden: int = 64
    proj_dim: int = 64
    #: synthetic-world pretraining of the small towers (epochs, learning rate, CNN width)
    pretrain_epochs: int = 10
    pretrain_lr: float = 1e-3
    cnn_width: int = 8
    #: fine-tuning (section 4.3): learning-rate grid, epochs, validation every k epochs
    lrs: list[float] = field(default_factory=lambda: [1e-2, 1e-3, 1e-5])
    max_epochs: int = 200
    eval_every: int = 5
    patience: int = 3
    ft_batch_size: int = 64
    #: ablations (ours): which loss terms, k and tau
    ablation: bool = True
    ablation_k: list[int] = field(default_factory=lambda: [1, 5, 10])
    ablation_tau: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.5])
    #: EHR missingness experiment (ours): group whose measurements go missing, and how often
    missing_group: str = "sex=F"
    missing_levels: list[float] = field(default_factory=lambda: [0.0, 0.6])
    #: subgroup audit
    attributes: list[str] = field(default_factory=lambda: ["sex", "age_group", "race"])
    #: groups smaller than this are left out of the per-group audit
    min_group_rows: int = 20
    n_permutations: int = 1000

    def datasets_needed(self) -> list[str]:
        need = list(self.datasets)
        if "mimic-cxr" in need:
            need.insert(need.index("mimic-cxr") + 1, "mimic-iv-ehr")
        return need

    def strategy_encoders(self) -> list[str]:
        return list(dict.fromkeys(STRATEGIES[s][3] for s in self.strategies))

    def check_paper(self) -> None:
        from ...synthetic.knobs import KNOB_NAMES, _split_key

        for what, values, allowed in (("strategies", self.strategies, STRATEGIES),
                                      ("datasets", self.datasets, SPLITS),
                                      ("attributes", self.attributes, ("sex", "age_group", "race"))):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"{what}: {bad[0] if bad else 'empty'!r} is not allowed "
                                  f"(allowed: {', '.join(allowed)})")
        bad = [s for s in self.ood_strategies
               if s not in OOD_STRATEGIES or s not in self.strategies]
        if bad:
            raise ConfigError(f"ood_strategies: {bad[0]!r} is not one of the strategies run on "
                              f"the out-of-distribution datasets ("
                              f"{', '.join(s for s in OOD_STRATEGIES if s in self.strategies)})")
        if self.datasets[0] != "mimic-cxr":
            raise ConfigError("datasets: the first must be mimic-cxr (the image-EHR pairs)")
        if "medcam" not in self.strategies:
            raise ConfigError("strategies must include medcam")
        missing = [s for s in self.strategy_encoders() if s not in self.models]
        if missing:
            raise ConfigError(f"models: {missing[0]!r} is needed by the strategies "
                              f"(add it to models or drop its strategies)")
        for d, shift in self.ood_shift.items():
            if d not in SPLITS:
                raise ConfigError(f"ood_shift: unknown dataset {d!r}")
            bad = [k for k in shift if k not in KNOB_NAMES]
            if bad:
                raise ConfigError(f"ood_shift.{d}: unknown knob {bad[0]!r} "
                                  f"(allowed: {', '.join(KNOB_NAMES)})")
        unknown = [d for d in self.n_rows if d not in SPLITS]
        if unknown:
            raise ConfigError(f"n_rows: unknown dataset {unknown[0]!r}")
        Range(50, 10_000_000).check(self.n_rows, "n_rows")
        for d, shift in self.ood_shift.items():
            Range(-3, 3).check(shift, f"ood_shift.{d}")
        _split_key(self.missing_group)

    def strategy_rows(self) -> list[dict[str, Any]]:
        """One dict per strategy of the run: id, group, shown name, pretraining, encoder."""
        return [{"strategy": s, "group": STRATEGIES[s][0], "model": STRATEGIES[s][1],
                 "pretraining": STRATEGIES[s][2], "encoder": STRATEGIES[s][3]}
                for s in self.strategies]
