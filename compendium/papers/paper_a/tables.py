"""Paper A's tables (tidy DataFrames from the audit table) and the key numbers the chapter
quotes."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd

from .pipeline import GAP_METRICS, GROUPS, ModelRun, headline_mask, pick
from .spec import METHODS, PaperASpec

METHOD_LABELS = {"zero-shot": "ZS", "linear": "LP", "mlp": "MLP", "lora": "LoRA",
                 "finetune": "FT"}
GROUP_LABELS = {"young/M": "young male", "young/F": "young female", "old/M": "old male",
                "old/F": "old female"}
ATTRIBUTE_LABELS = {"sex": "sex", "age_group": "age"}
GAP_LABELS = {"f1_gap": "F1 gap", "eqodds": "EqOdds", "ece_gap": "ECE gap"}


def models_table(cfg: PaperASpec) -> pd.DataFrame:
    """Which encoder runs for each of the paper's models, and where its weights come from."""
    from ...encoders import get_entry

    backbones = cfg.backbone_plans()
    rows = []
    for p in cfg.model_plans():
        entry = get_entry(p.encoder)
        if not cfg.pretrained:
            weights = "random init"
        elif entry.kind == "toy":
            weights = "synthetic-world pretraining (cached)"
        else:
            weights = cfg.weights.get(p.encoder) or "Hugging Face cache"
        rows.append({"paper model": p.paper_name, "runs as": p.label,
                     "fine-tuned backbone": backbones[p.model].encoder if p.model in backbones
                     else p.encoder, "weights": weights})
    return pd.DataFrame(rows)


def selection_table(runs: Sequence[ModelRun]) -> pd.DataFrame:
    """Every candidate tried (prompt family, learning rate) by every model, with its score."""
    return pd.concat([r.selection for r in runs], ignore_index=True).round(4)


def accuracy_table(audits: pd.DataFrame) -> pd.DataFrame:
    """Fig. 2(a) as a table: accuracy [95% CI] of every model x method."""
    a = pick(audits, metric="accuracy", attribute="all")
    a = a.assign(method=pd.Categorical(a["method"], METHODS, ordered=True))
    return (a[["model_label", "method", "estimate", "ci_low", "ci_high", "n"]]
            .sort_values(["model_label", "method"]).reset_index(drop=True))


def accuracy_wide(acc: pd.DataFrame) -> pd.DataFrame:
    """:func:`accuracy_table` with one row per model, one column per method, as
    ``estimate [low, high]``."""
    t = acc.assign(value=[f"{e:.3f} [{lo:.3f}, {hi:.3f}]" for e, lo, hi in
                          zip(acc["estimate"], acc["ci_low"], acc["ci_high"])])
    wide = t.pivot(index="model_label", columns="method", values="value")
    wide.columns = [METHOD_LABELS[str(m)] for m in wide.columns]
    return wide.reset_index().rename(columns={"model_label": "model"})


def gap_table(audits: pd.DataFrame) -> pd.DataFrame:
    """The headline gaps (Fig. 3c/d and the trajectory), with intervals (column ``interval``:
    how the audit formed them) and p-values; beside a gap of two groups (sex) the signed
    difference of the groups' values (first minus second, with its interval; for the macro
    F1 gap, of the groups' macro F1s)."""
    from ...audit.report import signed_beside

    g = audits[headline_mask(audits)]
    g = g.assign(signed=signed_beside(audits, g, on=["model_label", "method"]))
    g = g.assign(method=pd.Categorical(g["method"], METHODS, ordered=True),
                 metric_label=g["metric"].map(GAP_LABELS),
                 attribute_label=g["attribute"].map(ATTRIBUTE_LABELS))
    return (g[["model_label", "method", "metric", "metric_label", "attribute",
               "attribute_label", "estimate", "ci_low", "ci_high", "interval", "signed",
               "p_value", "p_adjusted"]]
            .rename(columns={"signed": "signed difference [95% CI]"})
            .sort_values(["model_label", "method", "metric", "attribute"])
            .reset_index(drop=True))


def group_f1_table(audits: pd.DataFrame, method: str = "finetune") -> pd.DataFrame:
    """Fig. 3(b): macro F1 of each age x sex group."""
    g = pick(audits, metric="f1", attribute="age_group+sex", label="macro", method=method)
    g = g.assign(group=pd.Categorical(g["group"], GROUPS, ordered=True))
    return (g[["model_label", "group", "estimate", "ci_low", "ci_high", "n"]]
            .sort_values(["model_label", "group"]).reset_index(drop=True))


def classwise_f1_table(audits: pd.DataFrame, method: str = "finetune") -> pd.DataFrame:
    """Fig. 2(b): F1 of each class."""
    f = pick(audits, metric="f1", attribute="all", method=method)
    f = f[f["label"] != "macro"]
    return f[["model_label", "label", "estimate", "ci_low", "ci_high"]].reset_index(drop=True)


def var_f1_table(audits: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3(a): Var_F1 (population variance of the class-wise F1) per model and method."""
    v = pick(audits, metric="f1_var", attribute="all")
    v = v.assign(method=pd.Categorical(v["method"], METHODS, ordered=True))
    return (v[["model_label", "method", "estimate", "ci_low", "ci_high"]]
            .sort_values(["model_label", "method"]).reset_index(drop=True))


def significant_gaps(gaps: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Headline gaps whose adjusted p-value is below ``alpha``."""
    return gaps[gaps["p_adjusted"] < alpha].round(4)


def comparison_table(compared: pd.DataFrame) -> pd.DataFrame:
    """:func:`~compendium.papers.reported.compare_reported` in the chapter's layout."""
    where = compared["attribute"].where(compared["attribute"] != "", compared["group"])
    return pd.DataFrame({
        "paper model": compared["model"], "method": compared["method"].map(METHOD_LABELS),
        "metric": compared["metric"], "attribute/group": where,
        "reported": compared["value"], "reproduced": compared["reproduced"],
        "ci_low": compared["reproduced_low"], "ci_high": compared["reproduced_high"],
        "reproduced_with": compared["reproduced_with"]}).round(3)


def reported_vs_noise(reported: pd.DataFrame, thresholds: pd.DataFrame) -> pd.DataFrame:
    """Each F1 gap and EqOdds the paper reports against the noise threshold at the accuracy the
    paper reports for that stage (ZS, FT: the best model's; other models are less accurate,
    which changes the thresholds little - see the thresholds table)."""
    from .spec import PAPER_MODELS

    acc = reported[reported["metric"] == "accuracy"].set_index("method")["value"]
    gaps = reported[reported["metric"].isin(["f1_gap", "eqodds"])]
    rows = []
    for _, r in gaps.iterrows():
        a = float(acc[r["method"]])
        t = thresholds[thresholds["metric"] == r["metric"]]
        if t.empty:
            continue
        near = t.iloc[(t["accuracy"] - a).abs().argsort()].iloc[0]
        rows.append({"paper_model": PAPER_MODELS.get(r["model"], r["model"]),
                     "method": METHOD_LABELS[r["method"]],
                     "gap": f"{GAP_LABELS[r['metric']]} ({ATTRIBUTE_LABELS[r['attribute']]})",
                     "reported": r["value"], "noise_threshold": near["critical_value"],
                     "at_accuracy": near["accuracy"],
                     "distinguishable": bool(r["value"] > near["critical_value"])})
    return pd.DataFrame(rows)


def reading_verdicts(evidence: pd.DataFrame) -> pd.DataFrame:
    """Per candidate reading of the gap metrics: how many of the paper's reported gaps it can
    produce and how many it rules out (:func:`~.pipeline.gap_reading_evidence`)."""
    g = evidence.groupby("reading", sort=False)
    return pd.DataFrame({"reported gaps": g.size(), "ruled out": g["ruled_out"].sum(),
                         "smallest share of fair classifiers at or below": g["share_at_most"]
                         .min().round(4)}).reset_index()


# ----------------------------------------------------------------------------- values


def reading_values(evidence: pd.DataFrame) -> dict[str, Any]:
    """How many reported gaps each reading rules out (``ruled_out_<reading>``)."""
    return {f"ruled_out_{r}": int(g["ruled_out"].sum())
            for r, g in evidence.groupby("reading", sort=False)}


def accuracy_values(acc: pd.DataFrame, runs: Sequence[ModelRun]) -> dict[str, Any]:
    """Numbers the chapter quotes about Fig. 2(a): per model its ZS and FT accuracy, how many
    models gain over zero-shot and the smallest gain."""
    est = acc.pivot(index="model_label", columns="method", values="estimate")
    out: dict[str, Any] = {"n_models": len(runs)}
    for i, r in enumerate(runs):
        for key, method in (("zs", "zero-shot"), ("ft", "finetune")):
            v = float(est.loc[r.plan.label, method]) if method in r.predictions else float("nan")
            out[f"acc_{key}_{i}"] = (v, ".3f")
        out[f"model_{i}"] = r.plan.label
    trained = [m for m in ("linear", "mlp", "lora", "finetune") if m in est.columns]
    if "zero-shot" in est.columns and trained:
        gain = est[trained].max(axis=1) - est["zero-shot"]
        out["min_gain_over_zs"] = (float(gain.min()), ".3f")
        out["n_models_gain"] = int((gain > 0).sum())
    return out


#: How far (accuracy) a stand-in may sit from the paper's operating point (ours: the demo's
#: calibration target).
OPERATING_TOLERANCE = 0.15


def operating_points(audits: pd.DataFrame, reported: pd.DataFrame, *,
                     tolerance: float = OPERATING_TOLERANCE) -> pd.DataFrame:
    """Does each model sit near the paper's operating point?  Zero-shot and fine-tuned
    accuracy of every model beside the paper's reported accuracy for that stage.

    The paper prints these two accuracies for one model (MedCLIP-ViT, its best); for the
    other models they are the reference point (``reference`` says whose number it is).
    """
    acc = pick(audits, metric="accuracy", attribute="all")
    rep = reported[reported["metric"] == "accuracy"]
    rows = []
    for (paper_model, label), a in acc.groupby(["paper_model", "model_label"], sort=False):
        for method in ("zero-shot", "finetune"):
            r = rep[rep["method"] == method]
            e = a[a["method"] == method]
            if r.empty or e.empty:
                continue
            own = r[r["model"] == paper_model]
            ref = (own if len(own) else r).iloc[0]
            est = float(e["estimate"].iloc[0])
            rows.append({"model": label, "stage": METHOD_LABELS[method],
                         "reproduced": round(est, 3),
                         "paper": float(ref["value"]),
                         "reference": "this model" if len(own) else f"the paper's {ref['model']}",
                         "difference": round(est - float(ref["value"]), 3),
                         f"within {tolerance:g}": bool(abs(est - float(ref["value"])) <= tolerance)})
    return pd.DataFrame(rows)


def operating_values(points: pd.DataFrame, tolerance: float = OPERATING_TOLERANCE
                     ) -> dict[str, Any]:
    """How many model x stage accuracies sit within the tolerance of the paper's."""
    col = f"within {tolerance:g}"
    own = points[points["reference"] == "this model"]
    return {"n_operating": len(points), "n_operating_within": int(points[col].sum()),
            "n_operating_own": len(own), "n_operating_own_within": int(own[col].sum()),
            "operating_tolerance": tolerance}


def gap_values(gaps: pd.DataFrame, alpha: float = 0.05) -> dict[str, Any]:
    """How many headline gaps were tested and are significant, and the largest spread of a
    gap between models after fine-tuning."""
    ft = gaps[gaps["method"].astype(str) == "finetune"]
    span = ft.groupby(["metric", "attribute"])["estimate"].agg(["max", "min"])
    spread = span["max"] - span["min"]
    return {"n_gap_tests": int(gaps["p_adjusted"].notna().sum()),
            "n_gap_significant": int((gaps["p_adjusted"] < alpha).sum()),
            "n_gap_raw_significant": int((gaps["p_value"] < alpha).sum()),
            "max_between_model_spread": (float(spread.max()) if len(spread) else float("nan"),
                                         ".3f"),
            "alpha": alpha}


def noise_values(thresholds: pd.DataFrame, versus: pd.DataFrame,
                 reported: pd.DataFrame) -> dict[str, Any]:
    """The noise thresholds at the paper's fine-tuned accuracy (from ``reported.yaml``) and
    how many reported gaps exceed them."""
    ft_acc = float(reported.query("metric == 'accuracy' and method == 'finetune'")["value"].max())
    near = thresholds.iloc[(thresholds["accuracy"] - ft_acc).abs().argsort()]
    pick_ = {m: float(near[near["metric"] == m]["critical_value"].iloc[0])
             for m in ("f1_gap", "eqodds")}
    return {"paper_ft_accuracy": (ft_acc, ".3f"),
            "noise_f1_gap_ft": (pick_["f1_gap"], ".3f"),
            "noise_eqodds_ft": (pick_["eqodds"], ".3f"),
            "noise_n_test": int(thresholds["n_test"].iloc[0]),
            "n_reported_gaps": len(versus),
            "n_reported_distinguishable": int(versus["distinguishable"].sum())}


def settings_values(cfg: PaperASpec) -> dict[str, Any]:
    """The run's training and statistics settings the chapter quotes."""
    return {"epochs": cfg.epochs, "adapt_epochs": cfg.adapt_epochs,
            "patience": cfg.patience if cfg.patience is not None else "never",
            "batch_size": cfg.batch_size, "lora_rank": cfg.lora_rank, "n_draws": cfg.n_draws,
            "n_bootstrap": cfg.n_bootstrap, "n_permutations": (cfg.n_permutations, ",d")}


def rule_values(rules: pd.DataFrame) -> dict[str, Any]:
    """How many NIH findings qualify under each reading of the cohort rule."""
    return {"rule_stated_any": int(rules["stated, any-label"].sum()),
            "rule_stated_single": int(rules["stated, single-label"].sum()),
            "rule_ours": int(rules["ours"].sum())}


def cohort_values(cohort) -> dict[str, Any]:
    """Size of the cohort, of its test split, and its diseases."""
    return {"n_images": len(cohort.table),
            "n_test": int((cohort.table["split"] == "test").sum()),
            "n_classes": len(cohort.labels),
            "chance_accuracy": (1 / len(cohort.labels), ".3f"),
            "diseases": ", ".join(cohort.labels)}


__all__ = ["ATTRIBUTE_LABELS", "GAP_LABELS", "GROUP_LABELS", "METHOD_LABELS", "accuracy_table",
           "accuracy_values", "accuracy_wide", "classwise_f1_table", "cohort_values",
           "comparison_table", "gap_table", "gap_values", "group_f1_table", "models_table",
           "noise_values", "reading_values", "reading_verdicts", "reported_vs_noise", "rule_values",
           "selection_table", "settings_values",
           "significant_gaps",
           "var_f1_table"]


# ----------------------------------------------------------------------------- claims


def _fmt(r: pd.Series) -> str:
    return f"{r['estimate']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"


def claim_checks(audits: pd.DataFrame) -> dict[str, Any]:
    """One check per claim of ``claims.yaml``, on this run's audit table (models named by the
    paper model they are or stand in for)."""
    from ..claims import judged, not_testable
    from .spec import PAPER_MODELS

    name = lambda m: PAPER_MODELS.get(m, m)  # noqa: E731
    acc = pick(audits, metric="accuracy", attribute="all")
    models = list(dict.fromkeys(audits["paper_model"]))

    def fine_tuning_helps():
        worst, n, pairs = None, 0, 0
        for m in models:
            a = acc[acc["paper_model"] == m].set_index("method")
            if "zero-shot" not in a.index:
                continue
            for method in [x for x in ("linear", "mlp", "lora", "finetune") if x in a.index]:
                gain = a.loc[method, "estimate"] - a.loc["zero-shot", "estimate"]
                pairs += 1
                n += gain > 0
                if worst is None or gain < worst[0]:
                    worst = (gain, m, method, a.loc[method], a.loc["zero-shot"])
        if worst is None:
            return not_testable("no model ran zero-shot and a trained method")
        g, m, method, r, z = worst
        return judged(n == pairs, f"{n} of {pairs} (model, method) pairs above zero-shot; "
                      f"smallest gain {g:+.3f} ({name(m)}, {METHOD_LABELS[method]})",
                      f"[{r['ci_low'] - z['ci_high']:+.3f}, {r['ci_high'] - z['ci_low']:+.3f}]")

    def best_adaptation():
        expected = {"clip-vit-b-16": "finetune", "medclip-vit": "finetune",
                    "medclip-rn50": "lora", "biomedclip": "lora"}
        parts, ok, seen = [], True, 0
        for m in models:
            a = acc[(acc["paper_model"] == m) & acc["method"].isin(["linear", "mlp", "lora",
                                                                    "finetune"])]
            if m not in expected or not {"lora", "finetune"} <= set(a["method"]):
                continue
            best = a.loc[a["estimate"].idxmax()]
            seen += 1
            ok &= best["method"] == expected[m]
            parts.append(f"{name(m)}: {METHOD_LABELS[best['method']]} {best['estimate']:.3f} "
                         f"(paper: {METHOD_LABELS[expected[m]]})")
        if not seen:
            return not_testable("none of CLIP, MedCLIP-ViT, MedCLIP-RN, BiomedCLIP ran LoRA "
                                "and full fine-tuning")
        return judged(ok, "; ".join(parts))

    def _ft_best(metric_rows: pd.DataFrame, model: str, lower: bool, what: str,
                 stage: str = "after full fine-tuning"):
        if model not in models or len(set(metric_rows["paper_model"])) < 2:
            return not_testable(f"needs {name(model)} and another model {stage}")
        best = metric_rows.loc[(metric_rows["estimate"].idxmin() if lower
                                else metric_rows["estimate"].idxmax())]
        mine = metric_rows[metric_rows["paper_model"] == model].iloc[0]
        return judged(best["paper_model"] == model,
                      f"{name(model)} {mine['estimate']:.3f}; {'lowest' if lower else 'highest'}"
                      f" {what}: {name(best['paper_model'])} {best['estimate']:.3f}",
                      f"{name(model)}: [{mine['ci_low']:.3f}, {mine['ci_high']:.3f}]")

    ft = audits[audits["method"] == "finetune"]

    def clip_lowest():
        parts, ok = [], True
        for method in ("zero-shot", "finetune"):
            a = acc[acc["method"] == method]
            if "clip-vit-b-16" not in set(a["paper_model"]) or a["paper_model"].nunique() < 2:
                return not_testable("needs CLIP and another model at zero-shot and after full "
                                    "fine-tuning")
            low = a.loc[a["estimate"].idxmin()]
            mine = a[a["paper_model"] == "clip-vit-b-16"].iloc[0]
            ok &= low["paper_model"] == "clip-vit-b-16"
            parts.append(f"{METHOD_LABELS[method]}: CLIP {_fmt(mine)}, lowest "
                         f"{name(low['paper_model'])} {low['estimate']:.3f}")
        return judged(ok, "; ".join(parts))

    def medclip_vit_best_zero_shot():
        return _ft_best(pick(audits[audits["method"] == "zero-shot"], metric="accuracy",
                             attribute="all"), "medclip-vit", False, "zero-shot accuracy",
                        stage="at zero-shot")

    def medclip_vit_most_accurate():
        return _ft_best(pick(ft, metric="accuracy", attribute="all"), "medclip-vit", False,
                        "accuracy")

    def biomedclip_fairness():
        return _ft_best(pick(ft, metric="f1_var", attribute="all"), "biomedclip", True,
                        "Var_F1")

    def medclip_vit_every_class():
        f = pick(ft, metric="f1", attribute="all")
        f = f[f["label"] != "macro"]
        if "medclip-vit" not in models or f["paper_model"].nunique() < 2:
            return not_testable("needs MedCLIP-ViT and another model after full fine-tuning")
        wins = [c for c, g in f.groupby("label", sort=False)
                if g.loc[g["estimate"].idxmax(), "paper_model"] == "medclip-vit"]
        n = f["label"].nunique()
        return judged(len(wins) == n, f"highest F1 in {len(wins)} of {n} classes")

    def gloria_fairest():
        g = pick(ft, metric="f1_gap", label=GAP_METRICS["f1_gap"])
        if "gloria" not in models or g["paper_model"].nunique() < 2:
            return not_testable("needs GLoRIA and another model after full fine-tuning")
        parts, ok = [], True
        for attr in ("sex", "age_group"):
            a = g[g["attribute"] == attr]
            best = a.loc[a["estimate"].idxmin()]
            mine = a[a["paper_model"] == "gloria"].iloc[0]
            ok &= best["paper_model"] == "gloria"
            parts.append(f"{ATTRIBUTE_LABELS[attr]}: GLoRIA {_fmt(mine)}, smallest "
                         f"{name(best['paper_model'])} {best['estimate']:.3f}")
        return judged(ok, "; ".join(parts))

    def fine_tuning_and_fairness():
        head = audits[headline_mask(audits)]
        change = {}
        for m in models:
            h = head[head["paper_model"] == m].groupby("method")["estimate"].mean()
            if {"zero-shot", "finetune"} <= set(h.index):
                change[m] = float(h["finetune"] - h["zero-shot"])
        if "gloria" not in change or len(change) < 2:
            return not_testable("needs GLoRIA and another model at zero-shot and after full "
                                "fine-tuning")
        ok = change["gloria"] < 0 and all(v > 0 for m, v in change.items() if m != "gloria")
        return judged(ok, "; ".join(f"{name(m)} {v:+.3f}" for m, v in change.items()),
                      detail="mean of the six headline gaps, FT minus ZS")

    return {"fine-tuning-helps": fine_tuning_helps, "clip-lowest": clip_lowest,
            "medclip-vit-best-zero-shot": medclip_vit_best_zero_shot,
            "best-adaptation-per-model": best_adaptation,
            "medclip-vit-most-accurate": medclip_vit_most_accurate,
            "medclip-vit-every-class": medclip_vit_every_class,
            "biomedclip-disease-fairness": biomedclip_fairness, "gloria-fairest": gloria_fairest,
            "fine-tuning-and-fairness": fine_tuning_and_fairness}
