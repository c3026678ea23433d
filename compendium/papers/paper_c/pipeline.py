"""Paper C's steps; each takes the validated spec (:class:`~.spec.PaperCSpec`).

1. :func:`load_cohort` - frontal images with patient, sex, age band (18-40 / 80+), race and a
   70/15/15 patient-wise split.  ``pixels: synthetic``: the synthetic world, whose reports
   the labellers read; ``pixels: real``: MIMIC-CXR-JPG with MIMIC-IV demographics.
2. :func:`label_sources` - the "No Finding" label of every image under each source:
   ``chexpert`` (synthetic: the ``chexpert-rules`` labeller on the report; real: MIMIC-CXR's
   CheXpert file) and ``llm`` (synthetic: ``model_labeller``, a text encoder with a head
   trained on ``labelled_reports`` reports of the training split; real: the user's CSV).
   Synthetic rows also keep the report's own ("recorded") label, which is what a perfect
   reader of the report would extract: :func:`label_quality` measures each source against it.
3. :func:`embed` - frozen embeddings of every image for the foundation models.
4. :func:`fit_predict` - per model and training label source: a logistic-regression head on
   the frozen embeddings, or, for the supervised CNN, the network trained end to end; scores
   of the validation and test images.
5. :func:`decide` - threshold per model x source on the validation split (``threshold``
   reading) and the evaluation labels (``eval_labels`` reading).
6. :func:`audit_gaps` - AUROC, FPR per group, signed gaps and the paired label-source
   difference of every gap, with patient bootstrap intervals (:mod:`compendium.audit.gaps`).
7. :func:`openi_audit` - beyond the paper: each labeller's "No Finding" against the human
   MeSH indexing of the real Open-i reports, by age band and sex.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ...errors import InputError
from ..base import ModelPlan, load_plan_encoder
from .spec import LABEL_SOURCES, PAIRS, PAPER_SPLIT, PaperCSpec

#: The paper's supervised CNN: trained end to end (every other model: a head on embeddings).
END_TO_END = ("densenet121",)
TARGET = "No Finding"


# ----------------------------------------------------------------------------- cohort


def load_cohort(cfg: PaperCSpec):
    """The cohort (see the module docstring); ``age_group`` under the ``paper_c`` bands."""
    from ...cohorts.splits import add_age_group, patient_split

    if cfg.pixels == "real":
        from ...cohorts import build_cohort

        cohort = build_cohort("mimic-cxr", root=cfg.data_roots["mimic-cxr"],
                              mimic_iv=cfg.data_roots.get("mimic-iv") or None,
                              frontal_only=True, uncertainty="ones", unmentioned="negative",
                              seed=cfg.world_seed)
    else:
        from ...synthetic import synthetic_cxr

        cohort = synthetic_cxr(n=cfg.synthetic_rows, seed=cfg.world_seed, knobs=cfg.knobs,
                               demographics=cfg.demographics, name="mimic-cxr-synthetic")
    table = patient_split(cohort.table.drop(columns=["split"], errors="ignore"), PAPER_SPLIT,
                          seed=cfg.seed)
    table = add_age_group(table, "paper_c")
    return dataclasses.replace(cohort, table=table.reset_index(drop=True))


# ----------------------------------------------------------------------------- labels


def label_sources(cohort, cfg: PaperCSpec, *, progress: bool = True) -> pd.DataFrame:
    """``sample_id`` and one "No Finding" column per label source (0/1; CheXpert's uncertain
    counts as a finding, so "No Finding" is 0), plus ``recorded`` (synthetic: the report's own
    label) and ``labelled`` (the rows whose recorded label trained the model labeller)."""
    t = cohort.table
    out = pd.DataFrame({"sample_id": t["sample_id"].astype(str).to_numpy()})
    if cfg.pixels == "real":
        from ...labels import read_label_csv

        out["chexpert"] = np.nan_to_num(t[TARGET].to_numpy(dtype=float)).clip(0, 1)
        if "llm" in cfg.label_sources:
            llm = read_label_csv(cfg.llm_labels, columns=[TARGET])
            got = t["study_id"].astype(str).map(dict(zip(llm["id"], llm[TARGET])))
            missing = int(got.isna().sum())
            if missing:
                raise InputError(f"llm_labels: {missing} of {len(t)} studies have no "
                                 f"{TARGET!r} label (first: study {t.loc[got.isna(), 'study_id'].iloc[0]})")
            out["llm"] = (got.to_numpy(dtype=float) == 1).astype(float)
        out["recorded"], out["labelled"] = np.nan, False
        return out
    from ...labels import create_labeller
    from ...runtime import torch_threads

    with torch_threads(cfg.threads):
        return _synthetic_sources(t, out, cfg, create_labeller)


def _synthetic_sources(t: pd.DataFrame, out: pd.DataFrame, cfg: PaperCSpec, create_labeller
                       ) -> pd.DataFrame:
    reports = t["report"].astype(str).tolist()
    out["recorded"] = t[TARGET].to_numpy(dtype=float)
    out["true"] = t[f"true_{TARGET}"].to_numpy(dtype=float)
    if "chexpert" in cfg.label_sources:
        out["chexpert"] = create_labeller("chexpert-rules").label(reports)[TARGET].to_numpy()
    rng = np.random.default_rng([int(cfg.seed), 31])
    train = np.flatnonzero((t["split"] == "train").to_numpy())
    pick = rng.choice(train, size=min(cfg.labelled_reports, len(train)), replace=False)
    out["labelled"] = False
    out.loc[pick, "labelled"] = True
    if "llm" in cfg.label_sources:
        lab = create_labeller(cfg.model_labeller, batch_size=cfg.text_batch_size,
                              seed=cfg.seed, **cfg.model_labeller_params)
        lab.fit([reports[i] for i in pick], t.iloc[pick][[TARGET]].reset_index(drop=True))
        out["llm"] = lab.label(reports)[TARGET].to_numpy()
    return out


def label_quality(cohort, labels: pd.DataFrame, cfg: PaperCSpec) -> pd.DataFrame:
    """Each source's "No Finding" against the report's recorded label (synthetic only), per
    gap attribute and group: ``false_normal`` (labelled "No Finding" though the report names a
    finding: the label noise that lowers a model's FPR target) and ``error`` (any
    disagreement), with patient bootstrap intervals; rows whose label trained the model
    labeller are left out."""
    from ...audit.gaps import group_rates

    if labels["recorded"].isna().all():
        return pd.DataFrame()
    keep = ~labels["labelled"].to_numpy(bool)
    t = cohort.table[keep].reset_index(drop=True)
    ref = labels.loc[keep, "recorded"].to_numpy(int)
    rows = []
    for source in cfg.label_sources:
        got = labels.loc[keep, source].to_numpy(int)
        # false normal = "No Finding" given to a report with a finding: FPR of the label
        for rate, name in (("fpr", "false_normal"), ("error", "error")):
            for attr in ["all", *PAIRS]:
                g = np.full(len(t), "all") if attr == "all" else t[attr].astype(str).to_numpy()
                r = group_rates(ref, got, sensitive_features=g, rate=rate,
                                clusters=t["patient_id"].to_numpy(), n_bootstrap=cfg.n_bootstrap,
                                seed=cfg.seed)
                if attr != "all":
                    r = r[r["group"].isin(PAIRS[attr])]
                rows.append(r.assign(source=source, measure=name, attribute=attr))
    out = pd.concat(rows, ignore_index=True)
    out["source_name"] = out["source"].map(LABEL_SOURCES)
    return out[["source", "source_name", "measure", "attribute", "group", "estimate", "ci_low",
                "ci_high", "n", "denominator"]]


# ----------------------------------------------------------------------------- models


def embed(cohort, cfg: PaperCSpec, *, progress: bool = True) -> dict[str, np.ndarray]:
    """Frozen embeddings (rows of the cohort) of every model that is not trained end to end."""
    from ...encoders.cache import extract_embeddings
    from ...imaging import pixels
    from ...runtime import torch_threads

    out = {}
    with torch_threads(cfg.threads):
        for plan in cfg.model_plans():
            if plan.model in END_TO_END:
                continue
            enc = load_plan_encoder(plan, cfg, progress=progress)
            if enc.entry.kind == "embeddings-file":
                out[plan.model] = np.asarray(enc.encode_samples(
                    cohort.table["sample_id"].astype(str).tolist()), dtype=np.float32)
                continue
            img = pixels(cohort, int(enc.entry.preprocess.size), progress=progress)
            out[plan.model] = np.array(extract_embeddings(enc, img, batch_size=cfg.batch_size,
                                                          progress=progress).array,
                                       dtype=np.float32)
    return out


def fit_predict(cohort, labels: pd.DataFrame, embedded: dict[str, np.ndarray],
                cfg: PaperCSpec, *, progress: bool = True) -> pd.DataFrame:
    """Scores of the validation and test images for every model x training label source:
    ``sample_id``, ``patient_id``, ``split``, attributes, ``model`` (registry), ``model_label``
    (what ran), ``paper_model``, ``source``, ``score``."""
    from ...adapt.probes import fit_predict_proba
    from ...runtime import torch_threads

    t = cohort.table
    split = t["split"].to_numpy()
    tr, ev = split == "train", np.isin(split, ("val", "test"))
    parts = []
    with torch_threads(cfg.threads):
        for plan in cfg.model_plans():
            for source in cfg.label_sources:
                y = labels[source].to_numpy(dtype=float)
                if plan.model in END_TO_END:
                    s = _end_to_end(plan, cohort, y, cfg, progress=progress)
                else:
                    X = embedded[plan.model]
                    s = fit_predict_proba("logreg", X[tr], y[tr].astype(int), X[ev],
                                          n_classes=2, seed=cfg.seed, params={"C": cfg.logreg_C},
                                          where=f"{plan.label} / {source} training images")[:, 1]
                rows = t.loc[ev, ["sample_id", "patient_id", "split", "race", "sex", "age_group"]]
                parts.append(rows.assign(model=plan.model, model_label=plan.label,
                                         paper_model=plan.paper_name, source=source, score=s))
    return pd.concat(parts, ignore_index=True)


def _end_to_end(plan: ModelPlan, cohort, y: np.ndarray, cfg: PaperCSpec, *,
                progress: bool) -> np.ndarray:
    """The supervised CNN trained end to end on the training images (validation loss picks
    the epoch); scores of the validation and test images, in the cohort's order.

    The images stream from the memory-mapped pixel cache: each batch is read and
    preprocessed when the loader asks for it (``num_workers`` processes), so memory holds a
    few batches, never a split (MIMIC-CXR's 243,331 images at 224 px would be 36 GB as
    float32)."""
    from ...adapt.finetune import run_adaptation
    from ...adapt.training import TrainSpec
    from ...imaging.cache import cached_pixels
    from ...imaging.dataset import StreamedImages
    from ...runtime import resolve_device

    enc = load_plan_encoder(plan, cfg, progress=progress)
    t = cohort.table.assign(**{TARGET: y})
    store = StreamedImages(cached_pixels(cohort, int(enc.entry.preprocess.size),
                                         progress=progress), transform=enc.preprocessor)
    split = t["split"].to_numpy()
    ev = np.isin(split, ("val", "test"))
    data = {"train": (store.subset(split == "train"), t[split == "train"]),
            "val": (store.subset(split == "val"), t[split == "val"]),
            "test": (store.subset(ev), t[ev])}
    spec = TrainSpec(epochs=cfg.finetune_epochs, lr=cfg.finetune_lr, seed=cfg.seed,
                     device=str(resolve_device(cfg.device)), progress=progress,
                     patience=max(2, cfg.finetune_epochs // 3), threads=cfg.threads or None)
    table, _ = run_adaptation(enc, data, [TARGET], "binary", spec, method="finetune",
                              batch_size=cfg.batch_size, seed=cfg.seed,
                              num_workers=cfg.num_workers)
    return table["y_score"].to_numpy(dtype=float)


# ----------------------------------------------------------------------------- decisions


def decide(preds: pd.DataFrame, labels: pd.DataFrame, cfg: PaperCSpec) -> pd.DataFrame:
    """Adds ``y_true`` (the ``eval_labels`` reading), ``threshold`` (the ``threshold``
    reading, chosen on the validation split against the training source's labels) and
    ``y_pred``; keeps the test split."""
    lab = labels.set_index("sample_id")
    out = []
    for (model, source), g in preds.groupby(["model", "source"], sort=False):
        y_src = lab.loc[g["sample_id"], source].to_numpy(dtype=float)
        val = (g["split"] == "val").to_numpy()
        thr = choose_threshold(y_src[val], g["score"].to_numpy()[val], cfg.threshold)
        ev = source if cfg.eval_labels == "same_source" else cfg.eval_labels
        if ev not in lab.columns:
            raise InputError(f"eval_labels {cfg.eval_labels!r}: no {ev!r} labels in this run")
        y_eval = lab.loc[g["sample_id"], ev].to_numpy(dtype=float)
        gg = g.assign(y_true=y_eval.astype(int), threshold=thr,
                      y_pred=(g["score"].to_numpy() >= thr).astype(int))
        out.append(gg[gg["split"] == "test"])
    return pd.concat(out, ignore_index=True)


def choose_threshold(y: np.ndarray, s: np.ndarray, reading: str) -> float:
    """``half``: 0.5; ``youden_val``: the score maximising sensitivity + specificity - 1 on
    the given (validation) rows.

    >>> choose_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.35, 0.9]), "youden_val")
    0.35
    """
    if reading == "half":
        return 0.5
    from sklearn.metrics import roc_curve

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise InputError("the validation split holds one class only: no Youden threshold")
    fpr, tpr, thr = roc_curve(y, s)
    j = int(np.argmax(tpr - fpr))
    return float(min(thr[j], 1.0))


# ----------------------------------------------------------------------------- audit


@dataclasses.dataclass
class GapResults:
    """``auroc``: per model x source, AUROC with interval; ``rates``: FPR per group;
    ``gaps``: signed gaps; ``effect``: per model x attribute, the paired label-source
    difference of the gap (relative change, interval, raw and adjusted p)."""

    auroc: pd.DataFrame
    rates: pd.DataFrame
    gaps: pd.DataFrame
    effect: pd.DataFrame


def audit_gaps(decided: pd.DataFrame, cfg: PaperCSpec) -> GapResults:
    """Every statistic of the paper's figure and text on the test split (module docstring)."""
    from ...audit import audit
    from ...audit.gaps import group_rates, paired_gap_difference, signed_gap
    from ...audit.stats import adjust_pvalues

    auroc, rates, gaps, effect = [], [], [], []
    keys = ["model", "model_label", "paper_model", "source"]
    for k, g in decided.groupby(keys, sort=False):
        pred = g.rename(columns={"score": "y_score"})[
            ["sample_id", "patient_id", "y_true", "y_score"]]
        a = audit(pred, task="binary", attributes=[], n_bootstrap=cfg.n_bootstrap,
                  n_permutations=0, seed=cfg.seed, metrics=["auroc"])
        a = a[(a["metric"] == "auroc")].iloc[0]
        auroc.append({**dict(zip(keys, k)), "auroc": float(a["estimate"]),
                      "ci_low": float(a["ci_low"]), "ci_high": float(a["ci_high"]),
                      "n": int(len(g)), "prevalence": float(g["y_true"].mean())})
        pid = g["patient_id"].to_numpy()
        for attr, pair in PAIRS.items():
            r = group_rates(g["y_true"], g["y_pred"], sensitive_features=g[attr].to_numpy(dtype=object),
                            clusters=pid, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
            rates.append(r[r["group"].isin(pair)].assign(**dict(zip(keys, k)), attribute=attr))
            s = signed_gap(g["y_true"], g["y_pred"], sensitive_features=g[attr].to_numpy(dtype=object),
                           pair=pair, clusters=pid, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
            gaps.append({**dict(zip(keys, k)), "attribute": attr,
                         "comparison": f"{pair[0]} - {pair[1]}", "gap": s["estimate"],
                         "ci_low": s["ci_low"], "ci_high": s["ci_high"]})
    sources = list(cfg.label_sources)
    if sources[:2] == ["chexpert", "llm"] or set(sources) == {"chexpert", "llm"}:
        for model, g in decided.groupby("model", sort=False):
            a = g[g["source"] == "chexpert"].set_index("sample_id")
            b = g[g["source"] == "llm"].set_index("sample_id").loc[a.index]
            for attr, pair in PAIRS.items():
                d = paired_gap_difference(
                    {"chexpert": (a["y_true"], a["y_pred"]), "llm": (b["y_true"], b["y_pred"])},
                    sensitive_features=a[attr].to_numpy(dtype=object), pair=pair,
                    clusters=a["patient_id"].to_numpy(), n_bootstrap=cfg.n_bootstrap,
                    seed=cfg.seed)
                effect.append({"model": model, "model_label": a["model_label"].iloc[0],
                               "paper_model": a["paper_model"].iloc[0], "attribute": attr,
                               "comparison": f"{pair[0]} - {pair[1]}", **d})
    eff = pd.DataFrame(effect)
    if len(eff):
        eff["p_adjusted"] = (eff["p_value"] if cfg.correction == "none"
                             else adjust_pvalues(eff["p_value"].to_numpy(), cfg.correction))
        eff["shrinks"] = eff["gap_llm"].abs() < eff["gap_chexpert"].abs()
    r = pd.concat(rates, ignore_index=True)
    return GapResults(pd.DataFrame(auroc),
                      r[[*keys, "attribute", "group", "estimate", "ci_low", "ci_high", "n",
                         "denominator"]],
                      pd.DataFrame(gaps), eff)


# ----------------------------------------------------------------------------- Open-i


@dataclasses.dataclass
class OpenIAudit:
    """``reports``: one row per evaluated report (MeSH normal, each labeller's "No Finding",
    age band, sex and how it was derived); ``agreement``: per labeller x attribute x group,
    agreement with the MeSH indexing, false-normal and false-abnormal rates with patient
    bootstrap intervals; ``info``: counts the chapter quotes."""

    reports: pd.DataFrame
    agreement: pd.DataFrame
    info: dict[str, Any]


def openi_reports(cfg: PaperCSpec) -> pd.DataFrame:
    """One row per indexed Open-i report with images (the shipped reports and DICOM
    metadata): ``report_id``, ``patient_id``, ``text`` (findings and impression),
    ``mesh_normal`` (its only major MeSH term is "normal"), ``mesh_major``, ``age``,
    ``age_band``, ``sex``, ``sex_source``.  Reports indexed "No Indexing" are left out."""
    from ...cohorts import build_cohort

    t = build_cohort("openi", seed=cfg.world_seed).table
    t = t.sort_values(["report_id", "sample_id"]).drop_duplicates("report_id")
    # "No Indexing": the coders assigned no term; such a report is neither normal nor not
    t = t[~t["mesh_major"].fillna("").str.contains("No Indexing", regex=False)]
    text = (t["findings"].fillna("").astype(str) + " " + t["impression"].fillna("").astype(str))
    out = pd.DataFrame({
        "report_id": t["report_id"].astype(str).to_numpy(),
        "patient_id": t["patient_id"].astype(str).to_numpy(),
        "text": text.str.strip().to_numpy(),
        "mesh_normal": t["No Finding"].to_numpy(dtype=float),
        "mesh_major": t["mesh_major"].fillna("").astype(str).to_numpy(),
        "age": pd.to_numeric(t["age"], errors="coerce").to_numpy(),
        "sex": t["sex"].fillna("unknown").astype(str).to_numpy(),
        "sex_source": t["sex_source"].replace("", "none").astype(str).to_numpy()})
    out = out[out["text"].str.len() > 0].reset_index(drop=True)
    bands = pd.cut(out["age"], [0, 40, 60, 80, np.inf], right=False,
                   labels=["<40", "40-59", "60-79", "80+"])
    out["age_band"] = bands.astype(str).replace("nan", "unknown")
    return out


def openi_audit(cfg: PaperCSpec, *, progress: bool = True) -> OpenIAudit:
    """Each labeller's "No Finding" against the MeSH "normal" indexing of real reports.

    ``openi_labelled`` reports (drawn by patient) train the model labeller on their MeSH
    label; every labeller is evaluated on the other reports (``openi_reports`` of them, 0:
    all), so the rules and the model are compared on the same reports."""
    from ...runtime import torch_threads

    with torch_threads(cfg.threads):
        return _openi_audit(cfg)


def _openi_audit(cfg: PaperCSpec) -> OpenIAudit:
    from ...audit.gaps import group_rates
    from ...labels import create_labeller

    rep = openi_reports(cfg)
    rng = np.random.default_rng([int(cfg.seed), 41])
    patients = np.asarray(rep["patient_id"].unique(), dtype=object)
    rng.shuffle(patients)
    order = pd.Series(np.arange(len(patients)), index=patients)
    rep = rep.assign(_o=rep["patient_id"].map(order)).sort_values(["_o", "report_id"])
    rep = rep.drop(columns="_o").reset_index(drop=True)
    train = rep.iloc[:cfg.openi_labelled]
    evaluate = rep.iloc[cfg.openi_labelled:]
    evaluate = evaluate[~evaluate["patient_id"].isin(set(train["patient_id"]))]
    if cfg.openi_reports:
        evaluate = evaluate.iloc[:cfg.openi_reports]
    evaluate = evaluate.reset_index(drop=True)
    rules = create_labeller("chexpert-rules").label(evaluate["text"].tolist())
    evaluate["chexpert-rules"] = rules[TARGET].to_numpy()
    lab = create_labeller(cfg.model_labeller, batch_size=cfg.text_batch_size, seed=cfg.seed,
                          **cfg.model_labeller_params)
    lab.fit(train["text"].tolist(),
            pd.DataFrame({TARGET: train["mesh_normal"].to_numpy()}))
    evaluate[cfg.model_labeller] = lab.label(evaluate["text"].tolist())[TARGET].to_numpy()
    rows = []
    y = evaluate["mesh_normal"].to_numpy(int)
    for name in ("chexpert-rules", cfg.model_labeller):
        p = evaluate[name].to_numpy(int)
        for attr in ("all", "age_band", "sex"):
            g = (np.full(len(evaluate), "all") if attr == "all"
                 else evaluate[attr].to_numpy(dtype=object))
            for rate, measure in (("error", "disagreement"), ("fpr", "false_normal"),
                                  ("fnr", "false_abnormal")):
                r = group_rates(y, p, sensitive_features=g, rate=rate,
                                clusters=evaluate["patient_id"].to_numpy(),
                                n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
                rows.append(r.assign(labeller=name, attribute=attr, measure=measure))
    agreement = pd.concat(rows, ignore_index=True)[
        ["labeller", "measure", "attribute", "group", "estimate", "ci_low", "ci_high", "n",
         "denominator"]]
    info = {"openi_reports_total": int(len(rep)),
            "openi_reports_evaluated": int(len(evaluate)),
            "openi_reports_labelled": int(len(train)),
            "openi_mesh_normal_share": float(evaluate["mesh_normal"].mean()),
            "openi_sex_known_share": float((evaluate["sex"] != "unknown").mean()),
            "openi_age_known_share": float(evaluate["age"].notna().mean()),
            "openi_sex_known_normal_share": float(
                evaluate.loc[evaluate["sex"] != "unknown", "mesh_normal"].mean()),
            "openi_sex_unknown_normal_share": float(
                evaluate.loc[evaluate["sex"] == "unknown", "mesh_normal"].mean())}
    return OpenIAudit(evaluate, agreement, info)


__all__ = ["END_TO_END", "GapResults", "OpenIAudit", "TARGET", "audit_gaps", "choose_threshold",
           "decide", "embed", "fit_predict", "label_quality", "label_sources", "load_cohort",
           "openi_audit", "openi_reports"]
