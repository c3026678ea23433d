"""MIMIC-IV ICU stays as Paper E's 76-feature time series, linked to MIMIC-CXR.

Paper E (MedCAM) discretises each stay's clinical time series exactly as the MIMIC-III
benchmark (Harutyunyan et al., 2019) and MedFuse (Hayat et al., 2022) do on MIMIC-IV:
(1) resample to 2-hour bins, (2) impute a missing bin with the most recent measurement,
or the variable's normal value when there is none yet, (3) one-hot encode categorical
variables, then standardise the continuous ones.

The 76 columns
--------------
17 clinical variables (:data:`CHANNELS`).  Five are categorical and one-hot encoded over
the benchmark's observed spellings (:data:`CATEGORICAL_VALUES`):

====================================  ======
capillary refill rate                 2
GCS eye opening                       8
GCS motor response                    12
GCS total                             13
GCS verbal response                   12
====================================  ======

= 47 one-hot columns, plus 12 continuous values (diastolic, systolic and mean blood
pressure, FiO2, glucose, heart rate, height, oxygen saturation, respiratory rate,
temperature, weight, pH) = **59 value columns**, plus one **mask column per variable (17)**
that is 1 where the bin held a real measurement and 0 where it was imputed:
59 + 17 = **76**.  :func:`feature_names` lists them in order (values in channel order,
then the masks).  Within a bin the last measurement wins.

Layout under ``--root`` (the benchmark's per-subject extraction, run on MIMIC-IV)::

    <subject_id>/stays.csv                 stay_id, intime, outtime, gender, age, race, mortality...
    <subject_id>/episode<k>_timeseries.csv Hours + the 17 variables (k-th stay of stays.csv)
    (or train/<subject_id>/..., test/<subject_id>/... for the benchmark's official split)

Linking to the CXR (``mimic_cxr=PATH``: a MIMIC-CXR-JPG folder): each stay gets the last
frontal image of the same subject taken between ``intime`` and ``outtime`` (MedFuse's
pairing); ``require_cxr`` keeps only linked stays.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigError, DataNotFoundError, InputError
from ._common import coarse_race, finish, normalise_sex, read_table, require_columns, require_root
from .base import Cohort, register_cohort
from .splits import add_age_group, patient_split

CHANNELS = ("Capillary refill rate", "Diastolic blood pressure", "Fraction inspired oxygen",
            "Glascow coma scale eye opening", "Glascow coma scale motor response",
            "Glascow coma scale total", "Glascow coma scale verbal response", "Glucose",
            "Heart Rate", "Height", "Mean blood pressure", "Oxygen saturation", "Respiratory rate",
            "Systolic blood pressure", "Temperature", "Weight", "pH")
CATEGORICAL_VALUES: dict[str, tuple[str, ...]] = {
    "Capillary refill rate": ("0.0", "1.0"),
    "Glascow coma scale eye opening": ("To Pain", "3 To speech", "1 No Response", "4 Spontaneously",
                                       "None", "To Speech", "Spontaneously", "2 To pain"),
    "Glascow coma scale motor response": ("1 No Response", "3 Abnorm flexion", "Abnormal extension",
                                          "No response", "4 Flex-withdraws", "Localizes Pain",
                                          "Flex-withdraws", "Obeys Commands", "Abnormal Flexion",
                                          "6 Obeys Commands", "5 Localizes Pain", "2 Abnorm extensn"),
    "Glascow coma scale total": ("11", "10", "13", "12", "15", "14", "3", "5", "4", "7", "6", "9", "8"),
    "Glascow coma scale verbal response": ("1 No Response", "No Response", "Confused",
                                           "Inappropriate Words", "Oriented", "No Response-ETT",
                                           "5 Oriented", "Incomprehensible sounds", "1.0 ET/Trach",
                                           "4 Confused", "2 Incomp sounds", "3 Inapprop words"),
}
NORMAL_VALUES: dict[str, str | float] = {
    "Capillary refill rate": "0.0", "Diastolic blood pressure": 59.0, "Fraction inspired oxygen": 0.21,
    "Glascow coma scale eye opening": "4 Spontaneously",
    "Glascow coma scale motor response": "6 Obeys Commands", "Glascow coma scale total": "15",
    "Glascow coma scale verbal response": "5 Oriented", "Glucose": 128.0, "Heart Rate": 86.0,
    "Height": 170.0, "Mean blood pressure": 77.0, "Oxygen saturation": 98.0,
    "Respiratory rate": 19.0, "Systolic blood pressure": 118.0, "Temperature": 36.6,
    "Weight": 81.0, "pH": 7.4,
}
TIMESTEP_HOURS = 2.0
EHR_LABELS = ("in_hospital_mortality",)


def feature_names() -> list[str]:
    """The 76 column names: 59 values (``channel`` or ``channel->category``), 17 ``mask->channel``."""
    values: list[str] = []
    for c in CHANNELS:
        if c in CATEGORICAL_VALUES:
            values += [f"{c}->{v}" for v in CATEGORICAL_VALUES[c]]
        else:
            values.append(c)
    return values + [f"mask->{c}" for c in CHANNELS]


def continuous_columns() -> list[int]:
    """Positions of the 12 continuous value columns (the ones standardised)."""
    return [i for i, n in enumerate(feature_names()) if "->" not in n]


def _category(channel: str, value) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    s = str(value).strip()
    if channel == "Glascow coma scale total" or channel == "Capillary refill rate":
        try:
            f = float(s)
            s = f"{f:.1f}" if channel == "Capillary refill rate" else str(int(f))
        except ValueError:
            pass
    return s


def discretize(timeseries: pd.DataFrame, *, timestep: float = TIMESTEP_HOURS,
               max_hours: float | None = None, impute: str = "previous") -> np.ndarray:
    """One stay's time series -> float32 array ``(n_bins, 76)`` (unstandardised).

    Parameters
    ----------
    timeseries : DataFrame
        ``Hours`` (since ICU admission) and any of the 17 :data:`CHANNELS` (strings or numbers).
    timestep : float
        Bin width in hours (2 in Paper E).
    max_hours : float, optional
        Length to cover (default: the last measurement); bins are ``[k*timestep, (k+1)*timestep)``.
    impute : {"previous", "normal"}
        Fill an empty bin with the last observed value (else the normal value), or always
        with the normal value.
    """
    if impute not in ("previous", "normal"):
        raise ConfigError(f"impute must be 'previous' or 'normal', got {impute!r}")
    if "Hours" not in timeseries:
        raise InputError("EHR time series lacks the 'Hours' column")
    ts = timeseries.copy()
    ts["Hours"] = pd.to_numeric(ts["Hours"], errors="coerce")
    ts = ts[ts["Hours"].notna() & (ts["Hours"] >= 0)].sort_values("Hours", kind="stable")
    horizon = float(max_hours) if max_hours is not None else (float(ts["Hours"].max()) if len(ts) else 0.0)
    n_bins = max(1, int(np.floor(horizon / timestep + 1e-6)) + (0 if max_hours is not None else 1))
    names = feature_names()
    col = {n: i for i, n in enumerate(names)}
    out = np.zeros((n_bins, len(names)), dtype=np.float32)
    observed: dict[str, list] = {c: [None] * n_bins for c in CHANNELS}
    bins = np.minimum((ts["Hours"].to_numpy() / timestep + 1e-6).astype(int), n_bins - 1)
    for c in CHANNELS:
        if c not in ts:
            continue
        for b, v in zip(bins, ts[c].to_numpy()):
            if c in CATEGORICAL_VALUES:
                cat = _category(c, v)
                if cat is not None:
                    if cat not in CATEGORICAL_VALUES[c]:
                        raise InputError(f"EHR: {c!r} has unknown category {cat!r}")
                    observed[c][b] = cat
            else:
                x = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
                if pd.notna(x):
                    observed[c][b] = float(x)
    for c in CHANNELS:
        last = None
        for b in range(n_bins):
            v = observed[c][b]
            if v is not None:
                out[b, col[f"mask->{c}"]] = 1.0
                last = v
            elif impute == "previous" and last is not None:
                v = last
            else:
                v = NORMAL_VALUES[c]
            if c in CATEGORICAL_VALUES:
                out[b, col[f"{c}->{v}"]] = 1.0
            else:
                out[b, col[c]] = float(v)
    return out


class StayNormalizer:
    """Standardise the 12 continuous columns with means/stds of training stays
    (scikit-learn style: ``fit`` returns self, learned state ends in ``_``)."""

    def fit(self, arrays) -> "StayNormalizer":
        cont = continuous_columns()
        stacked = np.concatenate([np.asarray(a)[:, cont] for a in arrays], axis=0)
        self.mean_ = stacked.mean(axis=0)
        std = stacked.std(axis=0)
        self.std_ = np.where(std > 1e-7, std, 1.0)
        return self

    def transform(self, array: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise ConfigError("StayNormalizer is not fitted; call fit() on training stays first")
        out = np.array(array, dtype=np.float32, copy=True)
        cont = continuous_columns()
        out[:, cont] = (out[:, cont] - self.mean_) / self.std_
        return out


def load_stay(cohort: Cohort, i: int, *, max_hours: float | None = None) -> np.ndarray:
    """The ``(n_bins, 76)`` matrix of row ``i`` of an ``mimic-iv-ehr`` cohort."""
    path = Path(cohort.meta["ehr_root"]) / str(cohort.table["timeseries_path"].iloc[i])
    if not path.is_file():
        raise DataNotFoundError(f"mimic-iv-ehr: time series {path} not found")
    return discretize(read_table(path, "mimic-iv-ehr"), max_hours=max_hours)


def _subject_dirs(root: Path) -> list[tuple[Path, str]]:
    if (root / "train").is_dir() or (root / "test").is_dir():
        found = [(d, split) for split in ("train", "test") if (root / split).is_dir()
                 for d in sorted((root / split).iterdir()) if d.is_dir() and d.name.isdigit()]
    else:
        found = [(d, "") for d in sorted(root.iterdir()) if d.is_dir() and d.name.isdigit()]
    if not found:
        raise DataNotFoundError(f"mimic-iv-ehr: no <subject_id>/stays.csv folders under {root}")
    return found


def _link_cxr(table: pd.DataFrame, mimic_cxr: str | Path) -> pd.DataFrame:
    from .mimic_cxr import _table, image_path

    base = Path(mimic_cxr)
    if not base.is_dir():
        raise DataNotFoundError(f"mimic-iv-ehr: MIMIC-CXR folder {str(base)!r} not found")
    meta = _table(base, "mimic-cxr-2.0.0-metadata")
    require_columns(meta, ("dicom_id", "subject_id", "study_id", "ViewPosition", "StudyDate", "StudyTime"),
                    "mimic-iv-ehr", "MIMIC-CXR metadata")
    meta = meta[meta["ViewPosition"].isin(["PA", "AP"])].copy()
    t = pd.to_numeric(meta["StudyTime"], errors="coerce").fillna(0).astype(int).astype(str).str.zfill(6)
    meta["cxr_time"] = pd.to_datetime(meta["StudyDate"].astype(str) + t, format="%Y%m%d%H%M%S", errors="coerce")
    meta["patient_id"] = meta["subject_id"].astype(int).astype(str)
    pairs = table[["sample_id", "patient_id", "intime", "outtime"]].merge(meta, on="patient_id", how="inner")
    pairs = pairs[(pairs["cxr_time"] >= pairs["intime"]) & (pairs["cxr_time"] <= pairs["outtime"])]
    last = pairs.sort_values(["sample_id", "cxr_time", "dicom_id"]).drop_duplicates("sample_id", keep="last")
    last = last.assign(image_path=[image_path(a, b, c) for a, b, c in
                                   zip(last["subject_id"], last["study_id"], last["dicom_id"])])
    return table.merge(last[["sample_id", "dicom_id", "study_id", "cxr_time", "image_path"]],
                       on="sample_id", how="left")


@register_cohort("mimic-iv-ehr", description="MIMIC-IV ICU stays: 76-feature 2-hour time series (Paper E), CXR-linked",
                 source="real", needs_root=True)
def build_mimic_iv_ehr(*, root: str | Path | None = None, seed: int = 0,
                       mimic_cxr: str | Path | None = None, require_cxr: bool = False,
                       fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
                       age_scheme: str = "paper_c") -> Cohort:
    """Build the stay cohort (one row per ICU stay; ``timeseries_path`` relative to root).

    The split is the benchmark's ``train/``/``test/`` folders when present (validation
    carved patient-wise from train), else a seeded patient-wise split with ``fractions``.
    Feature matrices come from :func:`load_stay` (then :class:`StayNormalizer`).
    """
    rootp = require_root(root, "mimic-iv-ehr", hint="; MIMIC-IV needs PhysioNet credentials")
    rows = []
    for d, split in _subject_dirs(rootp):
        stays_path = d / "stays.csv"
        if not stays_path.is_file():
            continue
        stays = read_table(stays_path, "mimic-iv-ehr")
        stays.columns = [c.lower() for c in stays.columns]
        require_columns(stays, ("stay_id", "intime", "outtime"), "mimic-iv-ehr", str(stays_path.relative_to(rootp)))
        stays = stays.sort_values("intime", kind="stable").reset_index(drop=True)
        for k, s in stays.iterrows():
            ts = d / f"episode{k + 1}_timeseries.csv"
            if not ts.is_file():
                continue
            rows.append({"sample_id": str(s["stay_id"]), "patient_id": d.name, "split": split,
                         "intime": s["intime"], "outtime": s["outtime"],
                         "age": s.get("age", s.get("anchor_age", np.nan)), "sex": s.get("gender", np.nan),
                         "race_detail": s.get("race", s.get("ethnicity", np.nan)),
                         "in_hospital_mortality": s.get("mortality_inhospital", s.get("mortality", np.nan)),
                         "timeseries_path": ts.relative_to(rootp).as_posix()})
    if not rows:
        raise DataNotFoundError(f"mimic-iv-ehr: no stays with an episode<k>_timeseries.csv under {rootp}")
    table = pd.DataFrame(rows)
    table["intime"] = pd.to_datetime(table["intime"], errors="coerce")
    table["outtime"] = pd.to_datetime(table["outtime"], errors="coerce")
    table["sex"] = normalise_sex(table["sex"]).to_numpy()
    table["race"] = coarse_race(table["race_detail"]).to_numpy()
    notes = [f"{len(table)} stays of {table['patient_id'].nunique()} subjects; 76 features "
             f"(59 values + 17 masks), {TIMESTEP_HOURS:g}-hour bins"]
    if (table["split"] != "").any():
        train = table[table["split"] == "train"]
        cut = patient_split(train, (0.9, 0.1, 0.0), seed=seed)
        table.loc[cut.index, "split"] = cut["split"]
        notes.append("split: benchmark train/test folders, val carved patient-wise from train")
    else:
        table = patient_split(table, fractions, seed=seed)
        notes.append(f"split: seeded patient-wise {fractions}")
    pixel_column = None
    if mimic_cxr is not None:
        table = _link_cxr(table, mimic_cxr)
        linked = int(table["image_path"].notna().sum())
        notes.append(f"linked to MIMIC-CXR: {linked} of {len(table)} stays have a frontal CXR during the stay")
        if require_cxr:
            table = table[table["image_path"].notna()].reset_index(drop=True)
            pixel_column = "image_path"
    table = add_age_group(table, age_scheme)
    return Cohort(name="mimic-iv-ehr", table=finish(table, EHR_LABELS), labels=EHR_LABELS, source="real",
                  pixel_column=pixel_column, root=str(mimic_cxr) if pixel_column else None,
                  task="binary", report="\n".join(notes), meta={"ehr_root": str(rootp)})
