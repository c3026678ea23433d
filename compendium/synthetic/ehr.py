"""Synthetic EHR time series in the 76-feature layout of the MIMIC benchmark discretiser.

Paper E feeds an LSTM with MIMIC-IV vitals, labs and assessment scores resampled to 2-hour
bins, carried forward (normal values before the first measurement), categorical variables
one-hot encoded and continuous ones standardised: 76 columns.  That is the layout of the
MIMIC benchmark discretiser with masks: 17 variables -> 12 continuous values + 47 one-hot
columns (Capillary refill 2, GCS eye 8, motor 12, total 13, verbal 12) = 59, followed by one
mask column per variable (1 = measured in that bin, 0 = carried forward / normal value).

Values depend on the sample's true findings (infection raises temperature, heart rate and
glucose; heart failure lowers oxygen saturation and raises respiratory rate; pneumothorax
and PE raise heart rate and drop saturation) and never on demographics, except through the
``ehr_missing`` knob (fewer measurements -> more carried-forward values).
"""

from __future__ import annotations

import numpy as np

from ._rng import stream

CHANNELS = (
    "Capillary refill rate", "Diastolic blood pressure", "Fraction inspired oxygen",
    "Glascow coma scale eye opening", "Glascow coma scale motor response",
    "Glascow coma scale total", "Glascow coma scale verbal response", "Glucose", "Heart Rate",
    "Height", "Mean blood pressure", "Oxygen saturation", "Respiratory rate",
    "Systolic blood pressure", "Temperature", "Weight", "pH",
)
CATEGORICAL = {
    "Capillary refill rate": ["0.0", "1.0"],
    "Glascow coma scale eye opening": ["To Pain", "3 To speech", "1 No Response", "4 Spontaneously",
                                       "None", "To Speech", "Spontaneously", "2 To pain"],
    "Glascow coma scale motor response": ["1 No Response", "3 Abnorm flexion", "Abnormal extension",
                                          "No response", "4 Flex-withdraws", "Localizes Pain",
                                          "Flex-withdraws", "Obeys Commands", "Abnormal Flexion",
                                          "6 Obeys Commands", "5 Localizes Pain", "2 Abnorm extensn"],
    "Glascow coma scale total": ["11", "10", "13", "12", "15", "14", "3", "5", "4", "7", "6", "9", "8"],
    "Glascow coma scale verbal response": ["1 No Response", "No Response", "Confused",
                                           "Inappropriate Words", "Oriented", "No Response-ETT",
                                           "5 Oriented", "Incomprehensible sounds", "1.0 ET/Trach",
                                           "4 Confused", "2 Incomp sounds", "3 Inapprop words"],
}
#: normal value, standardisation sd, and probability of a measurement per 2-h bin
CONTINUOUS = {
    "Diastolic blood pressure": (59.0, 14.0, 0.85), "Fraction inspired oxygen": (0.21, 0.15, 0.2),
    "Glucose": (128.0, 45.0, 0.25), "Heart Rate": (86.0, 18.0, 0.9), "Height": (170.0, 10.0, 0.03),
    "Mean blood pressure": (77.0, 14.0, 0.85), "Oxygen saturation": (98.0, 3.0, 0.9),
    "Respiratory rate": (19.0, 5.0, 0.9), "Systolic blood pressure": (118.0, 20.0, 0.85),
    "Temperature": (36.6, 0.7, 0.4), "Weight": (81.0, 20.0, 0.06), "pH": (7.4, 0.06, 0.12),
}
_CAT_OBS = {"Capillary refill rate": 0.1}
_GCS_OBS = 0.4

FEATURES: tuple[str, ...] = tuple(
    name for ch in CHANNELS
    for name in ([f"{ch}->{v}" for v in CATEGORICAL[ch]] if ch in CATEGORICAL else [ch])
) + tuple(f"mask->{ch}" for ch in CHANNELS)
assert len(FEATURES) == 76
#: column slice of the 17 masks
MASK_SLICE = slice(59, 76)
BIN_HOURS = 2


def _findings_of(truth: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    g = lambda k: np.nan_to_num(truth.get(k, np.zeros(n)))  # noqa: E731
    return {
        "infection": np.maximum.reduce([g("Consolidation"), g("Pneumonia"), 0.5 * g("Opacity")]),
        "hf": np.maximum.reduce([g("Edema"), 0.6 * g("Cardiomegaly"), 0.4 * g("Effusion")]),
        "ptx": g("Pneumothorax"), "pe": g("PE"), "eff": g("Effusion"), "atel": g("Atelectasis"),
        "frail": g("frailty"),
    }


def simulate(keys: list[str], truth: dict[str, np.ndarray], missing: np.ndarray, seed: int,
             hours: int = 48) -> np.ndarray:
    """EHR arrays (n, hours/2, 76) for samples with the given truth (see :func:`render_ehr`)."""
    n = len(keys)
    T = max(1, int(hours) // BIN_HOURS)
    d = _findings_of(truth, n)
    sev = np.clip(d["infection"] + d["hf"] + d["ptx"] + d["pe"] + 0.5 * d["frail"], 0, 2)
    shift = {
        "Heart Rate": 14 * d["infection"] + 6 * d["hf"] + 12 * d["ptx"] + 16 * d["pe"],
        "Respiratory rate": 5 * d["infection"] + 5 * d["hf"] + 5 * d["ptx"] + 6 * d["pe"] + 2 * d["eff"],
        "Oxygen saturation": -3 * d["infection"] - 4 * d["hf"] - 5 * d["ptx"] - 4 * d["pe"]
        - 2 * d["eff"] - 1.5 * d["atel"],
        "Temperature": 1.3 * d["infection"], "Glucose": 25 * d["infection"] + 10 * d["frail"],
        "Systolic blood pressure": 10 * d["hf"] - 12 * d["pe"],
        "Diastolic blood pressure": 5 * d["hf"] - 6 * d["pe"],
        "Mean blood pressure": 7 * d["hf"] - 8 * d["pe"], "Weight": 6 * d["hf"],
        "pH": -0.04 * sev, "Fraction inspired oxygen": 0.12 * (d["hf"] + d["infection"] + d["pe"] > 0.6),
        "Height": np.zeros(n),
    }
    out = np.zeros((n, T, 76), dtype=np.float32)
    ramp = 0.4 + 0.6 * np.arange(T) / max(T - 1, 1)
    for i, key in enumerate(keys):
        rng = stream(seed, key, "ehr")
        keep = 1.0 - missing[i]
        col = 0
        for c, ch in enumerate(CHANNELS):
            if ch in CATEGORICAL:
                vals = CATEGORICAL[ch]
                p_obs = _CAT_OBS.get(ch, _GCS_OBS)
                obs = rng.uniform(size=T) < p_obs * keep
                if ch == "Capillary refill rate":
                    level = (rng.uniform(size=T) < 0.05 + 0.2 * sev[i] * ramp).astype(int)
                    idx = level                                   # "0.0" / "1.0"
                    normal = 0
                else:
                    drop = np.clip(np.round(rng.uniform(size=T) * 2.2 * sev[i] * ramp - 0.6), 0, 3)
                    idx, normal = _gcs_index(ch, drop.astype(int))
                filled = _carry(obs, idx, normal)
                out[i, np.arange(T), col + filled] = 1.0
                col += len(vals)
            else:
                mu, sd, p_obs = CONTINUOUS[ch]
                obs = rng.uniform(size=T) < p_obs * keep
                noise = np.cumsum(rng.standard_normal(T)) * 0.15 * sd / np.sqrt(np.arange(1, T + 1))
                x = mu + shift[ch][i] * ramp + noise + rng.standard_normal(T) * 0.25 * sd
                filled = _carry(obs, x, mu)
                out[i, :, col] = (filled - mu) / sd
                col += 1
            out[i, :, 59 + c] = obs
    return out


_GCS_LEVELS = {  # index into CATEGORICAL values for 0, 1, 2, 3 levels below normal
    "Glascow coma scale eye opening": [3, 1, 7, 2],
    "Glascow coma scale motor response": [9, 10, 4, 1],
    "Glascow coma scale verbal response": [6, 9, 11, 10],
    "Glascow coma scale total": [4, 5, 3, 1],
}


def _gcs_index(ch: str, drop: np.ndarray) -> tuple[np.ndarray, int]:
    levels = np.asarray(_GCS_LEVELS[ch])
    return levels[drop], int(levels[0])


def _carry(obs: np.ndarray, x: np.ndarray, normal):
    """Forward fill measured values; the normal value before the first measurement."""
    idx = np.where(obs, np.arange(len(obs)), -1)
    np.maximum.accumulate(idx, out=idx)
    vals = np.asarray(x)
    return np.where(idx >= 0, vals[np.maximum(idx, 0)], normal)
