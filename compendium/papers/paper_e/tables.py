"""Paper E's tables (Tables 2-4 reproduced and as printed, the comparison, the subgroup audit,
the ablation and the missingness experiment) and the numbers its chapter quotes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .pipeline import Data, Tower
from .spec import DATASET_NAMES, STRATEGIES, PaperESpec

#: Row order of the tables (the paper's).
TABLE2 = ("supervised", "convirt-ehr", "vicreg-ehr", "align-ehr", "barlowtwins-cxr", "eva-x-t",
          "eva-x-s", "medcam")
TABLE3 = ("barlowtwins-cxr", "eva-x-t", "eva-x-s", "medcam")
TABLE4 = ("convirt", "gloria", "medclip-rn50", "medclip-vit", "medcam")
IMAGE_ONLY = ("barlowtwins-cxr", "eva-x-t", "eva-x-s")
IMAGE_EHR = ("convirt-ehr", "vicreg-ehr", "align-ehr")


def _cell(est: float, lo: float, hi: float) -> str:
    if not np.isfinite(est):
        return "-"
    if np.isfinite(lo) and np.isfinite(hi):
        return f"{est:.3f} [{lo:.3f}, {hi:.3f}]"
    return f"{est:.3f}"


def models_table(towers: dict[str, Tower], cfg: PaperESpec) -> pd.DataFrame:
    """The run's models: the paper's group and name, and what runs for it."""
    rows = [{"pretraining strategy": r["group"], "model": r["model"],
             "registry encoder (full)": r["encoder"],
             "this run": towers[r["strategy"]].recipe if r["strategy"] in towers else "not run"}
            for r in cfg.strategy_rows()]
    return pd.DataFrame(rows)


def datasets_table(data: dict[str, Data], cfg: PaperESpec) -> pd.DataFrame:
    """Per dataset: rows per split, labels, mean prevalence, whether it has EHR."""
    rows = []
    for d, x in data.items():
        n = x.rows["split"].value_counts()
        prev = x.rows[list(x.labels)].mean()
        rows.append({"dataset": DATASET_NAMES[d] + ("" if cfg.pixels == "real" else
                                                     " (synthetic world)"),
                     "train": int(n.get("train", 0)), "val": int(n.get("val", 0)),
                     "test": int(n.get("test", 0)), "labels": len(x.labels),
                     "label prevalence": f"{prev.min():.2f}-{prev.max():.2f}",
                     "EHR": f"76 features x {x.ehr.shape[1]} steps"
                     if x.ehr is not None else "none"})
    return pd.DataFrame(rows)


def results_long(audit: pd.DataFrame) -> pd.DataFrame:
    """The overall macro AUROC / AUPRC of every (strategy, dataset): ``model`` is the
    strategy id (reported.yaml's key), with the paper's group and name."""
    m = (audit["kind"] == "overall") & (audit["label"] == "macro")
    t = audit.loc[m, ["strategy", "dataset", "metric", "estimate", "ci_low", "ci_high", "n",
                      "labels_used"]].rename(columns={"strategy": "model"})
    t["group"] = t["model"].map(lambda s: STRATEGIES[s][0])
    t["name"] = t["model"].map(lambda s: STRATEGIES[s][1])
    return t.reset_index(drop=True)


def _wide(long: pd.DataFrame, order, columns: list[tuple[str, str]], header) -> pd.DataFrame:
    rows = []
    for s in order:
        sub = long[long["model"] == s]
        if sub.empty:
            continue
        row = {"Pretraining Strategy": STRATEGIES[s][0], "Model": STRATEGIES[s][1]}
        for (d, metric), h in zip(columns, header):
            c = sub[(sub["dataset"] == d) & (sub["metric"] == metric)]
            row[h] = _cell(*c[["estimate", "ci_low", "ci_high"]].iloc[0]) if len(c) else "-"
        rows.append(row)
    return pd.DataFrame(rows)


def table2(long: pd.DataFrame) -> pd.DataFrame:
    """Table 2: MIMIC-CXR macro AUROC and AUPRC (95 % interval) per pretraining strategy."""
    return _wide(long, TABLE2, [("mimic-cxr", "auroc"), ("mimic-cxr", "auprc")],
                 ["AUROC", "AUPRC"])


def table3(long: pd.DataFrame) -> pd.DataFrame:
    """Table 3: out-of-distribution macro AUROC of the image-only models and MedCAM."""
    ds = ["nih", "vindr", "chexpert"]
    return _wide(long, TABLE3, [(d, "auroc") for d in ds], [DATASET_NAMES[d] for d in ds])


def table4(long: pd.DataFrame) -> pd.DataFrame:
    """Table 4: image-text models and MedCAM, macro AUROC on all four datasets."""
    ds = ["mimic-cxr", "nih", "vindr", "chexpert"]
    return _wide(long, TABLE4, [(d, "auroc") for d in ds], [DATASET_NAMES[d] for d in ds])


def reported_long(reported: pd.DataFrame) -> pd.DataFrame:
    """reported.yaml as a results table (MedCAM's repeated numbers once)."""
    t = reported.rename(columns={"value": "estimate"})
    t = t.drop_duplicates(["model", "dataset", "metric"])
    t = t.assign(group=t["model"].map(lambda s: STRATEGIES[s][0]),
                 name=t["model"].map(lambda s: STRATEGIES[s][1]))
    return t[["model", "dataset", "metric", "estimate", "ci_low", "ci_high", "group", "name"]]


def reproduced_values(long: pd.DataFrame, towers: dict[str, Tower]) -> pd.DataFrame:
    """This run's numbers keyed as reported.yaml's (one row per table that prints them)."""
    rows = []
    for table, order, metrics, datasets in (
            ("table2", TABLE2, ("auroc", "auprc"), ("mimic-cxr",)),
            ("table3", TABLE3, ("auroc",), ("nih", "vindr", "chexpert")),
            ("table4", TABLE4, ("auroc",), ("mimic-cxr", "nih", "vindr", "chexpert"))):
        sub = long[long["model"].isin(order) & long["metric"].isin(metrics)
                   & long["dataset"].isin(datasets)]
        for _, r in sub.iterrows():
            rows.append({"metric": r["metric"], "model": r["model"], "method": table,
                         "dataset": r["dataset"], "estimate": r["estimate"],
                         "ci_low": r["ci_low"], "ci_high": r["ci_high"],
                         "reproduced_with": towers[r["model"]].recipe
                         if r["model"] in towers else ""})
    return pd.DataFrame(rows)


def comparison_table(compared: pd.DataFrame) -> pd.DataFrame:
    """Reported beside reproduced, one row per number the paper prints."""
    t = compared.assign(table=compared["where"], model=compared["model"].map(
        lambda s: STRATEGIES[s][1]), dataset=compared["dataset"].map(DATASET_NAMES))
    t["reported"] = [_cell(v, lo, hi) for v, lo, hi in
                     zip(t["value"], t["ci_low"], t["ci_high"])]
    t["reproduced (this run)"] = [_cell(v, lo, hi) for v, lo, hi in
                                  zip(t["reproduced"], t["reproduced_low"],
                                      t["reproduced_high"])]
    return t[["table", "model", "dataset", "metric", "reported", "reproduced (this run)",
              "difference"]].round({"difference": 3})


def gain_table(gain: pd.DataFrame) -> pd.DataFrame:
    t = gain.assign(dataset=gain["dataset"].map(DATASET_NAMES))
    t["MedCAM - BarlowTwins-CXR (macro AUROC)"] = [
        f"{g:+.3f} [{lo:+.3f}, {hi:+.3f}]" for g, lo, hi in
        zip(gain["gain"], gain["ci_low"], gain["ci_high"])]
    return t[["dataset", "MedCAM - BarlowTwins-CXR (macro AUROC)", "n_test"]]


def subgroup_table(audit: pd.DataFrame, strategies=("barlowtwins-cxr", "medcam")
                   ) -> pd.DataFrame:
    """Per dataset, attribute and strategy: each group's macro AUROC and the AUROC gap
    (largest minus smallest group's macro AUROC, bootstrap interval, permutation p-value)
    and, for two groups, the signed difference of their macro AUROCs (first minus second,
    with its interval)."""
    from ...audit.report import signed_beside

    a = audit[audit["strategy"].isin(strategies) & (audit["label"] == "macro")]
    rows = []
    for (d, s, attr), sub in a[a["kind"].isin(["group", "gap", "pair"])].groupby(
            ["dataset", "strategy", "attribute"], sort=False):
        groups = sub[(sub["kind"] == "group") & (sub["metric"] == "auroc")]
        gap = sub[sub["kind"] == "gap"]
        g = gap.iloc[0] if len(gap) else None
        signed = signed_beside(sub, gap.iloc[:1])[0] if len(gap) else ""
        rows.append({"dataset": DATASET_NAMES[d], "model": STRATEGIES[s][1], "attribute": attr,
                     "groups (AUROC)": "; ".join(f"{r.group} {r.estimate:.3f} (n={int(r.n)})"
                                                 for r in groups.itertuples()),
                     "AUROC gap": np.nan if g is None else g["estimate"],
                     "gap 95% CI": "" if g is None else f"[{g['ci_low']:.3f}, {g['ci_high']:.3f}]",
                     "signed difference [95% CI]": signed,
                     "p (permutation)": np.nan if g is None else g["p_value"],
                     "labels": int(sub["labels_used"].iloc[0])})
    return pd.DataFrame(rows).round({"AUROC gap": 3, "p (permutation)": 3})


def gap_change(audit: pd.DataFrame) -> pd.DataFrame:
    """MedCAM's AUROC gap minus its backbone's, per dataset and attribute (the audit's
    question: does aligning with the EHR widen a gap?), and beside each gap of two groups its
    signed difference (first group minus second, with its interval)."""
    from ...audit.report import signed_beside

    a = audit[(audit["kind"] == "gap") & (audit["label"] == "macro")
              & audit["strategy"].isin(["medcam", "barlowtwins-cxr"])]
    signed_cols = {"barlowtwins-cxr": "signed difference, BarlowTwins-CXR [95% CI]",
                   "medcam": "signed difference, MedCAM [95% CI]"}
    w = a.pivot_table(index=["dataset", "attribute"], columns="strategy", values="estimate")
    if not {"medcam", "barlowtwins-cxr"} <= set(w.columns):
        return pd.DataFrame(columns=["dataset", "attribute", "gap BarlowTwins-CXR",
                                     signed_cols["barlowtwins-cxr"], "gap MedCAM",
                                     signed_cols["medcam"], "change"])
    signed = dict(zip(zip(a["dataset"], a["attribute"], a["strategy"]),
                      signed_beside(audit, a, on=["dataset", "strategy"])))
    w = w.reset_index()
    cells = {s: [signed.get((d, at, s), "") for d, at in zip(w["dataset"], w["attribute"])]
             for s in signed_cols}
    return pd.DataFrame({"dataset": w["dataset"].map(DATASET_NAMES), "attribute": w["attribute"],
                         "gap BarlowTwins-CXR": w["barlowtwins-cxr"].round(3),
                         signed_cols["barlowtwins-cxr"]: cells["barlowtwins-cxr"],
                         "gap MedCAM": w["medcam"].round(3),
                         signed_cols["medcam"]: cells["medcam"],
                         "change": (w["medcam"] - w["barlowtwins-cxr"]).round(3)})


def ablation_table(ab: pd.DataFrame) -> pd.DataFrame:
    t = ab.copy()
    t["MIMIC-CXR macro AUROC"] = [_cell(*r) for r in t[["estimate", "ci_low", "ci_high"]]
                                  .itertuples(index=False)]
    return t[["variant", "MIMIC-CXR macro AUROC", "lr"]]


def missingness_table(miss: pd.DataFrame, cfg: PaperESpec) -> pd.DataFrame:
    t = miss.copy()
    t["AUROC rest - group"] = [
        "-" if not np.isfinite(g) else f"{g:+.3f}" + (
            f" [{lo:+.3f}, {hi:+.3f}]" if np.isfinite(lo) else " (no interval)")
        for g, lo, hi in zip(t["gap"], t.get("signed_ci_low", np.nan),
                             t.get("signed_ci_high", np.nan))]
    t["|gap| 95% CI"] = [f"[{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else "-"
                         for lo, hi in zip(t["gap_ci_low"], t["gap_ci_high"])]
    t = t.rename(columns={"ehr_missing": f"ehr_missing of {cfg.missing_group}",
                          "measured_share": "measured share (train EHR)"})
    return t[["variant", f"ehr_missing of {cfg.missing_group}", "measured share (train EHR)",
              "auroc_group", "auroc_rest", "AUROC rest - group", "|gap| 95% CI",
              "p_value"]].round(3)


def transmission(miss: pd.DataFrame) -> pd.DataFrame:
    """Per variant: gap at the highest missingness level minus the gap at the lowest."""
    m = miss.dropna(subset=["ehr_missing"])
    rows = []
    for v, sub in m.groupby("variant", sort=False):
        lo = sub.loc[sub["ehr_missing"].idxmin()]
        hi = sub.loc[sub["ehr_missing"].idxmax()]
        rows.append({"variant": v, "gap, low missingness": lo["gap"],
                     "gap, high missingness": hi["gap"], "change": hi["gap"] - lo["gap"]})
    return pd.DataFrame(rows, columns=["variant", "gap, low missingness",
                                       "gap, high missingness", "change"]).round(3)


# ----------------------------------------------------------------------------- values


def _name(s: str) -> str:
    """How a claim's value names a strategy (ConVIRT is two rows: image-EHR and image-text)."""
    return STRATEGIES[s][1] + {"convirt-ehr": " (image-EHR)", "convirt": " (image-text)"}.get(s, "")


def _get(long: pd.DataFrame, s: str, d: str, metric: str = "auroc") -> float:
    c = long[(long["model"] == s) & (long["dataset"] == d) & (long["metric"] == metric)]
    return float(c["estimate"].iloc[0]) if len(c) else float("nan")


def headline_values(long: pd.DataFrame, gain: pd.DataFrame) -> dict[str, Any]:
    """The numbers the chapter quotes."""
    out: dict[str, Any] = {
        "medcam_mimic_auroc": (_get(long, "medcam", "mimic-cxr"), ".3f"),
        "backbone_mimic_auroc": (_get(long, "barlowtwins-cxr", "mimic-cxr"), ".3f"),
        "supervised_mimic_auroc": (_get(long, "supervised", "mimic-cxr"), ".3f")}
    for r in gain.itertuples():
        key = r.dataset.replace("-", "_")
        out[f"gain_{key}"] = (r.gain, "+.3f")
        out[f"gain_{key}_low"] = (r.ci_low, "+.3f")
        out[f"gain_{key}_high"] = (r.ci_high, "+.3f")
    auc = long[long["metric"] == "auroc"]["estimate"]
    out["auroc_min"], out["auroc_max"] = (float(auc.min()), ".3f"), (float(auc.max()), ".3f")
    return out


#: Value names of the missingness experiment's variants.
VARIANT_KEYS = {"global + local (MedCAM)": "both", "global only": "global",
                "local only": "local"}


def transmission_values(trans: pd.DataFrame) -> dict[str, Any]:
    """``transmission_<both|global|local>``: the gap's change from the lowest to the highest
    missingness level."""
    return {f"transmission_{VARIANT_KEYS[v]}": (c, "+.3f")
            for v, c in zip(trans["variant"], trans["change"]) if v in VARIANT_KEYS}


# ----------------------------------------------------------------------------- claims


def claim_checks(long: pd.DataFrame) -> dict[str, Any]:
    """One check per claim of ``claims.yaml`` on a results table (this run's
    :func:`results_long` or the paper's :func:`reported_long`): ``model`` strategy ids,
    ``dataset`` registry names, ``metric``, ``estimate``."""
    from ..claims import judged, not_testable

    auc = long[long["metric"] == "auroc"]

    def on(d):   # an undefined (NaN) macro leaves its model out: not testable, not judged
        return auc[auc["dataset"] == d].set_index("model")["estimate"].dropna()

    def best_on(d, who):
        a = on(d)
        if who not in a.index or len(a) < 2:
            return None
        others = a.drop(who)
        return a[who], others.idxmax(), others.max()

    def medcam_best():
        res = [best_on(d, "medcam") for d in ("mimic-cxr", "nih")]
        if any(r is None for r in res):
            return not_testable("needs MedCAM and another model on MIMIC-CXR and NIH")
        ok = all(m > o for m, _, o in res)
        return judged(ok, "; ".join(f"{DATASET_NAMES[d]}: MedCAM {m:.3f} vs best other "
                                    f"{_name(s)} {o:.3f}" for d, (m, s, o)
                                    in zip(("mimic-cxr", "nih"), res)))

    def gain_10():
        a = on("mimic-cxr")
        img = [s for s in IMAGE_ONLY if s in a.index]
        if "medcam" not in a.index or not img:
            return not_testable("needs MedCAM and an image-only model on MIMIC-CXR")
        best = max(img, key=lambda s: a[s])
        rel = (a["medcam"] - a[best]) / a[best]
        return judged(rel >= 0.09, f"{100 * rel:+.1f} % over {_name(best)} "
                                   f"({a['medcam']:.3f} vs {a[best]:.3f})")

    def image_ehr_weak():
        a = on("mimic-cxr")
        ehr = [s for s in IMAGE_EHR if s in a.index]
        ref = [s for s in (*IMAGE_ONLY, "medcam") if s in a.index]
        if not ehr or not ref:
            return not_testable("needs image-EHR baselines and image-only models on MIMIC-CXR")
        worst_ref = min(ref, key=lambda s: a[s])
        best_ehr = max(ehr, key=lambda s: a[s])
        return judged(a[best_ehr] < a[worst_ref],
                      f"best image-EHR {_name(best_ehr)} {a[best_ehr]:.3f}, lowest "
                      f"image-only / MedCAM {_name(worst_ref)} {a[worst_ref]:.3f}")

    def barlow_best():
        parts, ok, n = [], True, 0
        for d in ("mimic-cxr", "nih", "vindr", "chexpert"):
            a = on(d)
            if not {"barlowtwins-cxr", "eva-x-t", "eva-x-s"} <= set(a.index):
                continue
            n += 1
            ok &= bool(a["barlowtwins-cxr"] > max(a["eva-x-t"], a["eva-x-s"]))
            parts.append(f"{DATASET_NAMES[d]} {a['barlowtwins-cxr']:.3f} vs "
                         f"{max(a['eva-x-t'], a['eva-x-s']):.3f}")
        if not n:
            return not_testable("needs BarlowTwins-CXR and both EVA-X models")
        return judged(ok, "; ".join(parts))

    def medcam_ood():
        parts, ok, n = [], True, 0
        for d in ("nih", "vindr", "chexpert"):
            a = on(d)
            img = [s for s in IMAGE_ONLY if s in a.index]
            if "medcam" not in a.index or not img:
                continue
            n += 1
            best = max(img, key=lambda s: a[s])
            ok &= bool(a["medcam"] > a[best])
            parts.append(f"{DATASET_NAMES[d]} {a['medcam']:.3f} vs {_name(best)} "
                         f"{a[best]:.3f}")
        if not n:
            return not_testable("needs MedCAM and an image-only model out of distribution")
        return judged(ok, "; ".join(parts))

    def gloria_vindr():
        r = best_on("vindr", "gloria")
        if r is None:
            return not_testable("needs GLoRIA and another model on VinDr-CXR")
        g, s, o = r
        return judged(g > o, f"GLoRIA {g:.3f} vs best other {_name(s)} {o:.3f}")

    return {"medcam-best-mimic-nih": medcam_best, "medcam-gain-10pct": gain_10,
            "image-ehr-weak": image_ehr_weak, "barlowtwins-best-image-only": barlow_best,
            "medcam-best-ood": medcam_ood, "gloria-best-vindr": gloria_vindr}


__all__ = ["ablation_table", "claim_checks", "comparison_table", "datasets_table", "gain_table",
           "gap_change", "headline_values", "missingness_table", "models_table",
           "reported_long", "reproduced_values", "results_long", "subgroup_table", "table2",
           "table3", "table4", "transmission", "transmission_values"]
