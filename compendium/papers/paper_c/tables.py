"""Paper C's tables, the numbers its chapter quotes, and the checks of its claims."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .pipeline import GapResults, OpenIAudit
from .spec import LABEL_SOURCES, PAIRS, PAPER_MODELS, PaperCSpec

ATTRIBUTE_NAMES = {"race": "race (Black - White)", "sex": "sex (Female - Male)",
                   "age_group": "age (18-40 - 80+)"}


def reduction(effect: pd.DataFrame) -> pd.Series:
    """The abstract's "reduced by N%": (|gap CheXpert| - |gap LLM|) / |gap CheXpert|, so that
    a gap that changes sign or grows in magnitude counts as not reduced.

    >>> reduction(pd.DataFrame({"gap_chexpert": [0.071, -0.1], "gap_llm": [0.054, 0.05]})).round(3).tolist()
    [0.239, 0.5]
    """
    a, b = effect["gap_chexpert"].abs(), effect["gap_llm"].abs()
    return ((a - b) / a.where(a > 0)).rename("reduction")


def _ci(est, lo, hi, fmt=".3f") -> str:
    if not np.isfinite(est):
        return ""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{est:{fmt}}"
    return f"{est:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def cohort_table(cohort, labels: pd.DataFrame) -> pd.DataFrame:
    """Images, patients and the "No Finding" share of every label source, per split."""
    t = cohort.table.merge(labels, on="sample_id", how="left")
    rows = []
    for split, g in t.groupby("split", sort=False):
        row = {"split": split, "images": len(g), "patients": g["patient_id"].nunique()}
        for s in [c for c in ("chexpert", "llm", "recorded", "true") if c in g]:
            if g[s].notna().any():
                row[f"No Finding share ({s})"] = round(float(g[s].mean()), 3)
        rows.append(row)
    return pd.DataFrame(rows)


def groups_table(cohort) -> pd.DataFrame:
    """Images per group of the three comparisons, per split."""
    t = cohort.table
    rows = []
    for attr, pair in PAIRS.items():
        for grp in pair:
            m = t[attr].astype(str) == grp
            rows.append({"attribute": attr, "group": grp,
                         **{s: int((m & (t["split"] == s)).sum()) for s in ("train", "val", "test")}})
    return pd.DataFrame(rows)


def auroc_table(res: GapResults) -> pd.DataFrame:
    """AUROC of "No Finding" per model (rows) and label source (columns), with intervals."""
    a = res.auroc.assign(cell=lambda d: [_ci(e, lo, hi) for e, lo, hi in
                                         zip(d["auroc"], d["ci_low"], d["ci_high"])])
    wide = a.pivot_table(index=["paper_model", "model_label"], columns="source", values="cell",
                         aggfunc="first", sort=False).reset_index()
    wide.columns.name = None
    return wide.rename(columns={s: f"AUROC, {n} labels" for s, n in LABEL_SOURCES.items()})


def gaps_table(res: GapResults) -> pd.DataFrame:
    """Signed FPR gaps with 95 % intervals: model x comparison (rows), source (columns)."""
    g = res.gaps.assign(cell=lambda d: [_ci(e, lo, hi) for e, lo, hi in
                                        zip(d["gap"], d["ci_low"], d["ci_high"])])
    g["comparison"] = g["attribute"].map(ATTRIBUTE_NAMES)
    wide = g.pivot_table(index=["paper_model", "model_label", "comparison"], columns="source",
                         values="cell", aggfunc="first", sort=False).reset_index()
    wide.columns.name = None
    return wide.rename(columns={s: f"FPR gap, {n} labels" for s, n in LABEL_SOURCES.items()})


def rates_table(res: GapResults) -> pd.DataFrame:
    """FPR of "No Finding" per group (the figure's top panel) with intervals."""
    r = res.rates.copy()
    r["FPR [95% CI]"] = [_ci(e, lo, hi) for e, lo, hi in zip(r["estimate"], r["ci_low"],
                                                               r["ci_high"])]
    r["source"] = r["source"].map(LABEL_SOURCES)
    return r[["paper_model", "model_label", "source", "attribute", "group", "FPR [95% CI]",
              "denominator"]].rename(columns={"denominator": "negatives (test)"})


def effect_table(res: GapResults) -> pd.DataFrame:
    """Does the label source change each gap?  CheXpert and LLM gaps, their difference (LLM
    minus CheXpert) with the paired bootstrap interval, the reduction of the gap's magnitude
    (:func:`reduction`), raw and adjusted p-values."""
    e = res.effect
    if e.empty:
        return e
    return pd.DataFrame({
        "paper_model": e["paper_model"], "model_label": e["model_label"],
        "comparison": e["attribute"].map(ATTRIBUTE_NAMES),
        "gap, CheXpert": e["gap_chexpert"].round(3), "gap, LLM": e["gap_llm"].round(3),
        "difference [95% CI]": [_ci(d, lo, hi) for d, lo, hi in
                                zip(e["difference"], e["ci_low"], e["ci_high"])],
        "|gap| reduction": (100 * reduction(e)).round(1).astype(str) + " %",
        "p": e["p_value"].round(4), "p adjusted": e["p_adjusted"].round(4),
        "|gap| smaller with LLM labels": e["shrinks"]})


def quality_table(q: pd.DataFrame) -> pd.DataFrame:
    """The label sources against the reports' own labels (synthetic), per group."""
    if q.empty:
        return q
    out = q.copy()
    out["rate [95% CI]"] = [_ci(e, lo, hi) for e, lo, hi in zip(out["estimate"], out["ci_low"],
                                                                out["ci_high"])]
    return out[["source_name", "measure", "attribute", "group", "rate [95% CI]", "n",
                "denominator"]]


def settings_table(cfg: PaperCSpec) -> pd.DataFrame:
    rows = [("split (train/val/test, patient-wise)", "70/15/15"),
            ("label sources", ", ".join(LABEL_SOURCES[s] for s in cfg.label_sources)),
            ("evaluation labels (reading eval_labels)", cfg.eval_labels),
            ("threshold (reading threshold)", cfg.threshold),
            ("heads on frozen embeddings", f"logistic regression, C = {cfg.logreg_C:g}"),
            ("supervised CNN", f"trained end to end, {cfg.finetune_epochs} epochs max, "
                               f"lr {cfg.finetune_lr:g}"),
            ("bootstrap resamples (patients)", cfg.n_bootstrap),
            ("correction of the label-source tests", cfg.correction)]
    if cfg.pixels == "synthetic":
        rows += [("synthetic images", cfg.synthetic_rows),
                 ("model labeller (stand-in for the LLM)", cfg.model_labeller),
                 ("labelled reports training it", cfg.labelled_reports)]
    return pd.DataFrame(rows, columns=["setting", "value"]).astype({"value": str})


def openi_table(oa: OpenIAudit) -> pd.DataFrame:
    a = oa.agreement.copy()
    a["rate [95% CI]"] = [_ci(e, lo, hi) for e, lo, hi in zip(a["estimate"], a["ci_low"],
                                                               a["ci_high"])]
    return a[["labeller", "measure", "attribute", "group", "rate [95% CI]", "n",
              "denominator"]]


def openi_false_normal_terms(oa: OpenIAudit, labeller: str = "chexpert-rules",
                             top: int = 5) -> pd.DataFrame:
    """What the reports a labeller wrongly calls normal were indexed with: per age band, the
    most frequent major MeSH headings (the part before the first ``/``) among its false
    normals, with counts and the band's number of false normals."""
    r = oa.reports
    fn = r[(r["mesh_normal"] == 0) & (r[labeller] == 1)]
    rows = []
    for band, g in fn.groupby("age_band", sort=True):
        heads = g["mesh_major"].str.split("|").explode().str.split("/").str[0].str.strip()
        counts = heads[heads != ""].value_counts().head(top)
        rows += [{"labeller": labeller, "age_band": band, "false normals": len(g),
                  "MeSH heading": h, "reports": int(c)} for h, c in counts.items()]
    return pd.DataFrame(rows)


def openi_values(oa: OpenIAudit) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in oa.info.items():
        out[k] = (100 * v, ".1f") if k.endswith("share") else v
    a = oa.agreement[oa.agreement["attribute"] == "all"]
    for r in a.itertuples():
        key = f"openi_{r.labeller.replace('-', '_')}_{r.measure}"
        out[key] = (100 * r.estimate, ".1f")
    band = {"<40": "under40", "40-59": "40_59", "60-79": "60_79", "80+": "80plus"}
    a = oa.agreement[(oa.agreement["attribute"] == "age_band")
                     & oa.agreement["group"].isin(list(band))]
    for r in a.itertuples():
        key = f"openi_{r.labeller.replace('-', '_')}_{r.measure}_{band[r.group]}"
        out[key] = (100 * r.estimate, ".1f")
        out[f"{key}_ci"] = f"{100 * r.ci_low:.1f}-{100 * r.ci_high:.1f}"
    return out


# ----------------------------------------------------------------------------- reported


def reproduced_values(res: GapResults) -> pd.DataFrame:
    """This run's numbers under the keys of ``reported.yaml``: AUROC per model x source and
    its range, gaps per model x source x attribute (and the range of the CheXpert sex gaps),
    gap reductions per model x attribute (and their mean and range per attribute)."""
    rows = []
    for r in res.auroc.itertuples():
        rows.append({"metric": "auroc", "model": r.model, "method": r.source,
                     "estimate": r.auroc, "ci_low": r.ci_low, "ci_high": r.ci_high,
                     "reproduced_with": r.model_label})
    a = res.auroc["auroc"]
    rows += [{"metric": "auroc", "group": "min", "estimate": float(a.min()),
              "reproduced_with": "lowest over models and label sources"},
             {"metric": "auroc", "group": "max", "estimate": float(a.max()),
              "reproduced_with": "highest over models and label sources"}]
    for r in res.gaps.itertuples():
        rows.append({"metric": "fpr_gap", "model": r.model, "method": r.source,
                     "attribute": r.attribute, "estimate": r.gap, "ci_low": r.ci_low,
                     "ci_high": r.ci_high, "reproduced_with": r.model_label})
    sex = res.gaps[(res.gaps["attribute"] == "sex") & (res.gaps["source"] == "chexpert")]["gap"]
    if len(sex):
        rows += [{"metric": "fpr_gap", "method": "chexpert", "attribute": "sex", "group": g,
                  "estimate": float(f(sex)), "reproduced_with": f"{g} over models"}
                 for g, f in (("min", np.min), ("max", np.max))]
    e = res.effect
    if len(e):
        red = reduction(e)
        for r, v in zip(e.itertuples(), red):
            rows.append({"metric": "gap_reduction", "model": r.model, "attribute": r.attribute,
                         "estimate": float(v), "reproduced_with": r.model_label})
        for attr, v in red.groupby(e["attribute"]):
            rows += [{"metric": "gap_reduction", "attribute": attr, "group": g,
                      "estimate": float(f(v)), "reproduced_with": f"{g} over models"}
                     for g, f in (("min", np.min), ("max", np.max), ("mean", np.mean))]
    return pd.DataFrame(rows)


def comparison_table(compared: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "where": compared["where"], "metric": compared["metric"],
        "paper model": compared["model"].map(PAPER_MODELS).fillna(compared["model"]),
        "labels": compared["method"].map(LABEL_SOURCES).fillna(compared["method"]),
        "attribute": compared["attribute"], "group": compared["group"],
        "reported": compared["value"],
        "reported interval": [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
                              for lo, hi in zip(compared["ci_low"], compared["ci_high"])],
        "reproduced": compared["reproduced"].round(3),
        "reproduced interval": [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else ""
                                for lo, hi in zip(compared["reproduced_low"],
                                                  compared["reproduced_high"])],
        "reproduced with": compared["reproduced_with"]})


def headline_values(res: GapResults) -> dict[str, Any]:
    """AUROC range and every model's relative change of each gap (chapter text)."""
    out: dict[str, Any] = {"auroc_min": (float(res.auroc["auroc"].min()), ".3f"),
                           "auroc_max": (float(res.auroc["auroc"].max()), ".3f")}
    if len(res.effect):
        for r, v in zip(res.effect.itertuples(), reduction(res.effect)):
            key = f"reduction_{r.model.replace('-', '_')}_{r.attribute}"
            out[key] = (100 * v, ".0f")
    return out


# ----------------------------------------------------------------------------- claims


def _numbers(source) -> dict[str, Any]:
    """What the claims need, from this run (:class:`GapResults`) or from the paper's printed
    numbers (the table of :func:`~compendium.papers.reported.load_reported`)."""
    if isinstance(source, GapResults):
        g = source.gaps
        chex = g[g["source"] == "chexpert"].set_index(["attribute", "model"])
        e = source.effect
        red = (pd.DataFrame({"attribute": e["attribute"], "model": e["model"],
                             "reduction": reduction(e)}) if len(e) else
               pd.DataFrame(columns=["attribute", "model", "reduction"]))
        return {"chex": chex, "reduction": red, "intervals": True}
    rep = source
    gp = rep[(rep["metric"] == "fpr_gap") & (rep["method"] == "chexpert")]
    chex = pd.DataFrame({"attribute": gp["attribute"], "model": gp["model"].replace("", "-")
                         + gp["group"].replace("", ""), "value": gp["value"],
                         "ci_low": gp["ci_low"], "ci_high": gp["ci_high"]}
                        ).set_index(["attribute", "model"])
    chex = chex.rename(columns={"value": "gap"})
    rd = rep[rep["metric"] == "gap_reduction"]
    red = pd.DataFrame({"attribute": rd["attribute"], "model": rd["model"] + rd["group"],
                        "reduction": rd["value"]})
    return {"chex": chex, "reduction": red, "intervals": False}


def claim_checks(source) -> dict[str, Any]:
    """One check per claim of ``claims.yaml``, on this run's :class:`GapResults` or on the
    paper's printed numbers (a :func:`~compendium.papers.reported.load_reported` table)."""
    from ..claims import judged, not_testable

    def race_gaps():
        chex = _numbers(source)["chex"]
        if "race" not in chex.index.get_level_values(0):
            return None
        return chex.loc["race"]

    def comparable():
        race = race_gaps()
        if race is None or "densenet121" not in race.index or len(race) < 2:
            return not_testable("needs the supervised CNN's and a foundation model's race gap")
        sup = race.loc["densenet121"]
        others = race.drop(index="densenet121")
        overlap = [(lo <= sup["ci_high"]) and (sup["ci_low"] <= hi) if np.isfinite(lo) else
                   (sup["ci_low"] <= v <= sup["ci_high"])
                   for v, lo, hi in zip(others["gap"], others["ci_low"], others["ci_high"])]
        return judged(all(overlap), f"{sum(overlap)} of {len(overlap)} foundation models' race "
                      "gaps within reach of the supervised CNN's interval",
                      f"supervised {sup['gap']:.3f} [{sup['ci_low']:.3f}, {sup['ci_high']:.3f}]",
                      "intervals overlap" if _numbers(source)["intervals"]
                      else "printed gaps inside the supervised CNN's printed interval")

    def domain_not_worse():
        race = race_gaps()
        if race is None or "dinov2-base" not in race.index:
            return not_testable("the paper prints no DINOv2 gap" if not _numbers(source)["intervals"]
                                else "needs DINOv2's race gap")
        d = race.loc["dinov2-base"]
        med = race.drop(index=[m for m in ("dinov2-base", "densenet121") if m in race.index])
        if med.empty:
            return not_testable("needs RAD-DINO or CXR Foundation")
        not_higher = [lo <= d["ci_high"] for lo in med["ci_low"]]
        lower = [g < d["gap"] for g in med["gap"]]
        return judged(all(not_higher) and any(lower),
                      f"DINOv2 {d['gap']:.3f}; " + ", ".join(
                          f"{m} {g:.3f}" for m, g in zip(med.index, med["gap"])),
                      detail="similar: no medical model's interval above DINOv2's; sometimes "
                             "lower: at least one point estimate below")

    def race_reduced():
        red = _numbers(source)["reduction"]
        r = red[red["attribute"] == "race"]
        if r.empty:
            return not_testable("needs both label sources")
        n = int((r["reduction"] > 0).sum())
        return judged(n == len(r), f"{n} of {len(r)} models' race gap smaller with LLM labels",
                      detail=", ".join(f"{m}: {100 * v:.0f} % smaller" for m, v in
                                       zip(r["model"], r["reduction"])))

    def sex_small():
        chex = _numbers(source)["chex"]
        attrs = set(chex.index.get_level_values(0))
        if not {"sex", "race"} <= attrs:
            return not_testable("needs sex and race gaps")
        s, r = chex.loc["sex"]["gap"].abs(), chex.loc["race"]["gap"].abs()
        return judged(s.max() < r.min(), f"largest |sex gap| {s.max():.3f}, smallest |race gap| "
                      f"{r.min():.3f} (CheXpert labels)")

    def age_most():
        red = _numbers(source)["reduction"]
        if red.empty or "age_group" not in set(red["attribute"]):
            return not_testable("needs both label sources and the age gaps")
        by = red.groupby("attribute")["reduction"].mean()
        return judged(by.idxmax() == "age_group",
                      ", ".join(f"{a}: {100 * v:.0f} %" for a, v in by.items()),
                      detail="mean reduction of the gap with LLM labels, per attribute")

    return {"foundation-comparable-to-supervised": comparable,
            "domain-specific-not-worse-than-dinov2": domain_not_worse,
            "llm-labels-reduce-race-gap": race_reduced,
            "sex-gaps-smaller": sex_small, "age-gaps-shrink-most": age_most}


__all__ = ["ATTRIBUTE_NAMES", "auroc_table", "reduction", "claim_checks", "cohort_table", "comparison_table",
           "effect_table", "gaps_table", "groups_table", "headline_values", "openi_false_normal_terms", "openi_table",
           "openi_values", "quality_table", "rates_table", "reproduced_values",
           "settings_table"]
