"""Paper B's tables, the numbers the chapter quotes, the reproduced values under the keys of
``reported.yaml`` and the checks of its headline claims."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .spec import ATTRIBUTES, MLPS, PAPER_MODELS, TASKS, PaperBSpec

PE_LR = "logreg CT"


def settings_table(cfg: PaperBSpec) -> pd.DataFrame:
    """The run's data, probes and statistics settings (glued, never retyped)."""
    rows = [("studies (synthetic world)" if cfg.pixels == "synthetic" else "studies",
             cfg.n_studies if cfg.pixels == "synthetic" else "INSPECT"),
            ("axial slices per study", cfg.n_slices), ("slice side (px)", cfg.slice_size),
            ("tasks", ", ".join(cfg.tasks)), ("decision threshold", cfg.threshold),
            ("small-group rule: fewer test studies than", cfg.min_group_size),
            ("bootstrap resamples", cfg.n_bootstrap), ("permutations", cfg.n_permutations),
            ("multiple-comparison correction", cfg.correction),
            ("adversary strengths", ", ".join(f"{a:g}" for a in cfg.alphas)),
            ("logistic regression C tried (validation AUROC)", "0.01, 0.1")]
    if cfg.pixels == "synthetic":
        rows += [("synthetic world: emboli per PE study", cfg.emboli),
                 ("synthetic world: prognosis strength", cfg.prognosis_strength),
                 ("synthetic world: EHR reflects", ", ".join(cfg.ehr_findings))]
    return pd.DataFrame(rows, columns=["setting", "value"]).astype({"value": str})


def models_table(cfg: PaperBSpec) -> pd.DataFrame:
    from ...encoders import get_entry

    return pd.DataFrame([{"paper model": p.paper_name, "runs as": p.label,
                          "embedding size": get_entry(p.encoder).embed_dim,
                          "preprocessing": get_entry(p.encoder).preprocess.describe()}
                         for p in cfg.model_plans()])


def _models(perf: pd.DataFrame) -> list[str]:
    m = perf[perf["paper_model"].isin(PAPER_MODELS)]
    return list(dict.fromkeys(m["model"]))


def performance_wide(perf: pd.DataFrame) -> pd.DataFrame:
    """Test AUROC (95 % interval) of the logistic regression on mean-pooled CT, per task and
    model, and the baseline's on PE."""
    t = perf[(perf["variant"] == PE_LR) | (perf["paper_model"] == "ct-lrcn")].copy()
    t["AUROC (95 % CI)"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]"
                            for a, lo, hi in zip(t["auroc"], t["ci_low"], t["ci_high"])]
    t["task"] = t["task"].map(lambda k: TASKS[k][2])
    w = t.pivot_table(index="task", columns="model", values="AUROC (95 % CI)",
                      aggfunc="first", sort=False)
    w.columns.name = None
    return w.reset_index()


def ablation_table(perf: pd.DataFrame) -> pd.DataFrame:
    """CT-only vs EHR-only vs CT+EHR test AUROC per model and task; ``fusion gain`` =
    CT+EHR minus CT."""
    ehr = perf[perf["variant"] == "logreg EHR"].set_index("task")["auroc"]
    rows = []
    for model in _models(perf):
        p = perf[perf["model"] == model].set_index(["task", "variant"])["auroc"]
        for task in dict.fromkeys(perf["task"]):
            if (task, PE_LR) not in p:
                continue
            ct, both = p[(task, PE_LR)], p.get((task, "logreg CT+EHR"), np.nan)
            rows.append({"model": model, "task": task, "CT only": ct,
                         "EHR only": ehr.get(task, np.nan), "CT+EHR": both,
                         "fusion gain": both - ct})
    return pd.DataFrame(rows)


def mlp_table(perf: pd.DataFrame) -> pd.DataFrame:
    """PE test AUROC of the logistic regression and of each MLP of the sweep per model, and
    LR minus the best MLP."""
    rows = []
    for model in _models(perf):
        p = perf[(perf["model"] == model) & (perf["task"] == "pe")].set_index("variant")["auroc"]
        row = {"model": model, "paper_model": perf.loc[perf["model"] == model,
                                                        "paper_model"].iat[0],
               "logistic regression": p.get(PE_LR, np.nan)}
        for m in MLPS:
            row[m] = p.get(m, np.nan)
        best = max((row[m] for m in MLPS if np.isfinite(row[m])), default=np.nan)
        row["best MLP"] = best
        row["LR minus best MLP"] = row["logistic regression"] - best
        rows.append(row)
    return pd.DataFrame(rows)


def groups_table(audit: pd.DataFrame) -> pd.DataFrame:
    """Per-group AUROC, TPR, FPR and UDR with intervals (PE), small groups marked."""
    g = audit[audit["kind"] == "group"]
    return g[["model", "metric", "attribute", "group", "estimate", "ci_low", "ci_high", "n",
              "small_group"]].reset_index(drop=True)


def gaps_table(audit: pd.DataFrame, cfg: PaperBSpec) -> pd.DataFrame:
    """Min-max gaps (groups that are not small) with permutation p-values, Holm-adjusted
    (``correction``) over every gap of the table's metric, and beside a gap of two groups its
    signed difference (first group minus second, with its interval)."""
    from ...audit.report import signed_beside
    from ...audit.stats import adjust_pvalues

    gap_rows = audit[audit["kind"] == "gap"]
    on = [k for k in ("model", "task", "variant") if k in audit]
    g = gap_rows[["model", "paper_model", "task", "metric", "attribute",
                  "estimate", "ci_low", "ci_high", "interval",
                  "p_value", "n", "threshold"]].copy()
    g.insert(8, "signed difference [95% CI]", signed_beside(audit, gap_rows, on=on))
    g["p_adjusted"] = np.nan
    for m, idx in g.groupby("metric").groups.items():
        g.loc[idx, "p_adjusted"] = adjust_pvalues(g.loc[idx, "p_value"].to_numpy(),
                                                  cfg.correction)
    return g.reset_index(drop=True)


def age_udr_table(age: pd.DataFrame) -> pd.DataFrame:
    """UDR per age band for every task and model, the age gap and its p-value."""
    g = age[(age["kind"] == "group") & (age["metric"] == "udr")]
    w = g.pivot_table(index=["model", "task"], columns="group", values="estimate",
                      sort=False).reset_index()
    w.columns.name = None
    gap = age[(age["kind"] == "gap") & (age["metric"] == "udr_gap")].set_index(
        ["model", "task"])
    w["UDR gap"] = [gap["estimate"].get((m, t), np.nan) for m, t in zip(w["model"], w["task"])]
    w["p"] = [gap["p_value"].get((m, t), np.nan) for m, t in zip(w["model"], w["task"])]
    keep = ["model", "task"] + [b for b in ("18-40", "40-60", "60-75", "75-90") if b in w] + \
        ["UDR gap", "p"]
    return w[keep]


def disparity_table(disparity: pd.DataFrame) -> pd.DataFrame:
    """The Hispanic disparity per model under each reading of ``hispanic_reference``."""
    cols = ["model", "reading", "group", "reference", "n_group", "n_group_positives",
            "n_reference", "n_reference_positives", "udr_group", "udr_reference", "difference",
            "p_value", "this run"]
    return disparity[cols].reset_index(drop=True)


def sweep_summary(sweep: pd.DataFrame) -> pd.DataFrame:
    """Per model: thresholds where both sexes' TPR lies strictly between 0 and 1, and the
    share of them where women's UDR exceeds men's."""
    rows = []
    for model, g in sweep.groupby("model", sort=False):
        inf = g[g["informative"]]
        rows.append({"model": model, "informative thresholds": len(inf),
                     "share with female UDR > male": float((inf["difference"] > 0).mean())
                     if len(inf) else np.nan,
                     "mean difference": float(inf["difference"].mean()) if len(inf) else np.nan})
    return pd.DataFrame(rows)


def mitigation_gaps(mit: pd.DataFrame) -> pd.DataFrame:
    """Fig. 3's table: for each model, mitigation and targeted attribute, the targeted
    attribute's UDR gap before and after, its change (paired bootstrap) and the AUROC cost."""
    g = mit[mit["attribute"] == mit["target"]]
    auc = mit[mit["measure"] == "AUROC"].set_index(["model", "mitigation", "target"])
    out = g[["model", "paper_model", "mitigation", "target", "alpha", "before", "after",
             "change", "ci_low", "ci_high", "p_value"]].copy()
    out["relative change"] = out["change"] / out["before"].where(out["before"] > 0)
    key = list(zip(out["model"], out["mitigation"], out["target"]))
    out["AUROC after"] = [auc["after"].get(k, np.nan) for k in key]
    out["AUROC change"] = [auc["change"].get(k, np.nan) for k in key]
    return out.reset_index(drop=True)


def pooling_table(perf: pd.DataFrame) -> pd.DataFrame:
    """Test AUROC of mean, max and attention-MIL pooling per model and task."""
    names = {PE_LR: "mean", "logreg CT (max pooling)": "max", "attention-MIL CT": "attention (MIL)"}
    t = perf[perf["variant"].isin(names)].copy()
    t["pooling"] = t["variant"].map(names)
    w = t.pivot_table(index=["model", "task"], columns="pooling", values="auroc",
                      sort=False).reset_index()
    w.columns.name = None
    return w


# ----------------------------------------------------------------------------- values


def _span(values) -> tuple[float, float]:
    v = np.asarray(list(values), float)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if len(v) else (np.nan, np.nan)


def reproduced_values(perf: pd.DataFrame, audit: pd.DataFrame, gaps: pd.DataFrame,
                      age: pd.DataFrame, mlp: pd.DataFrame, ablation: pd.DataFrame,
                      vs_base: pd.DataFrame, mit: pd.DataFrame, probing: pd.DataFrame,
                      cohort: pd.DataFrame | None = None,
                      disparity: pd.DataFrame | None = None) -> pd.DataFrame:
    """This run's counterparts of ``reported.yaml``'s numbers, under its keys (``cohort``:
    :func:`~.pipeline.cohort_table`, for the study and patient counts; ``disparity``:
    :func:`~.pipeline.group_disparity`, for the Hispanic p-values under the run's reading)."""
    rows: list[dict[str, Any]] = []

    def add(metric, value, **keys):
        rows.append({"metric": metric, "estimate": float(value), **keys})

    if cohort is not None:
        add("studies", cohort["studies"].sum(), dataset="inspect")
        add("patients", cohort["patients"].sum(), dataset="inspect")

    fm = perf[perf["paper_model"].isin(PAPER_MODELS)]
    pe = fm[(fm["task"] == "pe") & (fm["variant"] == PE_LR)]
    lo, hi = _span(pe["auroc"])
    add("auroc_min", lo, label="pe")
    add("auroc_max", hi, label="pe")
    base = perf[perf["paper_model"] == "ct-lrcn"]
    if len(base):
        add("auroc", base["auroc"].iat[0], model="ct-lrcn", label="pe")
    if len(vs_base):
        add("p_value_max", vs_base["p_value"].max(), method="fm-vs-baseline", label="pe")
    mort = fm[fm["task"].str.startswith("mortality") & (fm["variant"] == PE_LR)]
    lo, hi = _span(mort["auroc"])
    add("auroc_min", lo, label="mortality")
    add("auroc_max", hi, label="mortality")
    for r in mlp.to_dict("records"):
        add("lr_minus_best_mlp", r["LR minus best MLP"], model=r["paper_model"])
    if len(ablation):
        add("fusion_gain_max", ablation["fusion gain"].max(), model="biomedclip",
            label="readmission")
    g = audit[(audit["kind"] == "group") & (audit["paper_model"].isin(PAPER_MODELS))]
    for band in ("18-40", "75-90"):
        v = g[(g["metric"] == "udr") & (g["group"] == band)]["estimate"]
        lo, hi = _span(v)
        add("udr_min", lo, attribute="age_group", group=band, label="pe")
        add("udr_max", hi, attribute="age_group", group=band, label="pe")
    gg = gaps[(gaps["metric"] == "udr_gap") & gaps["paper_model"].isin(PAPER_MODELS)]
    for a in ATTRIBUTES:
        lo, hi = _span(gg[gg["attribute"] == a]["estimate"])
        add("udr_gap_min", lo, attribute=a, label="pe")
        add("udr_gap_max", hi, attribute=a, label="pe")
    add("p_value_bound", gg[gg["attribute"] == "age_group"]["p_value"].max(),
        attribute="age_group", label="pe")
    add("p_value_max", gg[gg["attribute"] == "sex"]["p_value"].max(), attribute="sex", label="pe")
    if disparity is not None and len(disparity):
        d = disparity[disparity["this run"] & disparity["paper_model"].isin(PAPER_MODELS)]
        for r in d[["group"]].drop_duplicates().itertuples():
            lo, hi = _span(d[d["group"] == r.group]["p_value"])
            add("p_value_min", lo, attribute="race", group=r.group, label="pe")
            add("p_value_max", hi, attribute="race", group=r.group, label="pe")
    for m in ("medsiglip", "biomedclip"):
        v = g[(g["metric"] == "auroc") & (g["group"] == "18-40") & (g["paper_model"] == m)]
        if len(v):
            add("auroc", v["estimate"].iat[0], model=m, attribute="age_group", group="18-40",
                label="pe")
    ag = age[(age["kind"] == "gap") & (age["metric"] == "udr_gap") & (age["task"] != "pe")
             & age["paper_model"].isin(PAPER_MODELS)]
    lo, hi = _span(ag["estimate"])
    add("udr_gap_min", lo, attribute="age_group", label="prognostic")
    add("udr_gap_max", hi, attribute="age_group", label="prognostic")
    b = audit[(audit["paper_model"] == "ct-lrcn") & (audit["kind"] == "group")]
    for metric, attr, group in (("udr", "age_group", "18-40"), ("tpr", "sex", "F"),
                                ("tpr", "sex", "M")):
        v = b[(b["metric"] == metric) & (b["group"] == group) & (b["attribute"] == attr)]
        if len(v):
            add(metric, v["estimate"].iat[0], model="ct-lrcn", attribute=attr, group=group,
                label="pe")
    res = mit[(mit["mitigation"] == "resampling") & (mit["measure"] == "AUROC")]
    lo, hi = _span(res["after"])
    add("auroc_min", lo, method="resampling", label="pe")
    add("auroc_max", hi, method="resampling", label="pe")
    if len(res):
        add("auroc_approx", res["after"].mean(), method="resampling", label="pe")
    adv = mit[(mit["mitigation"] == "adversarial") & (mit["attribute"] == mit["target"])]
    for r in adv.itertuples():
        keys = {"model": r.paper_model, "method": "adversarial", "attribute": r.target,
                "label": "pe"}
        if r.paper_model == "medimageinsight" and r.target == "age_group":
            add("udr_gap_before", r.before, **keys)
            add("udr_gap_after", r.after, **keys)
            add("alpha", r.alpha, **keys)
            add("p_value_bound", r.p_value, **keys)
        if r.before > 0:
            add("gap_reduction", -r.change / r.before, **keys)
        if r.paper_model == "medsiglip" and r.target == "age_group":
            add("p_value", r.p_value, **keys)
        if r.paper_model == "medsiglip" and r.target == "sex":
            add("p_value_bound", r.p_value, **keys)
    a = mit[(mit["mitigation"] == "adversarial") & (mit["target"] == "age_group")
            & (mit["paper_model"] == "medimageinsight") & (mit["measure"] == "AUROC")]
    if len(a):
        add("auroc_cost", -a["change"].iat[0], model="medimageinsight", method="adversarial",
            attribute="age_group", label="pe")
    r = mit[(mit["mitigation"] == "adversarial") & (mit["target"] == "race")
            & (mit["paper_model"] == "medimageinsight") & (mit["attribute"] != "")]
    for row in r.itertuples():
        if row.before > 0:
            add("gap_reduction", -row.change / row.before, model="medimageinsight",
                method="adversarial-race", attribute=row.attribute, label="pe")
    bcl = adv[adv["paper_model"] == "biomedclip"]
    if len(bcl):
        add("p_value_min", bcl["p_value"].min(), model="biomedclip", method="adversarial",
            label="pe")
    pr = probing[probing["attribute"] == "race"]
    for row in pr.itertuples():
        if row.paper_model == "biomedclip":
            add("macro_f1", row.macro_f1, model="biomedclip", method="demographic-probe",
                attribute="race")
    big = pr[pr["paper_model"].isin(["medimageinsight", "medsiglip"])]["macro_f1"]
    lo, hi = _span(big)
    add("macro_f1_min", lo, method="demographic-probe", attribute="race")
    add("macro_f1_max", hi, method="demographic-probe", attribute="race")
    if len(base):
        add("auroc_points_gap", 100 * (base["auroc"].iat[0] - pe["auroc"].mean()),
            model="ct-lrcn", label="pe")
    out = pd.DataFrame(rows)
    # ranges and bounds the paper prints over its models: keep the last row of each key
    from ..reported import KEYS

    for k in KEYS:
        if k not in out:
            out[k] = ""
    out[list(KEYS)] = out[list(KEYS)].fillna("")
    out = out.drop_duplicates(list(KEYS), keep="first")
    out["reproduced_with"] = "this run"
    return out


def comparison_table(compared: pd.DataFrame) -> pd.DataFrame:
    cols = ["id", "where", "metric", "model", "method", "attribute", "group", "label", "value",
            "reproduced", "reproduced_with"]
    return compared[cols].rename(columns={"value": "reported"}).round(3)


def headline_values(perf: pd.DataFrame, gaps: pd.DataFrame, mlp: pd.DataFrame,
                    ablation: pd.DataFrame) -> dict[str, Any]:
    """The numbers the chapter quotes."""
    fm = perf[perf["paper_model"].isin(PAPER_MODELS) & (perf["variant"] == PE_LR)]
    pe = fm[fm["task"] == "pe"]["auroc"]
    mort = fm[fm["task"].str.startswith("mortality")]["auroc"]
    gg = gaps[(gaps["metric"] == "udr_gap") & gaps["paper_model"].isin(PAPER_MODELS)]
    out: dict[str, Any] = {
        "pe_auroc_min": (float(pe.min()), ".3f"), "pe_auroc_max": (float(pe.max()), ".3f"),
        "mortality_auroc_min": (float(mort.min()), ".3f"),
        "mortality_auroc_max": (float(mort.max()), ".3f"),
        "fusion_gain_max": (float(ablation["fusion gain"].max()), "+.3f"),
        "lr_minus_mlp_mean": (float(mlp["LR minus best MLP"].mean()), "+.3f")}
    for a in ATTRIBUTES:
        v = gg[gg["attribute"] == a]["estimate"]
        out[f"udr_gap_{a}_max"] = (float(v.max()) if len(v) else float("nan"), ".3f")
    b = perf[perf["paper_model"] == "ct-lrcn"]
    if len(b):
        out["baseline_pe_auroc"] = (float(b["auroc"].iat[0]), ".3f")
    return out


# ----------------------------------------------------------------------------- claims


def claim_checks(perf: pd.DataFrame, gaps: pd.DataFrame | None = None,
                 mlp: pd.DataFrame | None = None, ablation: pd.DataFrame | None = None,
                 audit: pd.DataFrame | None = None, sweep: pd.DataFrame | None = None,
                 mit: pd.DataFrame | None = None, probing: pd.DataFrame | None = None
                 ) -> dict[str, Any]:
    """One check per claim of ``claims.yaml`` on this run's tables (each check reads the
    tables it needs when it is called)."""
    from ..claims import judged, not_testable

    fm = set(PAPER_MODELS)

    def lr_beats_mlp():
        if mlp.empty:
            return not_testable("no MLP sweep in this run")
        big = mlp[mlp["paper_model"].isin(["medimageinsight", "medsiglip"])]
        d = big["LR minus best MLP"]
        return judged(bool((d > 0).all()) and len(d) > 0,
                      "; ".join(f"{r['paper_model']}: {r['LR minus best MLP']:+.3f}"
                                for r in big.to_dict("records")),
                      detail="LR minus the best MLP, PE test AUROC")

    def fusion_small():
        if ablation.empty:
            return not_testable("no ablation")
        g = ablation["fusion gain"]
        mort = ablation[ablation["task"].str.startswith("mortality")]["fusion gain"]
        return judged(bool(g.max() <= 0.02 and mort.max() <= 0.01),
                      f"largest gain {g.max():+.3f}; mortality at most {mort.max():+.3f}",
                      detail="CT+EHR minus CT, test AUROC, every model and task")

    def age_dominant():
        gg = gaps[(gaps["metric"] == "udr_gap") & gaps["paper_model"].isin(fm)]
        if gg.empty:
            return not_testable("no gaps")
        w = gg.pivot_table(index="model", columns="attribute", values="estimate")
        if "age_group" not in w:
            return not_testable("no age gap")
        others = [c for c in w.columns if c != "age_group"]
        ok = (w["age_group"] > w[others].max(axis=1)).all()
        p = gg[gg["attribute"] == "age_group"]["p_adjusted"]
        return judged(bool(ok and (p < 0.05).all()),
                      "; ".join(f"{m}: age {r['age_group']:.3f} vs "
                                f"{max(r[c] for c in others):.3f}" for m, r in w.iterrows()),
                      detail=f"age gap p (adjusted) at most {p.max():.3g}")

    def female_under():
        gg = gaps[(gaps["metric"] == "udr_gap") & gaps["paper_model"].isin(fm)
                  & (gaps["attribute"] == "sex")]
        g = audit[(audit["kind"] == "group") & (audit["metric"] == "udr")
                  & (audit["attribute"] == "sex") & audit["paper_model"].isin(fm)]
        w = g.pivot_table(index="model", columns="group", values="estimate")
        if gg.empty or not {"F", "M"} <= set(w.columns):
            return not_testable("needs both sexes")
        higher = (w["F"] > w["M"]).all()
        sig = (gg["p_value"] < 0.05).all()
        s = sweep[sweep["informative"] & sweep["model"].isin(w.index)]
        share = float((s["difference"] > 0).mean()) if len(s) else np.nan
        return judged(bool(higher and sig),
                      f"female minus male UDR from {(w['F'] - w['M']).min():+.3f} to "
                      f"{(w['F'] - w['M']).max():+.3f}; p at most {gg['p_value'].max():.3g}",
                      detail=f"female UDR higher at {share:.0%} of informative thresholds")

    def adversarial_only():
        t = mit[mit["attribute"] == mit["target"]]
        if t.empty:
            return not_testable("no mitigations")
        helped = t[(t["change"] < 0) & (t["p_value"] < 0.05)]
        by = helped.groupby("mitigation").size()
        n_adv, n_other = int(by.get("adversarial", 0)), int(by.drop("adversarial",
                                                                    errors="ignore").sum())
        return judged(n_adv > 0 and n_other == 0,
                      f"significant targeted reductions: adversarial {n_adv}, others {n_other}",
                      detail="paired bootstrap p < 0.05 of the targeted gap's change")

    def resampling_collapses():
        r = mit[(mit["mitigation"] == "resampling") & (mit["measure"] == "AUROC")]
        if r.empty:
            return not_testable("no resampling")
        drop = r["change"]
        return judged(bool((drop < -0.05).all()),
                      f"AUROC change from {drop.min():+.3f} to {drop.max():+.3f}",
                      detail="collapse read as a loss of more than 0.05 AUROC in every run")

    def capacity():
        adv = mit[(mit["mitigation"] == "adversarial") & (mit["attribute"] == mit["target"])]
        if adv.empty or "biomedclip" not in set(adv["paper_model"]):
            return not_testable("needs adversarial debiasing of BiomedCLIP and another model")
        sig = adv.groupby("paper_model")["p_value"].min()
        pr = probing[probing["attribute"] == "race"].set_index("paper_model")["macro_f1"]
        bcl_weakest = pr.get("biomedclip", np.nan) < pr.drop("biomedclip", errors="ignore").min()
        return judged(bool(sig.get("biomedclip", 1) >= 0.05 and
                           (sig.drop("biomedclip") < 0.05).any() and bcl_weakest),
                      "; ".join(f"{m}: min p {p:.3g}" for m, p in sig.items()),
                      detail="race macro-F1: " + "; ".join(f"{m} {v:.3f}" for m, v in pr.items()))

    return {"lr-beats-mlp": lr_beats_mlp, "ehr-fusion-small": fusion_small,
            "age-dominant": age_dominant, "female-underdiagnosis": female_under,
            "adversarial-only-mitigation": adversarial_only,
            "resampling-collapses": resampling_collapses, "capacity-for-debiasing": capacity}


__all__ = ["ablation_table", "age_udr_table", "claim_checks", "comparison_table",
           "disparity_table",
           "gaps_table", "groups_table", "headline_values", "mitigation_gaps", "mlp_table",
           "models_table", "performance_wide", "pooling_table", "reproduced_values",
           "settings_table", "sweep_summary"]
