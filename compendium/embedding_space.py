"""The structure of an embedding space: k-means with cosine distance, silhouette, UMAP.

Paper D (section 2.4): "k-means clustering (cosine distance, n_init = 50) implemented in
scikit-learn.  The optimal cluster number k maximised the mean Silhouette coefficient"

.. math:: S = \\frac{1}{N} \\sum_i \\frac{b_i - a_i}{\\max(a_i, b_i)}

scikit-learn's :class:`~sklearn.cluster.KMeans` only knows Euclidean distance.  The standard
reading of "k-means with cosine distance" is *spherical* k-means: L2-normalise every
embedding, then run Euclidean k-means, since for unit vectors
``||x - y||^2 = 2 (1 - cos(x, y))``; this module does that (centroids are not re-normalised
between iterations, the usual approximation).  The silhouette is computed on the same
clustering with the cosine distance (``silhouette_score(metric="cosine")``), and UMAP
(McInnes et al.) uses the cosine metric too.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .errors import ConfigError, InputError


def l2_normalise(X: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero).

    >>> l2_normalise(np.array([[3.0, 4.0]])).tolist()
    [[0.6, 0.8]]
    """
    X = np.asarray(X, dtype=np.float64)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def _check(X: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) < 3:
        raise InputError(f"need an (n >= 3, d) embedding matrix, got shape {X.shape}")
    bad = [k for k in ks if int(k) < 2 or int(k) >= len(X)]
    if not len(ks) or bad:
        raise ConfigError(f"cluster numbers must lie in [2, {len(X) - 1}] (got {list(ks)})")
    return X


def cosine_kmeans(X: np.ndarray, k: int, *, n_init: int = 50, seed: int = 0) -> np.ndarray:
    """Cluster labels of spherical k-means (cosine distance) with ``n_init`` restarts."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    Xn = l2_normalise(_check(X, [k]))
    km = KMeans(n_clusters=int(k), n_init=int(n_init), random_state=int(seed))
    with threadpool_limits(limits=1):
        return km.fit_predict(Xn)


def silhouette_curve(X: np.ndarray, ks: Sequence[int] = range(2, 11), *, n_init: int = 50,
                     seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Mean silhouette (cosine) of the cosine k-means clustering for every ``k``.

    Returns a table with ``k``, ``silhouette``, ``inertia`` (on the normalised embeddings)
    and ``best`` (True on the k with the highest silhouette; the smallest such k on ties).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> centres = np.eye(3) * 10
    >>> X = np.vstack([c + rng.normal(size=(20, 3)) for c in centres])
    >>> t = silhouette_curve(X, [2, 3, 4], n_init=5)
    >>> int(t.loc[t.best, "k"].iloc[0])
    3
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from tqdm.auto import tqdm

    from threadpoolctl import threadpool_limits

    ks = [int(k) for k in ks]
    X = _check(X, ks)
    Xn = l2_normalise(X)
    rows = []
    # one thread: thousands of short OpenMP regions are faster serial, and do not stall when
    # another process holds a core (a shared laptop or CI runner)
    with threadpool_limits(limits=1):
        for k in tqdm(ks, desc="k-means", disable=not progress, leave=False):
            km = KMeans(n_clusters=k, n_init=int(n_init), random_state=int(seed)).fit(Xn)
            labels = km.labels_
            sil = (float(silhouette_score(Xn, labels, metric="cosine"))
                   if len(np.unique(labels)) > 1 else float("nan"))
            rows.append({"k": k, "silhouette": sil, "inertia": float(km.inertia_)})
    table = pd.DataFrame(rows)
    best = table["silhouette"].idxmax() if table["silhouette"].notna().any() else None
    table["best"] = table.index == best
    return table


def umap_2d(X: np.ndarray, *, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1,
            metric: str = "cosine") -> np.ndarray:
    """Two-dimensional UMAP projection (seeded, hence single-threaded and reproducible)."""
    import warnings

    import umap

    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or len(X) < 4:
        raise InputError(f"UMAP needs an (n >= 4, d) matrix, got shape {X.shape}")
    reducer = umap.UMAP(n_components=2, n_neighbors=min(int(n_neighbors), len(X) - 1),
                        min_dist=float(min_dist), metric=metric, random_state=int(seed),
                        n_jobs=1)
    with warnings.catch_warnings():
        # only the notice that a seed makes UMAP single-threaded, which is what we ask for;
        # every other warning (e.g. a disconnected neighbour graph) reaches the user
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        return np.asarray(reducer.fit_transform(X), dtype=np.float64)


__all__ = ["cosine_kmeans", "l2_normalise", "silhouette_curve", "umap_2d"]
