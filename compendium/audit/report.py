"""The audit: every metric, per group and per gap, with bootstrap intervals and p-values.

:func:`audit` returns one tidy table, one row per estimate:

``metric, attribute, group, label, estimate, ci_low, ci_high, p_value, p_adjusted, n, flag,
p_floor, kind, interval``

* ``attribute``: the attribute's name (``all`` for overall rows; ``a+b`` for an
  intersection); ``group``: the group's value (``all`` for overall rows and for gap rows,
  which compare the groups of ``attribute``; ``a vs b`` for a named-pair difference);
* ``label``: the class or label; ``macro`` for macro averages and for gaps averaged over
  classes; ``all`` for quantities computed jointly over classes (multi-class accuracy and
  top-label ECE; binary accuracy);
* ``ci_low, ci_high``: bootstrap interval (patients resampled when a ``patient_id`` column
  is present, stratified by the groups of all attributes), formed as column ``interval``
  says (:data:`INTERVALS`): percentiles for one group or a signed difference; for the gap
  of two groups the absolute value of the signed difference's interval (which holds 0 when
  that one does); for a max-min gap of more groups, a gap averaged over classes, EqOdds
  and ``f1_var``, bounds from intervals of the groups' differences reduced as the statistic
  is (``calibrated``: simultaneous while the lower bound is 0, so valid at a true gap of 0
  too, else calibrated for the statistic).  Every gap of an attribute with two groups has its signed difference beside it
  (``tpr_diff``, ...: group ``a vs b`` = a minus b; kind ``pair``);
* ``p_value``: permutation test of a gap (group membership shuffled, between patients when a
  ``patient_id`` is present and the attribute is constant within patients; sequential with
  ``max_permutations``); ``p_adjusted``: Holm (default), Benjamini-Hochberg or Bonferroni
  within a family (``family``: one attribute x one metric by default, one attribute, or the
  table; ``udr_gap`` equals ``tpr_gap`` and shares its adjusted p-value instead of counting
  twice);
* ``n``: rows behind the estimate; ``flag``: ``small_group`` when a group (or, for a gap,
  one of its groups) has fewer than ``min_group_size`` rows, ``undefined`` when the
  estimate is undefined (e.g. AUROC of a group with one class), ``few_resamples`` when it is
  undefined in more than half the resamples (no interval then), ``biased_bootstrap`` when
  the interval would exclude the estimate (its resamples lie almost all on one side of it:
  no interval then), ``single_group`` for the
  gaps of an attribute with one group, ``p_floor`` when the row's family cannot reach an
  adjusted p-value below alpha, separated by ``;``;
* ``p_floor``: the smallest adjusted p-value the row's family can reach with the
  permutations drawn (``m / (N + 1)``); ``kind``: ``overall``, ``group``, ``gap`` or ``pair``
  (from the metric, so a group may be named ``all``); ``interval``: how the interval is
  formed.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError, InputError
from . import stats
from .metrics import (BINNINGS, DIFFS, ECE_BINS, GAPS, RowSet, fairness_from_groups,
                      population_variance, spec)
from .predictions import (CONFIDENCES, Attribute, TaskData, parse_attributes, parse_predictions,
                          task_data)
from .sweep import Sweep
from .thresholds import choose_threshold, parse_policy

log = logging.getLogger(__name__)

COLUMNS = ["metric", "attribute", "group", "label", "estimate", "ci_low", "ci_high",
           "p_value", "p_adjusted", "n", "flag", "p_floor", "kind", "interval"]
#: How an interval is formed (column ``interval``; see the glossary's coverage table):
#: percentiles of the bootstrap distribution (a group's or the overall metric, a signed
#: difference); the absolute value of the signed difference's percentile interval (the gap
#: of two groups); ``calibrated`` (:func:`stats.reduced_interval`): bounds from intervals of
#: the groups' pairwise differences reduced as the statistic is, for a max-min gap of more
#: groups, a gap averaged over classes, EqOdds and the class-wise F1s' variance
#: (``f1_var``): simultaneous (max-t) intervals while the gap's lower bound is 0, else a
#: critical value calibrated by the bootstrap for the reduced statistic; ``simultaneous``:
#: the minimum of simultaneous intervals of the groups' values (the worst group); empty when
#: there is no interval.
INTERVALS = ("percentile", "abs_of_signed", "calibrated", "simultaneous")
#: An interval needs its estimate defined in at least this share of the resamples (a rare
#: label in a small group has no positives in many of them): fewer, and the row has no
#: interval and the flag ``few_resamples`` (the few defined resamples do not describe the
#: estimate's sampling distribution).
MIN_DEFINED = 0.5


def _holds(est, lo, hi, tol: float = 1e-9) -> bool:
    """Whether a finite interval holds its estimate (True when either is undefined)."""
    if not (np.isfinite(est) and np.isfinite(lo) and np.isfinite(hi)):
        return True
    return bool(lo - tol <= est <= hi + tol)
#: Row kinds (column ``kind``): the whole table, one group, a gap over an attribute's
#: groups, a named pair.  The kind comes from the metric, never from a group's name, so a
#: group may be called ``all``.
KINDS = ("overall", "group", "gap", "pair")
#: Multiple-comparison families: every tested row of one attribute and one metric (its
#: classes, macro average and named pairs), every tested row of one attribute, or the table.
FAMILIES = ("attribute_metric", "attribute", "table")
#: ``max_permutations="auto"`` draws up to this many permutations so that the floor of every
#: family is at most alpha / AUTO_MARGIN ...
AUTO_MARGIN = 10
#: ... but never more than this.
AUTO_CAP = 200_000
#: Base (per-set) metrics reported for the overall population and every group.
BASE_METRICS = ("accuracy", "f1", "auroc", "auprc", "tpr", "fpr", "udr", "ece")
#: Fairness metrics tested by permutation (the gaps; the worst group is not a gap).
TESTED = tuple(g for g in GAPS if spec(g).over_groups == "range") + ("fpr_diff",)
#: Every metric of the table, in order.
ALL_METRICS = BASE_METRICS + ("f1_var",) + GAPS + tuple(DIFFS.values())


@dataclasses.dataclass(frozen=True)
class Options:
    """Readings of the ambiguous definitions (see the metric glossary)."""

    n_bins: int = ECE_BINS
    binning: str = "uniform"
    eqodds: str = "mean"
    gap_macro: str = "mean_of_gaps"
    var_ddof: int = 0
    confidence: str = "positive"

    def check(self) -> None:
        """ConfigError naming the option and what is allowed."""
        if not isinstance(self.n_bins, (int, np.integer)) or not 1 <= self.n_bins <= 10_000:
            raise ConfigError(f"n_bins must be an integer in [1, 10000] (got {self.n_bins!r})")
        for name, value, allowed in (("binning", self.binning, BINNINGS),
                                     ("eqodds", self.eqodds, ("mean", "max")),
                                     ("gap_macro", self.gap_macro, ("mean_of_gaps", "gap_of_macro")),
                                     ("var_ddof", self.var_ddof, (0, 1)),
                                     ("confidence", self.confidence, CONFIDENCES)):
            if value not in allowed:
                raise ConfigError(f"unknown {name} reading {value!r} "
                                  f"(choose from {', '.join(map(str, allowed))})")


def _labels(d: TaskData, base: str) -> tuple[str, ...]:
    if base == "ece":
        return d.ece_labels
    if base == "accuracy":
        return d.accuracy_labels
    return d.labels


class _Engine:
    """Evaluates every row of the audit table for a chunk of weight columns."""

    def __init__(self, d: TaskData, attributes: list[Attribute],
                 pairs: dict[str, list[tuple[str, str]]], opt: Options,
                 metrics: Sequence[str] | None = None) -> None:
        self.d, self.attributes, self.pairs, self.opt = d, attributes, pairs, opt
        self.metrics = set(ALL_METRICS if metrics is None else metrics)
        self.ranks = bool(self.metrics & {"auroc", "auprc", "auroc_gap", "worst_group_auroc"})
        # the overall set's design gives the linear metrics from weighted sums; the sweep
        # evaluates every set (overall and every group) in one pass over the sorted rows
        self.overall = RowSet(d, n_bins=opt.n_bins, binning=opt.binning, ranks=False)
        self.sizes = [np.bincount(a.codes, minlength=len(a.groups)) for a in attributes]
        self.present = [int((s > 0).sum()) for s in self.sizes]
        self.sweep = Sweep(self.overall.x, d.y if self.ranks else None,
                           d.score if self.ranks else None, [a.codes for a in attributes],
                           [len(a.groups) for a in attributes])
        self.overall.x = None   # held by the sweep (sparse, sorted): free the dense copy
        #: place of every row in the sweep's order: bootstrap counts drawn in that order
        #: (:func:`~compendium.audit.stats.iter_resample_rows`) need no gather
        self.position = self.sweep.position

    # ------------------------------------------------------------------ one set
    def _set_rows(self, ev: dict, attribute: str, group: str, out: dict) -> None:
        for base in BASE_METRICS:
            if base not in self.metrics:
                continue
            values = ev[base]
            names = _labels(self.d, base)
            for i, lab in enumerate(names):
                out[(base, attribute, group, lab)] = values[i]
            if len(names) > 1:
                out[(base, attribute, group, "macro")] = values.mean(axis=0)
        if self.d.y.shape[1] > 1 and "f1_var" in self.metrics:
            out[("f1_var", attribute, group, "macro")] = population_variance(
                ev["f1"], ddof=self.opt.var_ddof)

    def _empty(self, b: int) -> dict[str, np.ndarray]:
        """Undefined base metrics of a group with no rows."""
        return {base: np.full((len(_labels(self.d, base)), b), np.nan)
                for base in BASE_METRICS + ("n",)}

    def _per_group(self, evals: list[dict | None], b: int) -> dict[str, np.ndarray]:
        per_group = {}
        for base in ("f1", "tpr", "fpr", "udr", "auroc", "ece"):
            if base == "auroc" and not self.ranks:
                continue
            shape = (len(_labels(self.d, base)), b)
            per_group[base] = np.stack([ev[base] if ev is not None and base in ev
                                        else np.full(shape, np.nan) for ev in evals])
        return per_group

    def _gap_rows(self, a: Attribute, evals: list[dict | None], b: int, out: dict) -> None:
        per_group = self._per_group(evals, b)
        # a comparison needs two groups with rows: one group has no gap (nan, never 0)
        single = self.present[self.attributes.index(a)] < 2
        for name in GAPS:
            if name not in self.metrics:
                continue
            per_label, mac = fairness_from_groups(name, per_group, eqodds=self.opt.eqodds,
                                                  gap_macro=self.opt.gap_macro)
            if single and spec(name).over_groups == "range":
                per_label = np.full_like(per_label, np.nan)
                mac = None if mac is None else np.full_like(mac, np.nan)
            names = _labels(self.d, spec(name).base.split(",")[0])
            for i, lab in enumerate(names):
                out[(name, a.name, "all", lab)] = per_label[i]
            if mac is not None:
                out[(name, a.name, "all", "macro")] = mac
        for ga, gb in self.pairs.get(a.name, []) if "fpr_diff" in self.metrics else []:
            ia, ib = a.groups.index(ga), a.groups.index(gb)
            diff = per_group["fpr"][ia] - per_group["fpr"][ib]
            for i, lab in enumerate(self.d.labels):
                out[("fpr_diff", a.name, f"{ga} vs {gb}", lab)] = diff[i]
            if diff.shape[0] > 1:
                out[("fpr_diff", a.name, f"{ga} vs {gb}", "macro")] = diff.mean(axis=0)

    # ---------------------------------------------------------------- public
    def evaluate(self, w: np.ndarray | None) -> dict[tuple, np.ndarray]:
        """Every estimate for the weight columns ``w`` (n, B); ``None`` = plain estimate."""
        if w is None:
            return self.evaluate_rows(np.ones((self.d.n, 1), dtype=np.int32))
        return self.evaluate_rows(np.asarray(w), in_order=False)

    def evaluate_rows(self, w: np.ndarray, in_order: bool = True) -> dict[tuple, np.ndarray]:
        """Every estimate for the weight columns ``w`` (n, B), rows in the sweep's order
        (:attr:`position`), or in the table's order when not ``in_order``."""
        if not in_order:
            w = w[self.sweep.order]
        b = w.shape[1]
        sums, auroc, auprc = self.sweep.evaluate(w, ranks=self.ranks)

        def ev(i):
            out = self.overall.from_sums(sums[i])
            if auroc is not None:
                out["auroc"], out["auprc"] = auroc[i], auprc[i]
            return out

        out: dict[tuple, np.ndarray] = {}
        self._set_rows(ev(0), "all", "all", out)
        for a, offset, sizes in zip(self.attributes, self.sweep.offsets, self.sizes):
            evals = [ev(offset + g) if sizes[g] else None for g in range(len(a.groups))]
            for g, e in zip(a.groups, evals):
                self._set_rows(e if e is not None else self._empty(b), a.name, g, out)
            self._gap_rows(a, evals, b, out)
        return out

    def permuted(self, a_index: int, codes: np.ndarray, in_order: bool = False
                 ) -> dict[tuple, np.ndarray]:
        """Gap rows of one attribute with group membership ``codes`` (P, n): one row of
        shuffled group codes per permutation, in the table's row order (or the sweep's,
        :attr:`position`, when ``in_order``)."""
        return self.permuted_many([a_index], [codes], in_order=in_order)

    def permuted_many(self, indices: list[int], codes: list[np.ndarray],
                      in_order: bool = False) -> dict[tuple, np.ndarray]:
        """Gap rows of several attributes under their shuffled codes (one array (P, n) per
        attribute), from one sweep over the rows per permutation.

        Only what the tested gaps need is computed: no average precision; AUROC only when
        ``auroc_gap`` is audited.
        """
        if not in_order:
            codes = [c[:, self.sweep.order] for c in codes]
        b = codes[0].shape[0]
        ranks = self.ranks and "auroc_gap" in self.metrics
        results = self.sweep.permuted([np.ascontiguousarray(c) for c in codes],
                                      [len(self.attributes[i].groups) for i in indices],
                                      ranks=ranks)
        out: dict[tuple, np.ndarray] = {}
        for i, (sums, auroc) in zip(indices, results):
            evals = []
            for g in range(len(self.attributes[i].groups)):
                if not self.sizes[i][g]:
                    evals.append(None)
                    continue
                ev = self.overall.from_sums(sums[g])
                if auroc is not None:
                    ev["auroc"] = auroc[g]
                evals.append(ev)
            self._gap_rows(self.attributes[i], evals, b, out)
        return out


class _MeanEngine:
    """The engines of several runs of the same samples, every estimate averaged over runs.

    Bootstrap weights and permuted group codes index the samples, which every run holds in
    the same order, so one resample or permutation moves the samples alike in every run.
    """

    def __init__(self, engines: list[_Engine]) -> None:
        self.engines = engines
        self.attributes = engines[0].attributes
        self.present = engines[0].present

    @staticmethod
    def _mean(results: list[dict]) -> dict[tuple, np.ndarray]:
        return {k: np.mean([r[k] for r in results], axis=0) for k in results[0]}

    def evaluate(self, w: np.ndarray | None) -> dict[tuple, np.ndarray]:
        return self._mean([e.evaluate(w) for e in self.engines])

    def evaluate_rows(self, w: np.ndarray, in_order: bool = False) -> dict[tuple, np.ndarray]:
        """Weight columns (n, B) in the table's order (the runs' sweeps sort differently)."""
        return self._mean([e.evaluate_rows(w, in_order=False) for e in self.engines])

    def permuted(self, a_index: int, codes: np.ndarray, in_order: bool = False
                 ) -> dict[tuple, np.ndarray]:
        return self._mean([e.permuted(a_index, codes) for e in self.engines])

    def permuted_many(self, indices: list[int], codes: list[np.ndarray],
                      in_order: bool = False) -> dict[tuple, np.ndarray]:
        return self._mean([e.permuted_many(indices, codes) for e in self.engines])


def split_runs(predictions: pd.DataFrame, runs: str,
               attributes: Sequence[str | Sequence[str]]) -> list[pd.DataFrame]:
    """One table per run, rows in ``sample_id`` order; every run must hold the same samples
    with the same true labels and attributes (:class:`InputError` naming what differs)."""
    if runs not in predictions.columns:
        raise ConfigError(f"runs: no column {runs!r} in the predictions table")
    if "sample_id" not in predictions.columns:
        raise InputError("runs: averaging over runs needs a sample_id column (the same "
                         "samples in every run)")
    if predictions[runs].isna().any():
        raise InputError(f"runs: column {runs!r} has missing values")
    parts = [g.sort_values("sample_id", kind="stable").reset_index(drop=True)
             for _, g in predictions.groupby(runs, sort=True)]
    cols = [c for c in predictions.columns if c.startswith("y_true")]
    for a in attributes:
        cols += [a] if isinstance(a, str) and "+" not in a else (
            list(a.split("+")) if isinstance(a, str) else list(a))
    first = parts[0]
    for p in parts[1:]:
        if len(p) != len(first) or not np.array_equal(
                p["sample_id"].astype(str).to_numpy(), first["sample_id"].astype(str).to_numpy()):
            raise InputError(f"runs: run {p[runs].iloc[0]!r} holds other samples than run "
                             f"{first[runs].iloc[0]!r}; every run must hold the same samples")
        for c in dict.fromkeys(cols):
            if c in p.columns and not p[c].astype(str).equals(first[c].astype(str)):
                raise InputError(f"runs: column {c!r} differs between runs "
                                 f"{first[runs].iloc[0]!r} and {p[runs].iloc[0]!r}")
    return parts


def _parse_pairs(pairs, attributes: list[Attribute]) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    names = {a.name: a for a in attributes}
    for item in pairs or []:
        if isinstance(item, str):
            try:
                attr, rest = item.split("=", 1)
                ga, gb = rest.split(":", 1)
            except ValueError:
                raise ConfigError(f"pair {item!r} must read ATTRIBUTE=GROUP_A:GROUP_B") from None
        else:
            attr, ga, gb = item
        attr, ga, gb = str(attr).strip(), str(ga).strip(), str(gb).strip()
        if attr not in names:
            raise ConfigError(f"pair {item!r}: attribute {attr!r} is not audited "
                              f"(audited: {', '.join(names)})")
        for g in (ga, gb):
            if PAIR_SEP in g:
                raise ConfigError(f"pair {item!r}: group {g!r} contains '{PAIR_SEP.strip()}', "
                                  "which names pairs in the audit table: rename that group")
            if g not in names[attr].groups:
                raise ConfigError(f"pair {item!r}: group {g!r} not found in {attr!r} "
                                  f"(groups: {', '.join(names[attr].groups)})")
        out.setdefault(attr, []).append((ga, gb))
    return out


def _apply_policy(predictions: pd.DataFrame, task: str, threshold, validation) -> TaskData:
    kind, value = parse_policy(threshold)
    if kind == "auto":
        return parse_predictions(predictions, task=task)
    if kind == "argmax":
        if task != "multiclass":
            raise ConfigError("threshold 'argmax' applies to multiclass tasks; use a number, "
                              "youden, f1 or spec=... for binary and multilabel")
        return parse_predictions(predictions, task=task, use_pred=False)
    if task == "multiclass":
        raise ConfigError("multiclass tasks predict the arg-max class: use --threshold argmax "
                          "(or auto, which uses a y_pred column when present)")
    if kind == "fixed":
        return parse_predictions(predictions, task=task, threshold=value, use_pred=False)
    if validation is None:
        raise ConfigError(f"threshold policy {threshold!r} is chosen on a validation table: "
                          "pass validation= (--validation FILE)")
    val = parse_predictions(validation, task=task, use_pred=False)
    d = parse_predictions(predictions, task=task, use_pred=False)
    if val.labels != d.labels:
        raise InputError(f"validation labels {val.labels} differ from the predictions' {d.labels}")
    t = np.array([choose_threshold(val.y[:, k], val.score[:, k], kind, value=value)
                  for k in range(len(d.labels))])
    log.info("thresholds chosen on the validation table (%s): %s", threshold,
             ", ".join(f"{lab}={v:.4g}" for lab, v in zip(d.labels, t)))
    return task_data(task, d.labels, d.y, d.score, threshold=t)


def audit(predictions: pd.DataFrame, *, task: str, attributes: Sequence[str | Sequence[str]],
          n_bootstrap: int = 1000, n_permutations: int = 1000,
          seed: int | np.random.Generator = 0, threshold: str | float = "auto",
          validation: pd.DataFrame | None = None, pairs: Iterable | None = None,
          min_group_size: int = 30, level: float = 0.95, correction: str | None = "holm",
          n_bins: int = ECE_BINS, binning: str = "uniform", eqodds: str = "mean",
          gap_macro: str = "mean_of_gaps", var_ddof: int = 0, confidence: str = "positive",
          family: str = "attribute_metric", max_permutations: int | str | None = None,
          alpha: float = 0.05, metrics: Sequence[str] | None = None, progress: bool = False,
          n_jobs: int = 1, blas_threads: int | None = 1, runs: str | None = None
          ) -> pd.DataFrame:
    """Audit a predictions table: every metric overall, per group and as gaps, with statistics.

    Parameters
    ----------
    predictions : DataFrame
        The predictions table (see :mod:`compendium.audit.predictions`).  A ``sample_id``
        column, when present, must not repeat.
    task : {"binary", "multiclass", "multilabel"}
    attributes : sequence
        Attribute columns; ``"a+b"`` (or ``("a", "b")``) audits the intersection.  A group
        may not be named ``all`` nor contain `` vs `` (the table's reserved values).  Empty:
        the overall rows only (no groups, no gaps).
    n_bootstrap : int
        Bootstrap resamples for the intervals (0: no intervals).
    n_permutations : int
        Permutations for the gap p-values (0: no p-values); with ``max_permutations``
        above it, the first round of a sequential test.
    seed : int or Generator
        Seeds the bootstrap and then the permutations.
    threshold : str or float
        Threshold policy (:mod:`compendium.audit.thresholds`); a row is predicted positive
        when its score is ``>= threshold``.
    validation : DataFrame, optional
        Validation predictions for the ``youden``/``f1``/``spec=`` policies.
    pairs : iterable, optional
        Named pairs for signed FPR differences: ``"race=Black:White"`` or
        ``("race", "Black", "White")``.
    min_group_size : int
        Groups smaller than this are flagged ``small_group``.
    level : float
        Confidence level of the intervals.
    correction : {"holm", "bh", "bonferroni", None}
        Multiple-comparison correction of the gap p-values within each family.
    n_bins, binning, eqodds, gap_macro, var_ddof, confidence :
        Readings of ambiguous definitions (see the metric glossary); ``confidence`` is the
        ECE confidence of binary and multi-label tasks (``positive`` or ``predicted``).
    family : {"attribute_metric", "attribute", "table"}
        The multiple-comparison family: the tested rows of one attribute and one metric
        (default), of one attribute, or the whole table.  ``udr_gap`` shares ``tpr_gap``'s
        test and is not counted twice.
    max_permutations : int, "auto" or None
        Sequential permutations (Besag-Clifford): after ``n_permutations``, an attribute
        whose tests could still be significant gets more permutations (doubling each
        round) up to this many; a test stops once :data:`~compendium.audit.stats.SEQUENTIAL_H`
        permutations reached its observed gap.  ``"auto"``: enough that every family's
        floor (column ``p_floor``) is at most ``alpha / 10``; ``None``: exactly
        ``n_permutations``.
    alpha : float
        Significance level of the floor warning (flag ``p_floor`` and the summary).
    metrics : sequence of str, optional
        Restrict the table to these metrics (default: all of :data:`ALL_METRICS`); rank
        metrics (AUROC, AUPRC) are skipped entirely when none of them is asked for.
    progress : bool
        Show tqdm progress bars.
    n_jobs : int
        Threads evaluating bootstrap chunks in parallel (results do not depend on it).
    blas_threads : int or None
        BLAS threads during the audit (threadpoolctl).  The engine issues many small matrix
        products, for which a single thread is fastest and avoids oversubscribing a shared
        machine; ``None`` leaves the BLAS default.
    runs : str, optional
        A column naming runs of the same samples (for example the prompt draws of a
        zero-shot model): every metric is computed within each run and averaged over the
        runs ("the average of 10 runs").  Every run must hold the same ``sample_id`` values
        with the same labels and attributes; the bootstrap resamples the samples and the
        permutations shuffle their groups alike in every run, so the intervals and p-values
        are those of the average.

    Returns
    -------
    DataFrame
        The tidy audit table (columns :data:`COLUMNS`).  ``p_floor`` is the smallest
        adjusted p-value the row's family could reach with the permutations drawn; its
        ``attrs`` hold ``family``, ``alpha``, ``correction`` and ``p_floor_max``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"y_true": rng.integers(0, 2, 200), "y_score": rng.random(200),
    ...                    "sex": rng.choice(["F", "M"], 200)})
    >>> table = audit(df, task="binary", attributes=["sex"], n_bootstrap=50, n_permutations=50)
    >>> table.query("metric == 'tpr_gap'")[["attribute", "group", "label"]].values.tolist()
    [['sex', 'all', '1']]
    """
    overall_only = not attributes
    if overall_only:   # the engine groups rows by an attribute: one group of every row
        predictions = predictions.assign(**{OVERALL_ONLY: "every row"})
        attributes = [OVERALL_ONLY]
    with _blas_controller().limit(limits=blas_threads, user_api="blas"):
        table = _audit(predictions, task=task, attributes=attributes, n_bootstrap=n_bootstrap,
                      n_permutations=n_permutations, seed=seed, threshold=threshold,
                      validation=validation, pairs=pairs, min_group_size=min_group_size,
                      level=level, correction=correction,
                      opt=Options(n_bins=n_bins, binning=binning, eqodds=eqodds,
                                  gap_macro=gap_macro, var_ddof=var_ddof, confidence=confidence),
                      family=family, max_permutations=max_permutations, alpha=alpha,
                      metrics=metrics, progress=progress, n_jobs=n_jobs, runs=runs)
    if overall_only:
        table = table[table["kind"] == "overall"].reset_index(drop=True)
    return table


#: The stand-in attribute of an audit with no attributes (overall rows only).
OVERALL_ONLY = "__overall__"

#: Largest number of bootstrap resamples or permutations accepted (a typo guard).
MAX_RESAMPLES = 10_000_000


def check_options(*, n_bootstrap, n_permutations, max_permutations, min_group_size, level,
                  alpha, correction, family, opt: Options) -> None:
    """Range checks of the audit's options (ConfigError naming the option and the range)."""
    for name, v, lo, hi in (("n_bootstrap", n_bootstrap, 0, MAX_RESAMPLES),
                            ("n_permutations", n_permutations, 0, MAX_RESAMPLES),
                            ("min_group_size", min_group_size, 0, 10**12)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
            raise ConfigError(f"{name} must be an integer in [{lo}, {hi}] (got {v!r})")
    if max_permutations not in (None, "auto") and (
            isinstance(max_permutations, bool) or not isinstance(max_permutations, (int, np.integer))
            or not 0 <= max_permutations <= MAX_RESAMPLES):
        raise ConfigError(f"max_permutations must be 'auto', None or an integer in "
                          f"[0, {MAX_RESAMPLES}] (got {max_permutations!r})")
    for name, v in (("level", level), ("alpha", alpha)):
        if not isinstance(v, (int, float)) or not 0.0 < v < 1.0:
            raise ConfigError(f"{name} must lie in (0, 1) (got {v!r})")
    if correction is not None and correction not in stats.CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r} "
                          f"(choose from {', '.join(stats.CORRECTIONS)} or None)")
    if family not in FAMILIES:
        raise ConfigError(f"unknown family {family!r} (choose from {', '.join(FAMILIES)})")
    opt.check()


def _family_keys(keys: list[tuple], family: str) -> list[tuple]:
    """The family of each tested row key (metric, attribute, group, label)."""
    if family == "table":
        return [("table",)] * len(keys)
    if family == "attribute":
        return [(k[1],) for k in keys]
    return [(k[1], "tpr_gap" if k[0] == "udr_gap" else k[0]) for k in keys]


def _audit(predictions, *, task, attributes, n_bootstrap, n_permutations, seed, threshold,
           validation, pairs, min_group_size, level, correction, opt, family,
           max_permutations, alpha, metrics, progress, n_jobs=1, runs=None):
    from tqdm import tqdm

    if task not in ("binary", "multiclass", "multilabel"):
        raise ConfigError(f"unknown task {task!r} (choose from binary, multiclass, multilabel)")
    check_options(n_bootstrap=n_bootstrap, n_permutations=n_permutations,
                  max_permutations=max_permutations, min_group_size=min_group_size,
                  level=level, alpha=alpha, correction=correction, family=family, opt=opt)
    tables = [predictions] if runs is None else split_runs(predictions, runs, attributes)
    if runs is not None and validation is not None:
        raise ConfigError("runs: a threshold chosen on validation predictions is not "
                          "supported with runs (use a fixed threshold)")
    for t in tables:
        check_sample_ids(t)
    predictions = tables[0]
    ds = [_apply_policy(t, task, threshold, validation).with_confidence(opt.confidence)
          for t in tables]
    d = ds[0]
    attrs = parse_attributes(predictions, attributes)
    pair_map = _parse_pairs(pairs, attrs)
    if metrics is not None:
        unknown = [m for m in metrics if m not in ALL_METRICS]
        if unknown:
            raise ConfigError(f"unknown metric {unknown[0]!r} (known: {', '.join(ALL_METRICS)})")
    requested = list(ALL_METRICS if metrics is None else metrics)
    # a gap's interval comes from its groups' values: compute them even when not asked for
    needed = set(requested) | {b for m in requested if m in GAPS or m == "f1_var"
                               for b in spec(m).base.split(",")}
    engines = [_Engine(x, attrs, pair_map, opt, [m for m in ALL_METRICS if m in needed])
               for x in ds]
    engine = engines[0] if len(engines) == 1 else _MeanEngine(engines)
    estimates = {k: v[0] for k, v in engine.evaluate(None).items()}
    rng = stats.as_generator(seed)

    boot: dict[tuple, list[np.ndarray]] = {k: [] for k in estimates}
    if n_bootstrap:
        # strata: the intersection of all audited attributes, so every group of every
        # attribute keeps its size in every resample
        strata = stats.joint_codes([a.codes for a in attrs])
        clusters = (predictions["patient_id"].astype(str).to_numpy()
                    if "patient_id" in predictions.columns else None)
        # counts drawn straight in the sweep's row order (one engine), else the table's
        position = getattr(engine, "position", None)
        chunks = stats.resample_row_chunks(n_bootstrap, d.n, strata=strata, clusters=clusters,
                                          seed=rng, position=position,
                                          width=max(1, eval_elements(n_jobs) // max(d.n, 1)))
        evaluate = functools.partial(engine.evaluate_rows, in_order=position is not None)
        with tqdm(total=n_bootstrap, desc="bootstrap", disable=not progress) as bar:
            for result, width in _map_chunks(evaluate, chunks, n_jobs):
                for k, v in result.items():
                    boot[k].append(v)
                bar.update(width)

    tested = [k for k in estimates if k[0] in TESTED]
    fam_of = dict(zip(tested, _family_keys(tested, family)))
    fam_size: dict[tuple, int] = {}
    for k in tested:
        if k[0] != "udr_gap":
            fam_size[fam_of[k]] = fam_size.get(fam_of[k], 0) + 1
    perm: dict[tuple, list[np.ndarray]] = {}
    drawn: dict[str, int] = {}
    sequential: set[str] = set()
    patients = (predictions["patient_id"].astype(str).to_numpy()
                if "patient_id" in predictions.columns else None)
    if n_permutations:
        by_patient = {}
        for a in attrs:
            by_patient[a.name] = patients is not None and stats.constant_within(a.codes, patients)
            if patients is not None and not by_patient[a.name]:
                log.warning("%s varies within patients: its permutation test shuffles "
                            "rows, not patients (p-values may be optimistic)", a.name)

        def keep(result):
            for k, v in result.items():
                if k[0] in TESTED:
                    perm.setdefault(k, []).append(v)

        # first round: attributes shuffled alike (rows, or the same patients) share each
        # permutation of the units, drawn once (every attribute's null distribution is
        # still that of a uniform permutation of its own groups)
        first: dict[str, bool] = {}
        for mode in (False, True):
            group = [i for i, a in enumerate(attrs) if by_patient[a.name] == mode]
            if len(group) < 2:
                continue
            units = stats.units_of(patients) if mode else None
            draws = stats.unit_permutation_chunks(d.n if units is None else len(units[0]),
                                                 n_permutations, n_rows=d.n, seed=rng)
            with tqdm(total=n_permutations, desc="permutations", disable=not progress) as bar:
                for result, width in _map_chunks(
                        functools.partial(_permute_all, engine, group, units), draws,
                        n_jobs, axis=0):
                    keep(result)
                    bar.update(width)
            for i in group:
                first[attrs[i].name] = True
        for i, a in enumerate(attrs):
            keys = [k for k in tested if k[1] == a.name]
            largest = max([fam_size.get(fam_of[k], 1) for k in keys] or [1])
            limit = _max_permutations(max_permutations, n_permutations, largest,
                                      correction, alpha)
            clusters = patients if by_patient[a.name] else None
            done = n_permutations if first.get(a.name) else 0
            target = n_permutations
            with tqdm(total=n_permutations, initial=done, desc=f"permutations ({a.name})",
                      disable=not progress) as bar:
                while True:
                    if target > done:
                        position = getattr(engine, "position", None)
                        chunks = stats.permuted_code_chunks(a.codes, target - done, seed=rng,
                                                           clusters=clusters, position=position)
                        for result, width in _map_chunks(
                                functools.partial(engine.permuted, i,
                                                  in_order=position is not None),
                                chunks, n_jobs, axis=0):
                            keep(result)
                            bar.update(width)
                    done = target
                    if done >= limit or not keys:
                        break
                    open_keys = [k for k in keys if not stats.settled(
                        np.asarray(estimates[k]), np.concatenate(perm[k]),
                        two_sided=k[0] == "fpr_diff")]
                    if not open_keys:
                        break
                    target = min(limit, 2 * target)
                    bar.total = target
            drawn[a.name] = done
            if limit > n_permutations:
                sequential.add(a.name)
    table = _table(d, attrs, pair_map, estimates, boot, perm, level=level,
                   min_group_size=min_group_size, correction=correction,
                   sequential=sequential, fam_of=fam_of, fam_size=fam_size, drawn=drawn,
                   alpha=alpha, present=dict(zip([a.name for a in attrs], engine.present)),
                   opt=opt, requested=requested)
    keep = set(requested) | {DIFFS[b] for m in requested if m in GAPS
                             and spec(m).over_groups == "range" for b in spec(m).base.split(",")}
    table = table[table["metric"].isin(keep)].reset_index(drop=True)
    table.attrs.update({"runs": len(tables), "family": family, "alpha": alpha,
                        "correction": correction,
                        "permutations": drawn,
                        "p_floor_max": float(np.nanmax(table.p_floor))
                        if table.p_floor.notna().any() else None})
    return table


def _max_permutations(max_permutations, n_permutations: int, family_size: int,
                      correction: str | None, alpha: float) -> int:
    if max_permutations is None:
        return n_permutations
    if max_permutations == "auto":
        m = 1 if correction is None else family_size
        needed = int(np.ceil(AUTO_MARGIN * m / alpha)) - 1
        return max(n_permutations, min(needed, AUTO_CAP))
    return max(n_permutations, int(max_permutations))


RESERVED_GROUP = "all"
PAIR_SEP = " vs "


def check_sample_ids(df: pd.DataFrame) -> None:
    """InputError when a ``sample_id`` column repeats a value (a row counted twice)."""
    if "sample_id" not in df.columns:
        return
    dup = df["sample_id"].astype(str).duplicated()
    if dup.any():
        first = df["sample_id"].astype(str)[dup].iloc[0]
        raise InputError(f"column 'sample_id' repeats {int(dup.sum())} value(s) (first: "
                         f"{first!r}): every sample must appear once; drop the duplicates")


def _permute_all(engine: "_Engine", group: list[int], units, perm: np.ndarray) -> dict:
    """Gap rows of every attribute of ``group`` under one chunk of unit permutation draws
    (one sweep for all of them)."""
    position = getattr(engine, "position", None)
    codes = stats.permuted_codes_many([engine.attributes[i].codes for i in group], perm,
                                      units=units, position=position)
    return engine.permuted_many(group, codes, in_order=position is not None)


#: Counts per chunk of bootstrap resamples evaluated at once (int32: 64 MB, at most
#: ``2 * n_jobs`` chunks in flight): the sweep reads each row's design once for all the
#: resamples of a chunk.  The draws do not depend on it (see ``stats.resample_row_chunks``).
EVAL_ELEMENTS = 16_000_000
#: Share of the available memory the bootstrap chunks in flight may take.
MEMORY_SHARE = 0.25


def eval_elements(n_jobs: int, available: int | None = None) -> int:
    """Counts per chunk of bootstrap resamples: :data:`EVAL_ELEMENTS`, or fewer where the
    ``2 * n_jobs + 1`` chunks alive at once (int32 counts, plus a copy for patients) would
    take more than :data:`MEMORY_SHARE` of the available memory (``available`` bytes,
    default what the system reports now).  Chunks hold whole blocks of draws, so the
    numbers do not depend on it (:func:`~compendium.audit.stats.resample_row_chunks`).

    >>> eval_elements(2, available=64 * 2**30), eval_elements(2, available=2**30)
    (16000000, 6710886)
    """
    if available is None:
        import psutil

        available = psutil.virtual_memory().available
    per_element = 8 * (2 * max(n_jobs, 1) + 1)
    return int(max(1, min(EVAL_ELEMENTS, MEMORY_SHARE * available // per_element)))


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller, created once (it scans the loaded libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _map_chunks(func, chunks, n_jobs: int, axis: int = 1):
    """``func`` over the weight chunks, in order; ``n_jobs`` threads (numpy and the numba
    sweep release the GIL).

    A chunk is an array or a :class:`~compendium.audit.stats.LazyChunk`, drawn in the
    thread that evaluates it (every lazy chunk has its own generator, so the numbers do not
    depend on ``n_jobs``).  At most ``2 * n_jobs`` chunks are in flight, which bounds the
    memory.
    """
    def width(w):
        return w.width if isinstance(w, stats.LazyChunk) else w.shape[axis]

    def run(w):
        return func(w() if isinstance(w, stats.LazyChunk) else w)

    if n_jobs <= 1:
        for w in chunks:
            yield run(w), width(w)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        pending: deque = deque()
        for w in chunks:
            pending.append((pool.submit(run, w), width(w)))
            if len(pending) >= 2 * n_jobs:
                fut, size = pending.popleft()
                yield fut.result(), size
        while pending:
            fut, size = pending.popleft()
            yield fut.result(), size


def _replicates(boot: dict, key: tuple) -> np.ndarray | None:
    chunks = boot.get(key)
    return np.concatenate(chunks) if chunks else None


def _group_values(estimates: dict, boot: dict, attribute: str, groups: list[str],
                  components: list[tuple[str, str]]):
    """The groups' estimates (G, K) and resamples (G, K, B) of the (base, label)
    ``components``; None when one is missing or has no resamples."""
    est, reps = [], []
    for g in groups:
        for base, lab in components:
            key = (base, attribute, g, lab)
            r = _replicates(boot, key)
            if key not in estimates or r is None:
                return None
            est.append(float(estimates[key]))
            reps.append(r)
    k = len(components)
    return (np.array(est).reshape(len(groups), k),
            np.stack(reps).reshape(len(groups), k, -1))


def _gap_interval(d, metric: str, attribute: str, label: str, groups: list[str], estimates,
                  boot, *, level: float, opt: Options) -> tuple[float, float, str]:
    """Interval of a gap row from its groups' values (see :data:`INTERVALS`).

    Two groups and one value per group (a per-class gap, a gap of macro averages): the
    absolute value of the signed difference's percentile interval.  Otherwise (more groups,
    a mean of per-class gaps, EqOdds' TPR and FPR gaps): intervals of every pairwise
    difference the gap depends on, reduced as the gap is (max over pairs, the EqOdds reading
    over TPR and FPR, the mean over classes), with the critical value of
    :func:`stats.reduced_interval` (``calibrated``).
    The worst group: the minimum of simultaneous intervals of the groups' values.
    """
    sp = spec(metric)
    bases = sp.base.split(",")
    names = list(_labels(d, bases[0]))
    if label != "macro":
        labs = [label]
    elif sp.over_groups == "min" or opt.gap_macro == "gap_of_macro":
        labs = ["macro"]
    else:
        labs = names
    values = _group_values(estimates, boot, attribute, groups,
                           [(b, lab) for lab in labs for b in bases])
    if values is None or len(groups) < 2:
        return np.nan, np.nan, ""
    est, reps = values
    if not np.isfinite(est).all():
        return np.nan, np.nan, ""
    if sp.over_groups == "min":
        lo, hi = stats.simultaneous_band(est.reshape(-1), reps.reshape(-1, reps.shape[-1]),
                                         level=level)
        return (float(lo.reshape(est.shape).min(axis=0)[0]),
                float(hi.reshape(est.shape).min(axis=0)[0]), "simultaneous")
    if len(groups) == 2 and est.shape[1] == 1:
        lo, hi = stats.abs_interval(*stats.percentile_interval(reps[0, 0] - reps[1, 0],
                                                               level=level))
        return float(lo), float(hi), "abs_of_signed"
    combine = np.mean if opt.eqodds == "mean" else np.max

    def reduce(a):
        per = a.max(axis=0).reshape((len(labs), len(bases)) + a.shape[2:])
        per = combine(per, axis=1) if metric == "eqodds" else per[:, 0]
        return per.mean(axis=0)

    lo, hi, _ = stats.reduced_interval(est, reps, reduce, level=level, method="calibrated")
    return lo, hi, "calibrated"


def _variance_interval(d, attribute: str, group: str, estimates, boot, *, level: float,
                       opt: Options) -> tuple[float, float, str]:
    """Interval of the variance of the class-wise F1 of one set of rows.

    The variance is a sum of squared differences between classes,
    ``sum_(i<j) (F1_i - F1_j)^2 / (C (C - ddof))``, increasing in every ``|F1_i - F1_j|``,
    so (as for a max-min gap) its bounds come from intervals of the pairwise differences
    (:func:`stats.reduced_interval` over classes, ``calibrated``); a percentile interval of a
    variance shares a gap's upward bias.
    """
    labs = list(d.labels)
    values = _group_values(estimates, boot, attribute, [group], [("f1", lab) for lab in labs])
    if values is None or len(labs) < 2:
        return np.nan, np.nan, ""
    est, reps = values
    if not np.isfinite(est).all():
        return np.nan, np.nan, ""
    scale = len(labs) * (len(labs) - opt.var_ddof)
    lo, hi, _ = stats.reduced_interval(est[0][:, None], reps[0][:, None, :],
                                       lambda a: (a[:, 0] ** 2).sum(axis=0) / scale,
                                       level=level, method="calibrated")
    return lo, hi, "calibrated"


def _signed_rows(d, attrs, estimates, boot, requested, sizes,
                 small_attr, *, level: float) -> list[tuple]:
    """The signed difference beside every gap of an attribute with two groups (first minus
    second).  Not tested again: a per-class gap is its absolute value, and the gap's row
    holds the (two-sided) permutation test."""
    bases = list(dict.fromkeys(b for m in requested if m in GAPS
                               and spec(m).over_groups == "range"
                               for b in spec(m).base.split(",")))
    rows = []
    for a in attrs:
        groups = [g for g in a.groups if sizes[(a.name, g)] > 0]
        if a.name == OVERALL_ONLY or len(groups) != 2:
            continue
        ga, gb = groups
        pair = f"{ga}{PAIR_SEP}{gb}"
        small = bool(set(groups) & set(small_attr[a.name]))
        for base in bases:
            labs = list(_labels(d, base))
            labs += ["macro"] if len(labs) > 1 else []
            for lab in labs:
                key = (DIFFS[base], a.name, pair, lab)
                ka, kb = (base, a.name, ga, lab), (base, a.name, gb, lab)
                if key in estimates or ka not in estimates or kb not in estimates:
                    continue
                est = float(estimates[ka] - estimates[kb])
                ra, rb = _replicates(boot, ka), _replicates(boot, kb)
                lo = hi = np.nan
                how = ""
                few = (ra is not None and rb is not None and np.isfinite(est)
                       and np.isfinite(ra - rb).mean() < MIN_DEFINED)
                if ra is not None and rb is not None and not few:
                    lo, hi = (float(x) for x in stats.percentile_interval(ra - rb, level=level))
                    how = "percentile" if np.isfinite(lo) else ""
                biased = not _holds(est, lo, hi)
                if biased:
                    lo = hi = np.nan
                    how = ""
                p = pa = floor = np.nan
                flags = (["small_group"] if small else []) + (
                    ["few_resamples"] if few else []) + (
                    ["biased_bootstrap"] if biased else []) + (
                    [] if np.isfinite(est) else ["undefined"])
                rows.append((DIFFS[base], a.name, pair, lab, est, lo, hi, p, pa,
                             sizes[(a.name, ga)] + sizes[(a.name, gb)], ";".join(flags),
                             floor, "pair", how))
    return rows


def _table(d, attrs, pair_map, estimates, boot, perm, *, level, min_group_size, correction,
           sequential=frozenset(), fam_of=None, fam_size=None, drawn=None, alpha=0.05,
           present=None, opt: Options | None = None, requested=None):
    sizes = {("all", "all"): d.n}
    small_attr = {}
    single = {a.name for a in attrs if (present or {}).get(a.name, 2) < 2}
    for a in attrs:
        counts = np.bincount(a.codes, minlength=len(a.groups))
        for g, c in zip(a.groups, counts):
            sizes[(a.name, g)] = int(c)
            if c == 0:
                log.warning("%s=%s: group has no samples; its metrics are undefined (empty)",
                            a.name, g)
        small_attr[a.name] = [g for g, c in zip(a.groups, counts) if c < min_group_size]
        for ga, gb in pair_map.get(a.name, []):
            sizes[(a.name, f"{ga}{PAIR_SEP}{gb}")] = sizes[(a.name, ga)] + sizes[(a.name, gb)]
        if a.name in single and a.name != OVERALL_ONLY:
            log.warning("%s has a single group (%s): its gaps are undefined (flag single_group)",
                        a.name, ", ".join(g for g, c in zip(a.groups, counts) if c) or "none")
    groups_of = {a.name: [g for g in a.groups if sizes[(a.name, g)] > 0] for a in attrs}
    rows = []
    undefined: dict[tuple[str, str, str], list[str]] = {}
    pairs_of = {(a, f"{ga}{PAIR_SEP}{gb}"): (ga, gb) for a, ps in pair_map.items()
                for ga, gb in ps}
    for key, est in estimates.items():
        metric, attribute, group, label = key
        if attribute == "all":
            kind, n, small = "overall", d.n, False
        elif metric == "fpr_diff":
            kind, n = "pair", sizes[(attribute, group)]
            small = any(g in small_attr[attribute] for g in pairs_of[(attribute, group)])
        elif metric in GAPS:
            kind, n, small = "gap", d.n, bool(small_attr[attribute])
        else:
            kind, n = "group", sizes[(attribute, group)]
            small = n < min_group_size
        lo = hi = np.nan
        how = ""
        reps = _replicates(boot, key)
        few = reps is not None and np.isfinite(est) and np.isfinite(reps).mean() < MIN_DEFINED
        if few:
            pass
        elif kind == "gap":
            lo, hi, how = _gap_interval(d, metric, attribute, label, groups_of[attribute],
                                        estimates, boot, level=level, opt=opt or Options())
        elif metric == "f1_var":
            lo, hi, how = _variance_interval(d, attribute, group, estimates, boot, level=level,
                                             opt=opt or Options())
        elif boot.get(key):
            lo, hi = stats.percentile_interval(np.concatenate(boot[key]), level=level)
            how = "percentile" if np.isfinite(lo) else ""
        # resamples almost all on one side of the estimate (a biased statistic in a small
        # group, e.g. average precision of a dozen rows): no percentile interval describes it
        biased = not _holds(est, lo, hi)
        if biased:
            lo = hi = np.nan
            how = ""
        p = floor = np.nan
        if key in perm:
            values = np.concatenate(perm[key])
            if attribute in sequential:
                p = float(stats.sequential_pvalue(np.asarray(est), values,
                                                  two_sided=metric == "fpr_diff"))
            else:
                p = float(stats.permutation_pvalue(np.asarray(est), values,
                                                   two_sided=metric == "fpr_diff"))
            if fam_of is not None and np.isfinite(est):
                floor = stats.pvalue_floor(fam_size.get(fam_of[key], 1), drawn[attribute],
                                           correction)
        flags = []
        if small:
            flags.append("small_group")
        if few:
            flags.append("few_resamples")
        if biased:
            flags.append("biased_bootstrap")
        if attribute in single and metric in GAPS:
            flags.append("single_group")
        if not np.isfinite(est):
            flags.append("undefined")
            undefined.setdefault((attribute, group, kind), []).append(f"{metric}[{label}]")
        if np.isfinite(floor) and floor >= alpha:
            flags.append("p_floor")
        rows.append((metric, attribute, group, label, float(est), float(lo), float(hi), p,
                     np.nan, int(n), ";".join(flags), floor, kind, how))
    for (attribute, group, kind), what in undefined.items():
        where = {"overall": "overall", "gap": f"{attribute} (gap over groups)"}.get(
            kind, f"{attribute}={group}")
        log.warning("%s: undefined (reported empty): %s%s", where, ", ".join(what[:8]),
                    f" and {len(what) - 8} more" if len(what) > 8 else "")
    for a in attrs:
        if small_attr[a.name] and a.name != OVERALL_ONLY:
            log.warning("%s: group(s) smaller than %d rows flagged small_group: %s", a.name,
                        min_group_size, ", ".join(small_attr[a.name]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    if correction is not None:
        # udr_gap equals tpr_gap (UDR = 1 - TPR): one test, counted once in its family
        keys = list(zip(table.metric, table.attribute, table.group, table.label))
        fam = [(fam_of or {}).get(k, ("table",)) if m != "udr_gap" else None
               for k, m in zip(keys, table.metric)]
        adjusted = np.full(len(table), np.nan)
        for f in {x for x in fam if x is not None}:
            idx = np.array([x == f for x in fam])
            adjusted[idx] = stats.adjust_pvalues(table.loc[idx, "p_value"].to_numpy(), correction)
        table["p_adjusted"] = adjusted
        key = ["attribute", "group", "label"]
        tpr = table.loc[table.metric == "tpr_gap", key + ["p_adjusted"]]
        udr = table.metric == "udr_gap"
        if udr.any() and len(tpr):
            table.loc[udr, "p_adjusted"] = (table.loc[udr, key].merge(tpr, on=key, how="left")
                                            ["p_adjusted"].to_numpy())
    signed = _signed_rows(d, attrs, estimates, boot,
                          ALL_METRICS if requested is None else requested, sizes, small_attr,
                          level=level)
    if signed:
        table = pd.concat([table, pd.DataFrame(signed, columns=COLUMNS)], ignore_index=True)
    return table


def summary(table: pd.DataFrame, *, max_rows: int = 12) -> str:
    """A short human-readable summary of an audit table (for the terminal).

    Lists the overall macro (or single-label) utility, then the largest gaps with their
    intervals and p-values (each gap once: ``udr_gap`` equals ``tpr_gap`` and is left
    out), then a warning when some family cannot reach significance (its ``p_floor`` is at
    or above alpha).
    """
    lines = []
    overall = table[(table.attribute == "all") & table.metric.isin(BASE_METRICS)]
    pick = overall[overall.label.isin(["macro", "all"]) | (overall.groupby("metric").label
                                                           .transform("count") == 1)]
    pick = pick.drop_duplicates("metric")
    lines.append("overall: " + ", ".join(
        f"{r.metric} {r.estimate:.3f}" + (f" [{r.ci_low:.3f}, {r.ci_high:.3f}]"
                                          if np.isfinite(r.ci_low) else "")
        for r in pick.itertuples()))
    tested = table[table.metric.isin(TESTED) & (table.metric != "udr_gap")]
    gaps = tested[tested.label.isin(["macro"]) |
                  (tested.groupby(["metric", "attribute", "group"]).label.transform("count") == 1)]
    gaps = gaps.drop_duplicates(["metric", "attribute", "group"])
    order = gaps.estimate.abs().fillna(-1.0).sort_values(ascending=False, kind="stable").index
    gaps = gaps.reindex(order).head(max_rows)
    if len(gaps):
        lines.append("largest gaps (macro over classes where there are several; "
                     "udr_gap = tpr_gap):")
        for r in gaps.itertuples():
            ci = f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else ""
            p = f" p={r.p_value:.3g}" if np.isfinite(r.p_value) else ""
            pa = f" p_adj={r.p_adjusted:.3g}" if np.isfinite(r.p_adjusted) else ""
            grp = "" if r.group == "all" else f" ({r.group})"
            flag = f" [{r.flag}]" if r.flag else ""
            est = "undefined" if not np.isfinite(r.estimate) else f"{r.estimate:+.3f}"
            lines.append(f"  {r.metric:<10} {r.attribute}{grp}: {est}{ci}{p}{pa}{flag}")
    warning = floor_warning(table)
    if warning:
        lines.append(warning)
    n_undef = int(table.flag.str.contains("undefined").sum())
    if n_undef:
        lines.append(f"{n_undef} estimate(s) undefined (empty in the table; see warnings)")
    return "\n".join(lines)


def floor_warning(table: pd.DataFrame) -> str:
    """One line when some tested rows cannot reach an adjusted p-value below alpha, else ''."""
    if "p_floor" not in table.columns or not table.p_floor.notna().any():
        return ""
    alpha = table.attrs.get("alpha", 0.05)
    stuck = table[table.p_floor >= alpha]
    if stuck.empty:
        return ""
    return (f"warning: {len(stuck)} tested row(s) cannot be significant: with the permutations "
            f"drawn, the smallest adjusted p-value their family can reach is "
            f"{stuck.p_floor.min():.3g} >= alpha {alpha:g} (family "
            f"{table.attrs.get('family', '?')}); raise --max-permutations (or 'auto') or "
            f"choose a smaller family (flag p_floor)")


def signed_beside(table: pd.DataFrame, gaps: pd.DataFrame, *, on: Sequence[str] = ()
                  ) -> list[str]:
    """The signed difference of each gap row of ``gaps`` as a reader's cell, from the audit
    ``table`` it came from: ``"F - M: +0.012 [-0.030, +0.051]"`` (the first group minus the
    second, as the audit's ``a vs b`` rows name them, with its percentile interval), or ``""``
    where the gap has none (more than two groups, EqOdds).  ``on`` names further key columns
    shared by both tables (a model, a method).  For a gap averaged over classes the signed
    row is the difference of the groups' macro averages (a reader sees which group does
    better on average; its absolute value is the gap only under ``gap_macro='gap_of_macro'``).

    >>> t = audit(pd.DataFrame({"y_true": [0, 1, 0, 1] * 25, "y_score": [.2, .8, .6, .4] * 25,
    ...                         "sex": ["F"] * 50 + ["M"] * 50}), task="binary",
    ...           attributes=["sex"], metrics=["tpr_gap"], n_bootstrap=20, n_permutations=0)
    >>> signed_beside(t, t[t.kind == "gap"])[0].split(":")[0]
    'F - M'
    """
    on = list(on)
    pairs = table[table["kind"] == "pair"]
    index = {}
    for r in pairs.to_dict("records"):
        key = tuple(r[k] for k in on) + (r["metric"], r["attribute"], r["label"])
        index.setdefault(key, r)
    out = []
    for r in gaps.to_dict("records"):
        base = spec(r["metric"]).base
        diff = DIFFS.get(base)
        row = None if diff is None else index.get(
            tuple(r[k] for k in on) + (diff, r["attribute"], r["label"]))
        if row is None:
            out.append("")
            continue
        a, _, b = str(row["group"]).partition(PAIR_SEP)
        ci = (f" [{row['ci_low']:+.3f}, {row['ci_high']:+.3f}]" if np.isfinite(row["ci_low"])
              else " (no interval)")
        out.append(f"{a} - {b}: {row['estimate']:+.3f}{ci}")
    return out
