"""Spec of ``notebooks/paper_b.ipynb``: the INSPECT CTPA fairness audit (Paper B)."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar, Mapping

from ...config import Range
from ...errors import ConfigError
from ..base import ModelPlan, PaperSpec, plan_model

#: The paper's three encoders, in the order it prints them.
PAPER_MODELS = {"medimageinsight": "MedImageInsight", "medsiglip": "MedSigLIP",
                "biomedclip": "BiomedCLIP"}
#: Toy slice encoders standing in for them on synthetic volumes (embedding sizes in the
#: ratio of the real ones, 1024 : 1152 : 512; the BiomedCLIP stand-in is the weakest).
STAND_INS = {"medimageinsight": "toy-slice-kmeans-512", "medsiglip": "toy-slice-kmeans-576",
             "biomedclip": "toy-slice-kmeans-256"}
#: Task -> (synthetic world's label, INSPECT's label column, how the chapter names it).
TASKS = {
    "pe": ("PE", "pe_positive_nlp", "PE diagnosis"),
    "mortality_1m": ("mortality_1m", "1_month_mortality", "1-month mortality"),
    "mortality_6m": ("mortality_6m", "6_month_mortality", "6-month mortality"),
    "mortality_12m": ("mortality_12m", "12_month_mortality", "12-month mortality"),
    "readmission_1m": ("readmission_1m", "1_month_readmission", "1-month readmission"),
    "readmission_6m": ("readmission_6m", "6_month_readmission", "6-month readmission"),
    "readmission_12m": ("readmission_12m", "12_month_readmission", "12-month readmission"),
    "ph_12m": ("ph_12m", "12_month_PH", "12-month pulmonary hypertension"),
}
#: The protected attributes, as the paper names them.
ATTRIBUTES = {"race": "race/ethnicity", "sex": "gender", "age_group": "age band"}
#: The paper's MLP sweep (hidden sizes; Adam, batch norm, dropout 0.2: compendium.adapt.probes).
MLPS = ("mlp-256-128", "mlp-512-256", "mlp-512-256-128")
DATASETS = {"inspect": "the INSPECT folder (labels, study_mapping, splits tables, CTPA/*.nii.gz, "
                       "person.csv)"}


class PaperBSpec(PaperSpec, notebook="paper_b", paper_models=PAPER_MODELS, datasets=DATASETS,
                 title="Paper B: a fairness audit of MedImageInsight, MedSigLIP and BiomedCLIP "
                       "on INSPECT",
                 description="Frozen slice encoders, mean-pooled CTPA studies and linear probes "
                             "for PE and seven prognostic tasks; per-group AUROC, TPR, FPR and "
                             "underdiagnosis by race/ethnicity, gender and age band; "
                             "mitigations, demographic probing, and the pooling question."):
    """Parameters of Paper B.  Shared parameters: :class:`~compendium.papers.base.PaperSpec`;
    under ``pixels: synthetic`` the synthetic world's CTPA volumes, EHR and demographics
    stand in for INSPECT and :data:`STAND_INS` for the three encoders."""

    RANGES: ClassVar[Mapping[str, Range]] = {
        **PaperSpec.RANGES, "n_studies": Range(50, 1_000_000), "n_slices": Range(2, 1024),
        "slice_size": Range(16, 2048), "emboli": Range(1, 6), "prognosis_strength": Range(0, 20),
        "tasks": Range(min_items=1), "min_group_size": Range(0, 1_000_000),
        "n_permutations": Range(0, 1_000_000), "mlp_epochs": Range(1, 10_000),
        "alphas": Range(0, 100, min_items=1), "adversary_epochs": Range(1, 10_000),
        "baseline_epochs": Range(1, 10_000), "mil_epochs": Range(1, 10_000),
        "defect_bins": Range(1, 20), "sweep_points": Range(3, 10_001)}

    #: the paper's three frozen encoders (registry names): MedImageInsight, MedSigLIP, BiomedCLIP
    models: list[str] = field(default_factory=lambda: list(PAPER_MODELS))
    #: studies of the synthetic world (pixels: synthetic); its own 70/10/20 patient split
    n_studies: int = 1000
    #: axial slices per study, evenly spaced, and their side in pixels
    n_slices: int = 16
    slice_size: int = 64
    #: synthetic world: how strongly frailty drives the prognostic outcomes
    prognosis_strength: float = 3.0
    #: synthetic world: filling defects per PE study (emboli in several lobar branches)
    emboli: int = 1
    #: synthetic world: true states the EHR reflects (frailty: a history of comorbidity)
    ehr_findings: list[str] = field(default_factory=lambda: ["frailty"])
    #: full profile: a CSV of EHR features per study (column impression_id / sample_id)
    ehr_features: str = ""
    #: the eight tasks (keys of TASKS); the first is the diagnostic one
    tasks: list[str] = field(default_factory=lambda: list(TASKS))
    #: the decision threshold behind TPR, FPR and UDR (readings.yaml)
    threshold: str = "youden"
    #: which band an age on an edge (40, 60, 75) belongs to (readings.yaml)
    age_edges: str = "lower_closed"
    #: groups with fewer test studies are flagged and left out of the gaps (readings.yaml)
    min_group_size: int = 100
    #: what the Hispanic disparity's p-value compares Hispanic studies with: "white" or
    #: "rest" (readings.yaml)
    hispanic_reference: str = "white"
    #: permutations of every gap test (the paper: 1,000)
    n_permutations: int = 1000
    #: multiple-comparison correction of the gap p-values (holm, bh, bonferroni)
    correction: str = "holm"
    #: MLP sweep: epochs at most (best validation epoch kept)
    mlp_epochs: int = 60
    #: adversary strengths tried per protected attribute (the paper: 0.5, 1, 2)
    alphas: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    adversary_epochs: int = 60
    #: attributes every mitigation targets
    mitigation_attributes: list[str] = field(default_factory=lambda: list(ATTRIBUTES))
    #: the task-specific CT baseline (slice CNN + GRU) standing in for CT-LRCN
    baseline: bool = True
    baseline_epochs: int = 12
    #: beyond the paper: max and attention-MIL pooling beside mean pooling
    pooling_study: bool = True
    #: tasks of the pooling study (PE and the three 12-month prognoses by default)
    pooling_tasks: list[str] = field(default_factory=lambda: ["pe", "mortality_12m",
                                                              "readmission_12m", "ph_12m"])
    mil_epochs: int = 60
    #: synthetic world: quantile bins of the filling-defect size for the pooling figure
    defect_bins: int = 3
    #: thresholds of the female-male sweep
    sweep_points: int = 101

    def model_plans(self) -> list[ModelPlan]:
        """Paper B's own stand-ins (:data:`STAND_INS`) unless ``stand_ins`` names others."""
        over = {**{m: STAND_INS[m] for m in self.models if m in STAND_INS}, **self.stand_ins}
        return [plan_model(m, use_stand_in=self.use_stand_ins,
                           overrides=over if self.use_stand_ins else None,
                           paper_models=self.PAPER_MODELS) for m in self.models]

    def check_paper(self) -> None:
        from ...audit.stats import CORRECTIONS
        from ...encoders import get_entry
        from ...synthetic.knobs import resolve_knobs  # noqa: F401

        bad = [t for t in self.tasks if t not in TASKS]
        if bad or not self.tasks:
            raise ConfigError(f"tasks: {bad[0] if bad else 'empty'!r} is not allowed "
                              f"(allowed: {', '.join(TASKS)})")
        if self.tasks[0] != "pe":
            raise ConfigError("tasks: the first task must be 'pe' (the paper's diagnostic task)")
        bad = [t for t in self.pooling_tasks if t not in self.tasks]
        if bad:
            raise ConfigError(f"pooling_tasks: {bad[0]!r} is not one of tasks "
                              f"({', '.join(self.tasks)})")
        bad = [a for a in self.mitigation_attributes if a not in ATTRIBUTES]
        if bad:
            raise ConfigError(f"mitigation_attributes: {bad[0]!r} is not allowed "
                              f"(allowed: {', '.join(ATTRIBUTES)})")
        if self.correction not in CORRECTIONS:
            raise ConfigError(f"correction {self.correction!r} (allowed: {', '.join(CORRECTIONS)})")
        bad = [f for f in self.ehr_findings if f not in ("PE", "frailty")]
        if bad:
            raise ConfigError(f"ehr_findings: {bad[0]!r} is not allowed (allowed: PE, frailty)")
        if self.pixels == "synthetic":
            for p in self.model_plans():
                if get_entry(p.encoder).kind == "embeddings-file":
                    raise ConfigError(
                        f"{p.encoder} reads its vendor tool's embeddings of real slices; with "
                        "pixels: synthetic set use_stand_ins: true (its stand-in: "
                        f"{STAND_INS.get(p.model, get_entry(p.encoder).demo_standin)})")

    def check_inputs(self, encoders) -> None:
        """Besides the data folder and every weight: the EHR features file (full)."""
        from pathlib import Path

        from ...errors import DataNotFoundError

        missing: list[str] = []
        try:
            super().check_inputs(encoders)
        except DataNotFoundError as exc:
            text = str(exc)
            head, _, rest = text.partition(": ")
            missing = rest.rsplit(" (set them", 1)[0].split(" | ")
        if self.pixels == "real" and not (self.ehr_features and
                                          Path(self.ehr_features).expanduser().is_file()):
            missing.append("ehr_features (a CSV of EHR features per study, impression_id + "
                           "numeric columns, from the INSPECT EHR"
                           + (f"; {self.ehr_features} is not a file)" if self.ehr_features
                              else ")"))
        if missing:
            raise DataNotFoundError(
                f"{len(missing)} input(s) missing: " + " | ".join(missing)
                + " (set them in a params file, --params FILE, or with --set)")
