"""The linear-time sweep of the audit engine: equal to the weighted RowSet engine, same
bootstrap draws in any row order, uniformly random permutations."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from compendium.audit import stats, sweep
from compendium.audit.metrics import RowSet
from compendium.audit.predictions import parse_attributes, parse_predictions
from compendium.audit.report import Options, _Engine
from compendium.audit.sweep import Sweep, assign_codes


def _table(task, n, seed, ties):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sex": rng.choice(["F", "M"], n),
                       "age": rng.choice(["a", "b", "c", "d"], n)})
    if task == "binary":
        df["y_true"] = rng.integers(0, 2, n)
        df["y_score"] = rng.random(n)
    elif task == "multiclass":
        p = rng.integers(1, 4, (n, 3)) if ties else rng.random((n, 3))
        p = p / p.sum(axis=1, keepdims=True)      # tied scores that still sum to 1
        df["y_true"] = np.array(["x", "y", "z"])[rng.integers(0, 3, n)]
        for k, c in enumerate("xyz"):
            df[f"score_{c}"] = p[:, k]
    else:
        for c in "uv":
            df[f"true_{c}"] = rng.integers(0, 2, n)
            df[f"score_{c}"] = rng.random(n)
    if ties and task != "multiclass":
        for c in [c for c in df.columns if "score" in c]:
            df[c] = np.round(df[c], 1)
    return df


@pytest.mark.parametrize("task, ties", [("binary", False), ("binary", True),
                                        ("multiclass", True), ("multilabel", False)])
def test_sweep_equals_the_weighted_engine_of_every_group(task, ties):
    """Every set's linear sums, AUROC (ties one half) and average precision equal those of
    RowSet on the same weights (AUROC to the last bits; AP: the RowSet divides in float32)."""
    df = _table(task, 500, 1, ties)
    d = parse_predictions(df, task=task)
    attrs = parse_attributes(df, ["sex", "age"])
    rs = RowSet(d)
    sweep = Sweep(rs.x, d.y, d.score, [a.codes for a in attrs], [len(a.groups) for a in attrs])
    w = np.concatenate(list(stats.iter_resample_counts(7, d.n, seed=2)), axis=1)
    w[:, 0] = 1.0
    sums, auroc, auprc = sweep.evaluate(w[sweep.order].astype(np.int32))
    sets = [np.arange(d.n)] + [a.rows(g) for a in attrs for g in range(len(a.groups))]
    for i, rows in enumerate(sets):
        ref = RowSet(d.take(rows)).evaluate(w[rows])
        np.testing.assert_allclose(sums[i], rs.x[rows].T @ w[rows], rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(auroc[i], ref["auroc"], rtol=1e-12)
        np.testing.assert_allclose(auprc[i], ref["auprc"], rtol=1e-6)


def test_engine_permuted_equals_the_engine_on_group_masks():
    """The permutation sweep (codes of two attributes at once) gives the gaps that the
    bootstrap sweep gives for the same shuffled groups taken as attributes."""
    df = _table("binary", 400, 3, True)
    d = parse_predictions(df, task="binary")
    attrs = parse_attributes(df, ["sex", "age"])
    engine = _Engine(d, attrs, {}, Options())
    draws = next(stats.iter_unit_permutations(d.n, 3, seed=4))
    codes = [stats.permuted_codes(a.codes, draws) for a in attrs]
    got = engine.permuted_many([0, 1], codes)
    for j in range(3):
        shuffled = df.assign(sex=np.asarray(attrs[0].groups)[codes[0][j]],
                             age=np.asarray(attrs[1].groups)[codes[1][j]])
        ref = _Engine(d, parse_attributes(shuffled, ["sex", "age"]), {}, Options()).evaluate(None)
        for key, values in got.items():
            np.testing.assert_allclose(values[j], ref[key][0], rtol=1e-9, atol=1e-12,
                                       err_msg=str(key))
    assert {k[0] for k in got} >= {"auroc_gap", "tpr_gap", "ece_gap"}


@pytest.mark.parametrize("clusters", [False, True])
def test_counts_in_sweep_order_are_the_same_resamples(clusters):
    rng = np.random.default_rng(5)
    n = 300
    strata = rng.integers(0, 3, n)
    pid = rng.integers(0, 90, n) if clusters else None
    if clusters:
        strata = strata[pid]
    ref = np.concatenate(list(stats.iter_resample_counts(25, n, strata=strata, clusters=pid,
                                                         seed=1, chunk=4)), axis=1)
    position = rng.permutation(n)
    got = np.concatenate(list(stats.iter_resample_rows(25, n, strata=strata, clusters=pid,
                                                       seed=1, chunk=4, position=position,
                                                       width=10)), axis=1)
    assert got.dtype == np.int32 and got.shape == (n, 25)
    np.testing.assert_array_equal(got[position], ref)


def test_permuted_codes_are_uniform_arrangements_and_keep_the_groups():
    """Every arrangement of the codes [0, 0, 1, 2] (12 of them) is drawn equally often, and
    each draw keeps the group sizes; ``position`` places the same codes elsewhere."""
    codes = np.array([0, 0, 1, 2], dtype=np.int8)
    perm = np.concatenate(list(stats.iter_permuted_codes(codes, 24_000, seed=7)))
    assert (np.sort(perm, axis=1) == np.sort(codes)).all()
    seen = pd.Series([tuple(r) for r in perm]).value_counts()
    assert set(seen.index) == set(itertools.permutations(codes.tolist()))
    assert sps.chisquare(seen.to_numpy()).pvalue > 1e-3
    position = np.array([2, 0, 3, 1])
    placed = np.concatenate(list(stats.iter_permuted_codes(codes, 50, seed=7,
                                                           position=position)))
    np.testing.assert_array_equal(placed[:, position], perm[:50])
    # several attributes from the same draws: the codes of one call each
    other = np.array([1, 0, 1, 0], dtype=np.int8)
    draws = next(stats.iter_unit_permutations(4, 40, seed=3))
    units = (np.array([0, 1, 3]), np.array([0, 1, 1, 2]))
    for kw in ({}, {"position": position}, {"units": units}, {"units": units, "position": position}):
        pair = [np.array([0, 2, 2, 1]), other] if "units" not in kw else [np.array([0, 2, 2, 1]), np.array([1, 0, 0, 1])]
        many = stats.permuted_codes_many(pair, draws if "units" not in kw else draws[:, :3], **kw)
        for c, got in zip(pair, many):
            np.testing.assert_array_equal(
                got, stats.permuted_codes(c, draws if "units" not in kw else draws[:, :3], **kw))
    # a group of the codes declared but empty is never drawn
    u = np.random.default_rng(0).random((100, 5))
    out = assign_codes(u, np.array([0, 2, 2, 0, 3]))
    assert (np.sort(out, axis=1) == [0, 0, 2, 2, 3]).all()


def test_cli_jobs_give_the_same_table(tmp_path):
    """``compendium audit --jobs 2`` (threads over resample chunks) writes the very table
    of one thread; a bad value is a one-line error (exit 2)."""
    from compendium.cli import main

    path = tmp_path / "pred.csv"
    _table("binary", 300, 9, False).to_csv(path, index=False)
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"audit{jobs}.csv"
        assert main(["audit", str(path), "--task", "binary", "--attributes", "sex,age",
                     "--bootstrap", "40", "--permutations", "40", "--max-permutations", "none",
                     "--jobs", jobs, "--out", str(out)]) == 0
        outs.append(out.read_text())
    assert outs[0] == outs[1]
    with pytest.raises(SystemExit) as exit_info:
        main(["audit", str(path), "--task", "binary", "--attributes", "sex", "--jobs", "0"])
    assert exit_info.value.code == 2


def test_lazy_chunks_draw_the_same_numbers_in_any_order_and_thread():
    """Each chunk of resamples or permutations has its own generator: drawn in reverse
    order, or in threads, the chunks hold the numbers of the plain iterators (so the audit
    gives the same table whatever ``n_jobs``), and the caller's generator advances by one
    draw however many chunks there are."""
    from concurrent.futures import ThreadPoolExecutor

    strata = np.random.default_rng(0).integers(0, 4, 500)
    ref = list(stats.iter_resample_rows(30, 500, strata=strata, seed=3, chunk=4, width=8))
    lazy = list(stats.resample_row_chunks(30, 500, strata=strata, seed=3, chunk=4, width=8))
    assert [c.width for c in lazy] == [r.shape[1] for r in ref]
    for want, got in zip(ref[::-1], [c() for c in lazy[::-1]]):
        np.testing.assert_array_equal(got, want)
    with ThreadPoolExecutor(2) as pool:
        for want, got in zip(ref, pool.map(lambda c: c(), lazy)):
            np.testing.assert_array_equal(got, want)
    perms = list(stats.unit_permutation_chunks(50, 20, seed=4, chunk=6))
    np.testing.assert_array_equal(np.concatenate([c() for c in perms[::-1]][::-1]),
                                  np.concatenate(list(stats.iter_unit_permutations(
                                      50, 20, seed=4, chunk=6))))
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    list(stats.iter_resample_rows(30, 500, seed=g1, chunk=4))
    list(stats.iter_resample_rows(3, 500, seed=g2, chunk=1))
    assert g1.integers(1 << 30) == g2.integers(1 << 30)


def test_add_counts_matches_a_plain_scatter_and_counts_past_uint16():
    rng = np.random.default_rng(2)
    for k, size in ((10, 7), (900, 1000), (5, 70_000)):
        draws = rng.integers(0, size, (3, k)).astype(np.int32)
        targets = rng.permutation(size + 5)[:size]
        got = sweep.add_counts(draws, targets, np.zeros((size + 5, 3), np.int32))
        want = np.zeros((size + 5, 3), np.int32)
        for j in range(3):
            np.add.at(want[:, j], targets[draws[j]], 1)
        np.testing.assert_array_equal(got, want)
    # one member drawn 70,000 times in a resample: more than the uint16 table holds
    got = sweep.add_counts(np.zeros((2, 70_000), np.int32), np.array([2, 0, 1]),
                           np.zeros((3, 2), np.int32))
    np.testing.assert_array_equal(got[:, 0], [0, 0, 70_000])
