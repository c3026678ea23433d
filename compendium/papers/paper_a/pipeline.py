"""Paper A's steps, each taking the validated spec (:class:`~.spec.PaperASpec`).

1. :func:`load_cohort` - NIH 6x200 from the real NIH table: the user's images
   (``pixels: real``) or the same real rows with synthetic pixels.
2. :func:`run_model` - per paper model (or its stand-in): zero-shot (three prompt families,
   ``n_draws`` draws each, the family chosen on validation accuracy; under the
   ``zero_shot_reading`` ``mean_of_runs`` every metric is the mean over the draws, under
   ``ensemble`` the metrics of the draws' mean probabilities), linear probe and MLP on
   frozen embeddings, LoRA and full fine-tuning of the image tower (for CLIP the paper
   fine-tunes an ImageNet ViT instead: ``finetune_backbone``).  Every trained method picks its
   learning rate by the lowest validation loss
   (:func:`~compendium.adapt.selection.select_by_validation`) and keeps the epoch of lowest
   validation loss.
3. :func:`audit_runs` - the audit engine on every (model, method) test table, p-values
   corrected over the headline gaps of the whole notebook.
4. :func:`null_thresholds` - how large a gap must be at the cohort's test size before it is
   distinguishable from sampling noise.
5. :func:`reproduced_values` - the audit's values under the keys of ``reported.yaml``, for
   :func:`compendium.papers.reported.compare_reported`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ...errors import ConfigError
from ..base import ModelPlan, load_plan_encoder
from .spec import METHODS, PaperASpec

log = logging.getLogger(__name__)

#: Group labels of the audit's ``age_group+sex`` intersection, in the paper's order.
GROUPS = ("young/M", "young/F", "old/M", "old/F")
ATTRIBUTES = ("sex", "age_group")
#: Fairness metrics of Fig. 3(c)/(d) and the audit label that holds each one's headline value.
GAP_METRICS = {"f1_gap": "macro", "eqodds": "macro", "ece_gap": "all"}
AUDIT_METRICS = ("accuracy", "f1", "f1_var", "ece", "f1_gap", "eqodds", "ece_gap")
COHORTS = {"synthetic": "nih-6x200-synthetic", "real": "nih-6x200"}


def load_cohort(cfg: PaperASpec):
    """NIH 6x200: real rows with the user's images, or the same rows with synthetic pixels."""
    from ...cohorts import build_cohort

    name = COHORTS[cfg.pixels]
    size = {"n": cfg.group_size, "max_shortfall": cfg.max_shortfall}
    if cfg.pixels == "synthetic":
        return build_cohort(name, seed=cfg.seed, world_seed=cfg.world_seed, knobs=cfg.knobs,
                            **size)
    return build_cohort(name, seed=cfg.seed, root=cfg.data_roots["nih"], **size)


def split_data(table: pd.DataFrame, arrays: Any) -> dict[str, tuple[Any, pd.DataFrame]]:
    """``{split: (arrays[rows of split], rows)}`` for train/val/test."""
    out = {}
    for s in ("train", "val", "test"):
        mask = (table["split"] == s).to_numpy()
        if not mask.any():
            raise ConfigError(f"the cohort has no {s!r} rows")
        out[s] = (arrays[mask], table[mask].reset_index(drop=True))
    return out


@dataclasses.dataclass
class ModelRun:
    """Everything one model produced: test predictions per method and how each was chosen."""

    plan: ModelPlan
    predictions: dict[str, pd.DataFrame]
    selection: pd.DataFrame          # one row per (method, candidate): lr/family, val score
    zero_shot: pd.DataFrame | None   # per prompt family: val/test accuracy over draws
    finetuned: str | None = None     # the backbone fine-tuned in the model's place, if any


def run_model(plan: ModelPlan, cohort, cfg: PaperASpec, *, progress: bool = True) -> ModelRun:
    """Run every method of ``cfg.methods`` for one model; see the module docstring."""
    from ...runtime import torch_threads

    with torch_threads(cfg.threads):
        enc = load_plan_encoder(plan, cfg, progress=progress)
        preds: dict[str, pd.DataFrame] = {}
        parts: list[pd.DataFrame] = []
        zs_summary = None
        if any(m in cfg.methods for m in ("zero-shot", "linear", "mlp")):
            data = _embeddings(enc, cohort, cfg, progress=progress)
            if "zero-shot" in cfg.methods:
                preds["zero-shot"], zs_summary, sel = _zero_shot(enc, data, cohort, cfg)
                parts.append(sel)
            for method in ("linear", "mlp"):
                if method in cfg.methods:
                    preds[method], sel = _probe(method, data, cohort, cfg)
                    parts.append(sel)
        backbone = cfg.backbone_plans().get(plan.model)
        for method in ("lora", "finetune"):
            if method in cfg.methods:
                swap = method == "finetune" and backbone is not None
                a_enc = load_plan_encoder(backbone, cfg, progress=progress) if swap else enc
                preds[method], sel = _adapt(method, a_enc, cohort, cfg, progress=progress,
                                            note=f" ({backbone.encoder})" if swap else "")
                parts.append(sel)
        selection = pd.concat(parts, ignore_index=True)[
            ["method", "candidate", "val_metric", "val_score", "best_epoch", "chosen"]]
        selection.insert(0, "model", plan.encoder)
        return ModelRun(plan, preds, selection, zs_summary,
                        backbone.encoder if backbone is not None and "finetune" in cfg.methods
                        else None)


def _embeddings(enc, cohort, cfg: PaperASpec, *, progress: bool):
    from ...encoders.cache import extract_embeddings
    from ...imaging import pixels

    images = pixels(cohort, enc.entry.preprocess.size, progress=progress)
    # keyed by the pixels themselves: the same rows under other knobs are other images
    E = np.asarray(extract_embeddings(enc, images, batch_size=cfg.batch_size,
                                      progress=progress).array)
    return split_data(cohort.table, E)


def _zero_shot(enc, data, cohort, cfg: PaperASpec):
    from ...adapt.zeroshot import zero_shot_eval

    if not enc.has_text:   # the spec's check refuses this before a kernel starts
        raise ConfigError(f"{enc.name} has no text tower: no zero-shot")
    table, summary, _ = zero_shot_eval(enc, {"val": data["val"], "test": data["test"]},
                                       list(cohort.labels), families=cfg.prompt_families or None,
                                       n_draws=cfg.n_draws, seed=cfg.seed,
                                       scale=enc.zero_shot_scale,
                                       combine=cfg.zero_shot_reading)
    sel = pd.DataFrame({"method": "zero-shot",
                        "candidate": [f"prompts={f}" for f in summary["family"]],
                        "val_metric": "accuracy", "val_score": summary["val_accuracy"],
                        "best_epoch": np.nan, "chosen": summary["chosen"].astype(bool)})
    return table, summary, sel


def _probe(method: str, data, cohort, cfg: PaperASpec):
    from ...adapt.probes import run_probe
    from ...adapt.selection import select_by_validation
    from ...runtime import resolve_device

    dev = str(resolve_device(cfg.device))

    def fit(lr: float):
        table, info = run_probe(method, data, list(cohort.labels), "multiclass", seed=cfg.seed,
                                params={"lr": lr, "max_epochs": cfg.epochs,
                                        "batch_size": cfg.batch_size, "device": dev})
        h = info["history"]
        return h.best_val_loss, table, {"best_epoch": h.best_epoch}

    s = select_by_validation(cfg.learning_rates[method], fit, metric="loss",
                             describe=lambda lr: f"lr={lr:g}")
    return s.winner, s.table.assign(method=method)


def _adapt(method: str, enc, cohort, cfg: PaperASpec, *, progress: bool, note: str = ""):
    import torch

    from ...adapt.finetune import run_adaptation
    from ...adapt.lora import LoraSpec
    from ...adapt.selection import select_by_validation
    from ...adapt.training import TrainSpec
    from ...imaging import pixels
    from ...runtime import resolve_device

    dev = str(resolve_device(cfg.device))
    images = pixels(cohort, enc.entry.preprocess.size, progress=progress)
    idx = split_data(cohort.table, np.arange(len(cohort.table)))
    if cfg.adapt_train_rows is not None:      # a budget (rehearsals), not the paper's recipe
        from ...cohorts.splits import stratified_subset

        i, rows = idx["train"]
        keep = stratified_subset(rows, cfg.adapt_train_rows, stratify=["disease", "group"],
                                 seed=cfg.seed)
        idx["train"] = (i[keep], rows.iloc[keep].reset_index(drop=True))
    tensors = {s: (enc.preprocess(images[i]), rows) for s, (i, rows) in idx.items()}

    def fit(lr: float):
        spec = TrainSpec(epochs=cfg.adapt_epochs, lr=lr, patience=cfg.patience, seed=cfg.seed,
                         device=dev, progress=progress)
        table, info = run_adaptation(enc, tensors, list(cohort.labels), "multiclass", spec,
                                     method=method, lora=LoraSpec(r=cfg.lora_rank),
                                     batch_size=cfg.batch_size, seed=cfg.seed)
        h = info["history"]
        return h.best_val_loss, table, {"best_epoch": h.best_epoch}

    s = select_by_validation(cfg.learning_rates[method], fit, metric="loss",
                             describe=lambda lr: f"lr={lr:g}{note}")
    if dev.startswith("cuda"):
        torch.cuda.empty_cache()
    return s.winner, s.table.assign(method=method)


# ----------------------------------------------------------------------------- audit


def audit_runs(runs: Sequence[ModelRun], cfg: PaperASpec, *, progress: bool = True
               ) -> pd.DataFrame:
    """The audit table of every (model, method), with ``model``, ``model_label``,
    ``paper_model`` and ``method`` columns.

    p-values are corrected over the *headline* gaps (F1 gap and EqOdds over the classes, ECE
    gap; sex and age; every model and method: one family); class-wise gap rows keep their
    raw p-value and no adjusted one (descriptive).
    """
    from tqdm.auto import tqdm

    from ...audit import adjust_pvalues, audit
    from ...audit.stats import pvalue_floor

    parts = []
    jobs = [(r, m) for r in runs for m in METHODS if m in r.predictions]
    for run, method in tqdm(jobs, desc="audit", disable=not progress):
        preds = run.predictions[method]
        # zero-shot under the mean_of_runs reading: one run per prompt draw, every metric
        # averaged over the draws (with the intervals and p-values of the average)
        t = audit(preds, task="multiclass",
                  attributes=[*ATTRIBUTES, "age_group+sex"], n_bootstrap=cfg.n_bootstrap,
                  n_permutations=cfg.n_permutations, seed=cfg.seed, correction=None,
                  metrics=AUDIT_METRICS, runs="run" if "run" in preds.columns else None,
                  **metric_readings(cfg))
        t.insert(0, "method", method)
        t.insert(0, "paper_model", run.plan.model)
        t.insert(0, "model_label", run.plan.label)
        t.insert(0, "model", run.plan.encoder)
        parts.append(t)
    table = pd.concat(parts, ignore_index=True)
    table["p_adjusted"] = np.nan
    head = headline_mask(table)
    if cfg.correction and head.any():
        table.loc[head, "p_adjusted"] = adjust_pvalues(table.loc[head, "p_value"].to_numpy(),
                                                        cfg.correction)
        if cfg.n_permutations:
            # the family is every headline gap of the notebook: its reachable floor
            floor = pvalue_floor(int(head.sum()), cfg.n_permutations, cfg.correction)
            table.loc[head, "p_floor"] = floor
            if floor >= 0.05:
                log.warning("%d permutations cannot reach an adjusted p below %.3f over %d "
                            "headline gaps (%s): no gap can be significant; use >= %d "
                            "permutations", cfg.n_permutations, floor, head.sum(),
                            cfg.correction, int(20 * head.sum()))
    return table


def metric_readings(cfg: PaperASpec) -> dict[str, str]:
    """The audit options that carry the run's readings of the paper's metric definitions."""
    return {"gap_macro": cfg.gap_reading, "eqodds": cfg.eqodds_reading,
            "binning": cfg.ece_binning}


def headline_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows of the headline gaps (one per model x method x attribute x metric)."""
    m = np.zeros(len(table), bool)
    for metric, label in GAP_METRICS.items():
        m |= ((table["metric"] == metric) & (table["label"] == label)
              & table["attribute"].isin(ATTRIBUTES)).to_numpy()
    return m


def pick(table: pd.DataFrame, **eq: Any) -> pd.DataFrame:
    """Rows of ``table`` whose columns equal the given values."""
    m = np.ones(len(table), bool)
    for k, v in eq.items():
        m &= (table[k] == v).to_numpy()
    return table[m]


# ----------------------------------------------------------------------------- reported


def reproduced_values(audits: pd.DataFrame) -> pd.DataFrame:
    """The audit's numbers under the keys of Paper A's ``reported.yaml`` (metric, model =
    the paper's model, method, attribute, group), with intervals and ``reproduced_with``."""
    rows = []
    for (paper_model, label, method), a in audits.groupby(
            ["paper_model", "model_label", "method"], sort=False):
        def add(metric: str, r: pd.DataFrame, **keys: str) -> None:
            if len(r):
                x = r.iloc[0]
                rows.append({"metric": metric, "model": paper_model, "method": method, **keys,
                             "estimate": float(x["estimate"]), "ci_low": float(x["ci_low"]),
                             "ci_high": float(x["ci_high"]), "reproduced_with": label})

        add("accuracy", pick(a, metric="accuracy", attribute="all"))
        add("f1_var", pick(a, metric="f1_var", attribute="all"))
        f = pick(a, metric="f1", attribute="all")
        f = f[f["label"] != "macro"]
        if len(f):
            add("f1_min", f.loc[[f["estimate"].idxmin()]])
            add("f1_max", f.loc[[f["estimate"].idxmax()]])
        g = pick(a, metric="f1", attribute="age_group+sex", label="macro")
        for _, r in g.iterrows():
            add("group_f1", g.loc[[r.name]], group=str(r["group"]))
        if len(g):
            add("group_f1_min", g.loc[[g["estimate"].idxmin()]])
            add("group_f1_max", g.loc[[g["estimate"].idxmax()]])
        for metric, label_ in GAP_METRICS.items():
            for attr in ATTRIBUTES:
                add(metric, pick(a, metric=metric, attribute=attr, label=label_),
                    attribute=attr)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- noise


def null_gap_samples(accuracy: float, *, n_per_class: int, n_classes: int, n_sims: int,
                     gap_reading: str = "gap_of_macro", eqodds_reading: str = "mean",
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """F1 gap and EqOdds of ``n_sims`` simulated *fair* classifiers on a balanced test set.

    ``n_per_class`` images per class, half of each class in each of two groups; a prediction
    is correct with probability ``accuracy`` whatever the group, otherwise one of the other
    classes uniformly.  Gaps come from the audit engine's own functions, under the given
    readings (:func:`metric_readings`)."""
    from ...audit import eqodds, f1_gap

    if not 1 / n_classes <= accuracy <= 1:
        raise ConfigError(f"accuracy {accuracy} outside [1/{n_classes}, 1]")
    n = n_per_class * n_classes
    y = np.repeat(np.arange(n_classes), n_per_class)
    labels = list(range(n_classes))
    g = np.resize(np.tile(np.array(["A", "B"]).repeat(n_per_class // 2), n_classes), n)
    out = {"f1_gap": np.empty(n_sims), "eqodds": np.empty(n_sims)}
    for s in range(n_sims):
        right = rng.random(n) < accuracy
        other = (y + rng.integers(1, n_classes, n)) % n_classes
        pred = np.where(right, y, other)
        out["f1_gap"][s] = f1_gap(y, pred, sensitive_features=g, labels=labels,
                                  gap_macro=gap_reading)
        out["eqodds"][s] = eqodds(y, pred, sensitive_features=g, labels=labels,
                                  gap_macro=gap_reading, eqodds=eqodds_reading)
    return out


def null_gap_thresholds(accuracies: Sequence[float], *, n_per_class: int, n_classes: int,
                        n_sims: int = 2000, level: float = 0.95, seed: int = 0,
                        gap_reading: str = "gap_of_macro", eqodds_reading: str = "mean",
                        progress: bool = True) -> pd.DataFrame:
    """How large an F1 gap or EqOdds can be from sampling noise alone (:func:`null_gap_samples`).

    The ``level`` quantile of each gap over ``n_sims`` fair classifiers is the gap a fair model
    exceeds with probability ``1 - level``, i.e. the one-sided 5% critical value of a test of
    "no gap".
    """
    from tqdm.auto import tqdm

    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    rows = []
    for acc in tqdm(list(accuracies), desc="null gaps", disable=not progress):
        sims = null_gap_samples(acc, n_per_class=n_per_class, n_classes=n_classes,
                                n_sims=n_sims, gap_reading=gap_reading,
                                eqodds_reading=eqodds_reading, rng=rng)
        for metric, v in sims.items():
            rows.append({"accuracy": acc, "metric": metric, "n_test": n_per_class * n_classes,
                         "null_mean": float(v.mean()),
                         "critical_value": float(np.quantile(v, level))})
    return pd.DataFrame(rows)


def _test_size(cohort) -> tuple[int, int]:
    test = cohort.table[cohort.table["split"] == "test"]
    n_classes = len(cohort.labels)
    return len(test) // n_classes, n_classes


def null_thresholds(cohort, cfg: PaperASpec, *, progress: bool = True) -> pd.DataFrame:
    """:func:`null_gap_thresholds` at the cohort's test size (NIH 6x200: 40 per class), under
    the run's readings."""
    n_per_class, n_classes = _test_size(cohort)
    return null_gap_thresholds(cfg.null_accuracies, n_per_class=n_per_class,
                               n_classes=n_classes, n_sims=cfg.null_sims, seed=cfg.seed,
                               gap_reading=cfg.gap_reading, eqodds_reading=cfg.eqodds_reading,
                               progress=progress)


def gap_reading_evidence(reported: pd.DataFrame, cohort, cfg: PaperASpec, *,
                         progress: bool = True) -> pd.DataFrame:
    """Which reading of the gap metrics can produce the gaps the paper reports?

    For each candidate of ``gap_reading``, ``null_sims`` fair classifiers at the accuracy the
    paper reports for the stage (zero-shot, fine-tuned) on a test set of the cohort's size:
    the share of them whose gap is at most the reported one (``share_at_most``) and the
    middle 95 % of their gaps.  A fair classifier gives the smallest gaps any classifier gives,
    so a reported gap below what nearly every fair classifier shows (share under 0.5 %) rules
    that reading out.
    """
    from tqdm.auto import tqdm

    from ..readings import load_readings

    n_per_class, n_classes = _test_size(cohort)
    candidates = next(r for r in load_readings("paper_a") if r.parameter == "gap_reading")
    acc = reported[reported["metric"] == "accuracy"].set_index("method")["value"]
    gaps = reported[reported["metric"].isin(["f1_gap", "eqodds"])]
    rows = []
    for reading in tqdm(list(candidates.candidates), desc="readings", disable=not progress):
        rng = np.random.default_rng([cfg.seed, 7])
        sims = {m: null_gap_samples(float(acc[m]), n_per_class=n_per_class,
                                    n_classes=n_classes, n_sims=cfg.null_sims,
                                    gap_reading=reading, eqodds_reading=cfg.eqodds_reading,
                                    rng=rng) for m in gaps["method"].unique()}
        for _, r in gaps.iterrows():
            v = sims[r["method"]][r["metric"]]
            share = float((v <= r["value"]).mean())
            rows.append({"reading": reading, "id": r["id"], "metric": r["metric"],
                         "model": r["model"], "method": r["method"],
                         "attribute": r["attribute"], "reported": r["value"],
                         "fair_low": float(np.quantile(v, 0.025)),
                         "fair_median": float(np.median(v)),
                         "fair_high": float(np.quantile(v, 0.975)),
                         "share_at_most": share, "ruled_out": share < 0.005})
    return pd.DataFrame(rows)


__all__ = ["ATTRIBUTES", "AUDIT_METRICS", "COHORTS", "GAP_METRICS", "GROUPS", "ModelRun",
           "audit_runs", "gap_reading_evidence", "headline_mask", "load_cohort",
           "metric_readings", "null_gap_samples", "null_gap_thresholds", "null_thresholds",
           "pick", "reproduced_values", "run_model", "split_data"]
