"""Benchmark: the vectorised audit against a naive loop of fairlearn MetricFrame.

100,000 predictions, 6 classes, 2 attributes (sex x 2, age group x 4), 1,000 bootstrap
resamples of every per-group metric and gap.  The naive loop computes the same per-group
metrics (accuracy, per-class F1 / TPR / FPR / AUROC / AUPRC, ECE) with
``fairlearn.metrics.MetricFrame`` on each resample (``df.iloc[indices]``) and their gaps with
``MetricFrame.difference()``; it is timed on a few resamples and scaled to 1,000 (printed).
A second, tougher baseline computes the same metrics with plain scikit-learn calls on
group masks (no MetricFrame).  Wall and CPU times are both printed: the machine is shared.

Run from the repository root: ``PYTHONPATH=. python benchmarks/bench_audit.py [--n 100000] [--naive-resamples 3]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def make_predictions(n: int, n_classes: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    classes = [f"c{k}" for k in range(n_classes)]
    y = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    df = pd.DataFrame({"y_true": np.array(classes)[y]})
    for k, c in enumerate(classes):
        df[f"score_{c}"] = p[:, k]
    df["sex"] = rng.choice(["F", "M"], n)
    df["age_group"] = rng.choice(["18-40", "40-60", "60-80", "80+"], n)
    return df


def naive_resample(df: pd.DataFrame, classes: list[str], attributes: list[str]) -> None:
    """Every per-group metric and gap of one resample with fairlearn MetricFrame."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    scores = df[[f"score_{c}" for c in classes]].to_numpy()
    pred = np.array(classes)[scores.argmax(1)]
    y = df.y_true.to_numpy()
    conf = scores.max(1)
    correct = (pred == y).astype(float)
    bins = np.minimum((conf * 10).astype(int), 9)

    def ece(y_true, y_pred, bins):  # y_true: correct, y_pred: top-label confidence
        return sum(abs((y_true[bins == k] - y_pred[bins == k]).sum()) for k in range(10)) / len(y_true)

    for attr in attributes:
        sf = df[attr].to_numpy()
        MetricFrame(metrics=accuracy_score, y_true=y, y_pred=pred, sensitive_features=sf).by_group
        frame = MetricFrame(metrics=ece, y_true=correct, y_pred=conf, sensitive_features=sf,
                            sample_params={"bins": bins})
        frame.difference()
        for k, c in enumerate(classes):
            yt = (y == c).astype(int)
            yp = (pred == c).astype(int)
            MetricFrame(metrics={"f1": f1_score, "tpr": true_positive_rate,
                                 "fpr": false_positive_rate},
                        y_true=yt, y_pred=yp, sensitive_features=sf).difference()
            MetricFrame(metrics={"auroc": roc_auc_score, "auprc": average_precision_score},
                        y_true=yt, y_pred=scores[:, k], sensitive_features=sf).difference()


def naive_sklearn_resample(df: pd.DataFrame, classes: list[str], attributes: list[str]) -> None:
    """The same per-group metrics and gaps with plain scikit-learn calls on group masks
    (no MetricFrame): a tougher baseline than fairlearn's generic machinery."""
    from sklearn.metrics import (accuracy_score, average_precision_score, f1_score,
                                 recall_score, roc_auc_score)

    scores = df[[f"score_{c}" for c in classes]].to_numpy()
    pred = np.array(classes)[scores.argmax(1)]
    y = df.y_true.to_numpy()
    conf = scores.max(1)
    correct = (pred == y).astype(float)
    bins = np.minimum((conf * 10).astype(int), 9)
    for attr in attributes:
        sf = df[attr].to_numpy()
        for g in np.unique(sf):
            m = sf == g
            accuracy_score(y[m], pred[m])
            d = correct[m] - conf[m]
            np.abs(np.bincount(bins[m], weights=d, minlength=10)).sum() / m.sum()
            for k, c in enumerate(classes):
                yt, yp = y[m] == c, pred[m] == c
                f1_score(yt, yp)
                recall_score(yt, yp)
                recall_score(~yt, ~yp)
                roc_auc_score(yt, scores[m, k])
                average_precision_score(yt, scores[m, k])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="threads for the audit (2 cores)")
    args = parser.parse_args()

    from compendium.audit import audit
    from compendium.audit import stats

    df = make_predictions(args.n, args.classes)
    classes = [c[len("score_"):] for c in df.columns if c.startswith("score_")]
    attributes = ["sex", "age_group"]

    t0, c0 = time.perf_counter(), time.process_time()
    table = audit(df, task="multiclass", attributes=attributes, n_bootstrap=args.bootstrap,
                  n_permutations=0, seed=0, n_jobs=args.jobs)
    fast = time.perf_counter() - t0
    fast_cpu = time.process_time() - c0
    print(f"vectorised audit: {fast:.2f} s wall, {fast_cpu:.2f} s CPU", flush=True)
    n_rows = len(table)

    counts = next(stats.iter_resample_counts(args.naive_resamples, len(df), seed=0))
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in stats.counts_to_indices(counts):
        naive_resample(df.iloc[idx], classes, attributes)
    per = (time.perf_counter() - t0) / args.naive_resamples
    per_cpu = (time.process_time() - c0) / args.naive_resamples
    naive = per * args.bootstrap

    print(f"predictions: {args.n:,}, classes: {args.classes}, attributes: {attributes}, "
          f"bootstrap resamples: {args.bootstrap}")
    print(f"vectorised audit (all {n_rows} estimates, CIs, {args.jobs} thread(s)): {fast:.2f} s wall, "
          f"{fast_cpu:.2f} s CPU")
    print(f"naive fairlearn MetricFrame loop: {per:.2f} s per resample, timed on "
          f"{args.naive_resamples} resamples and scaled to {args.bootstrap}: {naive:.0f} s")
    print(f"naive loop CPU: {per_cpu:.2f} s per resample, {per_cpu * args.bootstrap:.0f} s scaled")
    print(f"speed-up: {naive / fast:.0f}x wall, {per_cpu * args.bootstrap / fast_cpu:.0f}x CPU")

    t0, c0 = time.perf_counter(), time.process_time()
    for idx in stats.counts_to_indices(counts):
        naive_sklearn_resample(df.iloc[idx], classes, attributes)
    per_sk = (time.perf_counter() - t0) / args.naive_resamples
    per_sk_cpu = (time.process_time() - c0) / args.naive_resamples
    print(f"naive scikit-learn loop (no MetricFrame): {per_sk:.2f} s wall / {per_sk_cpu:.2f} s CPU "
          f"per resample, scaled to {args.bootstrap}: {per_sk * args.bootstrap:.0f} s wall")
    print(f"speed-up against it: {per_sk * args.bootstrap / fast:.0f}x wall, "
          f"{per_sk_cpu * args.bootstrap / fast_cpu:.0f}x CPU")


if __name__ == "__main__":
    main()
