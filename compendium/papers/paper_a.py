"""Paper A (Sun et al., ISBI 2025): CLIP-like models on NIH 6x200, zero-shot to full fine-tuning.

The pipeline of ``notebooks/paper_a.ipynb``:

1. :func:`load_cohort` - NIH 6x200 from the real NIH table (``nih-6x200``, the user's images)
   or the same real rows with synthetic pixels (``nih-6x200-synthetic``); split 7:1:2.
2. :func:`preflight` - in the ``full`` profile, every weight file and the image folder are
   checked before anything runs; one error names everything missing.
3. :func:`run_model` - per encoder: zero-shot (three prompt families, ``n_draws`` draws each,
   the family chosen on validation accuracy), linear probe and MLP on frozen embeddings, LoRA
   and full fine-tuning of the image tower (for CLIP the paper fine-tunes an ImageNet ViT
   instead: ``finetune_backbone``).  Every trained method picks its learning rate from a grid
   by the lowest validation loss, and keeps the epoch of lowest validation loss (the paper's
   protocol: AdamW, cosine schedule, batch 64, 150 epochs).
4. :func:`audit_runs` - the audit engine on every (model, method) test table: accuracy,
   class-wise F1, Var_F1, F1 per group, F1 gap, equalised odds and ECE gap for sex and age,
   with bootstrap intervals and permutation p-values, corrected (Holm by default) over the
   headline gaps of the whole notebook.
5. Figures of the paper (Fig. 2a, 2b, 3a-d), a fairness trajectory across methods, the
   reported numbers beside the reproduced ones (:func:`compare_reported`) and a null
   simulation (:func:`null_gap_thresholds`): how large a gap must be at n = 240 test images
   before it is distinguishable from sampling noise.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError
from . import REPORTED_DIR

log = logging.getLogger(__name__)

METHODS = ("zero-shot", "linear", "mlp", "lora", "finetune")
TRAINED = ("linear", "mlp", "lora", "finetune")
METHOD_LABELS = {"zero-shot": "ZS", "linear": "LP", "mlp": "MLP", "lora": "LoRA",
                 "finetune": "FT"}
#: The paper's models (registry name -> the paper's name).
PAPER_MODELS = {"clip-vit-b-16": "CLIP", "gloria": "GLoRIA", "medclip-vit": "MedCLIP-ViT",
                "medclip-rn50": "MedCLIP-RN", "biomedclip": "BiomedCLIP"}
#: Group labels of the audit's ``age_group+sex`` intersection, in the paper's order.
GROUPS = ("young/M", "young/F", "old/M", "old/F")
GROUP_LABELS = {"young/M": "young male", "young/F": "young female", "old/M": "old male",
                "old/F": "old female"}
ATTRIBUTES = ("sex", "age_group")
ATTRIBUTE_LABELS = {"sex": "sex", "age_group": "age"}
#: Fairness metrics of Fig. 3(c)/(d) and the audit label that holds each one's headline value.
GAP_METRICS = {"f1_gap": "macro", "eqodds": "macro", "ece_gap": "all"}
GAP_LABELS = {"f1_gap": "F1 gap", "eqodds": "EqOdds", "ece_gap": "ECE gap"}
AUDIT_METRICS = ("accuracy", "f1", "f1_var", "ece", "f1_gap", "eqodds", "ece_gap")
SYNTHETIC_COHORT = "nih-6x200-synthetic"
REAL_COHORT = "nih-6x200"


# ----------------------------------------------------------------------------- inputs


def load_cohort(name: str, *, seed: int = 0, data_root: str = "", world_seed: int = 0,
                knobs: Any = "default"):
    """NIH 6x200: real rows (``nih-6x200``, images under ``data_root``) or real rows with
    synthetic pixels (``nih-6x200-synthetic``)."""
    from ..cohorts import build_cohort

    if name == SYNTHETIC_COHORT:
        return build_cohort(name, seed=seed, world_seed=world_seed, knobs=knobs)
    if name == REAL_COHORT:
        if not data_root:
            raise DataNotFoundError("nih-6x200 needs the NIH ChestX-ray14 images: set data_root "
                                    "to the folder holding images*/ (or images/) and "
                                    "Data_Entry_2017*.csv")
        return build_cohort(name, seed=seed, root=data_root)
    raise ConfigError(f"unknown Paper A cohort {name!r} (allowed: {REAL_COHORT}, "
                      f"{SYNTHETIC_COHORT})")


def preflight(*, cohort: str, data_root: str, models: Sequence[str],
              finetune_backbone: Mapping[str, str], weights: Mapping[str, str],
              pretrained: bool = True) -> list[str]:
    """Check, before anything runs, that every input of the run is on this machine.

    Returns the checked items; raises one :class:`DataNotFoundError` naming *everything*
    missing (the image folder, each model's weights) so a ``full`` run stops at once.
    """
    from ..encoders import get_entry
    from ..encoders.weights import MissingWeightsError, find_weights

    missing, checked = [], []
    if cohort == REAL_COHORT:
        if not data_root:
            missing.append("data_root (the NIH ChestX-ray14 image folder) is not set")
        elif not Path(data_root).expanduser().is_dir():
            missing.append(f"data_root {data_root} is not a folder")
        else:
            checked.append(f"images: {data_root}")
    needed = list(dict.fromkeys([*models, *finetune_backbone.values()]))
    for name in needed:
        entry = get_entry(name)
        if entry.kind == "toy" or not pretrained:
            what = "toy encoder (pretrained here on synthetic data)" if pretrained else "random init"
            checked.append(f"{name}: {what}")
            continue
        try:
            path = find_weights(entry, weights.get(name))
            checked.append(f"{name}: {path}")
        except MissingWeightsError as exc:
            missing.append(str(exc))
    if missing:
        raise DataNotFoundError(f"Paper A cannot run: {len(missing)} input(s) missing: "
                                + " | ".join(missing))
    return checked


def cohort_images(cohort, size: int, *, progress: bool = True) -> np.ndarray:
    """uint8 pixels (n, size, size) of every row: rendered (synthetic) or decoded (cached)."""
    from ..imaging.cache import cached_pixels

    return np.asarray(cached_pixels(cohort, size, progress=progress))


def split_data(table: pd.DataFrame, arrays: Any) -> dict[str, tuple[Any, pd.DataFrame]]:
    """``{split: (arrays[rows of split], rows)}`` for train/val/test."""
    out = {}
    for s in ("train", "val", "test"):
        mask = (table["split"] == s).to_numpy()
        if not mask.any():
            raise ConfigError(f"the cohort has no {s!r} rows")
        out[s] = (arrays[mask], table[mask].reset_index(drop=True))
    return out


# ----------------------------------------------------------------------------- training


@dataclasses.dataclass
class ModelRun:
    """Everything one encoder produced: test predictions per method and how each was chosen."""

    model: str
    label: str
    predictions: dict[str, pd.DataFrame]
    selection: pd.DataFrame          # one row per (method, candidate): lr/family, val score
    zero_shot: pd.DataFrame | None   # per prompt family: val/test accuracy over draws
    finetune_model: str | None = None


def model_label(name: str, stand_in_for: Mapping[str, str] | None = None) -> str:
    """Display name: the paper's name for a real model, ``toy (stand-in for X)`` for a toy."""
    stand_in_for = stand_in_for or {}
    if name in stand_in_for:
        target = stand_in_for[name]
        return f"{name} (stand-in for {PAPER_MODELS.get(target, target)})"
    return PAPER_MODELS.get(name, name)


def _encoder(name: str, *, weights: Mapping[str, str], pretrained: bool, device: str,
             progress: bool):
    from ..encoders import create_model, get_entry

    kw: dict[str, Any] = {"device": device}
    if get_entry(name).kind == "toy":
        kw["progress"] = progress
        if not pretrained:
            kw["tiny"] = True
    elif not pretrained:
        kw["pretrained"] = False
    elif weights.get(name):
        kw["weights_path"] = weights[name]
    return create_model(name, **kw)


def _device(name: str) -> str:
    from ..adapt.training import resolve_device

    return str(resolve_device(name))


def run_model(name: str, cohort, *, methods: Sequence[str] = METHODS,
              learning_rates: Mapping[str, Sequence[float]], epochs: int = 150,
              adapt_epochs: int = 150, patience: int | None = None, batch_size: int = 64,
              prompt_families: Sequence[str] | None = None, n_draws: int = 10,
              lora_rank: int = 8, finetune_backbone: Mapping[str, str] | None = None,
              weights: Mapping[str, str] | None = None, pretrained: bool = True,
              stand_in_for: Mapping[str, str] | None = None, device: str = "auto",
              threads: int = 0, seed: int = 0, progress: bool = True) -> ModelRun:
    """Run every method of Paper A for one encoder; see the module docstring.

    ``threads`` > 0 sets torch's CPU threads for the run (1 is fastest for the toy encoders
    and on a shared machine, where more threads than free cores slow training many-fold).

    Returns the test predictions table of each method (the hand-off to the audit) and a
    selection table recording every learning rate tried (validation loss, best epoch) and
    every prompt family (validation accuracy).
    """
    import torch

    from ..adapt.finetune import run_adaptation
    from ..adapt.lora import LoraSpec
    from ..adapt.probes import run_probe
    from ..adapt.training import TrainSpec, _threads
    from ..adapt.zeroshot import zero_shot_eval
    from ..encoders.cache import extract_embeddings

    with _threads(threads or None):  # restored on exit
        bad = [m for m in methods if m not in METHODS]
        if bad:
            raise ConfigError(f"unknown method {bad[0]!r} (allowed: {', '.join(METHODS)})")
        weights, finetune_backbone = dict(weights or {}), dict(finetune_backbone or {})
        dev = _device(device)
        classes = list(cohort.labels)
        table = cohort.table
        enc = _encoder(name, weights=weights, pretrained=pretrained, device=dev, progress=progress)
        images = cohort_images(cohort, enc.entry.preprocess.size, progress=progress)
        preds: dict[str, pd.DataFrame] = {}
        sel: list[dict[str, Any]] = []
        zs_summary = None
        emb_needed = any(m in methods for m in ("zero-shot", "linear", "mlp"))
        if emb_needed:
            # keyed by the pixels themselves: the same rows under other knobs are other images
            E = np.asarray(extract_embeddings(enc, images, progress=progress).array)
            data = split_data(table, E)
        if "zero-shot" in methods:
            if not enc.has_text:
                log.warning("%s has no text tower: no zero-shot", name)
            else:
                zs_table, zs_summary, _ = zero_shot_eval(
                    enc, {"val": data["val"], "test": data["test"]}, classes,
                    families=prompt_families, n_draws=n_draws, seed=seed)
                preds["zero-shot"] = zs_table
                for _, r in zs_summary.iterrows():
                    sel.append({"method": "zero-shot", "candidate": f"prompts={r['family']}",
                                "val_score": r["val_accuracy"], "val_metric": "accuracy",
                                "best_epoch": np.nan, "chosen": bool(r["chosen"])})
        for method in ("linear", "mlp"):
            if method not in methods:
                continue
            best = None
            for lr in _grid(learning_rates, method):
                t, info = run_probe(method, data, classes, "multiclass", seed=seed,
                                    params={"lr": lr, "max_epochs": epochs,
                                            "batch_size": batch_size,
                                            "device": dev})
                h = info["history"]
                sel.append({"method": method, "candidate": f"lr={lr:g}",
                            "val_score": h.best_val_loss, "val_metric": "loss",
                            "best_epoch": h.best_epoch, "chosen": False})
                if best is None or h.best_val_loss < best[0]:
                    best = (h.best_val_loss, t, len(sel) - 1)
            preds[method] = best[1]
            sel[best[2]]["chosen"] = True
        ft_name = None
        for method in ("lora", "finetune"):
            if method not in methods:
                continue
            a_enc, a_images = enc, images
            if method == "finetune" and name in finetune_backbone:
                ft_name = finetune_backbone[name]
                a_enc = _encoder(ft_name, weights=weights, pretrained=pretrained, device=dev,
                                 progress=progress)
                a_images = cohort_images(cohort, a_enc.entry.preprocess.size, progress=progress)
            x = split_data(table, np.arange(len(table)))
            tensors = {s: (a_enc.preprocess(a_images[idx]), rows) for s, (idx, rows) in x.items()}
            best = None
            for lr in _grid(learning_rates, method):
                spec = TrainSpec(epochs=adapt_epochs, lr=lr, patience=patience, seed=seed,
                                 device=dev, progress=progress)
                t, info = run_adaptation(a_enc, tensors, classes, "multiclass", spec,
                                         method=method, lora=LoraSpec(r=lora_rank),
                                         batch_size=batch_size, seed=seed)
                h = info["history"]
                sel.append({"method": method, "candidate": f"lr={lr:g}" + (
                    f" ({ft_name})" if method == "finetune" and ft_name else ""),
                    "val_score": h.best_val_loss, "val_metric": "loss",
                    "best_epoch": h.best_epoch, "chosen": False})
                if best is None or h.best_val_loss < best[0]:
                    best = (h.best_val_loss, t, len(sel) - 1)
            preds[method] = best[1]
            sel[best[2]]["chosen"] = True
            del tensors
            if dev.startswith("cuda"):
                torch.cuda.empty_cache()
        selection = pd.DataFrame(sel, columns=["method", "candidate", "val_metric", "val_score",
                                               "best_epoch", "chosen"])
        selection.insert(0, "model", name)
        return ModelRun(name, model_label(name, stand_in_for), preds, selection, zs_summary,
                        ft_name)


def _grid(learning_rates: Mapping[str, Sequence[float]], method: str) -> list[float]:
    grid = [float(v) for v in learning_rates.get(method, ())]
    if not grid:
        raise ConfigError(f"learning_rates has no value for {method!r}")
    return grid


# ----------------------------------------------------------------------------- audit


def audit_runs(runs: Sequence[ModelRun], *, n_bootstrap: int = 1000,
               n_permutations: int = 1000, seed: int = 0, correction: str | None = "holm",
               progress: bool = True) -> pd.DataFrame:
    """The audit table of every (model, method), with ``model``, ``model_label`` and
    ``method`` columns.

    p-values are corrected over the *headline* gaps (F1 gap and EqOdds macro-averaged over
    the classes, ECE gap; sex and age; every model and method: one family); class-wise gap
    rows keep their raw p-value and no adjusted one (descriptive).
    """
    from tqdm.auto import tqdm

    from ..audit import adjust_pvalues, audit

    parts = []
    jobs = [(r, m) for r in runs for m in METHODS if m in r.predictions]
    for run, method in tqdm(jobs, desc="audit", disable=not progress):
        t = audit(run.predictions[method], task="multiclass",
                  attributes=[*ATTRIBUTES, "age_group+sex"], n_bootstrap=n_bootstrap,
                  n_permutations=n_permutations, seed=seed, correction=None,
                  metrics=AUDIT_METRICS)
        t.insert(0, "method", method)
        t.insert(0, "model_label", run.label)
        t.insert(0, "model", run.model)
        parts.append(t)
    table = pd.concat(parts, ignore_index=True)
    table["p_adjusted"] = np.nan
    head = headline_mask(table)
    if correction in ("holm", "bonferroni") and n_permutations and head.any():
        smallest = 1 / (n_permutations + 1)
        if smallest > 0.05 / head.sum():
            log.warning("%d permutations cannot reach p < 0.05 / %d tests (%s): no gap can be "
                        "significant after correction; use >= %d permutations",
                        n_permutations, head.sum(), correction, int(20 * head.sum()))
    if correction and head.any():
        table.loc[head, "p_adjusted"] = adjust_pvalues(table.loc[head, "p_value"].to_numpy(),
                                                        correction)
    return table


def headline_mask(table: pd.DataFrame) -> np.ndarray:
    """Rows of the headline gaps (one per model x method x attribute x metric)."""
    m = np.zeros(len(table), bool)
    for metric, label in GAP_METRICS.items():
        m |= ((table["metric"] == metric) & (table["label"] == label)
              & table["attribute"].isin(ATTRIBUTES)).to_numpy()
    return m


def _pick(table: pd.DataFrame, **eq: Any) -> pd.DataFrame:
    m = np.ones(len(table), bool)
    for k, v in eq.items():
        m &= (table[k] == v).to_numpy()
    return table[m]


def accuracy_table(audits: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2(a) as a table: accuracy [95% CI] of every model x method."""
    a = _pick(audits, metric="accuracy", attribute="all")
    a = a.assign(method=pd.Categorical(a["method"], METHODS, ordered=True))
    return (a[["model_label", "method", "estimate", "ci_low", "ci_high", "n"]]
            .sort_values(["model_label", "method"]).reset_index(drop=True))


def gap_table(audits: pd.DataFrame) -> pd.DataFrame:
    """The headline gaps (Fig. 3c/d and the trajectory), with intervals and p-values."""
    g = audits[headline_mask(audits)]
    g = g.assign(method=pd.Categorical(g["method"], METHODS, ordered=True),
                 metric_label=g["metric"].map(GAP_LABELS),
                 attribute_label=g["attribute"].map(ATTRIBUTE_LABELS))
    return (g[["model_label", "method", "metric", "metric_label", "attribute",
               "attribute_label", "estimate", "ci_low", "ci_high", "p_value", "p_adjusted"]]
            .sort_values(["model_label", "method", "metric", "attribute"])
            .reset_index(drop=True))


def group_f1_table(audits: pd.DataFrame, method: str = "finetune") -> pd.DataFrame:
    """Fig. 3(b): macro F1 of each age x sex group."""
    g = _pick(audits, metric="f1", attribute="age_group+sex", label="macro", method=method)
    g = g.assign(group=pd.Categorical(g["group"], GROUPS, ordered=True))
    return (g[["model_label", "group", "estimate", "ci_low", "ci_high", "n"]]
            .sort_values(["model_label", "group"]).reset_index(drop=True))


def classwise_f1_table(audits: pd.DataFrame, method: str = "finetune") -> pd.DataFrame:
    """Fig. 2(b): F1 of each class."""
    f = _pick(audits, metric="f1", attribute="all", method=method)
    f = f[f["label"] != "macro"]
    return f[["model_label", "label", "estimate", "ci_low", "ci_high"]].reset_index(drop=True)


def var_f1_table(audits: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3(a): Var_F1 (population variance of the class-wise F1) per model and method."""
    v = _pick(audits, metric="f1_var", attribute="all")
    v = v.assign(method=pd.Categorical(v["method"], METHODS, ordered=True))
    return (v[["model_label", "method", "estimate", "ci_low", "ci_high"]]
            .sort_values(["model_label", "method"]).reset_index(drop=True))


# ----------------------------------------------------------------------------- reported


def reported() -> pd.DataFrame:
    """The numbers Paper A states in its text (typed from the paper, with quotes)."""
    from ..config import load_yaml

    data = load_yaml(REPORTED_DIR / "paper_a.yaml")
    t = pd.DataFrame(data["numbers"])
    for c in ("attribute", "group"):
        if c not in t:
            t[c] = np.nan
    t["paper_model"] = t["model"].map(PAPER_MODELS)
    return t


def _reproduced(audits: pd.DataFrame, row: pd.Series, model: str) -> tuple[float, float, float]:
    a = audits[(audits["model"] == model) & (audits["method"] == row["method"])]
    metric = row["metric"]
    if metric == "accuracy":
        r = _pick(a, metric="accuracy", attribute="all")
    elif metric in ("f1_min", "f1_max"):
        f = _pick(a, metric="f1", attribute="all")
        f = f[f["label"] != "macro"]
        if f.empty:
            return (np.nan,) * 3
        r = f.loc[[f["estimate"].idxmin() if metric == "f1_min" else f["estimate"].idxmax()]]
    elif metric == "f1_var":
        r = _pick(a, metric="f1_var", attribute="all")
    elif metric == "group_f1":
        r = _pick(a, metric="f1", attribute="age_group+sex", label="macro", group=row["group"])
    elif metric in ("group_f1_min", "group_f1_max"):
        g = _pick(a, metric="f1", attribute="age_group+sex", label="macro")
        if g.empty:
            return (np.nan,) * 3
        r = g.loc[[g["estimate"].idxmin() if metric.endswith("min") else g["estimate"].idxmax()]]
    elif metric in GAP_METRICS:
        r = _pick(a, metric=metric, attribute=row["attribute"], label=GAP_METRICS[metric])
    else:
        raise ConfigError(f"reported metric {metric!r} has no reproduced counterpart")
    if r.empty:
        return (np.nan,) * 3
    r = r.iloc[0]
    return float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"])


def compare_reported(audits: pd.DataFrame, runs: Sequence[ModelRun],
                     stand_in_for: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Every reported number beside the reproduced one (from the model that is, or stands
    in for, the paper's model; empty when no run covers it)."""
    stand_in_for = dict(stand_in_for or {})
    by_target = {stand_in_for.get(r.model, r.model): r for r in runs}
    rows = []
    for _, row in reported().iterrows():
        run = by_target.get(row["model"])
        est = lo = hi = np.nan
        if run is not None and row["method"] in run.predictions:
            est, lo, hi = _reproduced(audits, row, run.model)
        where = row["attribute"] if isinstance(row["attribute"], str) else (
            row["group"] if isinstance(row["group"], str) else "")
        rows.append({"paper_model": row["paper_model"], "method": METHOD_LABELS[row["method"]],
                     "metric": row["metric"], "attribute/group": where,
                     "reported": row["value"],
                     "reproduced": est, "ci_low": lo, "ci_high": hi,
                     "reproduced_with": run.label if run is not None else "not run"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- noise


def null_gap_thresholds(accuracies: Sequence[float], *, n_per_class: int = 40,
                        n_classes: int = 6, n_sims: int = 2000, level: float = 0.95,
                        seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """How large an F1 gap or EqOdds can be from sampling noise alone at NIH 6x200's size.

    Simulates a classifier with the given accuracy and *no* group difference on a balanced
    test set (``n_per_class`` images per class, half of each class in each of two groups,
    as NIH 6x200's 240 test images): a prediction is correct with probability ``accuracy``,
    otherwise one of the other classes uniformly.  The ``level`` quantile of each gap over
    ``n_sims`` simulations is the gap a fair model exceeds with probability ``1 - level``,
    i.e. the one-sided 5% critical value of a test of "no gap".  Gaps are computed with the
    audit engine's own metric functions.
    """
    from tqdm.auto import tqdm

    from ..audit import eqodds, f1_gap

    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    y = np.repeat(np.arange(n_classes), n_per_class)
    labels = list(range(n_classes))
    g = np.tile(np.array(["A", "B"]).repeat(n_per_class // 2), n_classes)
    if len(g) < n:  # odd n_per_class
        g = np.resize(g, n)
    rows = []
    for acc in tqdm(list(accuracies), desc="null gaps", disable=not progress):
        if not 1 / n_classes <= acc <= 1:
            raise ConfigError(f"accuracy {acc} outside [1/{n_classes}, 1]")
        sims = {"f1_gap": np.empty(n_sims), "eqodds": np.empty(n_sims)}
        for s in range(n_sims):
            right = rng.random(n) < acc
            other = (y + rng.integers(1, n_classes, n)) % n_classes
            pred = np.where(right, y, other)
            sims["f1_gap"][s] = f1_gap(y, pred, sensitive_features=g, labels=labels)
            sims["eqodds"][s] = eqodds(y, pred, sensitive_features=g, labels=labels)
        for metric, v in sims.items():
            rows.append({"accuracy": acc, "metric": metric, "n_test": n,
                         "null_mean": float(v.mean()),
                         "critical_value": float(np.quantile(v, level))})
    return pd.DataFrame(rows)


def reported_vs_noise(thresholds: pd.DataFrame) -> pd.DataFrame:
    """Each gap the paper reports against the noise threshold at the accuracy the paper
    reports for that stage (ZS 49.4%, FT 59.6%: the best model's; other models are less
    accurate, which changes the thresholds little - see the thresholds table)."""
    rep = reported()
    acc = rep[rep["metric"] == "accuracy"].set_index("method")["value"]
    gaps = rep[rep["metric"].isin(["f1_gap", "eqodds"])]
    rows = []
    for _, r in gaps.iterrows():
        a = float(acc[r["method"]])
        t = thresholds[(thresholds["metric"] == r["metric"])]
        if t.empty:
            continue
        near = t.iloc[(t["accuracy"] - a).abs().argsort()].iloc[0]
        rows.append({"paper_model": r["paper_model"], "method": METHOD_LABELS[r["method"]],
                     "gap": f"{GAP_LABELS[r['metric']]} ({ATTRIBUTE_LABELS[r['attribute']]})",
                     "reported": r["value"], "noise_threshold": near["critical_value"],
                     "at_accuracy": near["accuracy"],
                     "distinguishable": bool(r["value"] > near["critical_value"])})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- figures


def _palette(labels: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    return dict(zip(labels, sns.color_palette("colorblind", len(labels))))


def _bars(ax, table: pd.DataFrame, x: str, hue: str, order: Sequence[str],
          hue_order: Sequence[str], *, y: str = "estimate", star: str | None = None) -> None:
    """Grouped bars with percentile-interval whiskers (and * where ``star`` is True)."""
    colors = _palette(hue_order)
    width = 0.8 / max(1, len(hue_order))
    for j, h in enumerate(hue_order):
        sub = table[table[hue] == h].set_index(x).reindex(order)
        pos = np.arange(len(order)) - 0.4 + width * (j + 0.5)
        est = sub[y].to_numpy(float)
        lo = np.clip(est - sub["ci_low"].to_numpy(float), 0, None)
        hi = np.clip(sub["ci_high"].to_numpy(float) - est, 0, None)
        ax.bar(pos, est, width, color=colors[h], label=h, yerr=[lo, hi], capsize=2,
               error_kw={"lw": 0.8})
        if star:
            for p, e, s, top in zip(pos, est, sub[star].to_numpy(), est + hi):
                if bool(s) and np.isfinite(e):
                    ax.text(p, top, "*", ha="center", va="bottom", fontsize=10)
    ax.set_xticks(np.arange(len(order)), [_wrap(o) for o in order])


def _wrap(label: str) -> str:
    """Tick label on two lines: ``toy-clip-vit`` over ``(stand-in for MedCLIP-ViT)``."""
    return str(label).replace(" (", "\n(")


def fig_accuracy(acc: pd.DataFrame):
    """Fig. 2(a): accuracy per model and method (bars: estimate, whiskers: 95% CI)."""
    import matplotlib.pyplot as plt

    t = acc.assign(method=acc["method"].astype(str).map(METHOD_LABELS))
    models = list(dict.fromkeys(t["model_label"]))
    methods = [METHOD_LABELS[m] for m in METHODS if METHOD_LABELS[m] in set(t["method"])]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) + 2), 3.6))
    _bars(ax, t, "model_label", "method", models, methods)
    ax.axhline(1 / 6, color="grey", ls=":", lw=1, label="chance (1/6)")
    ax.set_ylabel("accuracy (test)")
    ax.set_ylim(0, 1.12)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def fig_classwise_f1(cls: pd.DataFrame):
    """Fig. 2(b): class-wise F1 after full fine-tuning."""
    import matplotlib.pyplot as plt

    classes = list(dict.fromkeys(cls["label"]))
    models = list(dict.fromkeys(cls["model_label"]))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    _bars(ax, cls, "label", "model_label", classes, models)
    ax.set_ylabel("F1 (test, after FT)")
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=7, frameon=False, ncol=len(models), loc="upper center")
    fig.tight_layout()
    return fig


def fig_var_f1(var: pd.DataFrame, method: str = "finetune"):
    """Fig. 3(a): Var_F1 per model (after full fine-tuning)."""
    import matplotlib.pyplot as plt

    v = var[var["method"].astype(str) == method]
    models = list(dict.fromkeys(v["model_label"]))
    fig, ax = plt.subplots(figsize=(max(4, 1.3 * len(models) + 1), 3.2))
    colors = _palette(models)
    est = v.set_index("model_label").reindex(models)
    ax.bar(range(len(models)), est["estimate"], color=[colors[m] for m in models],
           yerr=[np.clip(est["estimate"] - est["ci_low"], 0, None),
                 np.clip(est["ci_high"] - est["estimate"], 0, None)], capsize=3)
    ax.set_xticks(range(len(models)), [_wrap(m) for m in models], fontsize=8)
    ax.set_ylabel("Var_F1 (after FT)")
    fig.tight_layout()
    return fig


def fig_group_f1(groups: pd.DataFrame):
    """Fig. 3(b): mean (macro) F1 per age x sex group after full fine-tuning."""
    import matplotlib.pyplot as plt

    t = groups.assign(group=groups["group"].astype(str).map(GROUP_LABELS))
    models = list(dict.fromkeys(t["model_label"]))
    order = [GROUP_LABELS[g] for g in GROUPS]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(models) + 2), 3.4))
    _bars(ax, t, "model_label", "group", models, order)
    ax.set_ylabel("macro F1 (test, after FT)")
    ax.set_ylim(0, 1.12)
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(ncol=4, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def fig_gaps(gaps: pd.DataFrame, method: str, *, alpha: float = 0.05):
    """Fig. 3(c) (``finetune``) / 3(d) (``zero-shot``): F1 gap, EqOdds and ECE gap for sex
    and age per model; whiskers are 95% bootstrap intervals, * marks a gap whose adjusted
    permutation p-value is below ``alpha``."""
    import matplotlib.pyplot as plt

    g = gaps[gaps["method"].astype(str) == method].copy()
    g["significant"] = g["p_adjusted"] < alpha
    models = list(dict.fromkeys(g["model_label"]))
    fig, axes = plt.subplots(1, len(GAP_METRICS), figsize=(4 * len(GAP_METRICS), 3.4),
                             sharey=False)
    for ax, metric in zip(np.atleast_1d(axes), GAP_METRICS):
        sub = g[g["metric"] == metric]
        _bars(ax, sub, "attribute_label", "model_label", ["sex", "age"], models,
              star="significant")
        ax.set_title(GAP_LABELS[metric])
        ax.set_ylim(bottom=0)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), fontsize=7,
               frameon=False)
    fig.suptitle(f"after {METHOD_LABELS[method]}; * adjusted p < {alpha:g}", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def fig_trajectory(gaps: pd.DataFrame):
    """How each fairness metric moves from ZS through LP, MLP, LoRA to FT, per model."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(gaps["model_label"]))
    colors = _palette(models)
    fig, axes = plt.subplots(len(ATTRIBUTES), len(GAP_METRICS),
                             figsize=(4 * len(GAP_METRICS), 3 * len(ATTRIBUTES)), sharex=True)
    for i, attr in enumerate(ATTRIBUTES):
        for j, metric in enumerate(GAP_METRICS):
            ax = axes[i, j]
            for k, m in enumerate(models):
                sub = gaps[(gaps["model_label"] == m) & (gaps["metric"] == metric)
                           & (gaps["attribute"] == attr)].sort_values("method")
                xs = [METHODS.index(str(v)) + (k - (len(models) - 1) / 2) * 0.06
                      for v in sub["method"]]
                ax.errorbar(xs, sub["estimate"],
                            yerr=[np.clip(sub["estimate"] - sub["ci_low"], 0, None),
                                  np.clip(sub["ci_high"] - sub["estimate"], 0, None)],
                            marker="o", ms=4, lw=1.2, capsize=2, color=colors[m], label=m)
            ax.set_title(f"{GAP_LABELS[metric]} ({ATTRIBUTE_LABELS[attr]})", fontsize=9)
            ax.set_xticks(range(len(METHODS)), [METHOD_LABELS[m] for m in METHODS])
            ax.set_ylim(bottom=0)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(models), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def fig_noise(thresholds: pd.DataFrame, versus: pd.DataFrame):
    """Noise thresholds vs accuracy, with the paper's reported gaps as points."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, metric in zip(axes, ("f1_gap", "eqodds")):
        t = thresholds[thresholds["metric"] == metric].sort_values("accuracy")
        ax.plot(t["accuracy"], t["critical_value"], "k-", label="95% of fair models stay below")
        ax.plot(t["accuracy"], t["null_mean"], "k:", label="mean gap of a fair model")
        v = versus[versus["gap"].str.startswith(GAP_LABELS[metric])]
        for _, r in v.iterrows():
            ax.scatter(r["at_accuracy"], r["reported"], marker="o" if r["distinguishable"] else "x",
                       color="C3" if r["distinguishable"] else "C0")
            ax.annotate(f"{r['paper_model']} {r['method']} {r['gap'].split('(')[1][:-1]}",
                        (r["at_accuracy"], r["reported"]), fontsize=6, xytext=(3, 2),
                        textcoords="offset points")
        ax.set_title(f"{GAP_LABELS[metric]} at n = {int(t['n_test'].iloc[0])}")
        ax.set_xlabel("accuracy of the classifier")
    axes[0].set_ylabel("gap")
    axes[0].legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig
