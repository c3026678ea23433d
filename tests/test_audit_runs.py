"""Averaging over runs of the same samples (``audit(..., runs=)``): Paper A's "average of
10 runs" of zero-shot prompts, with intervals and p-values of the average."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compendium.audit import audit
from compendium.errors import ConfigError, InputError

CLASSES = ["a", "b", "c"]
KEY = ["metric", "attribute", "group", "label"]


def _run(seed: int, n: int = 240) -> pd.DataFrame:
    """A multi-class predictions table: fixed samples and truth, scores that vary by seed."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    sex = rng.choice(["F", "M"], n)
    r = np.random.default_rng(seed)
    logits = r.normal(size=(n, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    df = pd.DataFrame({"sample_id": [f"s{i:04d}" for i in range(n)],
                       "patient_id": [f"p{i // 2:04d}" for i in range(n)],
                       "y_true": np.array(CLASSES)[y], "sex": sex})
    for j, c in enumerate(CLASSES):
        df[f"score_{c}"] = p[:, j]
    return df


OPTS = dict(task="multiclass", attributes=["sex"], n_bootstrap=200, n_permutations=200,
            seed=3, metrics=["accuracy", "f1", "f1_gap", "eqodds"])


def test_identical_runs_give_exactly_the_single_run_audit():
    one = _run(1)
    twice = pd.concat([one.assign(run=0), one.sample(frac=1, random_state=0).assign(run=1)])
    a = audit(one, **OPTS)
    b = audit(twice, runs="run", **OPTS)
    cols = ["estimate", "ci_low", "ci_high", "p_value"]
    pd.testing.assert_frame_equal(a[KEY + cols].reset_index(drop=True),
                                  b[KEY + cols].reset_index(drop=True))
    assert b.attrs["runs"] == 2 and a.attrs["runs"] == 1


def test_estimates_are_the_mean_over_runs_and_differ_from_the_ensemble():
    runs = [_run(s) for s in (1, 2, 3)]
    table = pd.concat([r.assign(run=i) for i, r in enumerate(runs)])
    avg = audit(table, runs="run", **{**OPTS, "n_bootstrap": 0, "n_permutations": 0})
    each = [audit(r, **{**OPTS, "n_bootstrap": 0, "n_permutations": 0}).set_index(KEY)
            for r in runs]
    expect = sum(e["estimate"] for e in each) / 3
    got = avg.set_index(KEY)["estimate"]
    np.testing.assert_allclose(got.loc[expect.index].to_numpy(), expect.to_numpy(), atol=1e-12)
    # the ensemble (mean probabilities) is another statistic: its accuracy is not the mean
    ens = runs[0].copy()
    for c in CLASSES:
        ens[f"score_{c}"] = np.mean([r[f"score_{c}"] for r in runs], axis=0)
    e = audit(ens, **{**OPTS, "n_bootstrap": 0, "n_permutations": 0}).set_index(KEY)
    k = ("accuracy", "all", "all", "all")
    assert k in e.index and abs(e.loc[k, "estimate"] - got.loc[k]) > 1e-3


def test_interval_of_the_average_is_narrower_than_a_single_runs():
    runs = [_run(s) for s in range(1, 11)]
    table = pd.concat([r.assign(run=i) for i, r in enumerate(runs)])
    avg = audit(table, runs="run", **OPTS).set_index(KEY)
    one = audit(runs[0], **OPTS).set_index(KEY)
    k = ("f1_gap", "sex", "all", "macro")
    w_avg = avg.loc[k, "ci_high"] - avg.loc[k, "ci_low"]
    w_one = one.loc[k, "ci_high"] - one.loc[k, "ci_low"]
    assert 0 < w_avg < w_one


def test_runs_must_hold_the_same_samples_and_attributes():
    a, b = _run(1), _run(2)
    with pytest.raises(InputError, match="other samples"):
        audit(pd.concat([a.assign(run=0), b.iloc[:-1].assign(run=1)]), runs="run", **OPTS)
    with pytest.raises(InputError, match="'sex' differs"):
        audit(pd.concat([a.assign(run=0), b.assign(run=1, sex=b["sex"][::-1].to_numpy())]),
              runs="run", **OPTS)
    with pytest.raises(ConfigError, match="no column 'draw'"):
        audit(a.assign(run=0), runs="draw", **OPTS)
    with pytest.raises(InputError, match="sample_id"):
        audit(a.drop(columns="sample_id").assign(run=0), runs="run", **OPTS)
