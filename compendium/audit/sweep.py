r"""One pass over the rows sorted by score: every group's sums and rank metrics, linear in rows.

The audit evaluates the same statistics for many weight vectors: bootstrap resamples
(counts of every row) and permutations (shuffled group codes).  :class:`Sweep` prepares the
rows once (sorted by the score of every label, one sort each, ties located) and evaluates
one resample or permutation in a single pass over the rows in score order, for every group
of every attribute at once:

* the **linear statistics** (confusion counts, accuracy, ECE bin sums: the columns of the
  design matrix of :class:`~compendium.audit.metrics.RowSet`) are weighted sums over the
  nonzero entries of each row, accumulated per *cell* (the intersection of the attributes'
  groups) and then added up into the overall set and every group;
* the **rank statistics** come from running sums in decreasing score order: a negative
  adds, to the Mann-Whitney count of each set it belongs to, the weight of the positives
  of that set scoring above it (plus one half of those tied with it), and a block of
  positives adds its weight times the precision at its threshold to the average precision
  (scikit-learn's ``average_precision_score``).  The sets are the overall rows and one
  group per attribute, so a row updates ``1 + A`` running sums.

The work per resample is a few operations per row and set (no sort, no ``(n, B)`` float
matrix, no gather through a random index per resample), and the rows are read in order,
so the cost grows linearly with the number of rows.  The loops are compiled with numba
(released GIL: the audit's threads run them in parallel).

Every sum is accumulated in float64: counts are integers, so the confusion counts and the
Mann-Whitney counts are exact, and AUROC equals :func:`~compendium.audit.metrics.auroc`
to the last bit; the average precision is summed in float64 (the earlier engine divided in
float32, so its bootstrap AUPRC values differ from these in the seventh digit).
"""

from __future__ import annotations

import numba
import numpy as np

from .metrics import _safe_div

# =========================================================================== kernels


@numba.njit(nogil=True, cache=True)
def _sweep(w, lin, ridx, xptr, xidx, xval, orders, ys, lo, do_ranks, do_ap,
           S, U, AP, P, N):  # pragma: no cover - compiled
    """Sums and rank statistics of ``b`` replicates, every row array in primary order (the
    first label's score order) with the replicates last, so that a row's design entries,
    order and truth are read once for all the replicates of the chunk.

    w : (n, 1 or b) weights
    lin : (n, L, 1 or b) the ``L`` cells (or sets) whose sums each row adds to
    ridx : (n, R, 1 or b) the ``R`` sets of each row for the rank statistics
    xptr, xidx, xval : the design matrix in CSR form
    orders : (K, n) primary place of the row at each place of label k's score order
    ys : (K, n) truth of label k in its score order; lo : (K, n) first place of the tie
        block of each place
    S : (cells, m, b) sums; U, AP, P, N : (K, sets, b) Mann-Whitney counts, average
        precision numerators, positive and negative weights
    """
    b = S.shape[2]
    n = xptr.shape[0] - 1
    n_sets = U.shape[1]
    l_sets = lin.shape[1]
    r_sets = ridx.shape[1]
    sw = 1 if w.shape[1] > 1 else 0
    sl = 1 if lin.shape[2] > 1 else 0
    sr = 1 if ridx.shape[2] > 1 else 0
    for j in range(n):
        for t in range(l_sets):
            for p in range(xptr[j], xptr[j + 1]):
                col = xidx[p]
                v = xval[p]
                for c in range(b):
                    S[lin[j, t, c * sl], col, c] += w[j, c * sw] * v
    if not do_ranks:
        return
    posblk = np.zeros((n_sets, b))
    negblk = np.zeros((n_sets, b))
    pc = np.zeros((n_sets, b))
    nc = np.zeros((n_sets, b))
    u = np.zeros((n_sets, b))
    ap = np.zeros((n_sets, b))
    for k in range(orders.shape[0]):
        pc[:] = 0.0
        nc[:] = 0.0
        u[:] = 0.0
        ap[:] = 0.0
        j = n - 1
        while j >= 0:
            s = lo[k, j]
            if s == j:          # a score of its own: no tie
                pj = orders[k, j]
                if ys[k, j]:
                    for t in range(r_sets):
                        for c in range(b):
                            wj = w[pj, c * sw]
                            if wj != 0:
                                i = ridx[pj, t, c * sr]
                                pc[i, c] += wj
                                if do_ap:
                                    ap[i, c] += wj * pc[i, c] / (pc[i, c] + nc[i, c])
                else:
                    for t in range(r_sets):
                        for c in range(b):
                            wj = w[pj, c * sw]
                            i = ridx[pj, t, c * sr]
                            u[i, c] += wj * pc[i, c]
                            nc[i, c] += wj
            else:               # a block of tied scores: ties count one half
                for q in range(s, j + 1):
                    pj = orders[k, q]
                    for t in range(r_sets):
                        for c in range(b):
                            wj = w[pj, c * sw]
                            i = ridx[pj, t, c * sr]
                            if ys[k, q]:
                                posblk[i, c] += wj
                            else:
                                negblk[i, c] += wj
                for q in range(s, j + 1):
                    pj = orders[k, q]
                    for t in range(r_sets):
                        for c in range(b):
                            i = ridx[pj, t, c * sr]
                            if posblk[i, c] == 0 and negblk[i, c] == 0:
                                continue
                            u[i, c] += negblk[i, c] * (pc[i, c] + 0.5 * posblk[i, c])
                            pc[i, c] += posblk[i, c]
                            nc[i, c] += negblk[i, c]
                            if do_ap and posblk[i, c] > 0:
                                ap[i, c] += posblk[i, c] * pc[i, c] / (pc[i, c] + nc[i, c])
                            posblk[i, c] = 0.0
                            negblk[i, c] = 0.0
            j = s - 1
        U[k] = u
        AP[k] = ap
        P[k] = pc
        N[k] = nc


@numba.njit(nogil=True, cache=True)
def _assign(u, sizes, place, out):  # pragma: no cover - compiled
    """Shuffled group codes from uniforms: unit ``j`` of row ``c`` receives group ``g`` with
    probability (units of ``g`` left) / (units left), the sequential draw of a uniformly
    random arrangement of the codes (every arrangement equally likely); the code of unit
    ``j`` is written at column ``place[j]``."""
    b, n = u.shape
    g_count = sizes.shape[0]
    rem = np.empty(g_count, np.int64)
    for c in range(b):
        for g in range(g_count):
            rem[g] = sizes[g]
        left = n
        for j in range(n):
            r = np.int64(u[c, j] * left)
            if r >= left:
                r = left - 1
            g = 0
            acc = rem[0]
            while r >= acc:
                g += 1
                acc += rem[g]
            out[c, place[j]] = g
            rem[g] -= 1
            left -= 1


@numba.njit(nogil=True, cache=True)
def _assign_many(u, sizes, place, out):  # pragma: no cover - compiled
    """:func:`_assign` for several codings at once from the same uniforms (``sizes``
    (A, G), ``out`` (A, b, n)): the uniforms are read once and the codings' independent
    running counts interleave."""
    n_attr, g_count = sizes.shape
    b, n = u.shape
    rem = np.empty((n_attr, g_count), np.int64)
    for c in range(b):
        for a in range(n_attr):
            for g in range(g_count):
                rem[a, g] = sizes[a, g]
        left = n
        for j in range(n):
            x = u[c, j] * left
            r = np.int64(x)
            if r >= left:
                r = left - 1
            pj = place[j]
            for a in range(n_attr):
                g = 0
                acc = rem[a, 0]
                while r >= acc:
                    g += 1
                    acc += rem[a, g]
                out[a, c, pj] = g
                rem[a, g] -= 1
            left -= 1


@numba.njit(nogil=True, cache=True)
def _count(draws, targets, out):  # pragma: no cover - compiled
    """``out[targets[draws[j, i]], j] += 1``: resample counts, one column per resample.

    The draws are counted first per member of the stratum (a (b, members) uint16 table, a
    few MB that stay in cache) and then added to ``out`` one row per member, so the random
    accesses land in cache instead of all over ``out``.  Returns False (``out`` untouched)
    if a member was drawn 65,535 times in one resample, which uint16 cannot count (the
    caller then counts with :func:`_count_wide`)."""
    b, k = draws.shape
    size = targets.shape[0]
    tmp = np.zeros((b, size), np.uint16)
    for j in range(b):
        for i in range(k):
            d = draws[j, i]
            if tmp[j, d] == 65535:
                return False
            tmp[j, d] += 1
    for i in range(size):
        r = targets[i]
        for j in range(b):
            out[r, j] += tmp[j, i]
    return True


@numba.njit(nogil=True, cache=True)
def _count_wide(draws, targets, out):  # pragma: no cover - compiled
    """:func:`_count` without the uint16 table (any count)."""
    for j in range(draws.shape[0]):
        for i in range(draws.shape[1]):
            out[targets[draws[j, i]], j] += 1


def assign_codes(u: np.ndarray, codes: np.ndarray, place: np.ndarray | None = None
                 ) -> np.ndarray:
    """Shuffled ``codes``: one arrangement per row of the uniforms ``u`` (b, n), the code of
    unit ``j`` at column ``place[j]`` (default ``j``)."""
    codes = np.asarray(codes)
    sizes = np.bincount(codes, minlength=1).astype(np.int64) if len(codes) else \
        np.zeros(1, np.int64)
    out = np.empty(u.shape, dtype=codes.dtype)
    if place is None:
        place = np.arange(u.shape[1], dtype=np.int64)
    if u.size:
        _assign(np.ascontiguousarray(u, dtype=np.float64), sizes,
                np.asarray(place, dtype=np.int64), out)
    return out


def assign_many(u: np.ndarray, codes: list[np.ndarray], place: np.ndarray | None = None
                ) -> list[np.ndarray]:
    """:func:`assign_codes` of several codings from the same uniforms (the same codes as
    one call each)."""
    codes = [np.asarray(c) for c in codes]
    n_groups = max(int(c.max(initial=0)) + 1 for c in codes)
    sizes = np.stack([np.bincount(c, minlength=n_groups) for c in codes]).astype(np.int64)
    dtype = np.result_type(*[c.dtype for c in codes])
    out = np.empty((len(codes),) + u.shape, dtype=dtype)
    if place is None:
        place = np.arange(u.shape[1], dtype=np.int64)
    if u.size:
        _assign_many(np.ascontiguousarray(u, dtype=np.float64), sizes,
                     np.asarray(place, dtype=np.int64), out)
    return list(out)


def add_counts(draws: np.ndarray, targets: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Adds, to each column ``j`` of ``out`` (n, b), one count at row ``targets[d]`` for
    every draw ``d`` of row ``j`` of ``draws`` (b, k)."""
    if draws.size:
        draws = np.ascontiguousarray(draws)
        targets = np.asarray(targets, dtype=np.int64)
        if not _count(draws, targets, out):
            _count_wide(draws, targets, out)
    return out


# =========================================================================== sweep


class Sweep:
    """The rows of one table prepared for :func:`_sweep`.

    Parameters
    ----------
    x : ndarray (n, m)
        Design matrix (:func:`~compendium.audit.metrics._design`): one column per linear
        statistic.
    y, score : ndarray (n, K)
        Truth and scores, for the rank statistics (``None``: no rank statistics).
    codes : list of int arrays (n,)
        Group code of every row for each attribute, and ``n_groups`` their numbers of groups.

    The *sets* are the overall rows (set 0) and, for attribute ``a``, set
    ``offsets[a] + g`` for its group ``g``.  Rows are kept in the order of the first
    label's score (:attr:`order`); :attr:`position` maps a row to its place there.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray | None, score: np.ndarray | None,
                 codes: list[np.ndarray], n_groups: list[int]) -> None:
        n = x.shape[0]
        self.n, self.m = n, x.shape[1]
        self.ranks = y is not None and y.shape[1] > 0
        self.order = (np.argsort(score[:, 0], kind="stable") if self.ranks
                      else np.arange(n))
        self.position = np.empty(n, dtype=np.int64)
        self.position[self.order] = np.arange(n)
        # the design in CSR form, rows in primary order (most entries are zeros)
        xs = x[self.order]
        nz = xs != 0
        self.xptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(nz.sum(axis=1), out=self.xptr[1:])
        rows, cols = np.nonzero(nz)
        self.xidx = cols.astype(np.int32)
        self.xval = xs[rows, cols].astype(np.float64)
        del xs, nz, rows, cols
        # sets and cells
        self.offsets = np.cumsum([1] + list(n_groups))[:-1]
        self.n_sets = int(1 + sum(n_groups))
        prim = [np.asarray(c, dtype=np.int64)[self.order] for c in codes]
        self.ridx = np.stack([np.zeros(n, dtype=np.int32)] +
                             [(p + o).astype(np.int32) for p, o in zip(prim, self.offsets)],
                             axis=1)[:, :, None]
        if prim:
            dims = [int(g) for g in n_groups]
            if np.prod([float(g) for g in dims]) < 2.0**62:   # one integer per cell
                flat, cell = np.unique(np.ravel_multi_index(prim, dims), return_inverse=True)
                cells = np.stack(np.unravel_index(flat, dims), axis=1)
            else:
                cells, cell = np.unique(np.stack(prim, axis=1), axis=0, return_inverse=True)
        else:
            cells, cell = np.zeros((1, 0), np.int64), np.zeros(n, np.int64)
        self.cell = cell.ravel().astype(np.int32)[:, None, None]
        # which cells add up to which set: (sets, cells)
        self.cell_to_set = np.zeros((self.n_sets, len(cells)))
        self.cell_to_set[0] = 1.0
        for a, o in enumerate(self.offsets):
            self.cell_to_set[o + cells[:, a], np.arange(len(cells))] = 1.0
        # rank orders per label: primary place of each place of label k's order
        if self.ranks:
            k_labels = y.shape[1]
            self.orders = np.empty((k_labels, n), dtype=np.int64)
            self.ys = np.empty((k_labels, n), dtype=np.bool_)
            self.lo = np.empty((k_labels, n), dtype=np.int64)
            for k in range(k_labels):
                o = self.order if k == 0 else np.argsort(score[:, k], kind="stable")
                self.orders[k] = self.position[o]
                self.ys[k] = y[o, k]
                s = score[o, k]
                start = np.ones(n, dtype=bool)
                start[1:] = s[1:] != s[:-1]
                self.lo[k] = np.maximum.accumulate(np.where(start, np.arange(n), 0))
        else:
            self.orders = np.zeros((0, n), dtype=np.int64)
            self.ys = np.zeros((0, n), dtype=np.bool_)
            self.lo = np.zeros((0, n), dtype=np.int64)

    def _run(self, w, lin, ridx, b, n_cells, n_sets, ranks, ap):
        k = self.orders.shape[0] if ranks else 0
        S = np.zeros((n_cells, self.m, b))
        U, AP, P, N = (np.zeros((max(k, 1), n_sets, b)) for _ in range(4))
        _sweep(w, lin, ridx, self.xptr, self.xidx, self.xval, self.orders, self.ys, self.lo,
               bool(ranks and k), bool(ap), S, U, AP, P, N)
        return S, U[:k], AP[:k], P[:k], N[:k]

    def evaluate(self, w: np.ndarray, *, ranks: bool = True, auprc: bool = True):
        """Sums of every set for the weight columns ``w`` (n, b), rows in primary order.

        Returns ``sums`` (sets, m, b) and, with ranks, ``auroc`` and ``auprc`` (sets, K, b)
        (``auprc`` None when not asked for).
        """
        w = np.ascontiguousarray(w)
        if w.dtype not in (np.int32, np.float64):
            w = w.astype(np.float64)
        b = w.shape[1]
        ranks = ranks and self.ranks
        S, U, AP, P, N = self._run(w, self.cell, self.ridx, b, self.cell_to_set.shape[1],
                                   self.n_sets, ranks, auprc)
        sums = np.einsum("sc,cmb->smb", self.cell_to_set, S)
        return (sums,) + self._ranks(U, AP, P, N, ranks, auprc)

    def permuted(self, codes: list[np.ndarray], n_groups: list[int], *, ranks: bool = True):
        """Sums and AUROC of every group of several attributes (no overall set) for their
        shuffled group codes ``codes[a]`` (b, n), columns in primary order: per attribute,
        (groups, m, b) and (groups, K, b) (None without ranks)."""
        b = codes[0].shape[0]
        offsets = np.cumsum([0] + list(n_groups))
        sets = np.empty((self.n, len(codes), b), dtype=np.int32 if offsets[-1] > 127
                        else np.int8)
        for a, c in enumerate(codes):
            np.add(c.T, offsets[a], out=sets[:, a, :], casting="unsafe")
        ones = np.ones((self.n, 1), dtype=np.int32)
        ranks = ranks and self.ranks
        S, U, AP, P, N = self._run(ones, sets, sets, b, int(offsets[-1]), int(offsets[-1]),
                                   ranks, False)
        auroc = self._ranks(U, AP, P, N, ranks, False)[0]
        return [(S[o:o + g], None if auroc is None else auroc[o:o + g])
                for o, g in zip(offsets[:-1], n_groups)]

    @staticmethod
    def _ranks(U, AP, P, N, ranks, auprc):
        if not ranks:
            return None, None
        auroc = _safe_div(U, P * N).transpose(1, 0, 2)
        ap = None
        if auprc:
            ap = np.where(P + N > 0, _safe_div(AP, P), np.nan).transpose(1, 0, 2)
        return auroc, ap
