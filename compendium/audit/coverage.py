"""How often each kind of bootstrap interval covers a true gap: a simulation (synthetic).

The audit's gap intervals (:mod:`compendium.audit.report`) are chosen with this evidence.
Each simulated data set holds, per group, the four cells of a binary confusion matrix (true
positives, false negatives, false positives, true negatives) drawn from known rates; the
audit's bootstrap resamples rows *within* groups, so a resample of a group is a multinomial
draw of its cells with the observed shares, which is what is drawn here (exactly the
distribution the audit's resampling gives, without building a predictions table).  The
statistics are those the audit reports:

* ``signed``: the difference of the TPRs of two groups (first minus second);
* ``abs``: its absolute value (a two-group gap: ``tpr_gap``);
* ``maxmin``: the largest minus the smallest TPR over the groups (the gap of more groups);
* ``eqodds``: the mean of the TPR and FPR max-min gaps (Paper A's EqOdds, one class).

and the candidate intervals (:mod:`compendium.audit.stats`): ``percentile``, ``bc``
(bias-corrected percentile), ``bca`` (bias-corrected and accelerated; acceleration from the
leave-one-row-out jackknife) and, for ``abs``, ``abs_of_signed`` (the absolute value's
transform of the signed difference's percentile interval, :func:`stats.abs_interval`).
:func:`coverage_table` gives each one's coverage of the true value, its mean width and how
often it excludes its own estimate; :data:`SCENARIOS` holds the papers' sample sizes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigError
from . import stats

#: Statistic -> the intervals compared for it.
CANDIDATES = {
    "signed": ("percentile",),
    "abs": ("percentile", "bc", "abs_of_signed"),
    "maxmin": ("percentile", "bc", "bca", "simultaneous", "calibrated_no_test", "calibrated"),
    "eqodds": ("percentile", "bc", "bca", "simultaneous", "calibrated_no_test", "calibrated"),
    "f1_var": ("percentile", "bc", "bca", "simultaneous", "calibrated_no_test", "calibrated"),
}
#: The interval the audit reports for each statistic (chosen with :func:`coverage_table`;
#: ``tests/test_audit_coverage.py`` checks that it covers 93-97% where a valid one exists).
CHOSEN = {"signed": "percentile", "abs": "abs_of_signed", "maxmin": "calibrated",
          "eqodds": "calibrated", "f1_var": "calibrated"}


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One simulated design: group sizes, the share of rows with the condition (the TPR's
    denominator) and the true TPR and FPR of every group."""

    #: what the design stands for (e.g. Paper A's 240 test images by sex)
    name: str
    #: rows per group
    sizes: tuple[int, ...]
    #: share of rows that are positives
    prevalence: float
    #: true TPR per group
    tpr: tuple[float, ...]
    #: true FPR per group
    fpr: tuple[float, ...]

    def __post_init__(self) -> None:
        g = len(self.sizes)
        if g < 2 or len(self.tpr) != g or len(self.fpr) != g:
            raise ConfigError(f"scenario {self.name!r}: sizes, tpr and fpr need one value per "
                              "group and at least two groups")
        if not 0 < self.prevalence < 1:
            raise ConfigError(f"scenario {self.name!r}: prevalence must lie in (0, 1)")

    def truth(self, statistic: str) -> float:
        t, f = np.asarray(self.tpr), np.asarray(self.fpr)
        if statistic == "signed":
            return float(t[0] - t[1])
        if statistic == "abs":
            return float(abs(t[0] - t[1]))
        if statistic == "maxmin":
            return float(t.max() - t.min())
        return float(0.5 * ((t.max() - t.min()) + (f.max() - f.min())))


@dataclasses.dataclass(frozen=True)
class ClassScenario:
    """A multi-class design for the variance of the class-wise F1 (``f1_var``): ``n`` rows,
    the classes equally frequent, the classifier right on a row of class ``i`` with
    probability ``accuracy[i]`` and otherwise wrong uniformly over the other classes."""

    #: what the design stands for (e.g. Paper A's 240 test images, six classes)
    name: str
    #: rows
    n: int
    #: probability of a right prediction per true class
    accuracy: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.accuracy) < 2 or not all(0 < a < 1 for a in self.accuracy):
            raise ConfigError(f"scenario {self.name!r}: accuracy needs one value in (0, 1) "
                              "per class and at least two classes")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.n,)

    def probabilities(self) -> np.ndarray:
        """The joint probabilities (C, C) of (true class, predicted class)."""
        c = len(self.accuracy)
        acc = np.asarray(self.accuracy)
        m = np.repeat(((1 - acc) / (c - 1))[:, None], c, axis=1)
        np.fill_diagonal(m, acc)
        return m / c

    def truth(self, statistic: str) -> float:
        return float(class_f1(self.probabilities().reshape(-1)).var())

    def cells(self, n_sim: int, rng: np.random.Generator) -> np.ndarray:
        """Simulated confusion matrices: counts (n_sim, 1, C * C)."""
        return rng.multinomial(self.n, self.probabilities().reshape(-1), size=n_sim)[:, None, :]


def _spread(center: float, gap: float, g: int) -> tuple[float, ...]:
    """``g`` rates evenly spread over ``[center - gap/2, center + gap/2]`` (highest first)."""
    return tuple(float(x) for x in np.linspace(center + gap / 2, center - gap / 2, g))


def paper_scenarios() -> list[Scenario]:
    """The papers' designs at a true gap of zero and at a non-zero one.

    Paper A: 240 test images, one of six classes (a class's positives are a sixth), by sex
    (2 x 120) and by three age groups (3 x 80).  Papers B and C: a few hundred per group
    (300), a condition in 30% of them, by two and by three groups.
    """
    out = []
    for paper, g, n, prev, gap in (("A", 2, 120, 1 / 6, 0.3), ("A", 3, 80, 1 / 6, 0.3),
                                   ("B, C", 2, 300, 0.3, 0.1), ("B, C", 3, 300, 0.3, 0.1)):
        for true_gap in (0.0, gap):
            out.append(Scenario(
                name=f"Paper {paper}: {g} groups x {n} rows, gap {true_gap:g}",
                sizes=(n,) * g, prevalence=prev, tpr=_spread(0.6, true_gap, g),
                fpr=_spread(0.2, true_gap / 2, g)))
    return out


def class_scenarios() -> list[ClassScenario]:
    """Paper A's design for the variance of the class-wise F1: 240 test images of six
    classes, every class as well predicted (variance 0) and accuracies spread from 0.3 to 0.9
    (variance 0.018, near the 0.017 the paper reports for a fine-tuned model)."""
    return [ClassScenario(name=f"Paper A: 6 classes x 40 rows, accuracy {lo:g}-{hi:g}", n=240,
                          accuracy=tuple(float(a) for a in np.linspace(lo, hi, 6)))
            for lo, hi in ((0.6, 0.6), (0.3, 0.9))]


#: The designs of the glossary's coverage table.
SCENARIOS = tuple(paper_scenarios()) + tuple(class_scenarios())


def _cells_of(sc: Scenario, n_sim: int, rng: np.random.Generator) -> np.ndarray:
    """Simulated data sets: counts (n_sim, G, 4) of TP, FN, FP, TN."""
    out = np.zeros((n_sim, len(sc.sizes), 4))
    for g, n in enumerate(sc.sizes):
        pos = rng.binomial(n, sc.prevalence, n_sim)
        tp = rng.binomial(pos, sc.tpr[g])
        fp = rng.binomial(n - pos, sc.fpr[g])
        out[:, g] = np.stack([tp, pos - tp, fp, n - pos - fp], axis=1)
    return out


def _resample(cells: np.ndarray, b: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples within groups: (n_sim, b, G, K) multinomial draws of the K cells."""
    n = cells.sum(axis=-1)                               # (R, G)
    p = cells / np.where(n > 0, n, 1)[..., None]
    shape = (cells.shape[0], b, cells.shape[1])
    left = np.broadcast_to(n[:, None, :], shape).astype(np.int64)
    rest = np.ones(shape)
    n_cells = cells.shape[-1]
    out = np.zeros(shape + (n_cells,))
    for k in range(n_cells - 1):
        share = np.clip(np.broadcast_to(p[:, None, :, k], shape) / np.where(rest > 0, rest, 1),
                        0, 1)
        draw = rng.binomial(left, share)
        out[..., k] = draw
        left = left - draw
        rest = rest - np.broadcast_to(p[:, None, :, k], shape)
    out[..., n_cells - 1] = left
    return out


def _rates(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tp, fn, fp, tn = (cells[..., k] for k in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return tp / (tp + fn), fp / (fp + tn)


def statistic(cells: np.ndarray, name: str) -> np.ndarray:
    """The statistic ``name`` of cell counts (..., G, 4) (nan where a rate is undefined);
    ``f1_var``: of a confusion matrix's cells (..., 1, C * C)."""
    if name == "f1_var":
        f1 = class_f1(cells[..., 0, :])
        return f1.var(axis=-1)
    tpr, fpr = _rates(cells)
    if name == "signed":
        return tpr[..., 0] - tpr[..., 1]
    if name == "abs":
        return np.abs(tpr[..., 0] - tpr[..., 1])
    if name == "maxmin":
        return tpr.max(axis=-1) - tpr.min(axis=-1)
    if name == "eqodds":
        return 0.5 * ((tpr.max(axis=-1) - tpr.min(axis=-1)) + (fpr.max(axis=-1) - fpr.min(axis=-1)))
    raise ConfigError(f"unknown statistic {name!r} (choose from {', '.join(CANDIDATES)})")


def class_f1(cells: np.ndarray) -> np.ndarray:
    """One-vs-rest F1 of every class from confusion-matrix cells (..., C * C) (row: true
    class, column: predicted): ``2 TP / (2 TP + FP + FN)``, nan where a class is neither
    present nor predicted."""
    c = round(float(np.sqrt(cells.shape[-1])))
    m = cells.reshape(cells.shape[:-1] + (c, c))
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    den = m.sum(axis=-1) + m.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, 2 * tp / np.where(den > 0, den, 1), np.nan)


def _acceleration(cells: np.ndarray, name: str) -> np.ndarray:
    """BCa acceleration from the leave-one-row-out jackknife, exactly: removing a row changes
    only its group's cell, so there are at most K G distinct jackknife values, each weighted
    by how many rows it stands for."""
    g = cells.shape[1]
    values, weights = [], []
    for gg in range(g):
        for k in range(cells.shape[-1]):
            c = cells.copy()
            c[:, gg, k] -= 1
            values.append(statistic(c, name))
            weights.append(cells[:, gg, k])
    v, w = np.stack(values, axis=-1), np.stack(weights, axis=-1)
    v = np.where(w > 0, v, 0.0)
    ok = np.isfinite(v) | (w == 0)
    v, w = np.where(ok, v, 0.0), np.where(ok, w, 0.0)
    mean = (v * w).sum(-1) / np.maximum(w.sum(-1), 1)
    d = mean[:, None] - v
    num = (w * d ** 3).sum(-1)
    den = 6.0 * (w * d ** 2).sum(-1) ** 1.5
    return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)


def _reduce_of(name: str, n_values: int):
    """The reduction of absolute pairwise differences (P, K, ...) to the statistic: the max-min
    TPR gap (K = 1), EqOdds (K = 2: the mean of the TPR and FPR max-min gaps), or the
    variance of ``n_values`` class-wise F1s (``sum |d|^2 / C^2``)."""
    if name == "maxmin":
        return lambda a: a.max(axis=0)[0]
    if name == "f1_var":
        return lambda a: (a[:, 0] ** 2).sum(axis=0) / n_values ** 2
    return lambda a: a.max(axis=0).mean(axis=0)


def _reduced(cells: np.ndarray, boot_cells: np.ndarray, name: str, level: float, method: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stats.reduced_interval` of every simulated data set (``method``: simultaneous,
    calibrated or calibrated_no_test)."""
    if name == "f1_var":                       # the classes play the groups
        tpr, btpr = class_f1(cells[:, 0]), class_f1(boot_cells[:, :, 0])
        fpr = bfpr = None
    else:
        tpr, fpr = _rates(cells)               # (R, G)
        btpr, bfpr = _rates(boot_cells)        # (R, B, G)
    reduce = _reduce_of(name, tpr.shape[-1])
    lows, highs = [], []
    for r in range(cells.shape[0]):
        if name in ("maxmin", "f1_var"):
            est, boot = tpr[r][:, None], btpr[r].T[:, None, :]
        else:
            est = np.stack([tpr[r], fpr[r]], axis=1)                   # (G, 2)
            boot = np.stack([btpr[r].T, bfpr[r].T], axis=1)            # (G, 2, B)
        lo, hi, _ = stats.reduced_interval(est, boot, reduce, level=level, method=method)
        lows.append(lo)
        highs.append(hi)
    return np.array(lows), np.array(highs)


def interval(method: str, boot: np.ndarray, estimate: np.ndarray, *, level: float = 0.95,
             signed_boot: np.ndarray | None = None, acceleration=None
             ) -> tuple[np.ndarray, np.ndarray]:
    """One candidate interval from resamples ``boot`` (..., B) of a statistic."""
    if method == "percentile":
        return stats.percentile_interval(boot, level=level)
    if method == "bc":
        return stats.bc_interval(boot, estimate, level=level)
    if method == "bca":
        return stats.bc_interval(boot, estimate, level=level, acceleration=acceleration)
    if method == "abs_of_signed":
        return stats.abs_interval(*stats.percentile_interval(signed_boot, level=level))
    raise ConfigError(f"unknown interval {method!r}")


def simulate(sc: Scenario | ClassScenario, *, n_sim: int = 1000, n_bootstrap: int = 1000,
             level: float = 0.95, seed: int | np.random.Generator = 0, chunk: int = 100,
             intervals: Sequence[str] | None = None) -> pd.DataFrame:
    """Coverage of every candidate interval of every statistic the design allows.

    Returns one row per (statistic, interval): ``truth``, ``coverage`` (share of simulated
    data sets whose interval holds the true value), ``width`` (mean), ``excludes_estimate``
    (share of intervals that exclude their own estimate), ``n_sim``, ``n_bootstrap``.
    ``intervals`` restricts the candidates (all of :data:`CANDIDATES` by default).
    """
    rng = stats.as_generator(seed)
    # two groups: the max-min gap is the absolute difference (``abs``, as the audit forms it)
    if isinstance(sc, ClassScenario):
        names = ["f1_var"]
    else:
        names = [s for s in CANDIDATES if s != "f1_var" and (
            (s in ("signed", "abs")) == (len(sc.sizes) == 2) or s == "eqodds")]
    acc = {(s, m): {"covered": 0, "width": 0.0, "excl": 0, "n": 0}
           for s in names for m in CANDIDATES[s] if intervals is None or m in intervals}
    done = 0
    while done < n_sim:
        r = min(chunk, n_sim - done)
        cells = sc.cells(r, rng) if isinstance(sc, ClassScenario) else _cells_of(sc, r, rng)
        boot_cells = _resample(cells, n_bootstrap, rng)
        signed_boot = statistic(boot_cells, "signed") if len(sc.sizes) == 2 else None
        for s in names:
            est = statistic(cells, s)
            boot = statistic(boot_cells, s)
            for m in CANDIDATES[s]:
                if (s, m) not in acc:
                    continue
                if m in stats.REDUCED_METHODS:
                    lo, hi = _reduced(cells, boot_cells, s, level, m)
                else:
                    a = _acceleration(cells, s) if m == "bca" else None
                    lo, hi = interval(m, boot, est, level=level, signed_boot=signed_boot,
                                      acceleration=a)
                ok = np.isfinite(lo) & np.isfinite(est)
                truth = sc.truth(s)
                tol = 1e-12
                rec = acc[(s, m)]
                rec["covered"] += int(((lo - tol <= truth) & (truth <= hi + tol) & ok).sum())
                rec["width"] += float(np.where(ok, hi - lo, 0).sum())
                rec["excl"] += int((((est < lo - tol) | (est > hi + tol)) & ok).sum())
                rec["n"] += int(ok.sum())
        done += r
    rows = []
    for (s, m), rec in acc.items():
        n = max(rec["n"], 1)
        rows.append({"scenario": sc.name, "statistic": s, "interval": m,
                     "truth": sc.truth(s), "coverage": rec["covered"] / n,
                     "width": rec["width"] / n, "excludes_estimate": rec["excl"] / n,
                     "n_sim": rec["n"], "n_bootstrap": n_bootstrap})
    return pd.DataFrame(rows)


def coverage_table(scenarios: Sequence[Scenario | ClassScenario] = SCENARIOS, *, n_sim: int = 1000,
                   n_bootstrap: int = 1000, level: float = 0.95,
                   seed: int | np.random.Generator = 0,
                   intervals: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`simulate` over ``scenarios`` (the papers' designs by default), one table, with
    a column ``valid``: whether an interval of this kind can be valid in the design (not the
    percentile, BC or BCa interval of a gap whose true value is 0, the boundary of what a gap
    can take: resample quantiles of a gap hold 0 only when resamples reach 0 exactly), and
    ``chosen``: whether the audit reports this interval for this statistic."""
    rng = stats.as_generator(seed)
    t = pd.concat([simulate(sc, n_sim=n_sim, n_bootstrap=n_bootstrap, level=level, seed=rng,
                            intervals=intervals) for sc in scenarios], ignore_index=True)
    t["valid"] = ((t["statistic"] == "signed") | (t["truth"] > 0)
                  | t["interval"].isin(["abs_of_signed", *stats.REDUCED_METHODS]))
    t["chosen"] = [CHOSEN[s] == m for s, m in zip(t["statistic"], t["interval"])]
    return t


def recommendation(table: pd.DataFrame, *, low: float = 0.93, high: float = 0.97
                   ) -> pd.DataFrame:
    """Per statistic and interval over the designs where it can be valid (for the percentile,
    BC and BCa intervals of a gap: a non-zero true gap): the lowest and highest coverage,
    the mean width, the most often an interval excluded its estimate, and ``within`` (every
    coverage in ``[low, high]``)."""
    v = table[table["valid"]]
    g = v.groupby(["statistic", "interval"], sort=False)
    out = g.agg(min_coverage=("coverage", "min"), max_coverage=("coverage", "max"),
                mean_width=("width", "mean"),
                max_excludes_estimate=("excludes_estimate", "max"),
                chosen=("chosen", "first")).reset_index()
    out["within"] = (out["min_coverage"] >= low) & (out["max_coverage"] <= high)
    return out


#: Readable names of the statistics and intervals (the glossary's table).
STATISTIC_NAMES = {"signed": "signed difference (2 groups)", "abs": "absolute gap (2 groups)",
                   "maxmin": "max-min TPR gap", "eqodds": "EqOdds (TPR and FPR gaps)",
                   "f1_var": "variance of class-wise F1", "ece": "one group's ECE",
                   "auprc": "one group's AUPRC"}
INTERVAL_NAMES = {"percentile": "percentile", "bc": "bias-corrected percentile (BC)",
                  "bca": "BCa", "abs_of_signed": "|signed difference's interval|",
                  "simultaneous": "simultaneous pairwise (max-t)",
                  "calibrated_no_test": "calibrated max-t, always",
                  "calibrated": "max-t, calibrated once the gap is told from 0"}
#: The range of coverage the book asks of a 95% interval.
LOW, HIGH = 0.93, 0.97


def _note(valid: bool, coverage: float) -> str:
    if not valid:
        return ("no valid interval of this kind at a true value of 0: resample quantiles of a "
                "gap hold 0 only when resamples reach 0 exactly")
    if coverage < LOW:
        return "below 93%"
    if coverage > HIGH:
        return "above 97% (conservative)"
    return ""


def coverage_display(table: pd.DataFrame) -> pd.DataFrame:
    """The coverage table for a reader: one row per design, statistic and interval, with
    readable names, ``reported`` marking the interval the audit reports, and a note where no
    valid interval of the kind can exist or the coverage lies outside 93-97%."""
    out = pd.DataFrame({
        "design (synthetic)": table["scenario"],
        "statistic": table["statistic"].map(STATISTIC_NAMES),
        "true value": table["truth"].round(4),
        "interval": table["interval"].map(INTERVAL_NAMES),
        "coverage": table["coverage"].round(3),
        "mean width": table["width"].round(3),
        "excludes its estimate": table["excludes_estimate"].round(3),
        "reported by the audit": np.where(table["chosen"], "yes", ""),
        "note": [_note(v, c) for v, c in zip(table["valid"], table["coverage"])],
    })
    return out.reset_index(drop=True)


def outside(table: pd.DataFrame, *, low: float = LOW, high: float = HIGH) -> pd.DataFrame:
    """The designs where the interval the audit reports covers outside ``[low, high]``."""
    c = table[table["chosen"] & table["valid"]]
    return c[(c["coverage"] < low) | (c["coverage"] > high)]


def coverage_values(table: pd.DataFrame) -> dict:
    """The numbers the glossary quotes from a :func:`coverage_table` (for
    ``out.values_from``): per reported interval the lowest and highest coverage where a valid
    one exists; the rejected candidates' extremes (the simultaneous max-t's highest coverage
    of a non-zero gap, the always-calibrated one's lowest at a true gap of 0, the BC and BCa
    intervals' range at a non-zero gap, the percentile, BC and BCa intervals' highest
    coverage of a max-min gap of 0); and the designs where the reported interval covers
    outside 93-97% (text)."""
    valid = table[table["valid"]]
    out = {}
    for s, m in CHOSEN.items():
        v = valid[(valid["statistic"] == s) & (valid["interval"] == m)]["coverage"]
        if len(v):
            out[f"coverage_{s}_min"] = (float(v.min()), ".3f")
            out[f"coverage_{s}_max"] = (float(v.max()), ".3f")
    red = valid[valid["statistic"].isin(["maxmin", "eqodds", "f1_var"])]
    nonzero, zero = red[red["truth"] > 0], red[red["truth"] == 0]
    sim = nonzero[nonzero["interval"] == "simultaneous"]["coverage"]
    out["coverage_simultaneous_nonzero_max"] = (float(sim.max()), ".3f")
    out["coverage_simultaneous_nonzero_min"] = (float(sim.min()), ".3f")
    nt = zero[zero["interval"] == "calibrated_no_test"]["coverage"]
    out["coverage_no_test_zero_min"] = (float(nt.min()), ".3f")
    out["coverage_no_test_zero_max"] = (float(nt.max()), ".3f")
    ch = zero[zero["interval"] == "calibrated"]["coverage"]
    out["coverage_zero_chosen_min"] = (float(ch.min()), ".3f")
    out["coverage_zero_chosen_max"] = (float(ch.max()), ".3f")
    bc = valid[valid["interval"].isin(["bc", "bca"]) & (valid["statistic"] != "signed")]
    out["coverage_bc_min"] = (float(bc["coverage"].min()), ".3f")
    out["coverage_bc_max"] = (float(bc["coverage"].max()), ".3f")
    z = table[table["statistic"].isin(["maxmin", "eqodds", "f1_var"]) & (table["truth"] == 0)]
    for m in ("percentile", "bc", "bca"):
        out[f"coverage_zero_{m}_max"] = (float(z[z["interval"] == m]["coverage"].max()), ".3f")
    o = outside(table)
    out["coverage_outside"] = "; ".join(
        f"{STATISTIC_NAMES[r.statistic]} at {r.scenario}: {r.coverage:.3f}"
        for r in o.itertuples()) or "none"
    out["coverage_n_outside"] = len(o)
    out["coverage_n_chosen"] = int((table["chosen"] & table["valid"]).sum())
    return out


def group_metric_display(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`group_metric_table` for a reader."""
    return pd.DataFrame({
        "design (synthetic)": table["scenario"],
        "statistic": table["statistic"].map(STATISTIC_NAMES),
        "true value": table["truth"].round(3),
        "mean estimate": table["mean_estimate"].round(3),
        "coverage (intervals given)": table["coverage"].round(3),
        "interval withheld (biased_bootstrap)": table["withheld"].round(3),
        "mean width": table["width"].round(3),
    })


def group_metric_values(table: pd.DataFrame) -> dict:
    """Per metric the lowest and highest coverage of its percentile interval over the
    miscalibrated designs of at least 80 rows, its coverage in the smallest group, and the
    ECE interval's coverage of a calibrated score (a true ECE near 0)."""
    out = {}
    mis = table[table["scenario"].str.contains("miscalibrated")]
    n = mis["scenario"].str.extract(r"of (\d+) rows")[0].astype(int)
    for m in GROUP_METRICS:
        big = mis[(mis["statistic"] == m) & (n >= 80)]["coverage"]
        small = mis[(mis["statistic"] == m) & (n == n.min())]
        out[f"group_{m}_coverage_min"] = (float(big.min()), ".3f")
        out[f"group_{m}_coverage_max"] = (float(big.max()), ".3f")
        out[f"group_{m}_coverage_smallest"] = (float(small["coverage"].iloc[0]), ".3f")
        out[f"group_{m}_withheld_smallest"] = (float(small["withheld"].iloc[0]), ".3f")
    cal = table[table["scenario"].str.contains(" calibrated score") & (table["statistic"] == "ece")]
    out["group_ece_calibrated_coverage"] = (float(cal["coverage"].iloc[0]), ".3f")
    out["group_ece_calibrated_truth"] = (float(cal["truth"].iloc[0]), ".4f")
    out["group_ece_calibrated_mean_estimate"] = (float(cal["mean_estimate"].iloc[0]), ".3f")
    out["group_smallest_rows"] = int(n.min())
    return out




# ------------------------------------------------ one group's ECE and AUPRC (percentile)

@dataclasses.dataclass(frozen=True)
class ScoreScenario:
    """One group's scores for its ECE and AUPRC: ``n`` rows, a share ``prevalence`` positive;
    ``calibrated``: a score ``s ~ Beta(a, b)`` and the label drawn with probability ``s``
    (a true ECE near 0); otherwise positives score ``Beta(a, b)`` and negatives
    ``Beta(b, a)`` (a miscalibrated score, a true ECE well above 0)."""

    #: what the design stands for
    name: str
    #: rows in the group
    n: int
    #: share of positives (not calibrated)
    prevalence: float
    #: Beta parameters
    a: float
    b: float
    #: whether the label is drawn from the score
    calibrated: bool = False

    def table(self, n: int, rng: np.random.Generator) -> pd.DataFrame:
        """A binary predictions table of ``n`` rows (synthetic)."""
        if self.calibrated:
            s = rng.beta(self.a, self.b, n)
            y = rng.random(n) < s
        else:
            y = rng.random(n) < self.prevalence
            s = np.where(y, rng.beta(self.a, self.b, n), rng.beta(self.b, self.a, n))
        return pd.DataFrame({"y_true": y.astype(int), "y_score": s})


#: The per-group metrics whose percentile intervals :func:`simulate_group_metrics` checks.
GROUP_METRICS = ("ece", "auprc")


def _audit_overall(table: pd.DataFrame, n_bootstrap: int, seed) -> pd.DataFrame:
    from .report import audit

    t = audit(table, task="binary", attributes=[], metrics=list(GROUP_METRICS),
              n_bootstrap=n_bootstrap, n_permutations=0, seed=seed, threshold=0.5)
    return t.set_index("metric")


def group_metric_truth(sc: ScoreScenario, *, rows: int = 400_000, seed=0) -> dict[str, float]:
    """The population ECE and AUPRC of a design, as the audit computes them on ``rows`` rows
    (Monte-Carlo error of order ``1 / sqrt(rows)``, far below the intervals' widths)."""
    t = _audit_overall(sc.table(rows, stats.as_generator(seed)), 0, seed)
    return {m: float(t.loc[m, "estimate"]) for m in GROUP_METRICS}


def simulate_group_metrics(sc: ScoreScenario, *, n_sim: int = 1000, n_bootstrap: int = 1000,
                           seed: int | np.random.Generator = 0,
                           truth: dict[str, float] | None = None) -> pd.DataFrame:
    """Coverage of the audit's percentile intervals of one group's ECE and AUPRC, formed and
    guarded as the audit does (:func:`compendium.audit.audit` on each simulated group; no
    interval and the flag ``biased_bootstrap`` when it would exclude its estimate).

    One row per metric: ``truth``, ``coverage`` (share of the simulated groups whose interval
    holds the true value, among those that got one), ``withheld`` (share that got none),
    ``coverage_all`` (a withheld interval counted as a miss), ``width``, ``mean_estimate``
    (over the groups where it is defined; beside ``truth``: the estimate's bias), ``n_sim``,
    ``n_bootstrap``.
    """
    import logging

    rng = stats.as_generator(seed)
    truth = truth if truth is not None else group_metric_truth(sc, seed=rng)
    rec = {m: {"covered": 0, "given": 0, "width": 0.0, "est": 0.0, "defined": 0}
           for m in GROUP_METRICS}
    quiet = logging.getLogger("compendium.audit.report")
    level = quiet.level
    quiet.setLevel(logging.ERROR)        # a tiny group without positives: undefined AUPRC
    try:
        tables = [_audit_overall(sc.table(sc.n, rng), n_bootstrap, rng) for _ in range(n_sim)]
    finally:
        quiet.setLevel(level)
    for t in tables:
        for m in GROUP_METRICS:
            lo, hi, est = (float(t.loc[m, k]) for k in ("ci_low", "ci_high", "estimate"))
            if np.isfinite(est):
                rec[m]["est"] += est
                rec[m]["defined"] += 1
            if np.isfinite(lo) and np.isfinite(hi):
                rec[m]["given"] += 1
                rec[m]["covered"] += int(lo <= truth[m] <= hi)
                rec[m]["width"] += hi - lo
    rows = []
    for m, r in rec.items():
        g = max(r["given"], 1)
        rows.append({"scenario": sc.name, "statistic": m, "interval": "percentile",
                     "truth": truth[m], "coverage": r["covered"] / g,
                     "withheld": 1 - r["given"] / n_sim, "coverage_all": r["covered"] / n_sim,
                     "width": r["width"] / g,
                     "mean_estimate": r["est"] / r["defined"] if r["defined"] else np.nan,
                     "n_sim": n_sim, "n_bootstrap": n_bootstrap})
    return pd.DataFrame(rows)


def score_scenarios() -> list[ScoreScenario]:
    """Groups of the papers' sizes: 13 rows (a small group of a smoke run), 80 (Paper A's
    age groups) and 300 (Papers B, C); a miscalibrated score (positives ``Beta(3, 2)``,
    negatives ``Beta(2, 3)``, 30% positive) and, at 300 rows, a calibrated one (``Beta(2, 5)``,
    labels drawn from the score)."""
    out = [ScoreScenario(f"one group of {n} rows, miscalibrated score", n, 0.3, 3.0, 2.0)
           for n in (13, 80, 300)]
    out.append(ScoreScenario("one group of 300 rows, calibrated score", 300, 0.0, 2.0, 5.0,
                             calibrated=True))
    return out


#: The designs of the glossary's table of per-group ECE and AUPRC intervals.
SCORE_SCENARIOS = tuple(score_scenarios())


def group_metric_table(scenarios: Sequence[ScoreScenario] = SCORE_SCENARIOS, *,
                       n_sim: int = 1000, n_bootstrap: int = 1000, truth_rows: int = 400_000,
                       seed: int | np.random.Generator = 0) -> pd.DataFrame:
    """:func:`simulate_group_metrics` over ``scenarios``, one table (true values from
    ``truth_rows`` rows each: :func:`group_metric_truth`)."""
    rng = stats.as_generator(seed)
    return pd.concat([simulate_group_metrics(
        sc, n_sim=n_sim, n_bootstrap=n_bootstrap, seed=rng,
        truth=group_metric_truth(sc, rows=truth_rows, seed=rng)) for sc in scenarios],
        ignore_index=True)


__all__ = [
    "CANDIDATES",
    "CHOSEN",
    "SCENARIOS",
    "SCORE_SCENARIOS",
    "ClassScenario",
    "Scenario",
    "ScoreScenario",
    "class_scenarios",
    "coverage_display",
    "coverage_table",
    "coverage_values",
    "group_metric_display",
    "group_metric_table",
    "group_metric_values",
    "interval",
    "outside",
    "paper_scenarios",
    "recommendation",
    "score_scenarios",
    "simulate",
    "simulate_group_metrics",
    "statistic",
]
