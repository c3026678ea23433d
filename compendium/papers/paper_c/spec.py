"""Spec of ``notebooks/paper_c.ipynb``: label source and "No Finding" FPR gaps (Paper C)."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar, Mapping

from ...config import Range
from ...errors import ConfigError, DataNotFoundError
from ..base import PaperSpec

#: The paper's four classifiers, in the order of its abstract (registry name -> its words).
PAPER_MODELS = {"densenet121": "Supervised CNN", "rad-dino": "RadDino",
                "cxr-foundation": "Google CXR Foundation", "dinov2-base": "DINOv2"}
#: The two label sources (the paper: "rule-based CheXpert labels and LLM-extracted labels").
LABEL_SOURCES = {"chexpert": "CheXpert (rule-based)", "llm": "LLM-extracted"}
#: The three signed gaps, as the paper writes them: attribute -> (group a, group b).
PAIRS = {"race": ("Black", "White"), "sex": ("F", "M"), "age_group": ("18-40", "80+")}
#: The paper's split.
PAPER_SPLIT = (0.70, 0.15, 0.15)
DATASETS = {
    "mimic-cxr": "the MIMIC-CXR-JPG v2 folder (PhysioNet, credentialed): images, metadata and "
                 "mimic-cxr-2.0.0-chexpert.csv",
    "mimic-iv": "the MIMIC-IV folder (patients, admissions): sex, age at study and race"}


class PaperCSpec(PaperSpec, notebook="paper_c", paper_models=PAPER_MODELS, datasets=DATASETS,
                 title="Paper C: label source and 'No Finding' fairness gaps",
                 description="Four 'No Finding' classifiers (supervised CNN, RAD-DINO, CXR "
                             "Foundation, DINOv2 heads) trained on CheXpert rule-based vs "
                             "model-extracted labels; FPR per group, signed gaps with patient "
                             "bootstrap intervals, the label source's effect; a real-report "
                             "label audit on Open-i."):
    """Parameters of Paper C.  Shared parameters: :class:`~compendium.papers.base.PaperSpec`.
    ``pixels: synthetic`` runs the synthetic world (synthetic reports labelled by the
    compendium's labellers); ``pixels: real`` reads MIMIC-CXR-JPG, its CheXpert labels and the
    user's LLM labels (``llm_labels``)."""

    RANGES: ClassVar[Mapping[str, Range]] = {
        **PaperSpec.RANGES, "label_sources": Range(min_items=1),
        "synthetic_rows": Range(200, 10_000_000), "labelled_reports": Range(20, 10_000_000),
        "finetune_epochs": Range(1, 1000), "finetune_lr": Range(0, 1, lo_open=True),
        "logreg_C": Range(0, 1e6, lo_open=True), "openi_reports": Range(0, 100_000),
        "openi_labelled": Range(20, 100_000), "text_batch_size": Range(1, 4096),
        "num_workers": Range(0, 256)}

    #: the paper's four classifiers (registry names): the supervised CNN and the heads on
    #: RAD-DINO, CXR-Foundation and DINOv2 embeddings
    models: list[str] = field(default_factory=lambda: list(PAPER_MODELS))
    #: label sources trained on (and, by ``eval_labels``, evaluated on)
    label_sources: list[str] = field(default_factory=lambda: list(LABEL_SOURCES))
    #: which labels the test FPRs are computed against (readings.yaml)
    eval_labels: str = "same_source"
    #: how "predicted No Finding" is decided from a score (readings.yaml)
    threshold: str = "youden_val"
    #: the labeller standing in for the LLM under pixels: synthetic (compendium.labels)
    model_labeller: str = "minilm-head"
    #: its parameters (e.g. {model_path: /models/x} for hf-head)
    model_labeller_params: dict[str, str] = field(default_factory=dict)
    #: reports with known labels that train the model-based labeller (training split)
    labelled_reports: int = 500
    #: full profile: the user's LLM labels (CSV: study_id, No Finding; compendium.labels.io)
    llm_labels: str = ""
    #: synthetic world: images, and whose demographics its rows copy (nih, chexpert)
    synthetic_rows: int = 4000
    demographics: str = "chexpert"
    #: the supervised CNN: epochs and learning rate of end-to-end training
    finetune_epochs: int = 8
    finetune_lr: float = 1e-3
    #: the heads on frozen embeddings: logistic regression's inverse regularisation
    logreg_C: float = 1.0
    #: multiple-comparison correction of the label-source tests (holm, bh, bonferroni, none)
    correction: str = "holm"
    #: Open-i: reports in the audit (0: all), reports whose MeSH label trains the model head
    openi_reports: int = 0
    openi_labelled: int = 600
    #: sentences per batch of the text encoder
    text_batch_size: int = 64
    #: processes that read and preprocess image batches while the CNN trains (0: the main
    #: process; images stream from the pixel cache either way)
    num_workers: int = 0

    def datasets_needed(self) -> list[str]:
        return list(self.DATASETS)

    def check_paper(self) -> None:
        from ...audit.stats import CORRECTIONS
        from ...labels import list_labellers

        for what, values, allowed in (("label_sources", self.label_sources, LABEL_SOURCES),):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ConfigError(f"{what}: {bad[0] if bad else 'empty'!r} is not allowed "
                                  f"(allowed: {', '.join(allowed)})")
        if self.model_labeller not in list_labellers():
            raise ConfigError(f"model_labeller: unknown labeller {self.model_labeller!r} "
                              f"(allowed: {', '.join(list_labellers())})")
        if self.demographics not in ("nih", "chexpert", "parametric"):
            raise ConfigError(f"demographics: {self.demographics!r} (allowed: nih, chexpert, "
                              "parametric)")
        if self.correction != "none" and self.correction not in CORRECTIONS:
            raise ConfigError(f"correction: {self.correction!r} (allowed: none, "
                              f"{', '.join(CORRECTIONS)})")

    def check_inputs(self, encoders) -> None:
        """The shared check (data folders, weights) plus, under ``pixels: real``, the LLM
        labels file: one error naming everything missing."""
        from pathlib import Path

        missing = []
        try:
            super().check_inputs(encoders)
        except DataNotFoundError as exc:
            missing.append(str(exc))
        if self.pixels == "real" and "llm" in self.label_sources:
            if not self.llm_labels:
                missing.append(
                    "llm_labels is not set: give the CSV of LLM-extracted labels (columns "
                    "study_id and 'No Finding', values 1/0/-1/empty), e.g. written by "
                    "'compendium labels REPORTS --labeller hf-head --param model_path=DIR "
                    "--train LABELLED.csv --out llm.csv'")
            elif not Path(self.llm_labels).expanduser().is_file():
                missing.append(f"llm_labels: {self.llm_labels} is not a file")
        if missing:
            raise DataNotFoundError(" | ".join(missing))
