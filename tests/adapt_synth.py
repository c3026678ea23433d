"""Synthetic embeddings and images with an injected label signal and attribute signal."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synthetic_rows(n: int, classes, *, seed: int = 0, attr_label_corr: float = 0.0):
    """Cohort-like rows: ids, sex, age_group, one-hot labels (multiclass) and splits."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, len(classes), size=n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    if attr_label_corr:
        flip = rng.random(n) < attr_label_corr
        sex = np.where(flip, np.where(y % 2 == 0, "F", "M"), sex)
    rows = pd.DataFrame({
        "sample_id": [f"s{i}" for i in range(n)],
        "patient_id": [f"p{i}" for i in range(n)],
        "split": np.array(["train", "val", "test"])[rng.choice(3, size=n, p=[0.6, 0.2, 0.2])],
        "age": rng.uniform(20, 90, size=n),
        "sex": sex,
        "race": rng.choice(["A", "B"], size=n),
    })
    rows["age_group"] = np.where(rows["age"] < 60, "<60", ">=60")
    for j, c in enumerate(classes):
        rows[c] = (y == j).astype(float)
    return rows, y


def synthetic_embeddings(y, sex, *, dim: int = 16, label_signal: float = 2.0,
                         attr_signal: float = 2.0, seed: int = 0) -> np.ndarray:
    """Gaussian embeddings: class means along dims 0..C-1, sex shift along the last dim."""
    rng = np.random.default_rng(seed)
    n = len(y)
    X = rng.normal(size=(n, dim))
    X[np.arange(n), np.asarray(y)] += label_signal
    X[:, -1] += attr_signal * (np.asarray(sex) == "F")
    return X


def split(X, rows):
    return {s: (X[(rows["split"] == s).to_numpy()],
                rows[rows["split"] == s].reset_index(drop=True)) for s in ("train", "val", "test")}


def synthetic_images(y, sex, *, size: int = 32, seed: int = 0, noise: float = 0.3):
    """(N, 3, size, size) float images: class c brightens band c, sex brightens a corner."""
    rng = np.random.default_rng(seed)
    n = len(y)
    x = rng.normal(scale=noise, size=(n, 3, size, size)).astype(np.float32)
    k = int(np.max(y)) + 1
    h = size // k
    for i, c in enumerate(np.asarray(y)):
        x[i, :, c * h:(c + 1) * h, :] += 1.0
    x[np.asarray(sex) == "F", :, :4, :4] += 1.0
    return x
