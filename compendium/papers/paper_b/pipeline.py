"""Paper B's steps; each takes the validated spec (:class:`~.spec.PaperBSpec`).

1. :func:`load_studies` - INSPECT's studies (official split, OMOP demographics) or the
   synthetic world's CTPA cohort (its own patient-wise 70/10/20 split), with Paper B's age
   bands and the eight task columns named by :data:`~.spec.TASKS`.
2. :func:`study_slices` - every study's axial slices: HU clipped to the encoders' lung
   window, 8-bit, resized (:func:`compendium.imaging.io.ct_slices`).
3. :func:`embed` - every model's frozen slice embeddings ``(n, S, d)`` (vendor models read
   from their tool's file, one row per slice ``<sample_id>#z<k>``).
4. :func:`ehr_matrix` - EHR features per study (synthetic world's EHR, or the user's file).
5. :func:`probe_all` - the probes of every model x task x input x pooling on the train split
   (hyper-parameters on the validation split), predicted on validation and test.
6. :func:`fit_baseline` - the task-specific CT model (slice CNN + GRU) for PE.
7. :func:`audit_pe` / :func:`age_udr` - the fairness audit.
8. :func:`mitigate` - importance weighting, group resampling, adversarial debiasing.
9. :func:`probe_demographics` - macro-F1 of the attributes read from the embeddings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ...errors import DataNotFoundError, InputError
from ..base import ModelPlan, load_plan_encoder
from .spec import ATTRIBUTES, MLPS, TASKS, PaperBSpec

#: the overall-performance metrics and the per-group ones
GROUP_METRICS = ("auroc", "tpr", "fpr", "udr")
GAP_METRICS = ("udr_gap", "auroc_gap")
SPLITS = ("train", "val", "test")


# ----------------------------------------------------------------------------- studies


@dataclasses.dataclass
class Studies:
    """The studies of the run: ``table`` has ``sample_id``, ``patient_id``, ``split``,
    ``age``, ``sex``, ``race``, ``age_group`` (``unknown`` when missing), one column per task
    (1, 0 or NaN) and, in the synthetic world, ``defect_voxels`` (size of the filling defect)."""

    cohort: Any
    table: pd.DataFrame
    source: str

    def rows(self, split: str) -> np.ndarray:
        return np.flatnonzero(self.table["split"].to_numpy() == split)


def age_groups(age: pd.Series, edges: str) -> np.ndarray:
    """Paper B's bands 18-40 / 40-60 / 60-75 / 75-90; ``lower_closed``: [18, 40), [40, 60)
    ...; ``upper_closed``: (18, 40], (40, 60] ... for whole years (an age on an edge goes to
    the lower band)."""
    from ...cohorts.splits import age_bands

    a = pd.to_numeric(age, errors="coerce").astype(float)
    if edges == "upper_closed":
        a = np.ceil(a) - 1
    elif edges != "lower_closed":
        raise InputError(f"age_edges {edges!r} (allowed: lower_closed, upper_closed)")
    return np.asarray(age_bands("paper_b").assign(a), dtype=object)


def load_studies(cfg: PaperBSpec) -> Studies:
    """INSPECT (``pixels: real``) or the synthetic world's CTPA cohort (``synthetic``)."""
    if cfg.pixels == "real":
        from ...cohorts import build_cohort

        cohort = build_cohort("inspect", root=cfg.data_roots["inspect"], seed=cfg.world_seed)
        t = cohort.table.copy()
        for task in cfg.tasks:
            t[task] = t[TASKS[task][1]]
        source = "INSPECT"
    else:
        from ...synthetic import synthetic_inspect

        cohort = synthetic_inspect(n=cfg.n_studies, seed=cfg.world_seed, knobs=cfg.knobs,
                                   prognosis_strength=cfg.prognosis_strength,
                                   emboli=cfg.emboli)
        t = cohort.table.copy()
        for task in cfg.tasks:
            t[task] = t[TASKS[task][0]]
        source = "synthetic world"
    t["age_group"] = age_groups(t["age"], cfg.age_edges)
    for a in ATTRIBUTES:
        t[a] = t[a].astype(object).where(t[a].notna(), "unknown").astype(str)
    if not set(SPLITS) <= set(t["split"]):
        raise InputError(f"{source}: the split must hold train, val and test studies "
                         f"(found {sorted(set(t['split']))})")
    return Studies(cohort, t.reset_index(drop=True), source)


def cohort_table(studies: Studies, cfg: PaperBSpec) -> pd.DataFrame:
    """Studies, patients and prevalence of every task per split."""
    t = studies.table
    rows = []
    for split in SPLITS:
        s = t[t["split"] == split]
        row = {"split": split, "studies": len(s), "patients": s["patient_id"].nunique()}
        for task in cfg.tasks:
            row[f"{task} prevalence"] = float(s[task].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def demographics_table(studies: Studies) -> pd.DataFrame:
    """Studies per attribute group and split (test counts decide the small groups)."""
    t = studies.table
    parts = []
    for a in ATTRIBUTES:
        c = t.groupby([a, "split"]).size().unstack("split", fill_value=0)
        c = c.reindex(columns=list(SPLITS), fill_value=0).reset_index().rename(columns={a: "group"})
        c.insert(0, "attribute", a)
        parts.append(c)
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- slices


def _window(cfg: PaperBSpec) -> tuple[float, float]:
    """The lung window of the run's encoders (their registry entries; all the same)."""
    from ...encoders import get_entry
    from ...imaging.io import LUNG_WINDOW

    windows = {get_entry(p.encoder).preprocess.hu_window or LUNG_WINDOW for p in cfg.model_plans()}
    if len(windows) != 1:
        raise InputError(f"the encoders' HU windows differ: {sorted(windows)}")
    return tuple(windows.pop())


def study_slices(studies: Studies, cfg: PaperBSpec, *, progress: bool = True) -> np.ndarray:
    """uint8 ``(n, n_slices, slice_size, slice_size)``: HU clipped to the lung window,
    8-bit, resized.  Synthetic: also sets ``defect_voxels`` (filling-defect size) on the
    table."""
    from tqdm.auto import tqdm

    from ...imaging.io import ct_slices, hu_window, read_ct_volume

    n, S, size = len(studies.table), cfg.n_slices, cfg.slice_size
    out = np.empty((n, S, size, size), np.uint8)
    window = _window(cfg)
    if cfg.pixels == "real":
        root = Path(cfg.data_roots["inspect"])
        for i, rel in enumerate(tqdm(studies.table["volume_path"], desc="volumes",
                                     disable=not progress)):
            out[i] = ct_slices(read_ct_volume(root / rel), n_slices=S, size=size, window=window)
        return out
    from ...synthetic import render_volumes

    defect = np.zeros(n)
    for start in tqdm(range(0, n, 100), desc="synthetic volumes", disable=not progress):
        idx = np.arange(start, min(n, start + 100))
        vols, _, dmask = render_volumes(studies.cohort, idx, size=size, depth=S,
                                        return_masks=True)
        out[idx] = np.round(hu_window(vols, *window) * 255.0).astype(np.uint8)
        defect[idx] = dmask.reshape(len(idx), -1).sum(1)
    studies.table["defect_voxels"] = defect
    return out


# ----------------------------------------------------------------------------- embeddings


@dataclasses.dataclass
class Embedded:
    """One model's slice embeddings ``E`` (n, n_slices, d), aligned with the studies."""

    plan: ModelPlan
    E: np.ndarray

    @property
    def label(self) -> str:
        return self.plan.label


def slice_ids(sample_ids: Sequence[str], n_slices: int) -> list[str]:
    """Row ids of a vendor embeddings file: ``<sample_id>#z<k>`` for every slice k."""
    return [f"{s}#z{k:02d}" for s in sample_ids for k in range(n_slices)]


def embed(studies: Studies, slices: np.ndarray | None, cfg: PaperBSpec, *,
          progress: bool = True) -> list[Embedded]:
    """Every model's frozen slice embeddings (each slice encoded on its own)."""
    from ...encoders.cache import extract_embeddings
    from ...runtime import torch_threads

    out = []
    n, S = len(studies.table), cfg.n_slices
    with torch_threads(cfg.threads):
        for plan in cfg.model_plans():
            enc = load_plan_encoder(plan, cfg, progress=progress)
            if enc.entry.kind == "embeddings-file":
                ids = slice_ids(studies.table["sample_id"].astype(str), S)
                missing = [i for i in ids if i not in enc._row]
                if missing:
                    raise DataNotFoundError(
                        f"{enc.name}: the embeddings file lacks {len(missing)} of the {len(ids)} "
                        f"slices (ids '<sample_id>#z<k>', k < {S}; e.g. {missing[0]!r})")
                E = np.asarray(enc.encode_samples(ids), np.float32)
            else:
                if slices is None:
                    raise InputError(f"{enc.name} encodes pixels: study_slices are needed")
                flat = slices.reshape(n * S, *slices.shape[2:])
                E = np.array(extract_embeddings(enc, flat, batch_size=cfg.batch_size,
                                                progress=progress).array, dtype=np.float32)
            out.append(Embedded(plan, E.reshape(n, S, -1)))
    return out


def ehr_matrix(studies: Studies, cfg: PaperBSpec) -> np.ndarray:
    """EHR features per study: the synthetic world's 48-h record summarised (mean of every
    value and mask column over time), or the numeric columns of the ``ehr_features`` file."""
    if cfg.pixels == "real":
        from ...cohorts._common import read_table

        f = read_table(Path(cfg.ehr_features).expanduser(), "ehr_features",
                       dtype={"impression_id": str, "sample_id": str})
        key = "impression_id" if "impression_id" in f.columns else "sample_id"
        if key not in f.columns:
            raise InputError(f"{cfg.ehr_features}: needs an impression_id (or sample_id) column")
        ids = f[key].astype(str)
        if ids.duplicated().any():
            raise InputError(f"{cfg.ehr_features}: {key} {ids[ids.duplicated()].iloc[0]!r} "
                             "has more than one row (one row per study)")
        num = f.set_index(ids).drop(columns=[key]).select_dtypes("number")
        if num.shape[1] == 0:
            raise InputError(f"{cfg.ehr_features}: no numeric feature column")
        got = num.reindex(studies.table["sample_id"].astype(str))
        if got.isna().all(axis=1).any():
            raise DataNotFoundError(f"{cfg.ehr_features}: {int(got.isna().all(axis=1).sum())} "
                                    "studies have no EHR features")
        return got.fillna(num.mean()).to_numpy(float)
    from ...synthetic import render_ehr

    ehr = render_ehr(studies.cohort, None, findings=list(cfg.ehr_findings))
    return ehr.mean(axis=1).astype(float)


# ----------------------------------------------------------------------------- probes


@dataclasses.dataclass
class Fit:
    """Validation and test predictions tables of one model x task x variant."""

    model: str
    paper_model: str
    task: str
    variant: str
    val: pd.DataFrame
    test: pd.DataFrame
    info: dict = dataclasses.field(default_factory=dict)


def _rows(studies: Studies, task: str, split: str) -> np.ndarray:
    r = studies.rows(split)
    return r[studies.table[task].iloc[r].notna().to_numpy()]


def _pred(studies: Studies, rows: np.ndarray, task: str, scores: np.ndarray) -> pd.DataFrame:
    from ...adapt.predictions import predictions_table

    t = studies.table.iloc[rows].reset_index(drop=True)
    return predictions_table(t, np.asarray(scores, float), [task], "binary",
                             attributes=list(ATTRIBUTES))


def _auroc(y, s) -> float:
    from ...audit import auroc

    return float(auroc(np.asarray(y).astype(int), np.asarray(s, float)))


#: inverse regularisation strengths tried for the logistic regression (validation AUROC)
LOGREG_C = (0.01, 0.1)


def fit_logreg(Xtr, ytr, Xva, yva, *, seed: int, sample_weight=None):
    """The primary probe: standardised logistic regression, C chosen on validation AUROC."""
    from ...adapt.probes import create_probe, fit_estimator
    from ...adapt.selection import select_by_validation

    def one(C):
        est = create_probe("logreg", random_state=seed, C=C)
        fit_estimator(est, Xtr, ytr, sample_weight=sample_weight)
        return _auroc(yva, est.predict_proba(Xva)[:, 1]), est, {}

    sel = select_by_validation(LOGREG_C, one, metric="auroc", lower_is_better=False,
                               describe=lambda c: f"C={c:g}")
    return sel.winner


def features(emb: Embedded, pooling: str) -> np.ndarray:
    from ...adapt.pooling import pool_slices

    return pool_slices(emb.E, pooling)


def _probe_all(studies: Studies, embedded: Sequence[Embedded], ehr: np.ndarray,
              cfg: PaperBSpec, *, progress: bool = True) -> list[Fit]:
    """Logistic regression for every model x task on CT (mean-pooled), EHR and CT+EHR; the
    MLP sweep on PE; with ``pooling_study`` also max pooling (LR) and attention MIL."""
    from tqdm.auto import tqdm

    from ...adapt.pooling import AttentionMILProbe
    from ...adapt.probes import create_probe, fit_estimator

    fits: list[Fit] = []
    ehr_z = (ehr - ehr.mean(0)) / np.where(ehr.std(0) > 0, ehr.std(0), 1.0)
    jobs = [(e, task) for e in embedded for task in cfg.tasks]
    for emb, task in tqdm(jobs, desc="probes", disable=not progress):
        tr, va, te = (_rows(studies, task, s) for s in SPLITS)
        y = studies.table[task].to_numpy()
        ytr, yva = y[tr].astype(int), y[va].astype(int)
        ct = features(emb, "mean")
        inputs = {"CT": ct, "EHR": ehr_z, "CT+EHR": np.hstack([ct, ehr_z])}
        pooled = cfg.pooling_study and task in cfg.pooling_tasks
        if pooled:
            inputs["CT (max pooling)"] = features(emb, "max")
        for variant, X in inputs.items():
            if variant == "EHR" and emb is not embedded[0]:
                continue        # the same for every model: fitted once
            est = fit_logreg(X[tr], ytr, X[va], yva, seed=cfg.seed)
            fits.append(Fit(emb.label if variant != "EHR" else "EHR only",
                            emb.plan.model if variant != "EHR" else "ehr", task,
                            f"logreg {variant}",
                            _pred(studies, va, task, est.predict_proba(X[va])[:, 1]),
                            _pred(studies, te, task, est.predict_proba(X[te])[:, 1]),
                            {"C": float(est.steps[-1][1].C)}))
        if task == "pe":
            for mlp in MLPS:
                est = create_probe(mlp, random_state=cfg.seed, max_epochs=cfg.mlp_epochs,
                                   patience=10)
                fit_estimator(est, ct[tr], ytr, eval_set=(ct[va], yva))
                fits.append(Fit(emb.label, emb.plan.model, task, mlp,
                                _pred(studies, va, task, est.predict_proba(ct[va])[:, 1]),
                                _pred(studies, te, task, est.predict_proba(ct[te])[:, 1])))
        if pooled:
            mil = AttentionMILProbe(max_epochs=cfg.mil_epochs, random_state=cfg.seed,
                                    n_jobs=cfg.threads or 1).fit(emb.E[tr], ytr)
            fits.append(Fit(emb.label, emb.plan.model, task, "attention-MIL CT",
                            _pred(studies, va, task, mil.predict_proba(emb.E[va])[:, 1]),
                            _pred(studies, te, task, mil.predict_proba(emb.E[te])[:, 1])))
    return fits


def _fit_baseline(studies: Studies, slices: np.ndarray, cfg: PaperBSpec) -> Fit:
    """The task-specific CT model (slice CNN + bidirectional GRU, end to end) on PE: our
    stand-in for the paper's CT-LRCN baseline."""
    from ...adapt.volume_model import SliceRecurrentClassifier

    tr, va, te = (_rows(studies, "pe", s) for s in SPLITS)
    y = studies.table["pe"].to_numpy()
    est = SliceRecurrentClassifier(max_epochs=cfg.baseline_epochs, random_state=cfg.seed,
                                   n_jobs=cfg.threads or 1)
    est.fit(slices[tr], y[tr].astype(int), slices[va], y[va].astype(int))
    return Fit("slice CNN + GRU (stand-in for CT-LRCN)", "ct-lrcn", "pe", "end to end",
               _pred(studies, va, "pe", est.predict_proba(slices[va])[:, 1]),
               _pred(studies, te, "pe", est.predict_proba(slices[te])[:, 1]),
               {"epochs": len(est.history_)})


# ----------------------------------------------------------------------------- audit


def threshold_of(fit: Fit, cfg: PaperBSpec) -> float:
    """The decision threshold of ``cfg.threshold``: Youden's J on the validation
    predictions, or a fixed number."""
    from ...audit import choose_threshold

    if cfg.threshold == "youden":
        return choose_threshold(fit.val["y_true"], fit.val["y_score"], "youden")
    return float(cfg.threshold)


def small_groups(studies: Studies, cfg: PaperBSpec) -> dict[str, list[str]]:
    """Per attribute, the groups with fewer than ``min_group_size`` test studies (and
    ``unknown``): flagged, shown, left out of every gap."""
    t = studies.table[studies.table["split"] == "test"]
    out = {}
    for a in ATTRIBUTES:
        n = t[a].value_counts()
        out[a] = sorted(set(n[n < cfg.min_group_size].index) | ({"unknown"} & set(n.index)))
    return out


def audit_fit(fit: Fit, studies: Studies, cfg: PaperBSpec, *, attributes=tuple(ATTRIBUTES),
              n_permutations: int | None = None, threshold: float | None = None) -> pd.DataFrame:
    """Per-group AUROC, TPR, FPR and UDR (every group, small ones flagged) and the min-max
    gaps with their permutation p-values over the groups that are not small."""
    from ...audit import audit

    thr = threshold_of(fit, cfg) if threshold is None else threshold
    n_perm = cfg.n_permutations if n_permutations is None else n_permutations
    small = small_groups(studies, cfg)
    parts = []
    per_group = audit(fit.test, task="binary", attributes=list(attributes),
                      n_bootstrap=cfg.n_bootstrap, n_permutations=0, seed=cfg.seed,
                      threshold=thr, metrics=list(GROUP_METRICS),
                      min_group_size=cfg.min_group_size, correction=None)
    parts.append(per_group[per_group["kind"].isin(["overall", "group"])])
    for a in attributes:
        keep = ~fit.test[a].isin(small[a])
        sub = fit.test[keep]
        if sub[a].nunique() < 2:
            continue
        g = audit(sub, task="binary", attributes=[a], n_bootstrap=cfg.n_bootstrap,
                  n_permutations=n_perm, seed=cfg.seed, threshold=thr,
                  metrics=list(GAP_METRICS), min_group_size=0, correction=None)
        parts.append(g[g["kind"].isin(["gap", "pair"])])   # a two-group gap's signed row too
    out = pd.concat(parts, ignore_index=True)
    out["small_group"] = [r.kind == "group" and r.group in small.get(r.attribute, [])
                          for r in out.itertuples()]
    return out.assign(model=fit.model, paper_model=fit.paper_model, task=fit.task,
                      variant=fit.variant, threshold=thr)


def _audit_pe(fits: Sequence[Fit], studies: Studies, cfg: PaperBSpec, *,
             variants: Sequence[str] = ("logreg CT",)) -> pd.DataFrame:
    """:func:`audit_fit` of every PE fit of the given variants (and the baseline)."""
    parts = [audit_fit(f, studies, cfg) for f in fits
             if f.task == "pe" and (f.variant in variants or f.paper_model == "ct-lrcn")]
    return pd.concat(parts, ignore_index=True)


def _age_udr(fits: Sequence[Fit], studies: Studies, cfg: PaperBSpec) -> pd.DataFrame:
    """UDR per age band and the age UDR gap (with its p-value) for every task (LR, CT)."""
    parts = [audit_fit(f, studies, cfg, attributes=("age_group",)) for f in fits
             if f.variant == "logreg CT"]
    return pd.concat(parts, ignore_index=True)


def female_male_sweep(fits: Sequence[Fit], cfg: PaperBSpec) -> pd.DataFrame:
    """UDR of women minus men at every threshold of a grid over [0, 1] (PE, LR on CT and the
    baseline); ``informative``: both groups have TPR strictly between 0 and 1 there."""
    from ...audit import threshold_sweep

    grid = np.linspace(0, 1, cfg.sweep_points)
    rows = []
    for f in fits:
        if f.task != "pe" or not (f.variant == "logreg CT" or f.paper_model == "ct-lrcn"):
            continue
        t = f.test[f.test["sex"].isin(["F", "M"])]
        sw = threshold_sweep(t["y_true"], t["y_score"], thresholds=grid,
                             sensitive_features=t["sex"])
        w = sw.pivot_table(index="threshold", columns="group", values="udr")
        tp = sw.pivot_table(index="threshold", columns="group", values="tpr")
        d = pd.DataFrame({"model": f.model, "threshold": w.index, "udr_F": w["F"].to_numpy(),
                          "udr_M": w["M"].to_numpy()})
        d["difference"] = d["udr_F"] - d["udr_M"]
        inf = ((tp["F"] > 0) & (tp["F"] < 1) & (tp["M"] > 0) & (tp["M"] < 1)).to_numpy()
        d["informative"] = inf
        rows.append(d)
    return pd.concat(rows, ignore_index=True)


#: The group whose disparity the paper tests on its own ("Hispanic disparity does not reach
#: significance"): attribute and group.
DISPARITY_GROUP = ("race", "Hispanic")
#: The group the ``hispanic_reference`` reading ``white`` compares it with.
REFERENCE_GROUP = "White"


def _group_disparity(fits: Sequence[Fit], studies: Studies, cfg: PaperBSpec) -> pd.DataFrame:
    """The Hispanic PE underdiagnosis disparity of every model (LR on CT) and the baseline,
    under each candidate of the ``hispanic_reference`` reading: the UDR of Hispanic studies,
    that of the reference (``white``: White studies; ``rest``: every other study of a
    race/ethnicity group that is not small), the difference and its two-sided permutation
    p-value (``n_permutations``, group membership shuffled between patients; unadjusted,
    as the gender p-values), at the run's threshold."""
    from ...audit import audit

    a, g = DISPARITY_GROUP
    small = small_groups(studies, cfg)
    rows = []
    for f in fits:
        if f.task != "pe" or not (f.variant == "logreg CT" or f.paper_model == "ct-lrcn"):
            continue
        thr = threshold_of(f, cfg)
        v = f.test[a].astype(str)
        for reading in ("white", "rest"):
            if reading == "white":
                keep, ref = v.isin([g, REFERENCE_GROUP]).to_numpy(), REFERENCE_GROUP
            else:
                keep, ref = ((v == g) | ~v.isin([*small[a], g])).to_numpy(), "rest"
            sub = f.test[keep].assign(versus=np.where(v[keep] == g, g, ref))
            pos = sub[sub["y_true"] == 1]["versus"].value_counts()
            n = sub["versus"].value_counts()
            row = {"model": f.model, "paper_model": f.paper_model, "reading": reading,
                   "group": g, "reference": ref, "n_group": int(n.get(g, 0)),
                   "n_group_positives": int(pos.get(g, 0)), "n_reference": int(n.get(ref, 0)),
                   "n_reference_positives": int(pos.get(ref, 0)),
                   "udr_group": np.nan, "udr_reference": np.nan, "difference": np.nan,
                   "p_value": np.nan, "threshold": thr,
                   "this run": reading == cfg.hispanic_reference}
            if pos.get(g, 0) > 0 and pos.get(ref, 0) > 0:
                res = audit(sub, task="binary", attributes=["versus"], n_bootstrap=0,
                            n_permutations=cfg.n_permutations, seed=cfg.seed, threshold=thr,
                            metrics=["udr", "udr_gap"], min_group_size=0, correction=None)
                udr = res[(res["kind"] == "group") & (res["metric"] == "udr")].set_index(
                    "group")["estimate"]
                gap = res[(res["kind"] == "gap") & (res["metric"] == "udr_gap")].iloc[0]
                row.update(udr_group=float(udr[g]), udr_reference=float(udr[ref]),
                           difference=float(udr[g] - udr[ref]), p_value=float(gap["p_value"]))
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- mitigation


class _GapStat:
    """AUROC and the min-max UDR gap of every attribute (groups that are not small) of one
    predictions table at one threshold, on any resample of its rows (vectorised)."""

    def __init__(self, pred: pd.DataFrame, thr: float, small: dict[str, list[str]]) -> None:
        self.y = pred["y_true"].to_numpy().astype(int)
        self.s = pred["y_score"].to_numpy(float)
        self.hit = (self.s >= thr).astype(float)
        self.codes = {}
        for a in ATTRIBUTES:
            v = pred[a].to_numpy().astype(str)
            groups = sorted(set(v) - set(small[a]))
            code = np.full(len(v), -1)
            for k, g in enumerate(groups):
                code[v == g] = k
            self.codes[a] = (code, len(groups))

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        y, s, hit = self.y[rows], self.s[rows], self.hit[rows]
        out = [_auroc(y, s) if 0 < y.sum() < len(y) else np.nan]
        pos = y == 1
        for a in ATTRIBUTES:
            code, k = self.codes[a]
            c = code[rows]
            m = pos & (c >= 0)
            npos = np.bincount(c[m], minlength=k)
            tp = np.bincount(c[m], weights=hit[m], minlength=k)
            udr = 1 - tp[npos > 0] / npos[npos > 0]
            out.append(float(udr.max() - udr.min()) if len(udr) > 1 else np.nan)
        return np.asarray(out)


def _mitigate(studies: Studies, embedded: Sequence[Embedded], fits: Sequence[Fit],
             cfg: PaperBSpec, *, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each mitigation targeting each attribute, for every model (PE, mean-pooled CT).

    Importance weighting and group resampling train the logistic regression; adversarial
    debiasing a linear probe on a learned projection with a gradient-reversal adversary,
    its strength chosen among ``alphas`` on the validation split.  Returns the gaps table
    (per model x mitigation x target: AUROC and the UDR gap of every attribute, before and
    after, the paired-bootstrap change with its p-value) and the alpha selection rows."""
    from tqdm.auto import tqdm

    from ...adapt.probes import run_probe
    from ...audit.stats import paired_bootstrap

    small = small_groups(studies, cfg)
    base = {f.paper_model: f for f in fits if f.task == "pe" and f.variant == "logreg CT"}
    tr, va, te = (_rows(studies, "pe", s) for s in SPLITS)
    t = studies.table
    rows, alpha_rows = [], []
    jobs = [(e, m, a) for e in embedded for m in ("importance_weighting", "resampling",
                                                   "adversarial")
            for a in cfg.mitigation_attributes]
    for emb, method, target in tqdm(jobs, desc="mitigations", disable=not progress):
        X = features(emb, "mean")
        data = {s: (X[r], t.iloc[r].reset_index(drop=True)) for s, r in
                zip(SPLITS, (tr, va, te))}
        if method == "adversarial":
            probe, params = "linear", {"max_epochs": cfg.adversary_epochs, "patience": 10,
                                       "optimizer": "adam"}
        else:
            probe, params = "logreg", {"C": base[emb.plan.model].info["C"]}
        test, info = run_probe(probe, data, ["pe"], "binary", attribute=target,
                               mitigation=method, alphas=cfg.alphas, seed=cfg.seed,
                               params=params)
        val = _pred(studies, va, "pe", info["estimator"].predict_proba(X[va])[:, 1])
        fit = Fit(emb.label, emb.plan.model, "pe", method, val, test)
        for r in info.get("alpha_selection", []):
            alpha_rows.append({"model": emb.label, "target": target, **r,
                               "chosen": r["alpha"] == info["alpha"]})
        b = base[emb.plan.model]
        gb = _GapStat(b.test, threshold_of(b, cfg), small)
        gm = _GapStat(fit.test, threshold_of(fit, cfg), small)
        n = len(b.test)
        before, after = gb(np.arange(n)), gm(np.arange(n))
        d = paired_bootstrap(lambda r: gm(r) - gb(r), n, n_bootstrap=cfg.n_bootstrap,
                             seed=cfg.seed, clusters=b.test["patient_id"].to_numpy())
        for j, what in enumerate(("auroc", *ATTRIBUTES)):
            rows.append({"model": emb.label, "paper_model": emb.plan.model, "mitigation": method,
                         "target": target, "alpha": info["alpha"],
                         "measure": "AUROC" if what == "auroc" else f"UDR gap ({what})",
                         "attribute": "" if what == "auroc" else what,
                         "before": before[j], "after": after[j],
                         "change": d["estimate"].iat[j], "ci_low": d["ci_low"].iat[j],
                         "ci_high": d["ci_high"].iat[j], "p_value": d["p_value"].iat[j]})
    return pd.DataFrame(rows), pd.DataFrame(alpha_rows)


# ----------------------------------------------------------------------------- probing


def _probe_demographics(studies: Studies, embedded: Sequence[Embedded], cfg: PaperBSpec
                       ) -> pd.DataFrame:
    """Macro-F1 of each attribute predicted from the mean-pooled embeddings (trained on the
    training split, scored on the test split; unknown values left out)."""
    from ...adapt.mitigation import demographic_probe

    tr, te = studies.rows("train"), studies.rows("test")
    rows = []
    for emb in embedded:
        X = features(emb, "mean")
        for a in ATTRIBUTES:
            v = studies.table[a].to_numpy()
            r_tr, r_te = tr[v[tr] != "unknown"], te[v[te] != "unknown"]
            res = demographic_probe(X[r_tr], v[r_tr], X[r_te], v[r_te], seed=cfg.seed)
            rows.append({"model": emb.label, "paper_model": emb.plan.model, "attribute": a,
                         "dim": X.shape[1], **res})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- pooling


def defect_size_auroc(fits: Sequence[Fit], studies: Studies, cfg: PaperBSpec) -> pd.DataFrame:
    """Synthetic world: PE AUROC of every pooling when the positives are restricted to one
    quantile bin of the filling-defect size (all negatives kept)."""
    if "defect_voxels" not in studies.table:
        return pd.DataFrame()
    size = studies.table.set_index("sample_id")["defect_voxels"]
    rows = []
    for f in fits:
        if f.task != "pe" or f.variant not in ("logreg CT", "logreg CT (max pooling)",
                                               "attention-MIL CT"):
            continue
        t = f.test.assign(defect=f.test["sample_id"].map(size).to_numpy())
        pos = t[t["y_true"] == 1]
        bins = pd.qcut(pos["defect"].rank(method="first"), cfg.defect_bins, labels=False)
        for b in range(cfg.defect_bins):
            p = pos[bins.to_numpy() == b]
            sub = pd.concat([p, t[t["y_true"] == 0]])
            rows.append({"model": f.model, "pooling": POOLING_NAMES[f.variant], "bin": b + 1,
                         "defect_voxels_median": float(p["defect"].median()),
                         "positives": len(p), "auroc": _auroc(sub["y_true"], sub["y_score"])})
    return pd.DataFrame(rows)


POOLING_NAMES = {"logreg CT": "mean", "logreg CT (max pooling)": "max",
                 "attention-MIL CT": "attention (MIL)"}


__all__ = ["Embedded", "Fit", "GAP_METRICS", "GROUP_METRICS", "LOGREG_C", "POOLING_NAMES",
           "Studies", "age_groups", "age_udr", "audit_fit", "audit_pe", "cohort_table",
           "defect_size_auroc", "demographics_table", "ehr_matrix", "embed",
           "female_male_sweep", "features", "fit_baseline", "fit_logreg", "load_studies",
           "mitigate", "probe_all", "probe_demographics", "slice_ids", "small_groups",
           "study_slices", "threshold_of"]


# ----------------------------------------------------------------------------- performance


def _performance(fits: Sequence[Fit], cfg: PaperBSpec) -> pd.DataFrame:
    """Test AUROC of every fit with its patient-bootstrap interval."""
    from ..base import audit_predictions

    rows = []
    for f in fits:
        a = audit_predictions(f.test, task="binary", attributes=[], metrics=["auroc"],
                              n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
        r = a.iloc[0]
        rows.append({"model": f.model, "paper_model": f.paper_model, "task": f.task,
                     "variant": f.variant, "auroc": r["estimate"], "ci_low": r["ci_low"],
                     "ci_high": r["ci_high"], "n": int(r["n"]),
                     "positives": int(f.test["y_true"].sum())})
    return pd.DataFrame(rows)


def _versus_baseline(fits: Sequence[Fit], cfg: PaperBSpec) -> pd.DataFrame:
    """PE AUROC of every model's LR minus the baseline's, on the same test studies, with a
    paired patient bootstrap interval and p-value."""
    from ...audit.stats import paired_bootstrap

    base = next((f for f in fits if f.paper_model == "ct-lrcn"), None)
    if base is None:
        return pd.DataFrame()
    rows = []
    for f in fits:
        if f.task != "pe" or f.variant != "logreg CT":
            continue
        if not f.test["sample_id"].equals(base.test["sample_id"]):
            raise InputError("the baseline and the probe were tested on different studies")
        y = f.test["y_true"].to_numpy().astype(int)
        s1, s0 = f.test["y_score"].to_numpy(), base.test["y_score"].to_numpy()

        def diff(r, y=y, s1=s1, s0=s0):
            if not 0 < y[r].sum() < len(r):
                return np.nan
            return _auroc(y[r], s1[r]) - _auroc(y[r], s0[r])

        d = paired_bootstrap(diff, len(y), n_bootstrap=cfg.n_bootstrap, seed=cfg.seed,
                             clusters=f.test["patient_id"].to_numpy()).iloc[0]
        rows.append({"model": f.model, "paper_model": f.paper_model, "baseline": base.model,
                     "auroc_model": _auroc(y, s1), "auroc_baseline": _auroc(y, s0),
                     "difference": d["estimate"], "ci_low": d["ci_low"],
                     "ci_high": d["ci_high"], "p_value": d["p_value"]})
    return pd.DataFrame(rows)


__all__ += ["performance", "versus_baseline"]


def with_baseline(fits: Sequence[Fit], studies: Studies, slices: np.ndarray,
                  cfg: PaperBSpec) -> list[Fit]:
    """``fits`` and, with ``baseline``, the task-specific CT model's PE fit."""
    return [*fits, *([fit_baseline(studies, slices, cfg)] if cfg.baseline else [])]


def _pooling_audit(fits: Sequence[Fit], studies: Studies, cfg: PaperBSpec) -> pd.DataFrame:
    """The PE fairness audit of every pooling (``pooling_study``; empty without it)."""
    if not cfg.pooling_study:
        return pd.DataFrame(columns=["model", "paper_model", "task", "variant", "metric",
                                     "attribute", "group", "estimate", "kind"])
    parts = [audit_fit(f, studies, cfg) for f in fits
             if f.task == "pe" and f.variant in POOLING_NAMES]
    out = pd.concat(parts, ignore_index=True)
    out["pooling"] = out["variant"].map(POOLING_NAMES)
    return out


__all__ += ["DISPARITY_GROUP", "REFERENCE_GROUP", "group_disparity", "pooling_audit",
            "with_baseline"]


def _threaded(impl):
    """Run a step with the run's ``threads`` for torch, BLAS and OpenMP."""
    import functools

    @functools.wraps(impl)
    def step(*args, **kwargs):
        from ...runtime import compute_threads

        cfg = next(a for a in (*args, *kwargs.values()) if isinstance(a, PaperBSpec))
        with compute_threads(cfg.threads):
            return impl(*args, **kwargs)

    step.__name__ = step.__qualname__ = impl.__name__.lstrip("_")
    return step


probe_all = _threaded(_probe_all)
fit_baseline = _threaded(_fit_baseline)
mitigate = _threaded(_mitigate)
probe_demographics = _threaded(_probe_demographics)
audit_pe = _threaded(_audit_pe)
age_udr = _threaded(_age_udr)
performance = _threaded(_performance)
versus_baseline = _threaded(_versus_baseline)
pooling_audit = _threaded(_pooling_audit)
group_disparity = _threaded(_group_disparity)


def threshold_evidence(fits: Sequence[Fit], cfg: PaperBSpec) -> pd.DataFrame:
    """The overall PE TPR and UDR of each model at every candidate of the ``threshold``
    reading (Youden's J on validation, 0.5), beside the share of test studies flagged: the
    paper's UDRs (0.31-0.80 by age band) rule out a threshold that flags almost no one."""
    from ...audit.thresholds import choose_threshold

    rows = []
    for f in fits:
        if f.task != "pe" or f.variant != "logreg CT":
            continue
        y, s = f.test["y_true"].to_numpy().astype(int), f.test["y_score"].to_numpy()
        for name, thr in (("youden", choose_threshold(f.val["y_true"], f.val["y_score"],
                                                      "youden")), ("0.5", 0.5)):
            tpr = float((s[y == 1] >= thr).mean())
            rows.append({"model": f.model, "reading": name, "threshold": float(thr),
                         "flagged share": float((s >= thr).mean()), "TPR": tpr,
                         "UDR": 1 - tpr, "this run": name == cfg.threshold})
    return pd.DataFrame(rows)


__all__ += ["threshold_evidence"]
