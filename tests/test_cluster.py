"""Cosine k-means, the silhouette choice of k, and UMAP on data with known clusters."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score, silhouette_score

from compendium.embedding_space import cosine_kmeans, l2_normalise, silhouette_curve, umap_2d
from compendium.errors import ConfigError


def directional_blobs(k: int, n: int = 40, d: int = 16, seed: int = 0):
    """k clusters that differ in direction (cosine), with random lengths per point."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(d, d)))[0][:k] * 5
    y = np.repeat(np.arange(k), n)
    X = centres[y] + rng.normal(scale=0.8, size=(k * n, d))
    return X * rng.uniform(0.2, 5.0, size=(k * n, 1)), y


@pytest.mark.parametrize("k", [3, 5])
def test_silhouette_chooses_the_true_number_of_direction_clusters(k):
    X, y = directional_blobs(k)
    table = silhouette_curve(X, range(2, 8), n_init=10)
    assert table["k"].tolist() == list(range(2, 8))
    assert int(table.loc[table["best"], "k"].iloc[0]) == k
    assert table["best"].sum() == 1
    labels = cosine_kmeans(X, k, n_init=10)
    assert adjusted_rand_score(y, labels) > 0.95


def test_silhouette_is_the_cosine_one_of_the_clustering():
    X, _ = directional_blobs(3)
    table = silhouette_curve(X, [3], n_init=10, seed=1)
    labels = cosine_kmeans(X, 3, n_init=10, seed=1)
    assert table["silhouette"].iloc[0] == pytest.approx(silhouette_score(X, labels, metric="cosine"))


def test_lengths_do_not_matter_but_directions_do():
    X, _ = directional_blobs(3)
    a = silhouette_curve(X, range(2, 6), n_init=10)
    b = silhouette_curve(X * 100.0, range(2, 6), n_init=10)
    assert np.allclose(a["silhouette"], b["silhouette"])
    assert np.allclose(np.linalg.norm(l2_normalise(X), axis=1), 1.0)


def test_cosine_kmeans_finds_directions_where_euclidean_kmeans_splits_by_length():
    from sklearn.cluster import KMeans

    X, y = directional_blobs(3)          # lengths vary 25-fold within every cluster
    euclid = KMeans(3, n_init=10, random_state=0).fit_predict(X)
    cosine = cosine_kmeans(X, 3, n_init=10)
    assert adjusted_rand_score(y, cosine) > 0.95
    assert adjusted_rand_score(y, euclid) < 0.6


def test_bad_k_is_a_config_error():
    X, _ = directional_blobs(2, n=5)
    with pytest.raises(ConfigError, match="cluster numbers"):
        silhouette_curve(X, [1, 2])
    with pytest.raises(ConfigError, match="cluster numbers"):
        silhouette_curve(X, [len(X)])


def test_umap_is_seeded_and_keeps_clusters_apart():
    X, y = directional_blobs(3, n=30)
    a, b = umap_2d(X, seed=0, n_neighbors=10), umap_2d(X, seed=0, n_neighbors=10)
    assert a.shape == (90, 2) and np.allclose(a, b)
    # each point's nearest neighbour in the projection is from its own cluster
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (y[d.argmin(1)] == y).mean() > 0.95
