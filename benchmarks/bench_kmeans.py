"""Why ``compendium.embedding_space`` runs k-means on one thread.

ratio = (seconds of Paper D's silhouette curve with scikit-learn's default OpenMP threads) /
(seconds with the threads limited to one, as ``silhouette_curve`` does).  Above 1.0 the
single thread is faster.  Paper D's k-means is thousands of short runs (k = 2..10, 50
restarts each) on a few thousand embeddings; with several threads each run's parallel regions
cost more than they save, and on a shared machine (another process holding a core) the
threads wait on each other.  Run it as is, and again while another CPU job runs.

    python benchmarks/bench_kmeans.py --n 1200 --dim 64 --n-init 50
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from compendium.embedding_space import l2_normalise, silhouette_curve


def default_threads(X: np.ndarray, ks, n_init: int) -> None:
    Xn = l2_normalise(X)
    for k in ks:
        labels = KMeans(n_clusters=k, n_init=n_init, random_state=0).fit_predict(Xn)
        silhouette_score(Xn, labels, metric="cosine")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1200)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--n-init", type=int, default=50)
    ap.add_argument("--kmax", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n, args.dim)) + 3 * rng.normal(size=(8, args.dim))[rng.integers(0, 8, args.n)]
    ks = list(range(2, args.kmax + 1))
    with threadpool_limits(limits=None):
        t = time.perf_counter()
        default_threads(X, ks, args.n_init)
        multi = time.perf_counter() - t
    t = time.perf_counter()
    silhouette_curve(X, ks, n_init=args.n_init)
    single = time.perf_counter() - t
    print(json.dumps({"n": args.n, "dim": args.dim, "n_init": args.n_init, "ks": len(ks),
                      "default_threads_s": round(multi, 2), "one_thread_s": round(single, 2),
                      "ratio": round(multi / single, 2)}))


if __name__ == "__main__":
    main()
