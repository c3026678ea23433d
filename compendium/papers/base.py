"""What every paper stands on: shared parameters, the models a run uses, and its inputs.

A paper's spec derives from :class:`PaperSpec`, so that the parameters every paper has mean
the same thing in every notebook:

========================  ====================================================================
``pixels``                ``"synthetic"`` (the synthetic world's pixels; demo, smoke) or
                          ``"real"`` (the user's images under ``data_roots``; full)
``data_roots``            dataset (cohort registry name) -> local folder, for ``pixels: real``
``world_seed``, ``knobs`` the synthetic world's seed and per-group bias knobs (``"default"``,
                          ``"zero"`` or a mapping ``{"sex=F": {"soft_tissue": 0.5}, ...}``)
``models``                the paper's models (encoder registry names), in the paper's order
``use_stand_ins``         run each model's toy stand-in instead (the registry's
                          ``demo_standin``; the only way to run on a CPU without weights)
``stand_ins``             model -> toy, overriding the registry's stand-in
``weights``               encoder -> local weights file or folder (else the HF cache)
``pretrained``            False: random-init encoders (smoke: wiring only)
``device``, ``threads``   where torch runs (:mod:`compendium.runtime`)
``batch_size``            images per encoder batch
``n_bootstrap``           bootstrap resamples of every interval
========================  ====================================================================

:meth:`PaperSpec.check` validates all of them before a kernel starts, and for
``pixels: real`` checks that every data root and every weight the run needs is on disk,
raising one :class:`~compendium.errors.DataNotFoundError` that names everything missing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping, Sequence

from ..config import SEED_MAX, Range
from ..errors import ConfigError, DataNotFoundError
from ..notebook import NotebookSpec
from ..synthetic.knobs import Knobs



@dataclasses.dataclass(frozen=True)
class PaperSpec(NotebookSpec):
    """Parameters shared by every paper's notebook (see the module docstring).

    A paper's spec is declared in one statement, which registers it for ``compendium run``
    and makes it a frozen dataclass::

        class PaperXSpec(PaperSpec, notebook="paper_x", title="Paper X: ...",
                         description="...", paper_models={"medsiglip": "MedSigLIP"},
                         datasets={"inspect": "the INSPECT folder"}):
            n_splits: int = 5
    """

    #: the paper's models as it prints them (registry name -> shown name)
    PAPER_MODELS: ClassVar[Mapping[str, str]] = {}
    #: datasets (cohort registry names) that ``pixels: real`` reads, with what each folder is
    DATASETS: ClassVar[Mapping[str, str]] = {}
    #: the notebook (and paper package) name
    NOTEBOOK: ClassVar[str] = ""
    #: allowed ranges of the shared parameters (a paper adds its own: ``{**PaperSpec.RANGES,
    #: ...}``); checked by ``Spec.from_dict`` before a kernel starts
    RANGES: ClassVar[Mapping[str, Range]] = {
        "world_seed": Range(0, SEED_MAX), "threads": Range(0, 1024),
        "batch_size": Range(1, 65536), "n_bootstrap": Range(0, 1_000_000),
        "models": Range(min_items=1)}

    def __init_subclass__(cls, *, notebook: str | None = None, title: str = "",
                          description: str = "", paper_models: Mapping[str, str] | None = None,
                          datasets: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if paper_models is not None:
            cls.PAPER_MODELS = dict(paper_models)
        if datasets is not None:
            cls.DATASETS = dict(datasets)
        if notebook is not None:
            from ..notebook import register_notebook

            cls.NOTEBOOK = notebook

            register_notebook(notebook, title=title, description=description)(
                dataclasses.dataclass(frozen=True)(cls))

    #: "synthetic": the synthetic world's pixels (demo, smoke); "real": the user's images
    #: under data_roots (full)
    pixels: Literal["synthetic", "real"] = "synthetic"
    #: dataset (cohort registry name) -> local folder, read under pixels: real
    data_roots: dict[str, str] = field(default_factory=dict)
    #: seed of the synthetic world (its patients, pixels and labels)
    world_seed: int = 0
    #: per-group bias knobs of the synthetic world: "default", "zero" or a mapping
    #: {"sex=F": {"soft_tissue": 0.5}, ...} (see `compendium synthetic --help`)
    knobs: Knobs = "default"
    #: the paper's models (encoder registry names), in the paper's order
    models: list[str] = field(default_factory=list)
    #: run each model's toy stand-in instead (the only way to run on a CPU without weights)
    use_stand_ins: bool = True
    #: model -> toy encoder, overriding the registry's stand-in
    stand_ins: dict[str, str] = field(default_factory=dict)
    #: encoder -> local weights file or folder (else the Hugging Face cache)
    weights: dict[str, str] = field(default_factory=dict)
    #: false: random-init encoders (smoke: wiring only)
    pretrained: bool = True
    #: where torch runs: "auto", "cpu", "cuda", "cuda:N" or "mps"
    device: str = "auto"
    #: torch CPU threads (0: torch's default)
    threads: int = 0
    #: images per encoder batch
    batch_size: int = 64
    #: bootstrap resamples of every interval
    n_bootstrap: int = 1000

    # ------------------------------------------------------------------ derived
    def model_plans(self) -> list["ModelPlan"]:
        """The models of this run: which encoder runs for each paper model, and its label."""
        return [plan_model(m, use_stand_in=self.use_stand_ins, overrides=self.stand_ins,
                           paper_models=self.PAPER_MODELS) for m in self.models]

    def encoders_needed(self) -> list[str]:
        """Every encoder the run builds (registry names, each once)."""
        return list(dict.fromkeys(p.encoder for p in self.model_plans()))

    def datasets_needed(self) -> list[str]:
        """Datasets whose folder the run reads (``pixels: real``); override per paper."""
        return list(self.DATASETS)

    def synthetic_data(self) -> bool:
        """The run's numbers are synthetic exactly when its pixels are (``pixels``)."""
        return self.pixels == "synthetic"

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        from ..encoders import get_entry
        from ..synthetic.knobs import resolve_knobs

        if not self.models:
            raise ConfigError("models is empty")
        for name in self.models:
            get_entry(name)
        for name in self.stand_ins:
            if name not in self.models:
                raise ConfigError(f"stand_ins: {name!r} is not one of models "
                                  f"({', '.join(self.models)})")
        self.model_plans()                  # unknown / non-toy stand-ins raise here
        for name in self.weights:
            get_entry(name)
        from ..runtime import resolve_device

        if self.device != "auto":
            resolve_device(self.device)
        resolve_knobs(self.knobs)
        unknown = [d for d in self.data_roots if d not in self.DATASETS]
        if unknown:
            raise ConfigError(f"data_roots: unknown dataset {unknown[0]!r} "
                              f"(allowed: {', '.join(self.DATASETS)})")
        if self.NOTEBOOK:
            from .readings import check_readings

            check_readings(self.NOTEBOOK, self)
        self.check_paper()
        self.check_inputs(self.encoders_needed())

    def check_paper(self) -> None:
        """Paper-specific checks of parameter values (override)."""

    def check_inputs(self, encoders: Sequence[str]) -> None:
        """Under ``pixels: real`` every data folder, and for every pretrained non-toy encoder
        its weights, must be on this machine: one error names everything missing."""
        from ..encoders import get_entry
        from ..encoders.weights import MissingWeightsError, find_weights

        missing: list[str] = []
        if self.pixels == "real":
            for d in self.datasets_needed():
                root = self.data_roots.get(d, "")
                if not root:
                    missing.append(f"data_roots.{d} ({self.DATASETS[d]}) is not set")
                elif not Path(root).expanduser().is_dir():
                    missing.append(f"data_roots.{d}: {root} is not a folder")
        for name in dict.fromkeys(encoders):
            entry = get_entry(name)
            path = self.weights.get(name)
            if entry.kind == "embeddings-file":
                if not (path and Path(path).expanduser().is_file()):
                    missing.append(f"weights.{name} (the .npz its vendor tool wrote"
                                   f"{'' if not path else f'; {path} is not a file'})")
                continue
            if entry.kind == "toy" or not self.pretrained or (
                    entry.weights == "random-init" and not path):
                continue
            try:
                find_weights(entry, path or None)
            except MissingWeightsError as exc:
                missing.append(str(exc))
        if missing:
            raise DataNotFoundError(
                f"{len(missing)} input(s) missing: " + " | ".join(missing)
                + " (set them in a params file, --params FILE, or with --set)")


@dataclasses.dataclass(frozen=True)
class ModelPlan:
    """One model of a paper in one run.

    ``model`` is the paper's model (registry name), ``encoder`` what runs (the model itself or
    its toy stand-in), ``paper_name`` how the paper prints it, ``label`` how this run shows it
    (``"toy-clip-vit (stand-in for MedCLIP-ViT)"`` for a stand-in).
    """

    model: str
    encoder: str
    paper_name: str
    label: str

    @property
    def is_stand_in(self) -> bool:
        return self.encoder != self.model


def plan_model(model: str, *, use_stand_in: bool, overrides: Mapping[str, str] | None = None,
               paper_models: Mapping[str, str] | None = None) -> ModelPlan:
    """The :class:`ModelPlan` of ``model`` (stand-ins from :func:`compendium.encoders.stand_in`)."""
    from ..encoders import get_entry, stand_in

    get_entry(model)
    shown = dict(paper_models or {}).get(model, model)
    if not use_stand_in:
        if overrides:
            raise ConfigError("stand_ins is set but use_stand_ins is false")
        return ModelPlan(model, model, shown, shown)
    enc = stand_in(model, overrides)
    label = shown if enc == model else f"{enc} (stand-in for {shown})"
    return ModelPlan(model, enc, shown, label)


def load_plan_encoder(plan: ModelPlan, cfg: PaperSpec, *, name: str | None = None,
                      progress: bool = True):
    """Build the encoder of ``plan`` (or encoder ``name``) with the run's shared settings."""
    from ..encoders import load_encoder

    enc = name or plan.encoder
    return load_encoder(enc, pretrained=cfg.pretrained, weights=cfg.weights.get(enc) or None,
                        device=cfg.device, seed=cfg.seed, progress=progress)





def audit_predictions(pred, *, task: str, attributes: Sequence[str], metrics: Sequence[str],
                      n_bootstrap: int, seed: int, n_permutations: int = 0,
                      threshold: Any = 0.5):
    """:func:`compendium.audit.audit` of a pipeline's predictions table, restricted to
    ``metrics``.  Attributes the table lacks (or holds no value of) are skipped; with none
    left, only the overall rows.  Small groups stay in the table with their ``small_group``
    flag (and the audit's log notice)."""
    from ..audit import audit

    attrs = [a for a in attributes if a in pred and pred[a].notna().any()]
    table = audit(pred, task=task, attributes=attrs, n_bootstrap=n_bootstrap,
                  n_permutations=n_permutations, seed=seed, metrics=list(metrics),
                  threshold=threshold)
    return table[table["metric"].isin(metrics)]


__all__ = ["Knobs", "ModelPlan", "PaperSpec", "audit_predictions", "load_plan_encoder",
           "plan_model"]
