"""The teaching world: a synthetic cohort, one bias mechanism on one group, and a simulated
classifier's predictions table (everything synthetic).

The lessons and the "find the bias" challenges need an audit with a *known* answer that runs
in seconds, so the image model is not trained: its score is simulated from what the synthetic
world gives each row.  The cohort comes from :func:`compendium.synthetic.world.synthetic_cxr`
(its ``prevalence`` and ``underdiagnosis`` knobs act there, on the true and recorded labels);
the classifier then scores the true finding ("any finding", i.e. not *No Finding*) with a
separation that the row's acquisition and measurements allow:

``z = SEPARATION * quality * (2 * true_any - 1) + e``,  ``e ~ N(0, 1)``,  ``score = sigmoid(z)``

``quality = IMAGE_WEIGHT * (1 - sign_strength) * (AP_QUALITY if AP else 1)
+ (1 - IMAGE_WEIGHT) * measured / N_MEASUREMENTS``

where a row is an AP portable film with probability ``BASE_AP + ap_portable`` and has each of
``N_MEASUREMENTS`` EHR measurements with probability ``1 - BASE_MISSING - ehr_missing``.  The
scores are compared with the **recorded** label (``y_true``), as a hospital's audit would.

Five mechanisms, each a knob of the synthetic world set on one group (see :data:`MECHANISMS`):
``prevalence`` (more disease), ``sign_visibility`` (fainter signs), ``acquisition`` (more AP
portable films), ``label_noise`` (under-diagnosis in the recorded labels) and ``missingness``
(fewer EHR measurements).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from ..errors import ConfigError

#: mechanism -> (knob of the synthetic world, its value at each strength)
MECHANISMS: dict[str, tuple[str, dict[str, float]]] = {
    "prevalence": ("prevalence", {"moderate": 0.6, "strong": 1.2}),
    "sign_visibility": ("sign_strength", {"moderate": 0.35, "strong": 0.7}),
    "acquisition": ("ap_portable", {"moderate": 0.35, "strong": 0.7}),
    "label_noise": ("underdiagnosis", {"moderate": 0.2, "strong": 0.4}),
    "missingness": ("ehr_missing", {"moderate": 0.3, "strong": 0.6}),
}
#: The strengths a mechanism is drawn at.
STRENGTHS = ("moderate", "strong")
#: Groups a challenge may disadvantage (each has several hundred rows in a 4,000-row world).
GROUPS = ("sex=F", "sex=M", "race=Black", "race=White", "age_group=18-39", "age_group=40-59",
          "age_group=60-79")
#: Attribute columns of the predictions table.
ATTRIBUTES = ("sex", "race", "age_group")

#: Separation of the simulated classifier's log-odds at full quality.
SEPARATION = 1.2
#: Share of the score's quality that comes from the image (the rest from EHR measurements).
IMAGE_WEIGHT = 0.6
#: Quality of an AP portable film relative to a PA film.
AP_QUALITY = 0.4
#: Probability of an AP portable film with no knob.
BASE_AP = 0.15
#: EHR measurements per row, and the probability that one is missing with no knob.
N_MEASUREMENTS = 17
BASE_MISSING = 0.1


def mechanism_knobs(mechanism: str, group: str, strength: str | float) -> dict[str, dict[str, float]]:
    """The synthetic world's knobs that put ``mechanism`` on ``group``.

    ``strength`` is ``"moderate"``, ``"strong"`` or the knob's value itself.

    >>> mechanism_knobs("label_noise", "race=Black", "strong")
    {'race=Black': {'underdiagnosis': 0.4}}
    """
    if mechanism not in MECHANISMS:
        raise ConfigError(f"unknown mechanism {mechanism!r} (allowed: {', '.join(MECHANISMS)})")
    knob, values = MECHANISMS[mechanism]
    if isinstance(strength, str):
        if strength not in values:
            raise ConfigError(f"unknown strength {strength!r} (allowed: {', '.join(STRENGTHS)})")
        value = values[strength]
    else:
        value = float(strength)
    return {group: {knob: value}}


def simulate_world(n: int, *, seed: int, knobs: Mapping | str = "zero"
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic cohort under ``knobs`` and the simulated classifier's predictions on it.

    Returns ``(cohort, predictions)``: the cohort has ``sample_id, patient_id, age, sex,
    race, age_group, view`` (``AP``/``PA``) and ``ehr_measured`` (measurements taken, of
    :data:`N_MEASUREMENTS`); the predictions table has ``sample_id, patient_id``, the
    attributes, ``y_true`` (the recorded "any finding" label) and ``y_score``.  The true
    label stays inside (``true_any`` of the cohort is dropped): an audit sees what a
    hospital would.
    """
    from ..synthetic.knobs import resolve_knobs
    from ..synthetic.world import synthetic_cxr

    if not isinstance(n, int) or n < 50:
        raise ConfigError(f"n must be an integer >= 50, got {n!r}")
    k = resolve_knobs(knobs)
    t = synthetic_cxr(n=n, seed=seed, knobs=k).table
    ap, measured, score = _classify(t, k, seed)
    recorded_any = (1.0 - t["No Finding"].to_numpy()).astype(int)
    base = t[["sample_id", "patient_id", "age", "sex", "race", "age_group"]].reset_index(drop=True)
    out_cohort = base.assign(view=np.where(ap, "AP", "PA"), ehr_measured=measured)
    predictions = base.drop(columns=["age"]).assign(y_true=recorded_any,
                                                    y_score=np.round(score, 6))
    return out_cohort, predictions


def classifier_scores(table: pd.DataFrame, *, knobs: Mapping | str, seed: int) -> np.ndarray:
    """The simulated classifier's P(any finding) for the rows of a synthetic-cxr cohort
    table (see the module docstring), under ``knobs``."""
    from ..synthetic.knobs import resolve_knobs

    return _classify(table, resolve_knobs(knobs), seed)[2]


def _classify(t: pd.DataFrame, k, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ..synthetic._rng import stream

    n = len(t)
    per = k.per_row(t)
    true_any = (1.0 - t["true_No Finding"].to_numpy()).astype(int)
    p_ap = np.clip(BASE_AP + per["ap_portable"], 0, 1)
    p_missing = np.clip(BASE_MISSING + per["ehr_missing"], 0, 1)
    ap = np.zeros(n, bool)
    measured = np.zeros(n, int)
    e = np.zeros(n)
    for i, key in enumerate(t["synthetic_key"]):
        u = stream(seed, key, "classifier")
        ap[i] = u.uniform() < p_ap[i]
        measured[i] = int((u.uniform(size=N_MEASUREMENTS) >= p_missing[i]).sum())
        e[i] = u.standard_normal()
    image = (1.0 - per["sign_strength"]) * np.where(ap, AP_QUALITY, 1.0)
    quality = IMAGE_WEIGHT * image + (1 - IMAGE_WEIGHT) * measured / N_MEASUREMENTS
    z = SEPARATION * quality * (2 * true_any - 1) + e
    return ap, measured, 1.0 / (1.0 + np.exp(-z))


def group_member(table: pd.DataFrame, group: str) -> np.ndarray:
    """Rows of ``table`` in ``group`` (``"column=value"``)."""
    col, _, val = group.partition("=")
    if col not in table.columns:
        raise ConfigError(f"group {group!r}: no column {col!r}")
    return (table[col].astype(str) == val).to_numpy()


def signatures(cohort: pd.DataFrame, predictions: pd.DataFrame, group: str, *,
               threshold: float = 0.5) -> dict[str, float]:
    """What each mechanism moves, for ``group`` minus everyone else: recorded prevalence,
    AUROC, TPR, FPR (at ``threshold``), share of AP films and mean EHR measurements."""
    from sklearn.metrics import roc_auc_score

    merged = predictions.merge(cohort[["sample_id", "view", "ehr_measured"]], on="sample_id")
    m = group_member(merged, group)
    out: dict[str, float] = {}
    for name, part in (("in", merged[m]), ("out", merged[~m])):
        y = part["y_true"].to_numpy()
        pred = part["y_score"].to_numpy() >= threshold
        out[f"prevalence_{name}"] = float(y.mean())
        out[f"auroc_{name}"] = float(roc_auc_score(y, part["y_score"]))
        out[f"tpr_{name}"] = float(pred[y == 1].mean())
        out[f"fpr_{name}"] = float(pred[y == 0].mean())
        out[f"ap_share_{name}"] = float((part["view"] == "AP").mean())
        out[f"ehr_measured_{name}"] = float(part["ehr_measured"].mean())
    return {k: out[f"{k}_in"] - out[f"{k}_out"]
            for k in ("prevalence", "auroc", "tpr", "fpr", "ap_share", "ehr_measured")}


def signature_table(n: int, *, seed: int, group: str = "sex=F",
                    strength: str = "strong") -> pd.DataFrame:
    """One row per mechanism (and ``none``): each signature of :func:`signatures` with the
    mechanism alone on ``group`` (synthetic; the knob and its value in the columns)."""
    rows = []
    for mechanism in ("none", *MECHANISMS):
        knobs = {} if mechanism == "none" else mechanism_knobs(mechanism, group, strength)
        cohort, pred = simulate_world(n, seed=seed, knobs=knobs or "zero")
        knob, value = next(iter(knobs[group].items())) if knobs else ("-", 0.0)
        rows.append({"mechanism": mechanism, "group": group, "knob": knob, "value": value,
                     **signatures(cohort, pred, group)})
    return pd.DataFrame(rows)
