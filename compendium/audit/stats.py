"""Honest statistics for the audit: bootstrap intervals, permutation tests, corrections.

Everything is vectorised over resamples: a chunk of bootstrap resamples is a matrix of
*counts* (how many times each row is drawn), a chunk of permutations a matrix of shuffled
group codes, and the audit's sweep (:class:`~compendium.audit.sweep.Sweep`) evaluates all
of them in one pass over the rows sorted by score, linear in the number of rows.  Chunks
bound the memory (tens of MB whatever the number of rows); there is no Python loop over
individual resamples.

* :func:`iter_resample_counts` draws the resamples: rows are resampled with replacement
  *within strata* (the groups, so every group keeps its size), and when a ``patient_id``
  is given whole patients are resampled (every image of a drawn patient comes along).
* :func:`percentile_interval` turns a bootstrap distribution into a percentile interval.
* :func:`iter_permuted_codes` shuffles group membership for permutation tests (a uniformly
  random arrangement of the group codes drawn unit by unit from one uniform per unit:
  :func:`permuted_codes`), and
  :func:`permutation_pvalue` computes ``p = (1 + #{perm >= observed}) / (1 + n_perm)``.
* :func:`sequential_pvalue` is Besag and Clifford's sequential Monte-Carlo p-value: a test
  stops once ``h`` permutations reached the observed value (clearly not significant) and
  continues otherwise, up to a maximum (see :func:`compendium.audit.audit`).
* :func:`adjust_pvalues` applies Holm or Benjamini-Hochberg through statsmodels, and
  :func:`pvalue_floor` gives the smallest adjusted p-value a family can reach.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np

from ..errors import ConfigError
from .sweep import add_counts, assign_codes, assign_many

if TYPE_CHECKING:
    import pandas as pd

#: Elements per block of bootstrap resamples (counts; the draws of a seed depend on it).
CHUNK_ELEMENTS = 4_000_000
#: Units per block of permutation draws (64 MB of uniforms; every block has its own seed,
#: so the draws of a seed depend on it): the sweep reads each row once for all the
#: permutations of a block.
PERMUTATION_ELEMENTS = 8_000_000
CORRECTIONS = {"holm": "holm", "bh": "fdr_bh", "fdr_bh": "fdr_bh", "bonferroni": "bonferroni"}
#: Exceedances after which a sequential permutation test stops (Besag & Clifford's h).
SEQUENTIAL_H = 20


def as_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy Generator from an int seed (or the Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def chunk_size(n: int, total: int) -> int:
    """Columns per chunk for ``n`` rows (at least 1, at most ``total``)."""
    return int(max(1, min(total, CHUNK_ELEMENTS // max(n, 1))))


def iter_resample_counts(n_boot: int, n: int, *, strata: np.ndarray | None = None,
                         clusters: np.ndarray | None = None,
                         seed: int | np.random.Generator | None = 0,
                         chunk: int | None = None) -> Iterator[np.ndarray]:
    """Bootstrap resamples as chunks of a row-count matrix.

    Parameters
    ----------
    n_boot : int
        Number of resamples.
    n : int
        Number of rows.
    strata : array of int, shape (n,), optional
        Stratum of every row; units are drawn with replacement within each stratum, so every
        stratum keeps its number of units.  A cluster's stratum is that of its first row.
    clusters : array, shape (n,), optional
        Cluster (patient) of every row; whole clusters are resampled.
    seed : int or Generator
    chunk : int, optional
        Resamples per chunk (default from :data:`CHUNK_ELEMENTS`).

    Yields
    ------
    ndarray of float, shape (n, b)
        ``counts[i, j]`` = how many times row ``i`` is in resample ``j`` of the chunk.

    Examples
    --------
    >>> c = np.concatenate(list(iter_resample_counts(3, 4, seed=0)), axis=1)
    >>> c.shape, c.sum(axis=0).tolist()
    ((4, 3), [4.0, 4.0, 4.0])
    """
    for rows in iter_resample_rows(n_boot, n, strata=strata, clusters=clusters, seed=seed,
                                   chunk=chunk):
        yield rows.astype(float)


def iter_resample_rows(n_boot: int, n: int, *, strata: np.ndarray | None = None,
                       clusters: np.ndarray | None = None,
                       seed: int | np.random.Generator | None = 0,
                       chunk: int | None = None,
                       position: np.ndarray | None = None,
                       width: int | None = None) -> Iterator[np.ndarray]:
    """The resamples of :func:`iter_resample_counts` (the same draws) as chunks of int32
    counts of shape (n, b), the count of row ``i`` in row ``position[i]`` (default ``i``):
    the audit's sweep reads the rows sorted by score, and counts drawn straight into that
    order need no gather.  (:func:`resample_row_chunks` yields the same chunks undrawn.)
    """
    for lazy in resample_row_chunks(n_boot, n, strata=strata, clusters=clusters, seed=seed,
                                    chunk=chunk, position=position, width=width):
        yield lazy()


class LazyChunk:
    """A chunk of random draws made when called, in whichever thread evaluates it.

    Every block of draws has its own seed (:func:`block_seeds`), so chunks can be
    drawn in parallel, in any order, by any number of threads, and give the same numbers.
    ``width``: the resamples or permutations it holds.
    """

    __slots__ = ("width", "_make")

    def __init__(self, width: int, make) -> None:
        self.width = int(width)
        self._make = make

    def __call__(self) -> np.ndarray:
        return self._make()


def block_seeds(seed: int | np.random.Generator | None) -> Iterator[np.random.SeedSequence]:
    """Independent seeds, one per block of draws: the children, in order, of one
    ``SeedSequence`` whose entropy is a single draw from ``seed`` (so the caller's stream
    advances by one number however many blocks follow).  A block makes its generator from
    its seed when drawn, so drawing it twice gives the same numbers."""
    root = np.random.SeedSequence(int(as_generator(seed).integers(2 ** 63)))
    while True:
        yield root.spawn(1)[0]


def resample_row_chunks(n_boot: int, n: int, *, strata: np.ndarray | None = None,
                        clusters: np.ndarray | None = None,
                        seed: int | np.random.Generator | None = 0,
                        chunk: int | None = None,
                        position: np.ndarray | None = None,
                        width: int | None = None) -> Iterator[LazyChunk]:
    """Chunks of :func:`iter_resample_rows`, each drawn when called (:class:`LazyChunk`):
    the audit's worker threads draw and evaluate them in parallel.

    A block of ``b`` resamples (``b`` from :func:`chunk_size`, so the resamples of a seed
    depend neither on ``position`` nor on ``width``) draws, from its own generator, ``b``
    units per unit of every stratum (int32 draws); a chunk holds ``width`` resamples
    (default ``b``; several blocks side by side).
    """
    out_of_row = np.arange(n) if position is None else np.asarray(position, dtype=np.int64)
    if clusters is not None:
        first, unit_of_row = units_of(clusters)
        # the unit of the row at every place of the output
        unit_at = np.empty(n, dtype=np.int64)
        unit_at[out_of_row] = unit_of_row
    else:
        first = np.arange(n)
        unit_at = None
    n_units = len(first)
    unit_strata = (np.zeros(n_units, dtype=np.int64) if strata is None
                   else np.asarray(strata)[first])
    members = [np.flatnonzero(unit_strata == s) for s in np.unique(unit_strata)]
    # where a drawn unit is counted: its place in the output (rows) or the unit itself
    targets = [m if unit_at is not None else out_of_row[m] for m in members]
    sizes = [len(m) for m in members]
    n_out = n if unit_at is None else n_units
    step = chunk or chunk_size(n, n_boot)
    width = -(-max(step, width or step) // step) * step   # whole blocks: same draws
    seeds = block_seeds(seed)

    def make(wide: int, blocks: list[np.random.SeedSequence]) -> np.ndarray:
        counts = np.zeros((n_out, wide), dtype=np.int32)
        for k, ss in enumerate(blocks):
            g = np.random.default_rng(ss)
            col = k * step
            b = min(step, wide - col)
            for size, t in zip(sizes, targets):
                add_counts(g.integers(0, size, size=(b, size), dtype=np.int32), t,
                           counts[:, col:col + b])
        return counts if unit_at is None else counts[unit_at]

    done = 0
    while done < n_boot:
        wide = min(width, n_boot - done)
        blocks = [next(seeds) for _ in range(-(-wide // step))]
        yield LazyChunk(wide, lambda wide=wide, blocks=blocks: make(wide, blocks))
        done += wide


def counts_to_indices(counts: np.ndarray) -> list[np.ndarray]:
    """Row indices of each resample (column) of a count matrix: for naive re-computation."""
    n = counts.shape[0]
    return [np.repeat(np.arange(n), counts[:, j].astype(np.int64)) for j in range(counts.shape[1])]


def iter_permuted_codes(codes: np.ndarray, n_perm: int, *,
                        clusters: np.ndarray | None = None,
                        seed: int | np.random.Generator | None = 0,
                        chunk: int | None = None,
                        position: np.ndarray | None = None) -> Iterator[np.ndarray]:
    """Chunks of shuffled group codes, shape (b, n); with ``position``, the code of row
    ``i`` is in column ``position[i]`` (the same draws in the audit's sweep order).

    Without ``clusters`` each row of a chunk is a permutation of ``codes`` over the rows.
    With ``clusters`` (patients) the group labels are shuffled between *patients*: every
    row of a patient receives the same shuffled label, which keeps the dependence between
    a patient's images under the null hypothesis.  The attribute must then be constant
    within every patient (:func:`constant_within`).  (:func:`permuted_code_chunks` yields
    the same chunks undrawn.)
    """
    for lazy in permuted_code_chunks(codes, n_perm, clusters=clusters, seed=seed, chunk=chunk,
                                     position=position):
        yield lazy()


def permuted_code_chunks(codes: np.ndarray, n_perm: int, *,
                         clusters: np.ndarray | None = None,
                         seed: int | np.random.Generator | None = 0,
                         chunk: int | None = None,
                         position: np.ndarray | None = None) -> Iterator[LazyChunk]:
    """The chunks of :func:`iter_permuted_codes`, each drawn when called, from its own
    generator (:class:`LazyChunk`)."""
    codes = _small(codes)
    units = units_of(clusters) if clusters is not None else None
    n_units = len(codes) if units is None else len(units[0])
    for lazy in unit_permutation_chunks(n_units, n_perm, n_rows=len(codes), seed=seed,
                                        chunk=chunk):
        yield LazyChunk(lazy.width, lambda lazy=lazy: permuted_codes(
            codes, lazy(), units=units, position=position))


def _small(codes: np.ndarray) -> np.ndarray:
    """Group codes in the smallest integer type that holds them (int8 below 127)."""
    codes = np.asarray(codes)
    if len(codes) and codes.min() >= 0 and codes.max() < 127:
        return codes.astype(np.int8)
    return codes.astype(np.int64)


def shuffled_rows(rng: np.random.Generator, values: np.ndarray, b: int) -> np.ndarray:
    """``b`` independent shuffles of ``values``, shape (b, len(values)).

    The same numbers as ``rng.permuted(np.broadcast_to(values, (b, n)), axis=1)`` (one
    Fisher-Yates pass per row, rows in order, so the random stream is that of ``permuted``)
    in about half the time: ``Generator.shuffle`` of each contiguous row is numpy's fast
    path.  Shuffling an array applies the same swaps whatever it holds, so shuffled group
    codes equal the codes gathered through shuffled indices (``codes[perm]``).
    """
    values = np.asarray(values)
    out = np.empty((b, len(values)), dtype=values.dtype)
    out[:] = values
    for row in out:
        rng.shuffle(row)
    return out


def iter_unit_permutations(n_units: int, n_perm: int, *, n_rows: int | None = None,
                           seed: int | np.random.Generator | None = 0,
                           chunk: int | None = None) -> Iterator[np.ndarray]:
    """Chunks of permutation draws of ``n_units`` units (rows, or patients), shape
    (b, n_units): one uniform per unit, shared by several attributes
    (:func:`permuted_codes` turns them into each attribute's shuffled codes); chunks hold
    about :data:`PERMUTATION_ELEMENTS` row codes (``n_rows`` rows).
    (:func:`unit_permutation_chunks` yields the same chunks undrawn.)"""
    for lazy in unit_permutation_chunks(n_units, n_perm, n_rows=n_rows, seed=seed, chunk=chunk):
        yield lazy()


def unit_permutation_chunks(n_units: int, n_perm: int, *, n_rows: int | None = None,
                            seed: int | np.random.Generator | None = 0,
                            chunk: int | None = None) -> Iterator[LazyChunk]:
    """The chunks of :func:`iter_unit_permutations`, each drawn when called from its own
    seed (:class:`LazyChunk`; the draws do not depend on the thread or the order)."""
    step = chunk or max(1, min(n_perm, PERMUTATION_ELEMENTS // max(n_rows or n_units, 1)))
    seeds = block_seeds(seed)
    done = 0
    while done < n_perm:
        b = min(step, n_perm - done)
        yield LazyChunk(b, lambda ss=next(seeds), b=b: np.random.default_rng(ss).random(
            (b, n_units)))
        done += b


def permuted_codes(codes: np.ndarray, perm: np.ndarray, *,
                   units: tuple[np.ndarray, np.ndarray] | None = None,
                   position: np.ndarray | None = None) -> np.ndarray:
    """Group codes of every row under the permutation draws ``perm`` (b, n_units) of
    :func:`iter_unit_permutations`: unit ``j`` receives a group with probability (units
    of the group not yet placed) / (units not yet placed), the units taken in order, which
    draws a uniformly random arrangement of the units' codes (a permutation of the group
    labels; the same draws give every attribute its own uniform arrangement).  With
    ``units`` = (first row of each cluster, cluster of each row) every row of a cluster
    gets its cluster's code.  With ``position``, row ``i``'s code is in column
    ``position[i]``."""
    codes = _small(codes)
    if units is None:
        return assign_codes(perm, codes, place=position)
    first, unit_of_row = units
    unit_codes = assign_codes(perm, codes[first])
    if position is None:
        return unit_codes[:, unit_of_row]
    unit_at = np.empty(len(unit_of_row), dtype=np.int64)
    unit_at[np.asarray(position)] = unit_of_row
    return unit_codes[:, unit_at]


def permuted_codes_many(codes: list[np.ndarray], perm: np.ndarray, *,
                        units: tuple[np.ndarray, np.ndarray] | None = None,
                        position: np.ndarray | None = None) -> list[np.ndarray]:
    """:func:`permuted_codes` of several attributes under the same draws (equal to one call
    per attribute, in one pass over the draws)."""
    codes = [_small(c) for c in codes]
    if units is None:
        return assign_many(perm, codes, place=position)
    first, unit_of_row = units
    unit_codes = assign_many(perm, [c[first] for c in codes])
    if position is None:
        return [c[:, unit_of_row] for c in unit_codes]
    unit_at = np.empty(len(unit_of_row), dtype=np.int64)
    unit_at[np.asarray(position)] = unit_of_row
    return [c[:, unit_at] for c in unit_codes]


def units_of(clusters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First row of every cluster (unit) and the unit of every row; units numbered in the
    sorted order of the cluster ids (as ``np.unique``), found by hashing (linear in rows,
    no sort of the ids, which may be strings)."""
    import pandas as pd

    unit_of_row, _ = pd.factorize(pd.Series(np.asarray(clusters)), sort=True,
                                  use_na_sentinel=False)
    unit_of_row = np.asarray(unit_of_row, dtype=np.int64)
    _, first = np.unique(unit_of_row, return_index=True)
    return first, unit_of_row


def constant_within(codes: np.ndarray, clusters: np.ndarray) -> bool:
    """Whether every cluster (patient) has a single value of ``codes``."""
    _, unit = units_of(clusters)
    _, code = np.unique(np.asarray(codes), return_inverse=True)
    pairs = np.unique(unit * (int(code.max(initial=0)) + 1) + code.ravel())
    return len(pairs) == len(np.unique(unit))


def percentile_interval(boot: np.ndarray, *, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval along the last axis (undefined resamples ignored).

    Returns nan bounds where every resample is undefined.
    """
    alpha = (1.0 - level) / 2.0
    boot = np.asarray(boot, dtype=float)
    finite = np.isfinite(boot).any(axis=-1)
    safe = np.where(finite[..., None], boot, 0.0)
    lo, hi = np.nanquantile(safe, [alpha, 1.0 - alpha], axis=-1)
    return np.where(finite, lo, np.nan), np.where(finite, hi, np.nan)


def bc_interval(boot: np.ndarray, estimate: np.ndarray, *, level: float = 0.95,
                acceleration: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected (BC; with ``acceleration``: BCa) percentile interval along the last axis.

    Efron's bias correction: ``z0 = Phi^-1(share of resamples below the estimate)`` (a tie
    counts one half), and the interval runs between the resample quantiles
    ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = -/+ Phi^-1(1 - alpha/2)``; with
    ``a = 0`` (BC) that is ``Phi(2 z0 -/+ z)``.  A statistic whose resamples lie mostly above
    its estimate (a max-min gap, an absolute difference) gets an interval shifted down.  The
    share is kept within ``[1 / 2B, 1 - 1 / 2B]`` so that ``z0`` stays finite.  Undefined
    resamples are ignored; nan bounds where all are undefined or the estimate is.

    Examples
    --------
    >>> lo, hi = bc_interval(np.arange(1.0, 101.0), np.array(50.5))
    >>> round(float(lo), 3), round(float(hi), 3)   # z0 = 0: the percentile interval
    (3.475, 97.525)
    """
    from scipy.stats import norm

    boot = np.asarray(boot, dtype=float)
    est = np.asarray(estimate, dtype=float)
    finite = np.isfinite(boot)
    n = finite.sum(axis=-1)
    below = ((boot < est[..., None]) & finite).sum(axis=-1)
    ties = ((boot == est[..., None]) & finite).sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = (below + 0.5 * ties) / n
        share = np.clip(share, 0.5 / np.maximum(n, 1), 1 - 0.5 / np.maximum(n, 1))
    z0 = norm.ppf(share)
    z = norm.ppf(1 - (1.0 - level) / 2)
    a = np.asarray(acceleration, dtype=float)
    bounds = []
    for zz in (-z, z):
        with np.errstate(divide="ignore", invalid="ignore"):
            q = norm.cdf(z0 + (z0 + zz) / (1 - a * (z0 + zz)))
        bounds.append(np.where(np.isfinite(q), q, 0.5))
    ok = (n > 0) & np.isfinite(est)
    safe = np.where(finite, boot, np.nan)
    safe = np.where(ok[..., None], safe, 0.0)
    lo = _quantile_rows(safe, np.where(ok, bounds[0], 0.5))
    hi = _quantile_rows(safe, np.where(ok, bounds[1], 0.5))
    return np.where(ok, lo, np.nan), np.where(ok, hi, np.nan)


def _quantile_rows(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantile ``q[...]`` of each row ``values[..., :]`` (nan ignored, linear interpolation
    as :func:`numpy.nanquantile`)."""
    v = np.sort(values, axis=-1)            # nan sort last
    n = np.isfinite(v).sum(axis=-1)
    pos = np.asarray(q) * np.maximum(n - 1, 0)
    low = np.floor(pos).astype(np.int64)
    high = np.minimum(low + 1, np.maximum(n - 1, 0))
    frac = pos - low
    vl = np.take_along_axis(v, low[..., None], axis=-1)[..., 0]
    vh = np.take_along_axis(v, high[..., None], axis=-1)[..., 0]
    return vl + frac * (vh - vl)


def jackknife_acceleration(jack: np.ndarray) -> np.ndarray:
    """BCa acceleration from leave-one-unit-out values along the last axis:
    ``a = sum(d^3) / (6 sum(d^2)^1.5)`` with ``d = mean(jack) - jack`` (0 when all equal)."""
    jack = np.asarray(jack, dtype=float)
    d = np.nanmean(jack, axis=-1, keepdims=True) - jack
    num = np.nansum(d ** 3, axis=-1)
    den = 6.0 * np.nansum(d ** 2, axis=-1) ** 1.5
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def abs_interval(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The interval of ``|d|`` implied by an interval ``[lo, hi]`` of a signed difference
    ``d``: ``[0, max(|lo|, |hi|)]`` when it contains 0, else ``[min(|lo|, |hi|),
    max(|lo|, |hi|)]``.  It covers ``|d|`` whenever ``[lo, hi]`` covers ``d``, so its
    coverage is at least the signed interval's (equal at a true difference of 0).

    Examples
    --------
    >>> [float(x) for x in abs_interval(np.array(-0.02), np.array(0.05))]
    [0.0, 0.05]
    >>> [float(x) for x in abs_interval(np.array(-0.09), np.array(-0.01))]
    [0.01, 0.09]
    """
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    a, b = np.abs(lo), np.abs(hi)
    straddle = (lo <= 0) & (hi >= 0)
    return np.where(straddle, 0.0, np.minimum(a, b)), np.maximum(a, b)


def simultaneous_band(estimate: np.ndarray, boot: np.ndarray, *, level: float = 0.95
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Simultaneous intervals ``estimate_j -/+ c se_j`` for the components along axis -2
    (``estimate`` (..., J), ``boot`` (..., J, B)): ``se_j`` is the resamples' standard
    deviation and ``c`` the ``level`` quantile of the bootstrap max-t statistic
    ``max_j |boot_j - estimate_j| / se_j``, so that all J intervals hold their true values
    together in about ``level`` of samples.  A component with no spread (``se = 0``) gets
    a zero-width interval; undefined resamples are left out of ``se`` and of the maximum.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> lo, hi = simultaneous_band(np.zeros(2), rng.normal(size=(2, 4000)))
    >>> bool(np.all(lo < -1.96) and np.all(hi > 1.96))   # wider than one 95% interval
    True
    """
    est = np.asarray(estimate, dtype=float)
    se, tmax = _max_t(est, boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.nanquantile(tmax, level, axis=-1) if tmax.shape[-1] else np.nan
    c = np.where(np.isfinite(c), c, 0.0)[..., None]
    half = np.where(se > 0, c * se, 0.0)
    ok = np.isfinite(est) & np.isfinite(se)
    return np.where(ok, est - half, np.nan), np.where(ok, est + half, np.nan)


def _max_t(est: np.ndarray, boot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors ``se`` (..., J) of the resamples ``boot`` (..., J, B) and the
    bootstrap max-t statistic ``max_j |boot_j - est_j| / se_j`` (..., B), NaN where no
    component is defined."""
    boot = np.asarray(boot, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.nanstd(boot, axis=-1) if boot.shape[-1] else np.full(est.shape, np.nan)
        t = np.abs(boot - est[..., None]) / np.where(se > 0, se, np.nan)[..., None]
        t = np.where(np.isfinite(t), t, -np.inf)
        tmax = t.max(axis=-2)
    return se, np.where(np.isfinite(tmax), tmax, np.nan)


def maxt_critical(estimate: np.ndarray, boot: np.ndarray, *, level: float = 0.95
                  ) -> tuple[float, np.ndarray]:
    """The critical value ``c`` and the standard errors ``se`` of :func:`simultaneous_band`
    for components ``estimate`` (J,) with resamples ``boot`` (J, B)."""
    se, tmax = _max_t(np.asarray(estimate, dtype=float), boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.nanquantile(tmax, level) if np.isfinite(tmax).any() else np.nan
    return (float(c) if np.isfinite(c) else 0.0), se


#: How :func:`reduced_interval` chooses its critical value (see there).
REDUCED_METHODS = ("simultaneous", "calibrated", "calibrated_no_test")
#: Largest critical value (in standard errors) the calibration searches.
CALIBRATION_MAX = 64.0


def reduced_interval(estimate: np.ndarray, boot: np.ndarray, reduce, *, level: float = 0.95,
                     method: str = "calibrated") -> tuple[float, float, float]:
    """An interval of ``theta = reduce(|d|)``, a statistic of the absolute pairwise differences
    ``d`` of the groups' values that is nondecreasing in every ``|d|`` (a max-min gap: the
    maximum over pairs; EqOdds: then the mean of the TPR and FPR gaps; a gap averaged over
    classes: then the mean over classes; a variance: a sum of squares).

    ``estimate`` (G, K) holds the groups' K values, ``boot`` (G, K, B) their resamples (the
    same resamples for every group); ``reduce`` maps an array (P, K, ...) of absolute
    differences (pairs in :func:`pairwise_differences` order) to the statistic (...).
    Every construction has the form ``[reduce((|d| - c se)_+), reduce(|d| + c se)]`` with the
    resamples' standard errors ``se`` of the differences, so it holds its estimate for any
    ``c >= 0``; ``method`` chooses ``c``:

    * ``simultaneous``: the bootstrap max-t quantile over all differences
      (:func:`simultaneous_band`): all ``d`` lie in ``d -/+ c se`` together in about
      ``level`` of samples, so the interval covers at least as often; exactly as often at a
      true statistic of 0 (all groups equal: the lower bound is 0 exactly when every band
      holds 0), more often elsewhere (where one pair decides the gap, the band's extra width
      for the other pairs is wasted);
    * ``calibrated_no_test``: the smallest ``c`` such that the construction applied to each
      resample's differences (same ``se``) holds the estimate ``theta_hat`` in ``level`` of
      the resamples (the bootstrap's calibration of the reduced statistic itself; at a true
      statistic of 0 the bootstrap world's truth ``theta_hat > 0`` is not a tie, so it
      undercovers there);
    * ``calibrated``: ``simultaneous`` when its lower bound is 0 (no difference is told from 0
      by the joint band: a test of "all groups equal" at ``1 - level`` that does not reject),
      else ``calibrated_no_test``.  At a true statistic of 0 it covers exactly as
      ``simultaneous`` does (it changes nothing when the band holds every 0, and when it does
      not both miss 0); elsewhere it is calibrated for the statistic reported.

    Returns ``(lo, hi, c)``; nan bounds when an estimate is undefined.
    """
    if method not in REDUCED_METHODS:
        raise ConfigError(f"unknown method {method!r} (allowed: {', '.join(REDUCED_METHODS)})")
    est = np.asarray(estimate, dtype=float)
    boot = np.asarray(boot, dtype=float)
    if not np.isfinite(est).all():
        return np.nan, np.nan, np.nan
    d = pairwise_differences(est)                            # (P, K)
    db = pairwise_differences(boot)                          # (P, K, B)
    c, se = maxt_critical(d.reshape(-1), db.reshape(-1, db.shape[-1]), level=level)
    se = np.where(np.isfinite(se) & (se > 0), se, 0.0).reshape(d.shape)
    ad = np.abs(d)

    def bounds(a, cc):
        half = cc * (se if a.ndim == se.ndim else se[..., None])
        return reduce(np.maximum(a - half, 0.0)), reduce(a + half)

    lo, hi = bounds(ad, c)
    if method == "simultaneous" or (method == "calibrated" and lo <= 0):
        return float(lo), float(hi), c
    theta = reduce(ad)
    ok = np.isfinite(db).all(axis=(0, 1))
    adb = np.abs(db[..., ok])
    if not adb.shape[-1]:
        return float(lo), float(hi), c
    tol = 1e-12 * max(1.0, abs(float(theta)))

    def covers(cc):
        blo, bhi = bounds(adb, cc)
        return (blo <= theta + tol) & (bhi >= theta - tol)

    low = np.zeros(adb.shape[-1])
    high = np.full(adb.shape[-1], CALIBRATION_MAX)
    done = covers(low)
    high = np.where(done, 0.0, high)
    for _ in range(30):
        mid = 0.5 * (low + high)
        ok_mid = covers(mid)
        high = np.where(ok_mid, mid, high)
        low = np.where(ok_mid, low, mid)
    need = np.where(covers(high), high, np.inf)
    cc = float(np.quantile(need, level, method="higher"))
    cc = min(cc, CALIBRATION_MAX)
    lo, hi = bounds(ad, cc)
    return float(lo), float(hi), cc


def pairwise_differences(values: np.ndarray) -> np.ndarray:
    """``values[i] - values[j]`` for every pair ``i < j`` of the first axis (groups), stacked
    on a new first axis (pairs in ``itertools.combinations`` order)."""
    values = np.asarray(values, dtype=float)
    i, j = np.triu_indices(values.shape[0], k=1)
    return values[i] - values[j]


def range_interval(estimate: np.ndarray, boot: np.ndarray, *, level: float = 0.95
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An interval of a max-min gap from simultaneous intervals of its pairwise differences.

    ``estimate`` (G, ...) holds the groups' values and ``boot`` (G, ..., B) their resamples
    (the same resamples for every group).  The max-min gap is ``max_(i<j) |d_ij|``; the
    intervals of all ``d_ij`` (and of every other axis: labels, or TPR and FPR) are made
    simultaneous with :func:`simultaneous_band`, turned into intervals of ``|d_ij|`` with
    :func:`abs_interval`, and the gap's interval is their maximum, bound by bound.  When all
    simultaneous intervals hold their true differences, the true gap lies in it (the maximum
    is monotone), so its coverage is at least the band's, including at a true gap of 0.

    Every component of ``estimate`` is covered jointly: pass exactly the values the gap
    depends on (one label's groups for a per-label gap; every label's for a macro average).
    Returns the bounds of every ``|d_ij|`` (P, ...), for a reduction of several gaps (the
    mean of a TPR and an FPR gap, or over labels: bound by bound, since a mean is monotone
    too), and the bounds of the max-min gap of every trailing component (...).  An undefined
    group value makes its differences, and so the gap's interval, undefined (nan).
    """
    est = np.asarray(estimate, dtype=float)
    boot = np.asarray(boot, dtype=float)
    d = pairwise_differences(est)                            # (P, ...)
    db = pairwise_differences(boot)                          # (P, ..., B)
    flat_e = d.reshape(-1)
    flat_b = db.reshape(-1, db.shape[-1])
    lo, hi = simultaneous_band(flat_e, flat_b, level=level)
    alo, ahi = abs_interval(lo, hi)
    alo, ahi = alo.reshape(d.shape), ahi.reshape(d.shape)
    return alo, ahi, alo.max(axis=0), ahi.max(axis=0)


def _exceedances(observed, perms, *, two_sided: bool, rtol: float):
    """The observed values, which permutations are at least as extreme (a relative ``rtol``
    of rounding counts as ``>=``; undefined permutations never count) and which are
    defined."""
    obs = np.asarray(observed, dtype=float)
    perms = np.asarray(perms, dtype=float)
    if two_sided:
        obs, perms = np.abs(obs), np.abs(perms)
    valid = np.isfinite(perms)
    ge = (perms >= obs[..., None] - rtol * np.maximum(np.abs(obs[..., None]), 1e-12)) & valid
    return obs, ge, valid


def permutation_pvalue(observed: np.ndarray, perms: np.ndarray, *, two_sided: bool = False,
                       rtol: float = 1e-9) -> np.ndarray:
    """``p = (1 + #{perm >= observed}) / (1 + n_perm)`` along the last axis of ``perms``.

    Parameters
    ----------
    observed : array (...)
    perms : array (..., n_perm)
        Statistic under shuffled group membership; undefined (nan) permutations are left
        out of both counts.
    two_sided : bool
        Compare absolute values (signed statistics such as a named-pair difference).
    rtol : float
        Relative tolerance so that a permutation equal to the observed value up to
        rounding counts as ``>=``.

    Examples
    --------
    >>> float(permutation_pvalue(np.array(0.5), np.array([0.1, 0.6, 0.2, 0.5])))
    0.6
    """
    obs, ge, valid = _exceedances(observed, perms, two_sided=two_sided, rtol=rtol)
    p = (1.0 + ge.sum(axis=-1)) / (1.0 + valid.sum(axis=-1))
    return np.where(np.isfinite(obs), p, np.nan)


def sequential_pvalue(observed: np.ndarray, perms: np.ndarray, *, h: int = SEQUENTIAL_H,
                      two_sided: bool = False, rtol: float = 1e-9) -> np.ndarray:
    """Besag-Clifford sequential p-value along the last axis of ``perms`` (in draw order).

    A test that reaches ``h`` permutations at least as extreme as the observed value at the
    ``L``-th defined permutation stops there with ``p = h / L``; one that never does gets
    ``p = (1 + #{perm >= observed}) / (1 + N)`` over its ``N`` defined permutations.  Both
    are valid p-values (Besag & Clifford, Biometrika 1991), so the drawing may stop early
    for tests that are clearly not significant and go on for those that could be.

    Examples
    --------
    >>> float(sequential_pvalue(np.array(0.5), np.array([0.6, 0.7, 0.1, 0.9]), h=2))
    1.0
    >>> float(sequential_pvalue(np.array(0.5), np.array([0.1, 0.2, 0.7, 0.9]), h=2))
    0.5
    >>> float(sequential_pvalue(np.array(0.5), np.array([0.1, 0.2, 0.7, 0.3]), h=2))
    0.4
    """
    obs, ge, valid = _exceedances(observed, perms, two_sided=two_sided, rtol=rtol)
    hits = np.cumsum(ge, axis=-1)
    seen = np.cumsum(valid, axis=-1)
    reached = hits[..., -1] >= h if perms.shape[-1] else np.zeros(obs.shape, bool)
    first = np.argmax(hits >= h, axis=-1)
    at = np.take_along_axis(seen, np.expand_dims(first, -1), axis=-1)[..., 0] if perms.shape[-1] \
        else np.zeros(obs.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(reached, h / np.maximum(at, 1),
                     (1.0 + ge.sum(axis=-1)) / (1.0 + valid.sum(axis=-1)))
    return np.where(np.isfinite(obs), p, np.nan)


def settled(observed: np.ndarray, perms: np.ndarray, *, h: int = SEQUENTIAL_H,
            two_sided: bool = False) -> np.ndarray:
    """Whether each sequential test already stopped (``h`` exceedances) or is undefined."""
    obs = np.asarray(observed, dtype=float)
    perms = np.asarray(perms, dtype=float)
    if two_sided:
        obs, perms = np.abs(obs), np.abs(perms)
    ge = (perms >= obs[..., None] - 1e-9 * np.maximum(np.abs(obs[..., None]), 1e-12))
    return ~np.isfinite(obs) | (ge.sum(axis=-1) >= h)


def pvalue_floor(family_size: int, n_perm: int, correction: str | None) -> float:
    """The smallest adjusted p-value one test of a family can reach.

    A permutation p-value is at least ``1 / (N + 1)``; Holm, Bonferroni and
    Benjamini-Hochberg multiply the smallest p-value of a family of ``m`` tests by ``m``
    when it is the only small one, so the floor is ``min(1, m / (N + 1))`` (``1 / (N + 1)``
    without a correction).  A family whose floor is at or above alpha cannot find anything.

    Examples
    --------
    >>> pvalue_floor(115, 1000, "holm")
    0.11488511488511488
    """
    m = 1 if correction is None else max(int(family_size), 1)
    return float(min(1.0, m / (int(n_perm) + 1)))


def _adjust(p: np.ndarray, method: str) -> np.ndarray:
    """Holm, Bonferroni or Benjamini-Hochberg adjusted p-values of one family (no nan);
    the same numbers as statsmodels' ``multipletests`` (tested), without its import cost."""
    m = len(p)
    if m == 0:
        return p
    if method == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.minimum(np.maximum.accumulate(ps * (m - np.arange(m))), 1.0)
    else:  # fdr_bh
        adj = np.minimum(np.minimum.accumulate((ps * m / np.arange(1, m + 1))[::-1])[::-1], 1.0)
    out = np.empty(m)
    out[order] = adj
    return out


def adjust_pvalues(p: np.ndarray, method: str = "holm") -> np.ndarray:
    """Multiple-comparison correction (as statsmodels ``multipletests``); nan entries are skipped.

    Parameters
    ----------
    p : array
        Raw p-values of one family (e.g. models x attributes x classes).
    method : {"holm", "bh", "fdr_bh", "bonferroni"}
    """
    if method not in CORRECTIONS:
        raise ConfigError(f"unknown correction {method!r} (choose from {', '.join(CORRECTIONS)})")
    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    out[ok] = _adjust(p[ok], CORRECTIONS[method])
    return out


def paired_bootstrap(stat, n: int, *, n_bootstrap: int = 1000, seed: int | np.random.Generator = 0,
                     clusters: np.ndarray | None = None, level: float = 0.95) -> pd.DataFrame:
    """Differences between two results on the *same* rows, with bootstrap intervals and
    two-sided p-values.

    ``stat(rows)`` returns the differences (a number or a vector: e.g. the gaps after a
    mitigation minus the gaps before) computed on the row positions ``rows``; it is
    evaluated on all rows and on ``n_bootstrap`` resamples (of ``clusters``, e.g. patients,
    when given).  A p-value is twice the smaller share of resamples on either side of zero
    (at least ``1 / (B + 1)``).  Resamples where a difference is NaN are left out of it.
    Returns one row per difference: ``estimate``, ``ci_low``, ``ci_high``, ``p_value``.

    >>> d = paired_bootstrap(lambda r: float(np.mean(np.arange(10)[r] >= 0)), 10, n_bootstrap=20)
    >>> float(d["estimate"].iloc[0]), bool(d["p_value"].iloc[0] <= 0.1)
    (1.0, True)
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    est = np.atleast_1d(np.asarray(stat(np.arange(n)), dtype=float))
    if clusters is None:
        draws = (rng.integers(0, n, n) for _ in range(n_bootstrap))
    else:
        uniq, inv = np.unique(np.asarray(clusters), return_inverse=True)
        order = np.argsort(inv, kind="stable")
        starts = np.r_[0, np.cumsum(np.bincount(inv, minlength=len(uniq)))]
        members = [order[starts[k]:starts[k + 1]] for k in range(len(uniq))]
        draws = (np.concatenate([members[k] for k in rng.integers(0, len(uniq), len(uniq))])
                 for _ in range(n_bootstrap))
    vals = np.array([np.atleast_1d(np.asarray(stat(d), dtype=float)) for d in draws])
    a = (1 - level) / 2
    rows = []
    for j in range(len(est)):
        v = vals[:, j] if len(vals) else np.zeros(0)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            rows.append({"estimate": est[j], "ci_low": np.nan, "ci_high": np.nan,
                         "p_value": np.nan})
            continue
        p = 2 * min((v <= 0).mean(), (v >= 0).mean())
        rows.append({"estimate": est[j], "ci_low": float(np.quantile(v, a)),
                     "ci_high": float(np.quantile(v, 1 - a)),
                     "p_value": float(min(1.0, max(p, 1.0 / (len(v) + 1))))})
    return pd.DataFrame(rows)


def joint_codes(codes: list[np.ndarray]) -> np.ndarray:
    """The cell of every row in the intersection of several group codings, numbered in the
    lexicographic order of the code tuples (as ``np.unique(..., axis=0)``) without sorting
    rows of tuples when the cells fit one integer."""
    codes = [np.asarray(c, dtype=np.int64) for c in codes]
    dims = [int(c.max(initial=0)) + 1 for c in codes]
    if np.prod([float(d) for d in dims]) < 2.0**62:
        return np.unique(np.ravel_multi_index(codes, dims), return_inverse=True)[1].ravel()
    return np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)[1].ravel()
