"""Benchmark: the audit at scale, 10k to 1M (10M with ``--huge``) binary predictions.

A binary predictions table (continuous scores, two attributes: sex and four age bands)
is audited with ``--bootstrap`` resamples and ``--permutations`` permutations (defaults
1,000 each; every metric, every group, every gap), each size in a fresh subprocess so that
its peak memory (``ru_maxrss``, the whole process) is its own.  Printed per size: wall
time, CPU time (user + system, all threads), peak memory and, per 10x more rows, the
growth of the wall and CPU times (linear cost: 10x).

The baseline is the naive scikit-learn loop (per resample or permutation: every group's
AUROC, average precision, F1, TPR, FPR, accuracy and ECE with scikit-learn calls on group
masks), timed on a few resamples of a subsample of the rows and scaled linearly to the
size and the number of resamples (a lower bound for it: scikit-learn sorts, so its cost
grows faster than linearly).  Before any time is printed, the engine and the naive loop
are compared on the same resamples and permutations of a 10k table; a difference stops
the benchmark.

The machine's load average is printed with every size (other jobs on a shared machine
inflate the wall time, and to a lesser degree the CPU time).  A warm-up run compiles the
engine's numba loops first (cached on disk), so compile time is not counted.

Run from the repository root:
``PYTHONPATH=. python benchmarks/bench_audit_scale.py [--sizes 10000 100000 1000000] [--huge] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_audit import _load, check_same  # noqa: E402

ATTRIBUTES = ["sex", "age_group"]
AGE_BANDS = ["18-40", "40-60", "60-80", "80+"]


def make_binary(n: int, seed: int = 0) -> pd.DataFrame:
    """Binary predictions: truth, a continuous score (shifted up for positives), sex and
    four age bands."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1.0 / (1.0 + np.exp(-(rng.normal(size=n) + 1.2 * y - 0.6)))
    return pd.DataFrame({"y_true": y, "y_score": score,
                         "sex": np.array(["F", "M"])[rng.integers(0, 2, n)],
                         "age_group": np.array(AGE_BANDS)[rng.integers(0, 4, n)]})


def naive_values(df: pd.DataFrame, codes: dict[str, np.ndarray] | None = None) -> dict:
    """Every group's metrics and the gaps of one resample (rows of ``df``) or permutation
    (``codes`` replaces an attribute's groups) with scikit-learn, keyed like the audit
    table: (metric, attribute, group, label)."""
    from sklearn.metrics import (accuracy_score, average_precision_score, f1_score,
                                 recall_score, roc_auc_score)

    y = df.y_true.to_numpy().astype(bool)
    s = df.y_score.to_numpy()
    p = s >= 0.5
    bins = np.minimum((s * 10).astype(int), 9)
    out: dict[tuple, float] = {}
    for attr in ATTRIBUTES:
        sf = codes[attr] if codes is not None else df[attr].to_numpy()
        per: dict[str, list[float]] = {}
        for g in np.unique(sf):
            m = sf == g
            yt, yp = y[m], p[m]
            vals = {"auroc": roc_auc_score(yt, s[m]), "auprc": average_precision_score(yt, s[m]),
                    "f1": f1_score(yt, yp), "tpr": recall_score(yt, yp),
                    "fpr": 1.0 - recall_score(~yt, ~yp),
                    "ece": np.abs(np.bincount(bins[m], weights=yt - s[m], minlength=10)).sum()
                    / m.sum()}
            out[("accuracy", attr, str(g), "all")] = accuracy_score(yt, yp)
            for k, v in vals.items():
                out[(k, attr, str(g), "1")] = v
                per.setdefault(k, []).append(v)
        for k in ("auroc", "f1", "tpr", "fpr", "ece"):
            out[(f"{k}_gap", attr, "all", "1")] = max(per[k]) - min(per[k])
    return out


def check_agreement(n: int = 10_000, k: int = 3) -> int:
    """The engine equals the naive loop on ``k`` resamples and ``k`` permutations."""
    from compendium.audit import stats
    from compendium.audit.predictions import parse_attributes, parse_predictions
    from compendium.audit.report import Options, _Engine

    df = make_binary(n, seed=1)
    d = parse_predictions(df, task="binary")
    attrs = parse_attributes(df, ATTRIBUTES)
    engine = _Engine(d, attrs, {}, Options())
    counts = next(stats.iter_resample_counts(k, n, seed=0))
    checked = check_same(engine.evaluate(counts),
                         [naive_values(df.iloc[idx]) for idx in stats.counts_to_indices(counts)],
                         "bootstrap")
    codes = {a.name: next(stats.iter_permuted_codes(a.codes, k, seed=1)) for a in attrs}
    fast: dict[tuple, np.ndarray] = {}
    for i, a in enumerate(attrs):
        fast.update(engine.permuted(i, codes[a.name]))
    checked += check_same(fast, [naive_values(df, {a.name: np.asarray(a.groups)[codes[a.name][j]]
                                                   for a in attrs}) for j in range(k)],
                          "permutations")
    return checked


def naive_seconds(n_sub: int, k: int) -> tuple[float, float]:
    """Wall and CPU seconds of the naive loop per resample of ``n_sub`` rows."""
    from compendium.audit import stats

    df = make_binary(n_sub, seed=2)
    counts = next(stats.iter_resample_counts(k, n_sub, seed=0))
    t0, c0 = time.perf_counter(), time.process_time()
    for idx in stats.counts_to_indices(counts):
        naive_values(df.iloc[idx])
    return (time.perf_counter() - t0) / k, (time.process_time() - c0) / k


def child(args) -> None:
    """One audit of ``--child`` rows; prints one JSON line."""
    from compendium.audit import audit

    df = make_binary(args.child)
    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    table = audit(df, task="binary", attributes=ATTRIBUTES, n_bootstrap=args.bootstrap,
                  n_permutations=args.permutations, seed=0, n_jobs=args.jobs)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(json.dumps({"n": args.child, "wall": wall, "cpu": cpu, "rows": len(table),
                      "peak_mb": r1.ru_maxrss / 1024, "load": _load()}))


def run_child(n: int, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", str(n),
           "--bootstrap", str(args.bootstrap), "--permutations", str(args.permutations),
           "--jobs", str(args.jobs)]
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
    if res.returncode:
        raise SystemExit(f"size {n}: the audit failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--huge", action="store_true", help="also 10,000,000 rows")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2, help="threads for the audit (2 cores)")
    parser.add_argument("--naive-rows", type=int, default=100_000,
                        help="subsample on which the naive loop is timed")
    parser.add_argument("--naive-resamples", type=int, default=3)
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    sizes = sorted(set(args.sizes + ([10_000_000] if args.huge else [])))
    print(f"binary predictions, attributes {ATTRIBUTES}, {args.bootstrap} bootstrap resamples "
          f"+ {args.permutations} permutations, {args.jobs} thread(s); load average {_load()}",
          flush=True)
    print(f"fast == naive on the same draws: {check_agreement()} values agree (rtol 1e-7)",
          flush=True)
    warm = run_child(2_000, args)   # compiles (and caches) the numba loops
    print(f"warm-up (2,000 rows, compiles the loops once): {warm['wall']:.1f} s wall", flush=True)
    per_wall, per_cpu = naive_seconds(args.naive_rows, args.naive_resamples)
    print(f"naive scikit-learn loop: {per_wall:.3f} s wall, {per_cpu:.3f} s CPU per resample of "
          f"{args.naive_rows:,} rows (timed on {args.naive_resamples}), scaled linearly below",
          flush=True)
    print(f"{'rows':>11} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'x wall':>7} {'x CPU':>7} "
          f"{'naive s':>9} {'naive CPU s':>11} {'ratio wall':>10} {'ratio CPU':>9}  "
          f"load (1, 5, 15 min)")
    prev = None
    for n in sizes:
        r = run_child(n, args)
        scale = n / args.naive_rows * (args.bootstrap + args.permutations)
        naive, naive_cpu = per_wall * scale, per_cpu * scale
        grow = ("", "")
        if prev is not None and n == 10 * prev["n"]:
            grow = (f"{r['wall'] / prev['wall']:.1f}", f"{r['cpu'] / prev['cpu']:.1f}")
        print(f"{n:>11,} {r['wall']:>8.1f} {r['cpu']:>8.1f} {r['peak_mb']:>8.0f} {grow[0]:>7} "
              f"{grow[1]:>7} {naive:>9.0f} {naive_cpu:>11.0f} {naive / r['wall']:>9.0f}x "
              f"{naive_cpu / r['cpu']:>8.0f}x  {r['load']}", flush=True)
        prev = r
    print("x wall, x CPU: time divided by the time of 10x fewer rows (linear: 10); naive s: "
          "the naive loop scaled to the size and the resamples + permutations (ratio: naive "
          "over the audit, wall over wall and CPU over CPU); peak MB: "
          f"ru_maxrss of the audit's process. Load average at the end: {_load()}")


if __name__ == "__main__":
    main()
