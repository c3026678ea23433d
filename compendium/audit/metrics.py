r"""Utility and fairness metrics of the five papers, as pure functions and as one spec list.

Two layers:

* a **weighted engine** (:func:`base_metrics`) that computes every per-label utility metric
  of one set of rows for many weight vectors at once: the columns of an ``(n, B)`` weight
  matrix are the bootstrap resamples (counts), permutation memberships (0/1) or a single
  column of ones (the point estimate).  Confusion counts, accuracy and ECE are linear in the
  weights (one matrix product); AUROC and AUPRC come from cumulative weighted counts over
  the rows sorted once by score.  The bootstrap therefore needs no Python loop over
  resamples.
* the **spec list** :data:`METRICS`: one :class:`MetricSpec` per metric, with its formula.
  Group reductions (gaps, worst group), the public fairlearn-style functions (``f1_gap``,
  ``tpr_gap``, ...), the audit table and the book's glossary are all generated from it.

Conventions: ``y_true`` first, then ``y_pred`` or ``y_score``; ``sensitive_features`` is
keyword-only.  A task is inferred from the arrays: 1-D 0/1 truth with 1-D scores is binary,
1-D class labels with ``(n, K)`` scores is multi-class, a 2-D 0/1 truth is multi-label.
Undefined values (no positives for a TPR, one class only for an AUROC, an empty group) are
``nan``, never 0.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from .predictions import TaskData, task_data

#: Default number of ECE bins.
ECE_BINS = 10
#: ECE binning schemes: equal-width bins, equal-mass bins (edges from the unweighted rows),
#: or one bin per sample (mean absolute calibration error, Paper A's eq. 4 reading).
BINNINGS = ("uniform", "quantile", "sample")

# ============================================================================ engine


def _bin_index(conf: np.ndarray, n_bins: int, binning: str) -> tuple[np.ndarray, int]:
    """Bin of every confidence, shape like ``conf``; returns (bins, number of bins)."""
    if binning == "uniform":
        return np.minimum((conf * n_bins).astype(np.int64), n_bins - 1), n_bins
    if binning == "quantile":
        out = np.zeros(conf.shape, dtype=np.int64)
        for e in range(conf.shape[1]):
            edges = np.quantile(conf[:, e], np.linspace(0, 1, n_bins + 1)[1:-1]) if len(conf) else []
            out[:, e] = np.searchsorted(edges, conf[:, e], side="right")
        return out, n_bins
    if binning == "sample":
        n = conf.shape[0]
        return np.broadcast_to(np.arange(n)[:, None], conf.shape).copy(), max(n, 1)
    raise ConfigError(f"unknown ECE binning {binning!r} (choose from {', '.join(BINNINGS)})")


def _design(d: TaskData, n_bins: int, binning: str) -> tuple[np.ndarray, dict[str, slice]]:
    """Per-row columns whose weighted sums give every linear statistic."""
    y, p = d.y, d.pred
    e = d.conf.shape[1]
    blocks = {
        "ones": np.ones((d.n, 1)),
        "correct": d.correct.astype(float),
        "tp": (y & p).astype(float),
        "fp": (~y & p).astype(float),
        "fn": (y & ~p).astype(float),
        "tn": (~y & ~p).astype(float),
    }
    conf, hit = d.ece_conf, d.ece_hit
    if binning == "sample":
        blocks["ece_abs"] = np.abs(hit - conf)
    else:
        bins, nb = _bin_index(conf, n_bins, binning)
        # scores outside [0, 1] (a rank metric accepts any score) land in the end bins
        bins = np.clip(bins, 0, nb - 1)
        diff = hit - conf
        ece = np.zeros((d.n, e * nb))
        cols = bins + nb * np.arange(e)[None, :]
        np.put_along_axis(ece, cols, diff, axis=1)
        blocks["ece_bins"] = ece
    slices, start = {}, 0
    for name, block in blocks.items():
        slices[name] = slice(start, start + block.shape[1])
        start += block.shape[1]
    return np.concatenate(list(blocks.values()), axis=1), slices


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


@dataclasses.dataclass
class _RankPlan:
    """Row orders of one label, independent of the weights (computed once per row set).

    Negatives are cut into segments at every position where some positive's score falls
    in the sorted negative scores; ``segments @ w`` sums each segment's weights (a sparse
    product that reads every negative row once), and one cumulative sum over the (few)
    segments gives, for every positive, the weight of the negatives scoring below it.
    """

    pos: np.ndarray        # positive rows sorted by score
    segments: object       # sparse (n_segments, n) 0/1 matrix of the negatives' segments
    below_left: np.ndarray   # per sorted positive: segment index of "negatives < s_i"
    below_right: np.ndarray  # ... of "negatives <= s_i"
    pos_left: np.ndarray   # per sorted positive: # positives with a strictly lower score
    neg_ties: bool = True  # some positive score equals some negative score
    pos_ties: bool = True  # some positive scores are equal


def _rank_plan(y: np.ndarray, s: np.ndarray) -> _RankPlan:
    from scipy import sparse

    n = len(y)
    neg = np.flatnonzero(~y)
    pos = np.flatnonzero(y)
    neg = neg[np.argsort(s[neg], kind="stable")]
    pos = pos[np.argsort(s[pos], kind="stable")]
    sn, sp = s[neg], s[pos]
    left, right = np.searchsorted(sn, sp, "left"), np.searchsorted(sn, sp, "right")
    edges = np.unique(np.concatenate([[0, len(neg)], left, right]))
    segments = sparse.csr_matrix((np.ones(len(neg), dtype=np.float32), neg, edges),
                                 shape=(len(edges) - 1, n))
    pos_left = np.searchsorted(sp, sp, "left")
    return _RankPlan(pos, segments, np.searchsorted(edges, left), np.searchsorted(edges, right),
                     pos_left, neg_ties=bool((left != right).any()),
                     pos_ties=bool((pos_left != np.arange(len(pos))).any()))


def _rank_metrics(plan: _RankPlan, w: np.ndarray, auprc: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted AUROC (Mann-Whitney, ties count 1/2) and average precision, per column of w
    (``auprc=False``: the AUROC only, the average precision is None).

    ``w`` (float32) holds integer counts or 0/1 memberships: partial sums stay in float32,
    which is exact for integers below 2**24, and the final sums accumulate in float64.
    """
    b = w.shape[1]
    n_seg = plan.segments.shape[0]
    cn = np.empty((n_seg + 1, b), dtype=np.float32)
    cn[0] = 0.0
    if n_seg:
        cn[1:] = plan.segments @ w
        np.cumsum(cn[1:], axis=0, out=cn[1:])
    wp = w[plan.pos]
    cp = np.empty((len(plan.pos) + 1, b), dtype=np.float32)
    cp[0] = 0.0
    np.cumsum(wp, axis=0, out=cp[1:])
    n_tot = cn[-1].astype(float)
    p_tot = cp[-1].astype(float)
    below_l = cn[plan.below_left]
    if plan.neg_ties:
        twice_below = cn[plan.below_right]
        twice_below += below_l      # negatives below, counting ties twice
    else:                           # no positive ties a negative: left == right
        twice_below = below_l * 2.0
    twice_below *= wp
    auroc = _safe_div(0.5 * twice_below.sum(axis=0, dtype=np.float64), p_tot * n_tot)
    if not auprc:
        return auroc, None
    # precision at the threshold s_i: positives and negatives scoring >= s_i
    if plan.pos_ties:
        tp_ge = cp[plan.pos_left]
        np.subtract(cp[-1][None, :], tp_ge, out=tp_ge)
    else:                           # distinct positive scores: pos_left == arange
        tp_ge = np.subtract(cp[-1][None, :], cp[:-1])
    np.subtract(cn[-1][None, :], below_l, out=below_l)  # now: negatives >= s_i
    below_l += tp_ge
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(tp_ge, below_l, out=tp_ge, where=below_l > 0)
    tp_ge[below_l <= 0] = 0.0
    tp_ge *= wp
    auprc = _safe_div(tp_ge.sum(axis=0, dtype=np.float64), p_tot)
    auprc = np.where(n_tot + p_tot > 0, auprc, np.nan)
    return auroc, auprc


class RowSet:
    """Precomputed design of one set of rows, evaluated for many weight columns.

    Parameters
    ----------
    data : TaskData
        The rows (already restricted to the set).
    n_bins, binning :
        ECE binning (see :func:`ece`).
    ranks : bool
        Prepare AUROC/AUPRC (sorting once per label).
    parent, rows : RowSet and row indices, optional
        ``data`` is ``parent.data.take(rows)``: reuse the parent's design, so that
        equal-mass ECE bins have the same edges in every group.
    """

    def __init__(self, data: TaskData, *, n_bins: int = ECE_BINS, binning: str = "uniform",
                 ranks: bool = True, parent: "RowSet | None" = None,
                 rows: np.ndarray | None = None) -> None:
        self.data = data
        self.n_bins = n_bins
        self.binning = binning
        if parent is not None:
            # a subset of the parent's rows shares its design, hence its ECE bins
            self.x, self.slices = parent.x[rows], parent.slices
        else:
            self.x, self.slices = _design(data, n_bins, binning)
        self.plans = ([_rank_plan(data.y[:, k], data.score[:, k]) for k in range(data.y.shape[1])]
                      if ranks else None)

    def evaluate(self, w: np.ndarray | None = None, *, ranks: bool = True,
                 auprc: bool = True) -> dict[str, np.ndarray]:
        """Base metrics for each weight column.

        Parameters
        ----------
        w : array of shape (n, B), optional
            Non-negative weights (counts of a resample, 0/1 membership...); default one
            column of ones (the plain estimate).

        Returns
        -------
        dict
            ``n`` (B,), and for each base metric an array of shape (L, B) over its labels:
            ``accuracy``, ``f1``, ``tpr``, ``fpr``, ``udr``, ``auroc``, ``auprc``, ``ece``
            (ranks only when prepared and ``ranks``; ``auprc=False`` skips the average
            precision), plus the confusion counts ``tp, fp, fn, tn``.
        """
        d = self.data
        if w is None:
            w = np.ones((d.n, 1))
        w = np.asarray(w, dtype=float)
        out = self.from_sums(self.x.T @ w)  # (m, B)
        if self.plans is not None and ranks:
            w32 = w.astype(np.float32)
            values = [_rank_metrics(plan, w32, auprc) for plan in self.plans]
            out["auroc"] = np.stack([r[0] for r in values])
            if auprc:
                out["auprc"] = np.stack([r[1] for r in values])
        return out

    def from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """The linear metrics from the weighted column sums ``x.T @ w`` (shape (m, B)):
        sums are additive over disjoint row sets, so a complement is a subtraction."""
        d = self.data
        s = self.slices
        n = sums[s["ones"]][0]
        tp, fp, fn, tn = (sums[s[k]] for k in ("tp", "fp", "fn", "tn"))
        out = {"n": n, "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        if d.task == "multilabel":
            out["accuracy"] = _safe_div(tp + tn, n[None, :])
        else:
            out["accuracy"] = _safe_div(sums[s["correct"]], n[None, :])
        out["tpr"] = _safe_div(tp, tp + fn)
        out["fpr"] = _safe_div(fp, fp + tn)
        out["udr"] = 1.0 - out["tpr"]
        out["f1"] = _safe_div(2 * tp, 2 * tp + fp + fn)
        e = d.conf.shape[1]
        if "ece_abs" in s:
            ece = sums[s["ece_abs"]]
        else:
            per_bin = sums[s["ece_bins"]].reshape(e, -1, sums.shape[1])
            ece = np.abs(per_bin).sum(axis=1)
        out["ece"] = _safe_div(ece, n[None, :])
        return out


def _take_rows(a: np.ndarray, columns: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[i] = a[i, columns]`` row by row: a 1-D ``np.take`` per row is about twice as
    fast as the 2-D fancy index ``a[:, columns]``."""
    for i in range(a.shape[0]):
        np.take(a[i], columns, out=out[i])
    return out


class GroupAUROC:
    """AUROC of every group for many shuffled group assignments, without a sort per
    permutation.

    For one label the rows are sorted once by score.  The Mann-Whitney count of group ``g``
    is ``U_g = sum over positives i of g of #{negatives of g scoring below i}``.  Each row
    of one class (the *counted* class, the larger one) adds ``2 ** (slot(g) * width)`` to a
    64-bit word, one bit field per group, each wide enough for the largest group: one
    cumulative sum over the counted rows in score order then holds, at every position, the
    counted rows below it of every group at once.  Each row of the other (*reading*) class
    reads its own group's field, and one bincount sums the fields by group.  The work per
    permutation is a few passes over the rows whatever the number of groups (more words
    only when the fields do not fit in 64 bits; beyond :attr:`max_words` words a radix
    sort per permutation is cheaper and used).  When positives outnumber negatives the
    roles swap and the rows are walked by decreasing score (``U_g`` then counts, for every
    negative, the positives of its group scoring above it: the same pairs).

    Exact when no positive shares its score with a negative (:attr:`exact`); otherwise the
    caller uses the weighted engine (ties count one half there).  The audit itself now
    evaluates permutations with :class:`~compendium.audit.sweep.Sweep` (ties included,
    linear in rows); this class remains a tested reference.

    Parameters
    ----------
    data : TaskData
        All audited rows.
    """

    #: Above this many 64-bit words of fields (many groups), a stable radix sort of the
    #: group codes per label and permutation is cheaper (:meth:`_evaluate_sorted`).
    max_words = 2

    def __init__(self, data: TaskData) -> None:
        # per label: counted rows and reading rows (in walking order), counted rows below
        # each reading row; and the rows by increasing score with their truth
        self.plans: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.orders, self.y_sorted = [], []
        self.exact = True
        for k in range(data.y.shape[1]):
            order = np.argsort(data.score[:, k], kind="stable")
            s, y = data.score[order, k], data.y[order, k]
            if len(s):
                starts = np.r_[0, np.flatnonzero(np.diff(s) != 0) + 1]
                mixed = np.maximum.reduceat(y, starts) != np.minimum.reduceat(y, starts)
                self.exact &= not bool(mixed.any())
            self.orders.append(order)
            self.y_sorted.append(y)
            if 2 * int(y.sum()) > len(y):   # read at the negatives, count positives above
                order, y = order[::-1], ~y[::-1]
            self.plans.append((order[~y], order[y], np.cumsum(~y)[y]))

    def evaluate(self, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """AUROC per group, label and permutation.

        Parameters
        ----------
        codes : array of small int, shape (b, n)
            Group code of every row in each of ``b`` permutations (row order of ``data``).
        sizes : array of int, shape (G,)
            Rows per group (the same in every permutation).

        Returns
        -------
        ndarray, shape (G, K, b)
            nan for a group without positives or without negatives.
        """
        codes = np.ascontiguousarray(codes)
        b = codes.shape[0]
        sizes = np.asarray(sizes, dtype=np.int64)
        n_groups = len(sizes)
        present = np.flatnonzero(sizes > 0)
        out = np.full((n_groups, len(self.plans), b), np.nan)
        if not len(present):
            return out
        width = max(int(sizes.max()).bit_length(), 1)
        per_word = 64 // width
        if -(-len(present) // per_word) > self.max_words:
            return self._evaluate_sorted(codes, sizes)
        field = np.uint64((1 << width) - 1)
        # per word of bit fields: the shift of every row's field (255: not in this word,
        # and numpy shifts a 64-bit integer by 64 or more to 0)
        shifts = []
        for start in range(0, len(present), per_word):
            lut = np.full(n_groups, 255, dtype=np.uint8)
            word = present[start:start + per_word]
            lut[word] = np.arange(len(word)) * width
            shifts.append(lut[codes])
        offsets = (np.arange(b) * n_groups)[:, None]
        for k, (counted, reading, below) in enumerate(self.plans):
            words = np.empty((b, len(counted) + 1), dtype=np.uint64)
            words[:, 0] = 0
            shift_c = np.empty((b, len(counted)), dtype=np.uint8)
            shift_r = np.empty((b, len(reading)), dtype=np.uint8)
            got = np.empty((b, len(reading)), dtype=np.uint64)
            own = None
            for shift in shifts:
                _take_rows(shift, counted, shift_c)
                np.left_shift(np.uint64(1), shift_c, out=words[:, 1:])
                np.cumsum(words[:, 1:], axis=1, out=words[:, 1:])
                _take_rows(words, below, got)       # every group's count below, packed
                _take_rows(shift, reading, shift_r)
                np.right_shift(got, shift_r, out=got)
                got &= field                         # the reading row's own group
                if own is None:
                    own, got = got, np.empty_like(got)
                else:
                    own += got
            group = _take_rows(codes, reading, np.empty((b, len(reading)), codes.dtype))
            flat = (group + offsets).ravel()
            u = np.bincount(flat, weights=own.ravel(), minlength=b * n_groups)
            n_read = np.bincount(flat, minlength=b * n_groups).astype(float)
            u, n_read = u.reshape(b, n_groups).T, n_read.reshape(b, n_groups).T
            n_counted = sizes[:, None] - n_read
            out[present, k, :] = _safe_div(u, n_read * n_counted)[present]
        return out

    def _evaluate_sorted(self, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """:meth:`evaluate` for many groups: for one label, the rows sorted by score are
        stably re-sorted by their group code (a radix sort of small integers); within
        each group's block the negatives seen so far are a running count, so the
        Mann-Whitney statistic of every group is one cumulative sum and one segment sum
        per permutation."""
        b, n = codes.shape
        present = np.flatnonzero(sizes > 0)
        starts = np.r_[0, np.cumsum(sizes)[:-1]][present]
        # segment sums are at most (n/2)**2: unsigned 32-bit when that fits (no casting)
        acc = np.uint32 if n * n // 4 < 2**32 else np.int64
        out = np.full((len(sizes), len(self.orders), b), np.nan)
        for k, (order, y) in enumerate(zip(self.orders, self.y_sorted)):
            by_group = np.argsort(codes[:, order], axis=1, kind="stable")
            ys = y[by_group]                                   # (b, n) truth, grouped
            neg = np.cumsum(~ys, axis=1, dtype=acc)            # negatives up to here
            neg *= ys                                          # ... at each positive
            above = np.add.reduceat(neg, starts, axis=1).astype(float)  # (b, G')
            pos = np.add.reduceat(ys, starts, axis=1, dtype=acc).astype(float)
            negs = sizes[present][None, :] - pos
            before = np.cumsum(negs, axis=1) - negs            # negatives of earlier groups
            u = above - pos * before
            out[present, k, :] = _safe_div(u, pos * negs).T
        return out


# ============================================================================ spec list


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric of the audit.

    Attributes
    ----------
    name : str
        Name in the audit table.
    kind : {"utility", "fairness"}
    title : str
        Short human name.
    formula : str
        LaTeX formula (the default reading).
    description : str
        One-paragraph definition.
    base : str or None
        For a fairness metric, the per-group base metric(s) it reduces (``"tpr,fpr"``
        for EqOdds); for a utility metric, the engine key.
    over_groups : {"range", "min", None}
        How per-group values are reduced: ``range`` = max minus min over groups (the gap),
        ``min`` = the worst group.
    needs : {"pred", "score"}
        Whether the public function takes predicted labels or scores.
    higher_is_better : bool
    papers : str
        Which papers use it.
    alternative : str
        The other reading where a paper is ambiguous (offered as an option).
    """

    name: str
    kind: str
    title: str
    formula: str
    description: str
    base: str | None = None
    over_groups: str | None = None
    needs: str = "pred"
    higher_is_better: bool = True
    papers: str = ""
    alternative: str = ""


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("accuracy", "utility", "Accuracy",
               r"\mathrm{Acc} = \frac{1}{N}\sum_i [\hat y_i = y_i]",
               "Share of correct predictions (multi-class: arg-max class; multi-label: per label, "
               "with the macro average over labels).", base="accuracy", papers="A"),
    MetricSpec("f1", "utility", "F1 score (per class, macro)",
               r"F1_c = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c},\quad "
               r"F1_{macro} = \frac{1}{C}\sum_c F1_c",
               "Harmonic mean of precision and recall of class c, one-vs-rest; the macro F1 is "
               "the unweighted mean over classes.", base="f1", papers="A, D"),
    MetricSpec("auroc", "utility", "AUROC",
               r"\mathrm{AUROC}_c = \frac{1}{P_c N_c}\sum_{i:y_i=c}\sum_{j:y_j\neq c}"
               r"\left([s_i>s_j] + \tfrac12[s_i=s_j]\right)",
               "Area under the ROC curve of the one-vs-rest score of class c (Mann-Whitney "
               "statistic; ties count one half). Undefined when the set has one class only.",
               base="auroc", needs="score", papers="B, C, D, E"),
    MetricSpec("auprc", "utility", "AUPRC (average precision)",
               r"\mathrm{AP}_c = \sum_t (R_t - R_{t-1})\,P_t",
               "Average precision: precision at each distinct score threshold weighted by the "
               "recall gained there (scikit-learn's average_precision_score).",
               base="auprc", needs="score", papers="E"),
    MetricSpec("tpr", "utility", "True-positive rate (sensitivity)",
               r"\mathrm{TPR}_c = \frac{TP_c}{TP_c + FN_c}", "Recall of class c.",
               base="tpr", papers="A, B"),
    MetricSpec("fpr", "utility", "False-positive rate",
               r"\mathrm{FPR}_c = \frac{FP_c}{FP_c + TN_c}",
               "Share of the negatives of class c predicted positive.",
               base="fpr", higher_is_better=False, papers="A, B, C"),
    MetricSpec("udr", "utility", "Underdiagnosis rate",
               r"\mathrm{UDR}_c = 1 - \mathrm{TPR}_c = \frac{FN_c}{TP_c + FN_c}",
               "Share of the positives of class c that are missed.",
               base="udr", higher_is_better=False, papers="B"),
    MetricSpec("ece", "utility", "Expected calibration error",
               r"\mathrm{ECE} = \sum_{b=1}^{M}\frac{|B_b|}{N}\,"
               r"\left|\mathrm{acc}(B_b) - \mathrm{conf}(B_b)\right|",
               "Calibration gap with M = 10 equal-width bins by default: bin b holds the "
               "confidences in [(b-1)/M, b/M), the last bin also holds 1. Binary and "
               "multi-label (per label): by default the confidence is the positive-class "
               "probability p and acc(B) the share of positives in the bin (FairMedFM, MEDFAIR); "
               "multi-class: the top-label confidence against whether the arg-max class is right. "
               "Example: two positives scored 0.3 and 0.7. Positive reading: bins [0.3, 0.4) "
               "and [0.7, 0.8), ECE = (|1 - 0.3| + |1 - 0.7|) / 2 = 0.5. Predicted-value reading: "
               "the predictions are 0 (confidence 0.7, wrong) and 1 (confidence 0.7, right), one "
               "bin [0.7, 0.8), ECE = |0.5 - 0.7| = 0.2.",
               base="ece", needs="score", higher_is_better=False, papers="A",
               alternative="confidence='predicted' (binary, multi-label: max(p, 1 - p) at a 0.5 "
                           "threshold, the confidence of the predicted value against whether it is "
                           "right); binning='quantile' (equal-mass bins; in an audit the edges come "
                           "from all audited rows, so groups share bins) or binning='sample' (one bin "
                           r"per sample: $\frac1N\sum_i |o_i - p_i|$, a reading of Paper A eq. 4)"),
    MetricSpec("f1_var", "fairness", "Variance of class-wise F1 (Var_F1)",
               r"\mathrm{Var}_{F1} = \frac{1}{C}\sum_{c=1}^{C}\left(F1_c - \overline{F1}\right)^2",
               "Population variance of the per-class F1 over the C classes (Paper A eq. 1): "
               "fairness across disease types.", base="f1", higher_is_better=False, papers="A",
               alternative="ddof=1: sample variance with 1/(C-1)"),
    MetricSpec("f1_gap", "fairness", "F1 gap",
               r"F1_\Delta = \frac{1}{C}\sum_{c=1}^{C}\left(\max_g F1_c^g - \min_g F1_c^g\right)",
               "Mean over classes of the per-class F1 gap between groups (Paper A eq. 2); with "
               "two groups the gap is |F1_c^A - F1_c^A'|.", base="f1", over_groups="range",
               higher_is_better=False, papers="A",
               alternative="macro='gap_of_macro': gap between the groups' macro F1"),
    MetricSpec("eqodds", "fairness", "Equalized-odds gap",
               r"\mathrm{EqOdds} = \frac{1}{C}\sum_{c}\tfrac12\left(\Delta\mathrm{TPR}_c + "
               r"\Delta\mathrm{FPR}_c\right)",
               "Mean over classes of the average of the TPR gap and the FPR gap between groups "
               "(Paper A eq. 3).", base="tpr,fpr", over_groups="range", higher_is_better=False,
               papers="A",
               alternative=r"eqodds='max': $\max(\Delta\mathrm{TPR}_c, \Delta\mathrm{FPR}_c)$ "
                           "per class, fairlearn's equalized_odds_difference; "
                           "macro='gap_of_macro': the gaps of the groups' macro TPR and FPR"),
    MetricSpec("ece_gap", "fairness", "ECE gap",
               r"\mathrm{ECE}_\Delta = \max_g \mathrm{ECE}^g - \min_g \mathrm{ECE}^g",
               "Difference in calibration error between groups (Paper A eq. 4).", base="ece",
               over_groups="range", needs="score", higher_is_better=False, papers="A",
               alternative="binning='sample': the groups' mean |o_i - p_i| (no bins)"),
    MetricSpec("auroc_gap", "fairness", "AUROC gap",
               r"\Delta\mathrm{AUROC}_c = \max_g \mathrm{AUROC}_c^g - \min_g \mathrm{AUROC}_c^g",
               "Largest difference in AUROC between groups.", base="auroc", over_groups="range",
               needs="score", higher_is_better=False, papers="B"),
    MetricSpec("worst_group_auroc", "fairness", "Worst-group AUROC",
               r"\min_g \mathrm{AUROC}_c^g",
               "AUROC of the worst-served group (macro: the group with the lowest macro AUROC).",
               base="auroc", over_groups="min", needs="score", papers="B"),
    MetricSpec("tpr_gap", "fairness", "TPR gap",
               r"\Delta\mathrm{TPR}_c = \max_g \mathrm{TPR}_c^g - \min_g \mathrm{TPR}_c^g",
               "Largest difference in sensitivity between groups.", base="tpr",
               over_groups="range", higher_is_better=False, papers="A, B"),
    MetricSpec("fpr_gap", "fairness", "FPR gap",
               r"\Delta\mathrm{FPR}_c = \max_g \mathrm{FPR}_c^g - \min_g \mathrm{FPR}_c^g",
               "Largest difference in false-positive rate between groups.", base="fpr",
               over_groups="range", higher_is_better=False, papers="A, C"),
    MetricSpec("udr_gap", "fairness", "Underdiagnosis gap",
               r"\Delta\mathrm{UDR}_c = \max_g \mathrm{UDR}_c^g - \min_g \mathrm{UDR}_c^g",
               "Largest difference in underdiagnosis rate between groups (equal to the TPR gap).",
               base="udr", over_groups="range", higher_is_better=False, papers="B"),
    MetricSpec("fpr_diff", "fairness", "Signed FPR difference (two groups, or a named pair)",
               r"\mathrm{FPR}^{a} - \mathrm{FPR}^{b}",
               "Signed FPR difference between two groups, first minus second as the group "
               "column names them ('a vs b' = a - b): for every named pair, e.g. Black - White, "
               "Female - Male, 18-40 vs 80+ (Paper C; tested by permutation), and beside the "
               "FPR gap of every attribute with two groups.",
               base="fpr", over_groups="pair", higher_is_better=False, papers="C"),
) + tuple(
    MetricSpec(f"{b}_diff", "fairness", f"Signed {t} difference (two groups)",
               rf"\mathrm{{{t}}}^{{a}} - \mathrm{{{t}}}^{{b}}",
               f"Signed {t} difference between the two groups of an attribute with two groups, "
               "first minus second as the group column names them ('a vs b' = a - b), beside "
               f"the {t} gap; the gap's interval is the absolute value of this difference's "
               "interval. Not tested again: the gap's permutation test is its two-sided test.",
               base=b, over_groups="pair", needs=needs, higher_is_better=hib, papers=papers)
    for b, t, needs, hib, papers in (("f1", "F1", "pred", True, "A"),
                                     ("tpr", "TPR", "pred", True, "A, B"),
                                     ("udr", "UDR", "pred", False, "B"),
                                     ("auroc", "AUROC", "score", True, "B"),
                                     ("ece", "ECE", "score", False, "A")))

SPECS: dict[str, MetricSpec] = {m.name: m for m in METRICS}
UTILITY = tuple(m.name for m in METRICS if m.kind == "utility")
GAPS = tuple(m.name for m in METRICS if m.over_groups in ("range", "min"))
#: Signed differences between two groups, by the per-group base metric they compare.
DIFFS = {m.base: m.name for m in METRICS if m.over_groups == "pair"}


def spec(name: str) -> MetricSpec:
    """The spec of metric ``name`` (ConfigError naming the known ones otherwise)."""
    try:
        return SPECS[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r} (known: {', '.join(SPECS)})") from None


# ============================================================================ reductions


def macro(values: np.ndarray) -> np.ndarray:
    """Unweighted mean over the label axis (axis -2); nan if any label is undefined."""
    return values.mean(axis=-2)


def population_variance(values: np.ndarray, *, ddof: int = 0) -> np.ndarray:
    """Variance over the label axis (axis -2) with ``1/(C - ddof)``."""
    return values.var(axis=-2, ddof=ddof)


def reduce_groups(values: np.ndarray, how: str) -> np.ndarray:
    """Reduce the group axis (axis 0): ``range`` (max - min) or ``min``; nan propagates."""
    if how == "range":
        return values.max(axis=0) - values.min(axis=0)
    if how == "min":
        return values.min(axis=0)
    raise ConfigError(f"unknown group reduction {how!r}")


def fairness_from_groups(name: str, per_group: dict[str, np.ndarray], *,
                         eqodds: str = "mean", gap_macro: str = "mean_of_gaps"
                         ) -> tuple[np.ndarray, np.ndarray | None]:
    """A fairness metric from per-group base metrics.

    Parameters
    ----------
    name : str
        A metric of :data:`GAPS`.
    per_group : dict
        Base metric -> array of shape (G, L, B) (groups x labels x replicates).
    eqodds : {"mean", "max"}
        Combination of the TPR and FPR gaps per class.
    gap_macro : {"mean_of_gaps", "gap_of_macro"}
        Macro summary of a gap: mean over classes of the per-class gaps (Paper A eq. 2,
        default) or the gap between the groups' macro averages.

    Returns
    -------
    per_label : array (L, B)
    macro : array (B,) or None when there is a single label
    """
    sp = spec(name)
    if name == "eqodds":
        t = reduce_groups(per_group["tpr"], "range")
        f = reduce_groups(per_group["fpr"], "range")
        combine = {"mean": lambda a, b: 0.5 * (a + b), "max": np.maximum}.get(eqodds)
        if combine is None:
            raise ConfigError(f"unknown eqodds reading {eqodds!r} (choose mean or max)")
        per_label = combine(t, f)
        if per_label.shape[0] == 1:
            return per_label, None
        if gap_macro == "gap_of_macro":   # the groups' macro TPR and FPR, then their gaps
            return per_label, combine(reduce_groups(macro(per_group["tpr"]), "range"),
                                      reduce_groups(macro(per_group["fpr"]), "range"))
        if gap_macro != "mean_of_gaps":
            raise ConfigError(f"unknown gap_macro {gap_macro!r} (choose mean_of_gaps or gap_of_macro)")
        return per_label, macro(per_label)
    values = per_group[sp.base]
    per_label = reduce_groups(values, sp.over_groups)
    if per_label.shape[0] == 1:
        return per_label, None
    if sp.over_groups == "min" or gap_macro == "gap_of_macro":
        return per_label, reduce_groups(macro(values), sp.over_groups)
    if gap_macro != "mean_of_gaps":
        raise ConfigError(f"unknown gap_macro {gap_macro!r} (choose mean_of_gaps or gap_of_macro)")
    return per_label, macro(per_label)


# ============================================================================ public API


def as_task_data(y_true, y_other, *, needs: str, labels: Sequence | None = None,
                 threshold: float = 0.5) -> TaskData:
    """Infer the task from fairlearn-style arrays and build :class:`TaskData`.

    ``y_other`` is ``y_pred`` (``needs="pred"``) or ``y_score`` (``needs="score"``).
    Binary: 1-D 0/1 ``y_true``; multi-class: 1-D labels with more than two values, or any
    1-D ``y_true`` with 2-D scores; multi-label: 2-D ``y_true``.
    """
    yt = np.asarray(y_true)
    yo = np.asarray(y_other)
    if len(yt) != len(yo):
        raise InputError(f"y_true has {len(yt)} rows but the predictions have {len(yo)}")
    if yt.ndim == 2:
        names = list(labels) if labels is not None else [str(i) for i in range(yt.shape[1])]
        if needs == "score":
            return task_data("multilabel", names, yt.astype(bool), yo, threshold=threshold)
        return task_data("multilabel", names, yt.astype(bool), np.asarray(yo, float), pred=yo)
    classes = list(labels) if labels is not None else None
    is_binary = (yo.ndim == 1 and (classes is None or len(classes) <= 2)
                 and set(np.unique(yt).tolist()) <= {0, 1, True, False})
    if is_binary and (needs == "score" or set(np.unique(yo).tolist()) <= {0, 1, True, False}):
        y = yt.astype(bool)[:, None]
        if needs == "score":
            return task_data("binary", ["1"], y, yo.astype(float)[:, None], threshold=threshold)
        return task_data("binary", ["1"], y, yo.astype(float)[:, None], pred=yo.astype(bool)[:, None])
    if classes is None:
        classes = (np.unique(yt) if needs == "score" or yo.ndim == 2
                   else np.unique(np.concatenate([yt, yo])))
    classes = np.asarray(classes)
    y = yt[:, None] == classes[None, :]
    if needs == "score":
        if yo.ndim != 2 or yo.shape[1] != len(classes):
            raise InputError(f"multi-class y_score must have one column per class "
                             f"({len(classes)}), got shape {yo.shape}")
        return task_data("multiclass", [str(c) for c in classes], y, yo)
    pred = yo[:, None] == classes[None, :]
    return task_data("multiclass", [str(c) for c in classes], y, pred.astype(float), pred=pred)


def _point(d: TaskData, base: str, *, n_bins: int, binning: str) -> np.ndarray:
    ranks = base in ("auroc", "auprc")
    return RowSet(d, n_bins=n_bins, binning=binning, ranks=ranks).evaluate()[base][:, 0]


def _group_codes(sensitive_features, n: int) -> tuple[np.ndarray, list]:
    sf = sensitive_features
    if isinstance(sf, pd.DataFrame):
        key = sf.astype(str).agg("/".join, axis=1).to_numpy()
    else:
        arr = np.asarray(sf)
        key = (np.array(["/".join(map(str, r)) for r in arr]) if arr.ndim == 2 else arr)
    if len(key) != n:
        raise InputError(f"sensitive_features has {len(key)} rows, y_true has {n}")
    groups, codes = np.unique(key, return_inverse=True)
    return codes, list(groups)


def _by_group(d: TaskData, base: str, codes: np.ndarray, n_groups: int, *,
              n_bins: int, binning: str) -> np.ndarray:
    return np.stack([_point(d.take(np.flatnonzero(codes == g)), base, n_bins=n_bins,
                            binning=binning) for g in range(n_groups)])


def _average(values: np.ndarray, average: str | None, labels: Sequence[str]):
    if average is None:
        return pd.Series(values, index=list(labels))
    if average == "macro":
        return float(values.mean())
    raise ConfigError(f"unknown average {average!r} (choose 'macro' or None)")


def _make_utility(sp: MetricSpec) -> Callable:
    other = "y_pred" if sp.needs == "pred" else "y_score"

    def metric(y_true, y_other, *, labels=None, average="macro", threshold=0.5,
               n_bins=ECE_BINS, binning="uniform", confidence="positive"):
        d = as_task_data(y_true, y_other, needs=sp.needs, labels=labels,
                         threshold=threshold).with_confidence(confidence)
        values = _point(d, sp.base, n_bins=n_bins, binning=binning)
        names = d.ece_labels if sp.base == "ece" else (
            d.accuracy_labels if sp.base == "accuracy" else d.labels)
        return float(values[0]) if len(values) == 1 else _average(values, average, names)

    metric.__name__ = sp.name
    metric.__doc__ = _doc(sp, other, group=False)
    return metric


def _make_fairness(sp: MetricSpec) -> Callable:
    other = "y_pred" if sp.needs == "pred" else "y_score"

    def metric(y_true, y_other, *, sensitive_features, labels=None, average="macro",
               threshold=0.5, n_bins=ECE_BINS, binning="uniform", eqodds="mean",
               gap_macro="mean_of_gaps", confidence="positive"):
        d = as_task_data(y_true, y_other, needs=sp.needs, labels=labels,
                         threshold=threshold).with_confidence(confidence)
        codes, groups = _group_codes(sensitive_features, d.n)
        bases = sp.base.split(",")
        per_group = {b: _by_group(d, b, codes, len(groups), n_bins=n_bins, binning=binning)[..., None]
                     for b in bases}
        per_label, mac = fairness_from_groups(sp.name, per_group, eqodds=eqodds,
                                              gap_macro=gap_macro)
        if per_label.shape[0] == 1:
            return float(per_label[0, 0])
        if average is None:
            names = d.ece_labels if sp.base == "ece" else d.labels
            return pd.Series(per_label[:, 0], index=list(names))
        if average != "macro":
            raise ConfigError(f"unknown average {average!r} (choose 'macro' or None)")
        return float(mac[0])

    metric.__name__ = sp.name
    metric.__doc__ = _doc(sp, other, group=True)
    return metric


def _doc(sp: MetricSpec, other: str, *, group: bool) -> str:
    lines = [f"{sp.title}.", "", sp.description, "", ".. math::", "", f"    {sp.formula}", "",
             "Parameters", "----------", "y_true : array-like",
             "    Truth: 0/1 (binary), class labels (multi-class) or an (n, K) 0/1 matrix "
             "(multi-label).",
             f"{other} : array-like",
             ("    Predicted labels, same layout as y_true." if other == "y_pred" else
              "    Scores: (n,) for binary, (n, K) for multi-class / multi-label.")]
    if group:
        lines += ["sensitive_features : array-like or DataFrame",
                  "    Group of every row (several columns: their intersection)."]
    lines += ["labels : sequence, optional", "    Class/label names (order of the score columns).",
              "average : {'macro', None}",
              "    'macro': mean over classes; None: a Series per class.",
              "", "Returns", "-------", "float or Series",
              "    nan when undefined (e.g. no positives).", "",
              "Generated from :data:`compendium.audit.metrics.METRICS`."]
    if sp.alternative:
        lines += ["", f"Other reading: {sp.alternative}."]
    return "\n".join(lines)


accuracy = _make_utility(SPECS["accuracy"])
f1 = _make_utility(SPECS["f1"])
auroc = _make_utility(SPECS["auroc"])
auprc = _make_utility(SPECS["auprc"])
tpr = _make_utility(SPECS["tpr"])
fpr = _make_utility(SPECS["fpr"])
udr = _make_utility(SPECS["udr"])
ece = _make_utility(SPECS["ece"])
f1_gap = _make_fairness(SPECS["f1_gap"])
eqodds = _make_fairness(SPECS["eqodds"])
ece_gap = _make_fairness(SPECS["ece_gap"])
auroc_gap = _make_fairness(SPECS["auroc_gap"])
worst_group_auroc = _make_fairness(SPECS["worst_group_auroc"])
tpr_gap = _make_fairness(SPECS["tpr_gap"])
fpr_gap = _make_fairness(SPECS["fpr_gap"])
udr_gap = _make_fairness(SPECS["udr_gap"])


def f1_var(y_true, y_pred, *, labels=None, ddof: int = 0) -> float:
    r"""Variance of the class-wise F1 over classes (Paper A eq. 1).

    .. math:: \mathrm{Var}_{F1} = \frac{1}{C}\sum_c (F1_c - \overline{F1})^2

    Parameters
    ----------
    y_true, y_pred : array-like
        Class labels (multi-class) or (n, K) indicators (multi-label).
    labels : sequence, optional
        Classes to include.
    ddof : int
        0: population variance (default, Paper A); 1: sample variance.

    Examples
    --------
    >>> round(f1_var([0, 1, 2, 2], [0, 1, 2, 1]), 6)
    0.024691
    """
    d = as_task_data(y_true, y_pred, needs="pred", labels=labels)
    values = _point(d, "f1", n_bins=ECE_BINS, binning="uniform")
    return float(np.var(values, ddof=ddof))


def _make_difference(sp: MetricSpec):
    other = "y_score" if sp.needs == "score" else "y_pred"

    def metric(y_true, y_other, *, sensitive_features, pair: tuple, labels=None,
               average="macro", threshold: float = 0.5):
        d = as_task_data(y_true, y_other, needs=sp.needs, labels=labels, threshold=threshold)
        codes, groups = _group_codes(sensitive_features, d.n)
        a, b = (str(p) for p in pair)
        names = [str(g) for g in groups]
        for g in (a, b):
            if g not in names:
                raise InputError(f"group {g!r} not found (groups: {', '.join(names)})")
        va, vb = (_point(d.take(np.flatnonzero(codes == names.index(g))), sp.base,
                         n_bins=ECE_BINS, binning="uniform") for g in (a, b))
        diff = va - vb
        if len(diff) == 1:
            return float(diff[0])
        return _average(diff, average, d.ece_labels if sp.base == "ece" else d.labels)

    metric.__name__ = f"{sp.base}_difference"
    metric.__doc__ = (f"{sp.title}: ``{sp.base}(pair[0]) - {sp.base}(pair[1])``.\n\n"
                      f"{sp.description}\n\n.. math::\n\n    {sp.formula}\n\n"
                      f"Parameters\n----------\ny_true, {other} : array-like\n"
                      "sensitive_features : array-like\npair : (a, b)\n"
                      "    The two group values, e.g. ``(\"Black\", \"White\")``.\n\n"
                      "Generated from :data:`compendium.audit.metrics.METRICS`.")
    return metric


#: ``fpr_difference``, ``tpr_difference``, ...: one signed difference per ``*_diff`` spec.
fpr_difference = _make_difference(SPECS["fpr_diff"])
f1_difference = _make_difference(SPECS["f1_diff"])
tpr_difference = _make_difference(SPECS["tpr_diff"])
udr_difference = _make_difference(SPECS["udr_diff"])
auroc_difference = _make_difference(SPECS["auroc_diff"])
ece_difference = _make_difference(SPECS["ece_diff"])


def by_group(metric: str, y_true, y_other, *, sensitive_features, labels=None,
             threshold: float = 0.5, n_bins: int = ECE_BINS, binning: str = "uniform",
             confidence: str = "positive") -> pd.DataFrame:
    """Per-group values of a utility metric, like ``MetricFrame(...).by_group``.

    Returns
    -------
    DataFrame
        One row per group (sorted), one column per class/label.
    """
    sp = spec(metric)
    if sp.kind != "utility":
        raise ConfigError(f"by_group takes a utility metric, not {metric!r}")
    d = as_task_data(y_true, y_other, needs=sp.needs, labels=labels,
                     threshold=threshold).with_confidence(confidence)
    codes, groups = _group_codes(sensitive_features, d.n)
    values = _by_group(d, sp.base, codes, len(groups), n_bins=n_bins, binning=binning)
    names = d.ece_labels if sp.base == "ece" else (
        d.accuracy_labels if sp.base == "accuracy" else d.labels)
    return pd.DataFrame(values, index=pd.Index(groups, name="group"), columns=list(names))
