"""Synthetic cohorts, and the functions that turn their rows into pixels, volumes and EHR.

``cohort.meta["synthetic"]`` of a synthetic cohort is::

    {"seed": <world seed>, "knobs": <BiasKnobs.to_dict()>, "kind": "cxr" | "ct",
     "race": "real" | "synthetic"}

Label columns hold the **recorded** labels (what a hospital's labels / the report say, after
the ``underdiagnosis`` knob); ``true_<label>`` columns hold the **true** state that the
pixels, volumes and EHR show.  With zero knobs the two agree.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..cohorts.base import Cohort
from ..errors import ConfigError, DataNotFoundError, InputError
from . import cxr, ct, ehr, reports
from ._rng import key_int, stream, world_seed
from .knobs import BiasKnobs, age_group, resolve_knobs

log = logging.getLogger(__name__)

CXR_LABELS = (*cxr.FINDINGS, "No Finding")
CT_LABELS = ("PE", "mortality_1m", "mortality_6m", "mortality_12m", "readmission_1m",
             "readmission_6m", "readmission_12m", "ph_12m")
#: Illustrative race proportions (NIH and CheXpert metadata have no race column; these are
#: synthetic, roughly the shape of US academic hospital cohorts, not any dataset's numbers).
RACE_PROPORTIONS = {"White": 0.62, "Black": 0.17, "Asian": 0.07, "Hispanic": 0.08, "Other": 0.06}
#: Base prevalence of each finding (before the ``prevalence`` knob).
PREVALENCE = {"Atelectasis": 0.14, "Cardiomegaly": 0.12, "Consolidation": 0.07, "Edema": 0.09,
              "Effusion": 0.15, "Pneumothorax": 0.06, "Opacity": 0.14, "Pneumonia": 0.05,
              "Nodule": 0.06, "Mass": 0.04}
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


# ------------------------------------------------------------------------ demographics


@functools.lru_cache(maxsize=2)
def _metadata(source: str) -> pd.DataFrame:
    """Age/sex/patient rows of the metadata shipped with torchxrayvision (read on demand)."""
    import importlib.util

    spec = importlib.util.find_spec("torchxrayvision")   # located, not imported (torch is slow)
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(f"demographics={source!r} needs the torchxrayvision package "
                                "(pip install torchxrayvision), or use demographics='parametric'")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "data")
    if source == "nih":
        df = pd.read_csv(os.path.join(folder, "Data_Entry_2017_v2020.csv.gz"),
                         usecols=["Patient ID", "Patient Age", "Patient Gender"])
        return pd.DataFrame({"source_patient": "nih" + df["Patient ID"].astype(str),
                             "age": df["Patient Age"].astype(float),
                             "sex": df["Patient Gender"].astype(str)})
    df = pd.read_csv(os.path.join(folder, "chexpert_train.csv.gz"), usecols=["Path", "Sex", "Age"])
    df = df[df["Sex"].isin(["Male", "Female"])]
    return pd.DataFrame({"source_patient": "chx" + df["Path"].str.split("/").str[2],
                         "age": df["Age"].astype(float),
                         "sex": df["Sex"].map({"Male": "M", "Female": "F"})})


def draw_demographics(n: int, *, seed: int, source: str = "nih",
                      skew: Mapping[str, Mapping[str, float]] | None = None) -> pd.DataFrame:
    """``n`` rows of (patient_id, age, sex, race).

    Parameters
    ----------
    source : ``"nih"`` or ``"chexpert"`` (age and sex of real metadata rows, drawn without
        replacement, patients kept) or ``"parametric"`` (age ~ N(55, 18) clipped to 18-95,
        sex 50/50).  Race is always synthetic (:data:`RACE_PROPORTIONS`).
    skew : e.g. ``{"sex": {"F": 0.1, "M": 0.9}}``: resample to these group proportions.
    """
    seed = world_seed(seed)
    if source not in ("nih", "chexpert", "parametric"):
        raise ConfigError(f"unknown demographics source {source!r} (allowed: nih, chexpert, parametric)")
    rng = np.random.default_rng([int(seed), 9000])
    if source == "parametric":
        pool_n = max(4 * n, 1000)
        pool = pd.DataFrame({"source_patient": [f"par{i}" for i in range(pool_n)],
                             "age": np.round(np.clip(rng.normal(55, 18, pool_n), 18, 95)),
                             "sex": rng.choice(["F", "M"], pool_n)})
    else:
        pool = _metadata(source)
    pool = pool.copy()
    uniq = pool["source_patient"].unique()
    pool["race"] = pool["source_patient"].map(dict(zip(uniq, _race_vec(seed, uniq))))
    w = np.ones(len(pool))
    for col, props in (skew or {}).items():
        if col not in pool.columns:
            raise ConfigError(f"skew: unknown column {col!r} (allowed: sex, race)")
        freq = pool[col].value_counts(normalize=True)
        for val, target in props.items():
            if val not in freq.index:
                raise ConfigError(f"skew: no {col}={val!r} rows to draw from")
        target = pool[col].map(lambda v: props.get(v, 0.0)).to_numpy(dtype=float)
        w = w * target / pool[col].map(freq).to_numpy(dtype=float)
    if w.sum() <= 0:
        raise ConfigError("skew leaves no rows to draw from")
    pick = rng.choice(len(pool), size=n, replace=n > len(pool), p=w / w.sum())
    out = pool.iloc[np.sort(pick)].reset_index(drop=True)
    out["patient_id"] = out["source_patient"]
    return out[["patient_id", "age", "sex", "race"]]


def _race(seed: int, patient: str) -> str:
    return str(_race_vec(seed, [patient])[0])


def _race_vec(seed: int, patients: pd.Series) -> np.ndarray:
    # a hash per patient (no Generator per row: fast for 100k patients)
    names = list(RACE_PROPORTIONS)
    cum = np.cumsum(list(RACE_PROPORTIONS.values()))
    h = np.array([key_int(f"race/{seed}/{p}") for p in patients], dtype=np.uint64)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return np.asarray(names, dtype=object)[np.searchsorted(cum, u * cum[-1], side="right")]


def patient_split(patients: pd.Series, seed: int,
                  fractions: tuple[float, float, float] = SPLIT_FRACTIONS) -> np.ndarray:
    """Patient-wise train/val/test assignment from a hash of (seed, patient)."""
    u = np.array([(key_int(f"split/{seed}/{p}") >> 11) / float(1 << 53) for p in patients])
    return np.where(u < fractions[0], "train", np.where(u < fractions[0] + fractions[1], "val", "test"))


# ------------------------------------------------------------------------ cohorts


# log-odds added by the two hidden causes (heart failure, infection), per finding, and the
# offsets that keep the marginal prevalence near PREVALENCE
_HF = np.array([0, 1.8, 0, 2.2, 1.2, 0, 0, 0, 0, 0])
_INF = np.array([0, 0, 2.0, 0, 0.4, 0, 1.5, 2.2, 0, 0])
_HF_OFF = np.array([0, 0.5, 0, 0.6, 0.3, 0, 0, 0, 0, 0])
_INF_OFF = np.array([0, 0, 0.4, 0, 0.1, 0, 0.3, 0.4, 0, 0])


def _draw_findings(table: pd.DataFrame, knobs: BiasKnobs, seed: int) -> np.ndarray:
    """True findings (n, 8): correlated through two latent causes, prevalence knob applied."""
    per = knobs.per_row(table)
    base = np.array([PREVALENCE[f] for f in cxr.FINDINGS])
    out = np.zeros((len(table), len(base)))
    for i, key in enumerate(table["synthetic_key"]):
        r = stream(seed, key, "label")
        hf, inf = r.uniform() < 0.12, r.uniform() < 0.1
        logit = np.log(base / (1 - base)) + per["prevalence"][i]
        logit += _HF * hf + _INF * inf
        logit -= _HF_OFF + _INF_OFF
        out[i] = r.uniform(size=len(base)) < 1 / (1 + np.exp(-logit))
    return out


def _record(table: pd.DataFrame, truth: np.ndarray, under: np.ndarray, seed: int) -> np.ndarray:
    """Recorded labels: each true positive is missed with the row's underdiagnosis probability."""
    rec = truth.copy()
    for i, key in enumerate(table["synthetic_key"]):
        miss = stream(seed, key, "record").uniform(size=truth.shape[1]) < under[i]
        rec[i] = np.where(np.nan_to_num(truth[i]) == 1, (~miss).astype(float), truth[i])
    return rec


def _mislabel(table: pd.DataFrame, recorded: np.ndarray, p: np.ndarray, seed: int) -> np.ndarray:
    """What the images of a multi-class cohort show: the recorded class, except that with the
    row's ``mislabel`` probability another class drawn uniformly from the others."""
    shown = recorded.copy()
    n_classes = recorded.shape[1]
    for i, key in enumerate(table["synthetic_key"]):
        u = stream(seed, key, "mislabel").uniform(size=2)
        if n_classes > 1 and u[0] < p[i] and np.nansum(recorded[i]) == 1:
            c = int(np.nanargmax(recorded[i]))
            other = (c + 1 + int(u[1] * (n_classes - 1))) % n_classes
            shown[i] = 0.0
            shown[i, other] = 1.0
    return shown


def synthetic_cxr(*, n: int = 600, seed: int = 0, knobs: Any = None, demographics: str = "nih",
                  skew: Mapping[str, Mapping[str, float]] | None = None,
                  name: str = "synthetic-cxr") -> Cohort:
    """A multi-label synthetic chest-X-ray cohort (see :mod:`compendium.synthetic`)."""
    seed = world_seed(seed)
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    k = resolve_knobs(knobs)
    t = draw_demographics(n, seed=seed, source=demographics, skew=skew)
    t.insert(0, "sample_id", [f"syn-cxr-{seed}-{i:06d}" for i in range(n)])
    t["split"] = patient_split(t["patient_id"], seed)
    t["age_group"] = age_group(t["age"]).to_numpy()
    t["synthetic_key"] = t["sample_id"]
    truth = _draw_findings(t, k, seed)
    rec = _record(t, truth, k.per_row(t)["underdiagnosis"], seed)
    for j, f in enumerate(cxr.FINDINGS):
        t[f] = rec[:, j]
    t["No Finding"] = (rec.sum(1) == 0).astype(float)
    for j, f in enumerate(cxr.FINDINGS):
        t[f"true_{f}"] = truth[:, j]
    t["true_No Finding"] = (truth.sum(1) == 0).astype(float)
    t["report"] = reports.write_reports(t, CXR_LABELS, seed, style=k.per_row(t)["report_style"])
    meta = {"synthetic": {"seed": int(seed), "knobs": k.to_dict(), "kind": "cxr", "race": "synthetic"}}
    return Cohort(name=name, table=t, labels=CXR_LABELS, source="synthetic",
                  pixel_column="synthetic_key", task="multilabel", meta=meta,
                  report=(f"Synthetic world (seed {seed}): {n} chest-X-ray-like images; age and sex "
                          f"from {demographics} metadata rows, race synthetic; knobs: "
                          f"{'none' if k.is_zero() else ', '.join(k.groups)}."))


def pretraining_pairs(n: int, *, seed: int = 0, knobs: Any = None,
                      skew: Mapping[str, Mapping[str, float]] | None = None,
                      demographics: str = "nih") -> Cohort:
    """Image-report pairs for contrastive pretraining (render pixels with :func:`render_rows`,
    text from the ``report`` column); ``skew`` makes the corpus demographically skewed,
    e.g. ``{"sex": {"M": 0.9, "F": 0.1}}``."""
    c = synthetic_cxr(n=n, seed=seed, knobs=knobs, demographics=demographics, skew=skew,
                      name="synthetic-pretraining")
    return c


def with_synthetic_pixels(cohort: Cohort, *, knobs: Any = None, seed: int = 0,
                          fill_race: bool = True) -> Cohort:
    """Give any cohort synthetic pixels and reports; keep its rows and its labels.

    Label columns stay the cohort's own labels except that the ``underdiagnosis`` knob can
    flip a positive to negative (not for ``multiclass`` cohorts, whose rows must keep exactly
    one label); the unflipped labels are kept in ``true_<label>`` columns and are what the
    pixels show.  For a ``multiclass`` cohort the ``mislabel`` knob makes the image show
    another class than the recorded one (``true_<label>`` holds the class shown).  Labels the renderer does not know (e.g. 'Hernia') are kept but not drawn.
    Missing race (NIH, CheXpert) is filled with a synthetic race when ``fill_race``.
    """
    seed = world_seed(seed)
    k = resolve_knobs(knobs)
    t = cohort.table.copy()
    t["synthetic_key"] = [f"{cohort.name}/{sid}" for sid in t["sample_id"].astype(str)]
    race_src = "real"
    if fill_race and t["race"].isna().all():
        t["race"] = [_race(seed, str(p)) for p in t["patient_id"]]
        race_src = "synthetic"
    labels = tuple(cohort.labels)
    drawn = [lab for lab in labels if cxr.finding_of(lab)]
    for lab in labels:
        t[f"true_{lab}"] = t[lab]
    if cohort.task != "multiclass" and drawn:
        truth = t[drawn].to_numpy(dtype=float)
        rec = _record(t, truth, k.per_row(t)["underdiagnosis"], seed)
        for j, lab in enumerate(drawn):
            t[lab] = rec[:, j]
        if "No Finding" in labels:
            flipped = (np.nan_to_num(truth) != np.nan_to_num(rec)).any(1)
            none_left = np.nansum(rec, axis=1) == 0
            t.loc[flipped & none_left, "No Finding"] = 1.0
    elif cohort.task == "multiclass":
        per = k.per_row(t)
        if per["underdiagnosis"].any():
            log.warning("%s is multiclass: the underdiagnosis knob is not applied to its labels",
                        cohort.name)
        if per["mislabel"].any():
            shown = _mislabel(t, t[list(labels)].to_numpy(dtype=float), per["mislabel"], seed)
            for j, lab in enumerate(labels):
                t[f"true_{lab}"] = shown[:, j]
    if cohort.task != "multiclass" and k.per_row(t)["mislabel"].any():
        log.warning("%s is not multiclass: the mislabel knob is not applied", cohort.name)
    t["report"] = reports.write_reports(t, labels, seed, style=k.per_row(t)["report_style"])
    meta = {**cohort.meta, "synthetic": {"seed": int(seed), "knobs": k.to_dict(), "kind": "cxr",
                                         "race": race_src}}
    return dataclasses.replace(cohort, table=t, source="real-metadata+synthetic-pixels",
                               pixel_column="synthetic_key", root=None, meta=meta,
                               report=(cohort.report + " Pixels and reports are synthetic.").strip())


# ------------------------------------------------------------------------ rendering


def _world(cohort: Cohort) -> tuple[dict, BiasKnobs, int]:
    if cohort.pixel_column != "synthetic_key" or "synthetic" not in cohort.meta:
        raise InputError(f"{cohort.name}: not a synthetic cohort (use with_synthetic_pixels first)")
    w = cohort.meta["synthetic"]
    return w, BiasKnobs.from_dict(w.get("knobs") or {}, where="meta.synthetic.knobs"), int(w["seed"])


def _rows(cohort: Cohort, indices) -> pd.DataFrame:
    idx = np.asarray(indices if indices is not None else np.arange(len(cohort.table)), dtype=int).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= len(cohort.table)):
        raise InputError(f"{cohort.name}: row positions must lie in [0, {len(cohort.table)})")
    return cohort.table.iloc[idx].reset_index(drop=True)


def _truth(rows: pd.DataFrame, labels, names) -> dict[str, np.ndarray]:
    out = {}
    for lab in labels:
        col = f"true_{lab}" if f"true_{lab}" in rows.columns else lab
        f = cxr.finding_of(lab) or lab
        if f in names:
            v = np.nan_to_num(pd.to_numeric(rows[col], errors="coerce").to_numpy(dtype=float))
            out[f] = np.maximum(out.get(f, 0), v)
    return out


def render_rows(cohort: Cohort, indices=None, size: int = 128) -> np.ndarray:
    """Synthetic radiographs of the given row positions: uint8 array (n, size, size).

    Each image depends only on its own row (true labels, demographics via the knobs,
    ``patient_id``, ``synthetic_key``) and the world seed, never on the other rows rendered.
    """
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ConfigError(f"size must be an integer >= 16, got {size!r}")
    _, k, seed = _world(cohort)
    rows = _rows(cohort, indices)
    truth = _truth(rows, cohort.labels, cxr.FINDINGS)
    F = np.stack([truth.get(f, np.zeros(len(rows))) for f in cxr.FINDINGS], 1) if len(rows) else \
        np.zeros((0, len(cxr.FINDINGS)))
    params = cxr.draw_parameters(rows, F, k.per_row(rows), seed)
    return cxr.render(params, int(size))


def render_ehr(cohort: Cohort, indices=None, *, hours: int = 48,
               findings: Sequence[str] | None = None) -> np.ndarray:
    """EHR time series (n, hours/2, 76) in the MIMIC benchmark layout (see :mod:`.ehr`):
    columns 0-58 values (standardised / one-hot), 59-75 masks (1 = measured in the bin).

    ``findings`` restricts which true states shape the record (e.g. ``["frailty"]``: a
    history of comorbidity that does not show the acute PE); ``None``: every one the cohort
    knows (its findings, ``PE``, ``frailty``)."""
    _, k, seed = _world(cohort)
    rows = _rows(cohort, indices)
    truth = _truth(rows, cohort.labels, (*cxr.FINDINGS, "PE", "frailty"))
    if "frailty" in rows.columns:
        truth["frailty"] = rows["frailty"].to_numpy(dtype=float)
    if findings is not None:
        known = set(cxr.FINDINGS) | {"PE", "frailty"}
        bad = [f for f in findings if f not in known]
        if bad:
            raise ConfigError(f"render_ehr: unknown finding {bad[0]!r} "
                              f"(allowed: {', '.join(sorted(known))})")
        truth = {f: v for f, v in truth.items() if f in set(findings)}
    return ehr.simulate(list(rows["synthetic_key"].astype(str)), truth,
                        k.per_row(rows)["ehr_missing"], seed, hours)


def render_volumes(cohort: Cohort, indices=None, size: int = 48, depth: int = 24, *,
                   return_masks: bool = False):
    """CTPA-like volumes in HU, float32 (n, depth, size, size) (see :mod:`.ct`).

    With ``return_masks`` also the artery masks and the filling-defect masks (bool, same shape).
    """
    _, k, seed = _world(cohort)
    rows = _rows(cohort, indices)
    per = k.per_row(rows)
    truth = _truth(rows, cohort.labels, ("PE",))
    pe = truth.get("PE", np.zeros(len(rows)))
    frail = rows["frailty"].to_numpy(dtype=float) if "frailty" in rows.columns else np.zeros(len(rows))
    vols = np.empty((len(rows), depth, size, size), np.float32)
    arts = np.empty(vols.shape, bool)
    defs = np.empty(vols.shape, bool)
    for i in range(len(rows)):
        vols[i], arts[i], defs[i] = ct.render_volume(
            str(rows["synthetic_key"].iat[i]), str(rows["patient_id"].iat[i]), pe=pe[i],
            frailty=frail[i], knob={kk: v[i] for kk, v in per.items()}, seed=seed, size=size,
            depth=depth, emboli=int(cohort.meta["synthetic"].get("emboli", 1)))
    return (vols, arts, defs) if return_masks else vols


#: mean of the frailty distribution (Beta(1.5, 4)); the outcome models are centred on it
FRAILTY_MEAN = 1.5 / 5.5


def synthetic_inspect(*, n: int = 200, seed: int = 0, knobs: Any = None,
                      prognosis_strength: float = 1.0, emboli: int = 1) -> Cohort:
    """A synthetic INSPECT-like CTPA cohort: PE and seven prognostic outcomes.

    ``prognosis_strength`` multiplies the effect of frailty (the hidden cause of the
    outcomes, visible in the volumes as emphysema, an enlarged heart and effusion) on the
    log-odds of every prognostic outcome, around the mean frailty so that prevalences stay
    close; 1 is the world's default, larger values make the outcomes more predictable.
    ``emboli``: filling defects in every PE study's volume (1 by default).
    """
    seed = world_seed(seed)
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n must be a positive integer, got {n!r}")
    if not (isinstance(prognosis_strength, (int, float)) and 0 <= prognosis_strength <= 20):
        raise ConfigError(f"prognosis_strength must lie in [0, 20], got {prognosis_strength!r}")
    if not (isinstance(emboli, int) and 1 <= emboli <= 6):
        raise ConfigError(f"emboli must be an integer in [1, 6], got {emboli!r}")
    k = resolve_knobs(knobs)
    ps = float(prognosis_strength)
    t = draw_demographics(n, seed=seed + 7919, source="parametric")
    t["race"] = [_race(seed, p) for p in t["patient_id"]]
    t.insert(0, "sample_id", [f"syn-ct-{seed}-{i:06d}" for i in range(n)])
    t["split"] = patient_split(t["patient_id"], seed)
    t["age_group"] = age_group(t["age"]).to_numpy()
    t["synthetic_key"] = t["sample_id"]
    per = k.per_row(t)
    truth = np.zeros((n, len(CT_LABELS)))
    frail = np.zeros(n)
    for i, key in enumerate(t["synthetic_key"]):
        r = stream(seed, key, "outcome")
        frail[i] = np.clip(r.beta(1.5, 4), 0, 1)
        z = r.uniform(size=8)
        pe = z[0] < 1 / (1 + np.exp(-(np.log(0.2 / 0.8) + per["prevalence"][i])))
        # no demographic effect on outcomes unless a knob adds one (prevalence)
        f = frail[i] + (ps - 1.0) * (frail[i] - FRAILTY_MEAN)
        risk = -3.2 + 4.0 * f + 0.6 * pe + per["prevalence"][i]
        p12 = 1 / (1 + np.exp(-risk))
        m12 = z[1] < p12
        m6 = m12 and z[2] < 0.7
        m1 = m6 and z[3] < 0.45
        rr = 1 / (1 + np.exp(-(-1.6 + 2.5 * f + per["prevalence"][i])))
        r12 = z[4] < rr
        r6 = r12 and z[5] < 0.7
        r1 = r6 and z[6] < 0.5
        ph = z[7] < 1 / (1 + np.exp(-(-2.8 + 2.5 * f + 0.9 * pe + per["prevalence"][i])))
        truth[i] = [pe, m1, m6, m12, r1, r6, r12, ph]
    t["frailty"] = frail
    rec = truth.copy()
    rec[:, :1] = _record(t, truth[:, :1], per["underdiagnosis"], seed)
    for j, lab in enumerate(CT_LABELS):
        t[lab] = rec[:, j]
        t[f"true_{lab}"] = truth[:, j]
    meta = {"synthetic": {"seed": int(seed), "knobs": k.to_dict(), "kind": "ct", "race": "synthetic",
                          "emboli": int(emboli)}}
    return Cohort(name="synthetic-inspect", table=t, labels=CT_LABELS, source="synthetic",
                  pixel_column="synthetic_key", task="multilabel", meta=meta,
                  report=f"Synthetic INSPECT-like CTPA cohort (seed {seed}, {n} studies); all synthetic.")
