"""The audit: every metric, per group and per gap, with bootstrap intervals and p-values.

:func:`audit` returns one tidy table, one row per estimate:

``metric, attribute, group, label, estimate, ci_low, ci_high, p_value, p_adjusted, n, flag``

* ``attribute``: the attribute's name (``all`` for overall rows; ``a+b`` for an
  intersection); ``group``: the group's value (``all`` for overall rows and for gap rows,
  which compare the groups of ``attribute``; ``a vs b`` for a named-pair difference);
* ``label``: the class or label; ``macro`` for macro averages and for gaps averaged over
  classes; ``all`` for quantities computed jointly over classes (multi-class accuracy and
  top-label ECE; binary accuracy);
* ``ci_low, ci_high``: percentile bootstrap interval (patients resampled when a
  ``patient_id`` column is present, stratified by the groups of all attributes);
* ``p_value``: permutation test of a gap (group membership shuffled, between patients when a
  ``patient_id`` is present and the attribute is constant within patients); ``p_adjusted``: Holm
  (default) or Benjamini-Hochberg across all gap rows of the table (attributes x classes;
  ``udr_gap`` equals ``tpr_gap`` and shares its adjusted p-value instead of counting twice);
* ``n``: rows behind the estimate; ``flag``: ``small_group`` when a group (or, for a gap,
  one of its groups) has fewer than ``min_group_size`` rows, ``undefined`` when the
  estimate is undefined (e.g. AUROC of a group with one class), separated by ``;``.
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
from .metrics import (ECE_BINS, GAPS, RowSet, fairness_from_groups, population_variance,
                      spec)
from .predictions import Attribute, TaskData, parse_attributes, parse_predictions, task_data
from .thresholds import choose_threshold, parse_policy

log = logging.getLogger(__name__)

COLUMNS = ["metric", "attribute", "group", "label", "estimate", "ci_low", "ci_high",
           "p_value", "p_adjusted", "n", "flag"]
#: Base (per-set) metrics reported for the overall population and every group.
BASE_METRICS = ("accuracy", "f1", "auroc", "auprc", "tpr", "fpr", "udr", "ece")
#: Fairness metrics tested by permutation (the gaps; the worst group is not a gap).
TESTED = tuple(g for g in GAPS if spec(g).over_groups == "range") + ("fpr_diff",)
#: Every metric of the table, in order.
ALL_METRICS = BASE_METRICS + ("f1_var",) + GAPS + ("fpr_diff",)


@dataclasses.dataclass(frozen=True)
class Options:
    """Readings of the ambiguous definitions (see the metric glossary)."""

    n_bins: int = ECE_BINS
    binning: str = "uniform"
    eqodds: str = "mean"
    gap_macro: str = "mean_of_gaps"
    var_ddof: int = 0


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
        self.overall = RowSet(d, n_bins=opt.n_bins, binning=opt.binning, ranks=self.ranks)
        self.groups: list[list[tuple[np.ndarray, RowSet | None]]] = []
        for a in attributes:
            sets = []
            for g in range(len(a.groups)):
                rows = a.rows(g)
                sets.append((rows, RowSet(d.take(rows), n_bins=opt.n_bins, binning=opt.binning,
                                          ranks=self.ranks, parent=self.overall, rows=rows)
                             if len(rows) else None))
            self.groups.append(sets)

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
            per_group[base] = np.stack([ev[base] if ev is not None else np.full(shape, np.nan)
                                        for ev in evals])
        return per_group

    def _gap_rows(self, a: Attribute, evals: list[dict | None], b: int, out: dict) -> None:
        per_group = self._per_group(evals, b)
        for name in GAPS:
            if name not in self.metrics:
                continue
            per_label, mac = fairness_from_groups(name, per_group, eqodds=self.opt.eqodds,
                                                  gap_macro=self.opt.gap_macro)
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
        b = 1 if w is None else w.shape[1]
        out: dict[tuple, np.ndarray] = {}
        self._set_rows(self.overall.evaluate(w), "all", "all", out)
        for a, sets in zip(self.attributes, self.groups):
            evals = [rs.evaluate(None if w is None else w[rows]) if rs is not None else None
                     for rows, rs in sets]
            for g, ev in zip(a.groups, evals):
                self._set_rows(ev if ev is not None else self._empty(b), a.name, g, out)
            self._gap_rows(a, evals, b, out)
        return out

    def permuted(self, a_index: int, codes: np.ndarray) -> dict[tuple, np.ndarray]:
        """Gap rows of one attribute with group membership ``codes`` (n, P): one column
        of shuffled group codes per permutation."""
        a = self.attributes[a_index]
        evals = []
        for g in range(len(a.groups)):
            mask = (codes == g).astype(float)
            evals.append(self.overall.evaluate(mask) if mask.any() else None)
        out: dict[tuple, np.ndarray] = {}
        self._gap_rows(a, evals, codes.shape[1], out)
        return out


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
          gap_macro: str = "mean_of_gaps", var_ddof: int = 0,
          metrics: Sequence[str] | None = None, progress: bool = False,
          n_jobs: int = 1, blas_threads: int | None = 1) -> pd.DataFrame:
    """Audit a predictions table: every metric overall, per group and as gaps, with statistics.

    Parameters
    ----------
    predictions : DataFrame
        The predictions table (see :mod:`compendium.audit.predictions`).
    task : {"binary", "multiclass", "multilabel"}
    attributes : sequence
        Attribute columns; ``"a+b"`` (or ``("a", "b")``) audits the intersection.
    n_bootstrap : int
        Bootstrap resamples for the intervals (0: no intervals).
    n_permutations : int
        Permutations for the gap p-values (0: no p-values).
    seed : int or Generator
        Seeds the bootstrap and then the permutations.
    threshold : str or float
        Threshold policy (:mod:`compendium.audit.thresholds`).
    validation : DataFrame, optional
        Validation predictions for the ``youden``/``f1``/``spec=`` policies.
    pairs : iterable, optional
        Named pairs for signed FPR differences: ``"race=Black:White"`` or
        ``("race", "Black", "White")``.
    min_group_size : int
        Groups smaller than this are flagged ``small_group``.
    level : float
        Confidence level of the intervals.
    correction : {"holm", "bh", None}
        Multiple-comparison correction of the gap p-values across the table.
    n_bins, binning, eqodds, gap_macro, var_ddof :
        Readings of ambiguous definitions (see the metric glossary).
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

    Returns
    -------
    DataFrame
        The tidy audit table (columns :data:`COLUMNS`).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"y_true": rng.integers(0, 2, 200), "y_score": rng.random(200),
    ...                    "sex": rng.choice(["F", "M"], 200)})
    >>> table = audit(df, task="binary", attributes=["sex"], n_bootstrap=50, n_permutations=50)
    >>> table.query("metric == 'tpr_gap'")[["attribute", "group", "label"]].values.tolist()
    [['sex', 'all', '1']]
    """
    with _blas_controller().limit(limits=blas_threads, user_api="blas"):
        return _audit(predictions, task=task, attributes=attributes, n_bootstrap=n_bootstrap,
                      n_permutations=n_permutations, seed=seed, threshold=threshold,
                      validation=validation, pairs=pairs, min_group_size=min_group_size,
                      level=level, correction=correction, n_bins=n_bins, binning=binning,
                      eqodds=eqodds, gap_macro=gap_macro, var_ddof=var_ddof, metrics=metrics,
                      progress=progress, n_jobs=n_jobs)


def _audit(predictions, *, task, attributes, n_bootstrap, n_permutations, seed, threshold,
           validation, pairs, min_group_size, level, correction, n_bins, binning, eqodds,
           gap_macro, var_ddof, metrics, progress, n_jobs=1):
    from tqdm import tqdm

    if task not in ("binary", "multiclass", "multilabel"):
        raise ConfigError(f"unknown task {task!r} (choose from binary, multiclass, multilabel)")
    for name, v in (("n_bootstrap", n_bootstrap), ("n_permutations", n_permutations),
                    ("min_group_size", min_group_size)):
        if int(v) < 0:
            raise ConfigError(f"{name} must be >= 0 (got {v})")
    if correction is not None and correction not in stats.CORRECTIONS:
        raise ConfigError(f"unknown correction {correction!r} "
                          f"(choose from {', '.join(stats.CORRECTIONS)} or None)")
    d = _apply_policy(predictions, task, threshold, validation)
    attrs = parse_attributes(predictions, attributes)
    pair_map = _parse_pairs(pairs, attrs)
    opt = Options(n_bins=n_bins, binning=binning, eqodds=eqodds, gap_macro=gap_macro,
                  var_ddof=var_ddof)
    if metrics is not None:
        unknown = [m for m in metrics if m not in ALL_METRICS]
        if unknown:
            raise ConfigError(f"unknown metric {unknown[0]!r} (known: {', '.join(ALL_METRICS)})")
    engine = _Engine(d, attrs, pair_map, opt, metrics)
    estimates = {k: v[0] for k, v in engine.evaluate(None).items()}
    rng = stats.as_generator(seed)

    boot: dict[tuple, list[np.ndarray]] = {k: [] for k in estimates}
    if n_bootstrap:
        # strata: the intersection of all audited attributes, so every group of every
        # attribute keeps its size in every resample
        strata = np.unique(np.stack([a.codes for a in attrs], axis=1), axis=0,
                           return_inverse=True)[1].ravel()
        clusters = (predictions["patient_id"].astype(str).to_numpy()
                    if "patient_id" in predictions.columns else None)
        chunks = stats.iter_resample_counts(n_bootstrap, d.n, strata=strata, clusters=clusters,
                                            seed=rng)
        with tqdm(total=n_bootstrap, desc="bootstrap", disable=not progress) as bar:
            for result, width in _map_chunks(engine.evaluate, chunks, n_jobs):
                for k, v in result.items():
                    boot[k].append(v)
                bar.update(width)

    perm: dict[tuple, list[np.ndarray]] = {}
    patients = (predictions["patient_id"].astype(str).to_numpy()
                if "patient_id" in predictions.columns else None)
    if n_permutations:
        with tqdm(total=n_permutations * len(attrs), desc="permutations",
                  disable=not progress) as bar:
            for i, a in enumerate(attrs):
                by_patient = patients is not None and stats.constant_within(a.codes, patients)
                if patients is not None and not by_patient:
                    log.warning("%s varies within patients: its permutation test shuffles "
                                "rows, not patients (p-values may be optimistic)", a.name)
                chunks = stats.iter_permuted_codes(a.codes, n_permutations, seed=rng,
                                                   clusters=patients if by_patient else None)
                for result, width in _map_chunks(functools.partial(engine.permuted, i),
                                             (c.T for c in chunks), n_jobs):
                    for k, v in result.items():
                        if k[0] in TESTED:
                            perm.setdefault(k, []).append(v)
                    bar.update(width)

    return _table(d, attrs, pair_map, estimates, boot, perm, level=level,
                  min_group_size=min_group_size, correction=correction)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's controller, created once (it scans the loaded libraries)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _map_chunks(func, chunks, n_jobs: int):
    """``func`` over the weight chunks, in order; ``n_jobs`` threads (numpy releases the GIL).

    Chunks are drawn in the calling thread (the random stream does not depend on
    ``n_jobs``) and at most ``2 * n_jobs`` are in flight, which bounds the memory.
    """
    if n_jobs <= 1:
        for w in chunks:
            yield func(w), w.shape[1]
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        pending: deque = deque()
        for w in chunks:
            pending.append((pool.submit(func, w), w.shape[1]))
            if len(pending) >= 2 * n_jobs:
                fut, width = pending.popleft()
                yield fut.result(), width
        while pending:
            fut, width = pending.popleft()
            yield fut.result(), width


def _table(d, attrs, pair_map, estimates, boot, perm, *, level, min_group_size, correction):
    sizes = {("all", "all"): d.n}
    small_attr = {}
    for a in attrs:
        counts = np.bincount(a.codes, minlength=len(a.groups))
        for g, c in zip(a.groups, counts):
            sizes[(a.name, g)] = int(c)
            if c == 0:
                log.warning("%s=%s: group has no samples; its metrics are undefined (empty)",
                            a.name, g)
        small_attr[a.name] = [g for g, c in zip(a.groups, counts) if c < min_group_size]
        for ga, gb in pair_map.get(a.name, []):
            sizes[(a.name, f"{ga} vs {gb}")] = sizes[(a.name, ga)] + sizes[(a.name, gb)]
    rows = []
    undefined: dict[tuple[str, str], list[str]] = {}
    for key, est in estimates.items():
        metric, attribute, group, label = key
        if group == "all" or " vs " in group:
            n = sizes.get((attribute, group), d.n) if attribute != "all" else d.n
            if attribute != "all" and group == "all":
                n = d.n
            if " vs " in group:
                small = any(g in small_attr[attribute] for g in group.split(" vs ", 1))
            else:
                small = attribute != "all" and bool(small_attr[attribute])
        else:
            n = sizes[(attribute, group)]
            small = n < min_group_size
        lo = hi = np.nan
        if boot.get(key):
            lo, hi = stats.percentile_interval(np.concatenate(boot[key]), level=level)
        p = np.nan
        if key in perm:
            p = float(stats.permutation_pvalue(np.asarray(est), np.concatenate(perm[key]),
                                               two_sided=metric == "fpr_diff"))
        flags = []
        if small:
            flags.append("small_group")
        if not np.isfinite(est):
            flags.append("undefined")
            undefined.setdefault((attribute, group), []).append(f"{metric}[{label}]")
        rows.append((metric, attribute, group, label, float(est), float(lo), float(hi), p,
                     np.nan, int(n), ";".join(flags)))
    for (attribute, group), what in undefined.items():
        where = "overall" if attribute == "all" else (
            f"{attribute} (gap over groups)" if group == "all" else f"{attribute}={group}")
        log.warning("%s: undefined (reported empty): %s%s", where, ", ".join(what[:8]),
                    f" and {len(what) - 8} more" if len(what) > 8 else "")
    for a in attrs:
        if small_attr[a.name]:
            log.warning("%s: group(s) smaller than %d rows flagged small_group: %s", a.name,
                        min_group_size, ", ".join(small_attr[a.name]))
    table = pd.DataFrame(rows, columns=COLUMNS)
    if correction is not None:
        # udr_gap equals tpr_gap (UDR = 1 - TPR): one test, counted once in the family
        family = (table.metric != "udr_gap").to_numpy()
        adjusted = np.full(len(table), np.nan)
        adjusted[family] = stats.adjust_pvalues(table.loc[family, "p_value"].to_numpy(), correction)
        table["p_adjusted"] = adjusted
        key = ["attribute", "group", "label"]
        tpr = table.loc[table.metric == "tpr_gap", key + ["p_adjusted"]]
        udr = table.metric == "udr_gap"
        if udr.any() and len(tpr):
            table.loc[udr, "p_adjusted"] = (table.loc[udr, key].merge(tpr, on=key, how="left")
                                            ["p_adjusted"].to_numpy())
    return table


def summary(table: pd.DataFrame, *, max_rows: int = 12) -> str:
    """A short human-readable summary of an audit table (for the terminal).

    Lists the overall macro (or single-label) utility, then the largest gaps with their
    intervals and p-values.
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
    gaps = table[table.metric.isin(TESTED) & (table.label.isin(["macro"]) |
                                              (table.groupby(["metric", "attribute", "group"])
                                               .label.transform("count") == 1))]
    gaps = gaps.reindex(gaps.estimate.abs().sort_values(ascending=False).index).head(max_rows)
    if len(gaps):
        lines.append("largest gaps (macro over classes where there are several):")
        for r in gaps.itertuples():
            ci = f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else ""
            p = f" p={r.p_value:.3g}" if np.isfinite(r.p_value) else ""
            pa = f" p_adj={r.p_adjusted:.3g}" if np.isfinite(r.p_adjusted) else ""
            grp = "" if r.group == "all" else f" ({r.group})"
            flag = f" [{r.flag}]" if r.flag else ""
            lines.append(f"  {r.metric:<10} {r.attribute}{grp}: {r.estimate:+.3f}{ci}{p}{pa}{flag}")
    n_undef = int(table.flag.str.contains("undefined").sum())
    if n_undef:
        lines.append(f"{n_undef} estimate(s) undefined (empty in the table; see warnings)")
    return "\n".join(lines)
