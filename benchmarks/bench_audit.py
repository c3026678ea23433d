"""Benchmark: the vectorised audit against a naive loop of fairlearn MetricFrame.

100,000 predictions, 6 classes, 2 attributes (sex x 2, age group x 4), 1,000 bootstrap
resamples of every per-group metric and gap.  The naive loop computes the same per-group
metrics (accuracy, per-class F1 / TPR / FPR / AUROC / AUPRC, ECE) with
``fairlearn.metrics.MetricFrame`` on each resample (``df.iloc[indices]``) and their gaps with
``MetricFrame.difference()``; it is timed on a few resamples and scaled to 1,000 (printed).
A second, tougher baseline computes the same metrics with plain scikit-learn calls on
group masks (no MetricFrame).  Wall and CPU times are both printed: the machine is shared.

Permutations: 1,000 shuffles of each attribute's groups, every tested gap; the naive path
computes the same per-group metrics and gaps with scikit-learn for each shuffle.  Before
any ratio is printed, the fast and the naive paths are compared on the very resamples and
permutations that are timed; a difference stops the benchmark.

The machine's load average is printed before and after (other jobs on a shared machine
inflate the wall time, and to a lesser degree the CPU time); ``--part permutations`` times
the permutations alone (after the same agreement check).

Run from the repository root: ``PYTHONPATH=. python benchmarks/bench_audit.py [--n 100000] [--naive-resamples 3] [--part all|bootstrap|permutations]``
"""

from __future__ import annotations

import argparse
import os
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


def top_label(df: pd.DataFrame, classes: list[str]):
    """Scores, top-label prediction, truth, top-label confidence, correctness and the ECE
    bin (10 equal-width bins of the confidence) of every row: what every naive path starts
    from."""
    scores = df[[f"score_{c}" for c in classes]].to_numpy()
    pred = np.array(classes)[scores.argmax(1)]
    y = df.y_true.to_numpy()
    conf = scores.max(1)
    return (scores, pred, y, conf, (pred == y).astype(float),
            np.minimum((conf * 10).astype(int), 9))


def naive_resample(df: pd.DataFrame, classes: list[str], attributes: list[str]) -> None:
    """Every per-group metric and gap of one resample with fairlearn MetricFrame."""
    from fairlearn.metrics import MetricFrame, false_positive_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score, roc_auc_score

    scores, pred, y, conf, correct, bins = top_label(df, classes)

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

    scores, pred, y, conf, correct, bins = top_label(df, classes)
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


def naive_group_values(df: pd.DataFrame, classes: list[str], attributes: list[str],
                       codes: dict[str, np.ndarray] | None = None) -> dict[tuple, float]:
    """Per-group metrics and gaps of one resample or permutation with scikit-learn, keyed
    like the audit table: (metric, attribute, group, label).  ``codes`` replaces an
    attribute's groups by shuffled group codes (a permutation)."""
    from sklearn.metrics import f1_score, recall_score, roc_auc_score

    scores, pred, y, conf, correct, bins = top_label(df, classes)
    out: dict[tuple, float] = {}
    for attr in attributes:
        sf = codes[attr] if codes is not None else df[attr].to_numpy()
        per: dict[tuple, list[float]] = {}
        for g in np.unique(sf):
            m = sf == g
            d = correct[m] - conf[m]
            ece = np.abs(np.bincount(bins[m], weights=d, minlength=10)).sum() / m.sum()
            out[("ece", attr, str(g), "all")] = ece
            per.setdefault(("ece_gap", "all"), []).append(ece)
            for c in classes:
                yt, yp = y[m] == c, pred[m] == c
                vals = {"f1": f1_score(yt, yp), "tpr": recall_score(yt, yp),
                        "fpr": 1.0 - recall_score(~yt, ~yp),
                        "auroc": roc_auc_score(yt, scores[m, classes.index(c)])}
                for k, v in vals.items():
                    out[(k, attr, str(g), c)] = v
                    per.setdefault((f"{k}_gap", c), []).append(v)
        for (metric, label), values in per.items():
            out[(metric, attr, "all", label)] = max(values) - min(values)
    return out


def check_same(fast: dict[tuple, np.ndarray], naive: list[dict[tuple, float]], what: str,
               rename: dict | None = None) -> int:
    """Compare the engine's values (one column per resample) with the naive ones; raise
    SystemExit naming the first difference.  Returns the number of values compared."""
    compared = 0
    for j, values in enumerate(naive):
        for key, v in values.items():
            k = key if rename is None else rename(key)
            if k not in fast:
                continue
            got = float(fast[k][j])
            if not np.isclose(got, v, rtol=1e-7, atol=1e-9):
                raise SystemExit(f"{what}: fast and naive paths differ at {k}, resample {j}: "
                                 f"{got!r} != {v!r}; no ratio printed")
            compared += 1
    if not compared:
        raise SystemExit(f"{what}: nothing compared")
    return compared


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=6)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--naive-resamples", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2, help="threads for the audit (2 cores)")
    parser.add_argument("--part", choices=("all", "bootstrap", "permutations"), default="all",
                        help="time the bootstrap, the permutations or both")
    args = parser.parse_args()

    from compendium.audit import stats
    from compendium.audit.predictions import parse_attributes, parse_predictions
    from compendium.audit.report import Options, _Engine

    df = make_predictions(args.n, args.classes)
    classes = [c[len("score_"):] for c in df.columns if c.startswith("score_")]
    attributes = ["sex", "age_group"]
    print(f"predictions: {args.n:,}, classes: {args.classes}, attributes: {attributes}; "
          f"load average {_load()}", flush=True)

    # --- the fast and the naive paths agree on the resamples and permutations timed below
    d = parse_predictions(df, task="multiclass")
    attrs = parse_attributes(df, attributes)
    engine = _Engine(d, attrs, {}, Options())
    counts = next(stats.iter_resample_counts(args.naive_resamples, len(df), seed=0))
    fast_boot = engine.evaluate(counts)
    naive_boot = [naive_group_values(df.iloc[idx], classes, attributes)
                  for idx in stats.counts_to_indices(counts)]
    n_boot_checked = check_same(fast_boot, naive_boot, "bootstrap")
    perm_codes = {a.name: next(stats.iter_permuted_codes(a.codes, args.naive_resamples, seed=1))
                  for a in attrs}
    fast_perm: dict[tuple, np.ndarray] = {}
    for i, a in enumerate(attrs):
        fast_perm.update(engine.permuted(i, perm_codes[a.name]))
    naive_perm = [naive_group_values(
        df, classes, attributes,
        codes={a.name: np.asarray(a.groups)[perm_codes[a.name][j]] for a in attrs})
        for j in range(args.naive_resamples)]
    n_perm_checked = check_same(fast_perm, naive_perm, "permutations")
    print(f"fast == naive on the timed draws: {n_boot_checked} bootstrap values and "
          f"{n_perm_checked} permutation gaps agree (rtol 1e-7)", flush=True)

    if args.part in ("all", "bootstrap"):
        _bootstrap(args, df, classes, attributes, counts)
    if args.part in ("all", "permutations"):
        _permutations(args, df, classes, attributes, attrs, perm_codes)
    print(f"load average at the end: {_load()}")


def _load() -> str:
    """The 1, 5 and 15 minute load averages (2 cores: above 2, other jobs compete)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _bootstrap(args, df, classes, attributes, counts) -> None:
    """``--bootstrap`` resamples against the two naive loops."""
    from compendium.audit import audit
    from compendium.audit import stats

    t0, c0 = time.perf_counter(), time.process_time()
    table = audit(df, task="multiclass", attributes=attributes, n_bootstrap=args.bootstrap,
                  n_permutations=0, seed=0, n_jobs=args.jobs)
    fast = time.perf_counter() - t0
    fast_cpu = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in stats.counts_to_indices(counts):
        naive_resample(df.iloc[idx], classes, attributes)
    per = (time.perf_counter() - t0) / args.naive_resamples
    per_cpu = (time.process_time() - c0) / args.naive_resamples
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in stats.counts_to_indices(counts):
        naive_sklearn_resample(df.iloc[idx], classes, attributes)
    per_sk = (time.perf_counter() - t0) / args.naive_resamples
    per_sk_cpu = (time.process_time() - c0) / args.naive_resamples
    print(f"bootstrap: vectorised audit ({len(table)} estimates, {args.bootstrap} resamples, "
          f"{args.jobs} thread(s)): {fast:.2f} s wall, {fast_cpu:.2f} s CPU")
    print(f"  naive fairlearn MetricFrame loop: {per:.2f} s per resample (timed on "
          f"{args.naive_resamples}), scaled: {per * args.bootstrap:.0f} s wall -> ratio "
          f"{per * args.bootstrap / fast:.0f}x wall, {per_cpu * args.bootstrap / fast_cpu:.0f}x CPU")
    print(f"  naive scikit-learn loop: {per_sk:.2f} s per resample, scaled: "
          f"{per_sk * args.bootstrap:.0f} s -> ratio {per_sk * args.bootstrap / fast:.0f}x wall, "
          f"{per_sk_cpu * args.bootstrap / fast_cpu:.0f}x CPU")


def _permutations(args, df, classes, attributes, attrs, perm_codes) -> None:
    """Exactly ``--permutations`` (no sequential continuation)."""
    from compendium.audit import audit

    t0, c0 = time.perf_counter(), time.process_time()
    audit(df, task="multiclass", attributes=attributes, n_bootstrap=0,
          n_permutations=args.permutations, seed=0, n_jobs=args.jobs)
    pfast = time.perf_counter() - t0
    pfast_cpu = time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    for j in range(args.naive_resamples):
        naive_group_values(df, classes, attributes,
                           codes={a.name: np.asarray(a.groups)[perm_codes[a.name][j]]
                                  for a in attrs})
    pper = (time.perf_counter() - t0) / args.naive_resamples
    pper_cpu = (time.process_time() - c0) / args.naive_resamples
    print(f"permutations: vectorised audit ({args.permutations} permutations per attribute, "
          f"{args.jobs} thread(s)): {pfast:.2f} s wall, {pfast_cpu:.2f} s CPU "
          f"({1000 * pfast_cpu / args.permutations:.1f} ms CPU per permutation)")
    print(f"  naive scikit-learn loop: {pper:.2f} s per permutation (timed on "
          f"{args.naive_resamples}), scaled: {pper * args.permutations:.0f} s -> ratio "
          f"{pper * args.permutations / pfast:.0f}x wall, "
          f"{pper_cpu * args.permutations / pfast_cpu:.0f}x CPU")


if __name__ == "__main__":
    main()
