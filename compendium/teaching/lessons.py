"""The computations of the course's lessons (one function per lesson, each returning tidy
tables), and their figures.  Everything here is synthetic except lesson 6, which reads the
numbers Paper A reports (``compendium/papers/paper_a/reported.yaml``).

A lesson notebook calls its function with its spec, publishes the tables and figure, and
lets the student check answers with :func:`compendium.teaching.checks.check`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .world import MECHANISMS, signature_table


# ------------------------------------------------------------ lesson 1: metrics

def metrics_lesson(*, n: int, tpr: Mapping[str, float], fpr: float, n_bootstrap: int,
                   n_permutations: int, seed: int) -> dict[str, pd.DataFrame]:
    """A simulated binary predictions table (population TPR per group ``tpr``, FPR ``fpr``)
    and its audit: ``predictions``, ``groups`` (per-group rows) and ``gaps`` (gap rows, with
    the signed difference of two groups beside each)."""
    from ..audit import audit
    from ..audit.simulate import simulate_binary

    pred = simulate_binary(n, tpr=dict(tpr), fpr=fpr, seed=seed)
    table = audit(pred, task="binary", attributes=["group"], n_bootstrap=n_bootstrap,
                  n_permutations=n_permutations, seed=seed, threshold=0.5,
                  max_permutations=None,
                  metrics=["accuracy", "f1", "tpr", "fpr", "f1_gap", "tpr_gap", "fpr_gap"])
    cols = ["metric", "group", "estimate", "ci_low", "ci_high", "n"]
    groups = table[table["kind"] == "group"][cols].reset_index(drop=True)
    from ..audit.report import signed_beside

    gap_rows = table[table["kind"] == "gap"]
    gaps = gap_rows[["metric", "estimate", "ci_low", "ci_high", "p_value",
                     "p_adjusted"]].reset_index(drop=True)
    # beside a gap of two groups, which group minus which, with its interval
    gaps.insert(4, "signed difference [95% CI]", signed_beside(table, gap_rows))
    return {"predictions": pred, "groups": groups, "gaps": gaps}


def group_metrics_figure(groups: pd.DataFrame, metrics: Sequence[str] = ("tpr", "fpr")):
    """Per-group estimates with their bootstrap intervals, one panel per metric."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        t = groups[groups["metric"] == m]
        ax.errorbar(t["group"], t["estimate"],
                    yerr=[t["estimate"] - t["ci_low"], t["ci_high"] - t["estimate"]],
                    fmt="o", capsize=4)
        ax.set_title(m.upper())
        ax.set_ylim(0, 1)
        ax.set_xlabel("group")
    fig.suptitle("Synthetic predictions: per-group rates, 95% bootstrap intervals", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------- lesson 2: noise and tests

def noise_lesson(*, sizes: Sequence[int], n_sims: int, n_groups: int, tpr: float, gap: float,
                 n_bootstrap: int, n_permutations: int, seed: int) -> dict[str, pd.DataFrame]:
    """Repeated audits of a fair world (every group's TPR ``tpr``) and of a world where one
    group's TPR is ``tpr - gap``, at each test-set size: the TPR gap (max - min), its
    bootstrap interval (formed as the audit's ``interval`` column says: with more than two
    groups from simultaneous intervals of the groups' differences, calibrated for the gap once
    it is told from 0, so that it can contain 0)
    and its permutation p-value per run (``runs``), and per size the
    share of fair runs whose interval contains 0, the share with p < 0.05, and the power
    (``summary``)."""
    from ..audit import audit
    from ..audit.simulate import simulate_binary

    names = [chr(ord("A") + i) for i in range(n_groups)]
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        for world in ("fair", "injected"):
            rates = {g: tpr for g in names}
            if world == "injected":
                rates[names[-1]] = tpr - gap
            for sim in range(n_sims):
                s = int(rng.integers(0, 2**31 - 1))
                pred = simulate_binary(int(size), tpr=rates, fpr=0.2, seed=s)
                t = audit(pred, task="binary", attributes=["group"], n_bootstrap=n_bootstrap,
                          n_permutations=n_permutations, seed=s, threshold=0.5,
                          max_permutations=None, metrics=["tpr", "tpr_gap"])
                g = t[t["metric"] == "tpr_gap"].iloc[0]
                rows.append({"size": int(size), "world": world, "sim": sim,
                             "gap": g["estimate"], "ci_low": g["ci_low"],
                             "ci_high": g["ci_high"], "interval": g["interval"],
                             "p_value": g["p_value"]})
    runs = pd.DataFrame(rows)
    summary = (runs.assign(covers_zero=(runs["ci_low"] <= 0) & (runs["ci_high"] >= 0),
                           significant=runs["p_value"] < 0.05)
               .groupby(["size", "world"], as_index=False)
               .agg(runs=("sim", "size"), mean_gap=("gap", "mean"),
                    share_ci_covers_zero=("covers_zero", "mean"),
                    share_p_below_005=("significant", "mean")))
    return {"runs": runs, "summary": summary}


def noise_figure(runs: pd.DataFrame):
    """Distribution of the TPR gap in fair and injected worlds, per size."""
    import matplotlib.pyplot as plt

    sizes = sorted(runs["size"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.2 * len(sizes), 3), sharey=True,
                             squeeze=False)
    for ax, size in zip(axes[0], sizes):
        for world, colour in (("fair", "tab:blue"), ("injected", "tab:red")):
            v = runs[(runs["size"] == size) & (runs["world"] == world)]["gap"]
            ax.hist(v, bins=15, alpha=0.6, color=colour, label=world)
        ax.set_title(f"n = {size}")
        ax.set_xlabel("TPR gap (max - min)")
    axes[0][0].legend()
    fig.suptitle("Synthetic: the gap a fair model shows is never 0", fontsize=9)
    fig.tight_layout()
    return fig


# ----------------------------------------------------- lesson 3: the knobs

def knobs_lesson(*, n: int, group: str, strength: str, seed: int) -> dict[str, pd.DataFrame]:
    """Each mechanism alone on ``group`` (:func:`~compendium.teaching.world.signature_table`)."""
    return {"signatures": signature_table(n, seed=seed, group=group, strength=strength)}


SIGNATURE_COLUMNS = ("prevalence", "auroc", "tpr", "fpr", "ap_share", "ehr_measured")


def signature_figure(table: pd.DataFrame):
    """One panel per signature: the group minus everyone else, per mechanism."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(10, 5.5))
    for ax, col in zip(axes.ravel(), SIGNATURE_COLUMNS):
        ax.barh(table["mechanism"], table[col], color="tab:purple")
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"{col} (group - rest)", fontsize=9)
    fig.suptitle(f"Synthetic world, one mechanism at a time on {table['group'].iloc[0]}",
                 fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------ lesson 4: labels and label sources

def labels_lesson(*, n: int, report_style: float, group: str, reference: str, seed: int,
                  n_bootstrap: int) -> dict[str, pd.DataFrame]:
    """Recorded labels versus labels read from the reports by the keyword labeller, when
    ``group``'s reports are written with negation-like phrasings (knob ``report_style``):
    per group, the share of rows whose "No Finding" label differs (``agreement``), and the
    "No Finding" FPR gap ``group - reference`` of the simulated classifier under each label
    source (``gaps``; FPR of "No Finding" = sick patients called healthy, Paper C's gap)."""
    from ..audit.gaps import signed_gap
    from ..synthetic.reports import extract_labels
    from ..synthetic.world import synthetic_cxr
    from .world import classifier_scores, group_member

    knobs = {group: {"report_style": report_style}} if report_style else "zero"
    cohort = synthetic_cxr(n=n, seed=seed, knobs=knobs)
    t = cohort.table.reset_index(drop=True)
    read = extract_labels(t["report"])
    sources = {"recorded": t["No Finding"].to_numpy().astype(int),
               "report labeller": read["No Finding"].to_numpy().astype(int)}
    member = group_member(t, group)
    ref = group_member(t, reference)
    agreement = pd.DataFrame([
        {"group": name, "rows": int(m.sum()),
         "share_differs": float((sources["recorded"][m] != sources["report labeller"][m]).mean())}
        for name, m in ((group, member), (reference, ref))])
    score = classifier_scores(t, knobs="zero", seed=seed)      # P(any finding)
    pred_nf = (score < 0.5).astype(int)                          # predicted "No Finding"
    keep = member | ref
    attr = np.where(member, group, reference)[keep]
    rows = []
    for name, y in sources.items():
        g = signed_gap(y[keep], pred_nf[keep], sensitive_features=attr, pair=(group, reference),
                       rate="fpr", n_bootstrap=n_bootstrap, seed=seed)
        rows.append({"labels": name, "pair": f"{group} - {reference}", **g})
    return {"agreement": agreement, "gaps": pd.DataFrame(rows)}


def gap_figure(gaps: pd.DataFrame, *, x: str = "labels", title: str = ""):
    """Signed gaps with their intervals, one point per row."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    ax.errorbar(gaps[x], gaps["estimate"],
                yerr=[gaps["estimate"] - gaps["ci_low"], gaps["ci_high"] - gaps["estimate"]],
                fmt="o", capsize=4)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_ylabel("gap")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------- lesson 5: mitigation

def mitigation_lesson(*, n: int, minority: float, seed: int) -> dict[str, pd.DataFrame]:
    """A logistic probe on :func:`compendium.adapt.demo.disparity_embeddings` (synthetic:
    the minority group B shows the finding along another direction), trained without
    mitigation, with importance weights of the (group, label) cells and with group-balanced
    resampling; test AUROC overall and per group, and the AUROC gap (``methods``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from ..adapt.demo import disparity_embeddings
    from ..adapt.mitigation import balanced_indices, importance_weights

    X, rows = disparity_embeddings(n, minority=minority, seed=seed)
    y = rows["Finding"].to_numpy().astype(int)
    g = rows["group"].to_numpy()
    train = (rows["split"] != "test").to_numpy()
    test = ~train
    Xtr, ytr, gtr = X[train], y[train], g[train]
    fits = {
        "none": (Xtr, ytr, None),
        "importance_weighting": (Xtr, ytr, importance_weights(gtr, ytr)),
    }
    idx = balanced_indices(gtr, ytr, seed=seed)
    fits["group_resampling"] = (Xtr[idx], ytr[idx], None)
    out = []
    for name, (Xf, yf, w) in fits.items():
        model = LogisticRegression(max_iter=1000).fit(Xf, yf, sample_weight=w)
        s = model.predict_proba(X[test])[:, 1]
        per = {grp: roc_auc_score(y[test][g[test] == grp], s[g[test] == grp]) for grp in ("A", "B")}
        out.append({"method": name, "auroc": roc_auc_score(y[test], s),
                    "auroc_A": per["A"], "auroc_B": per["B"],
                    "auroc_gap": abs(per["A"] - per["B"]),
                    "accuracy": float(((s >= 0.5) == y[test]).mean())})
    return {"methods": pd.DataFrame(out)}


def mitigation_figure(methods: pd.DataFrame):
    """Overall AUROC against the AUROC gap, one point per method."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.scatter(methods["auroc_gap"], methods["auroc"])
    for _, r in methods.iterrows():
        ax.annotate(r["method"], (r["auroc_gap"], r["auroc"]), fontsize=8)
    ax.set_xlabel("AUROC gap |A - B|")
    ax.set_ylabel("overall AUROC")
    ax.set_title("Synthetic embeddings: mitigation and its cost", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------- lesson 6: claims, critically

def claims_lesson(*, accuracy: float, n_per_class: int, n_classes: int, n_sims: int,
                  seed: int) -> dict[str, pd.DataFrame]:
    """Paper A's reported sex gaps (F1 gap, EqOdds; verbatim from ``reported.yaml``) beside
    the gap a fair classifier of ``accuracy`` exceeds 5% of the time on the paper's test-set
    size (simulated, :func:`compendium.papers.paper_a.pipeline.null_gap_thresholds`), and
    Paper A's claims with how the compendium checks them."""
    from ..papers.paper_a.pipeline import null_gap_thresholds
    from ..papers.reported import load_reported

    reported = load_reported("paper_a")
    gaps = reported[reported["metric"].isin(["f1_gap", "eqodds"])
                    & (reported["attribute"] == "sex")]
    null = null_gap_thresholds([accuracy], n_per_class=n_per_class, n_classes=n_classes,
                               n_sims=n_sims, seed=seed, progress=False)
    crit = dict(zip(null["metric"], null["critical_value"]))
    table = gaps[["id", "metric", "model", "method", "value", "quote"]].rename(
        columns={"value": "reported"}).reset_index(drop=True)
    table["fair_95th_percentile"] = table["metric"].map(crit)
    table["exceeds"] = table["reported"] > table["fair_95th_percentile"]
    return {"gaps": table, "null": null, "claims": claims_table("paper_a")}


def claims_table(paper: str) -> pd.DataFrame:
    """A paper's claims ledger: id, where, quote, how it is checked."""
    from importlib import resources

    import yaml

    text = resources.files(f"compendium.papers.{paper}").joinpath("claims.yaml").read_text()
    return pd.DataFrame(yaml.safe_load(text)["claims"])[["id", "where", "quote", "checked_as"]]


def claims_figure(gaps: pd.DataFrame):
    """Reported gaps against the fair model's 95th percentile."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    labels = gaps["metric"] + " " + gaps["model"] + " " + gaps["method"]
    ax.barh(labels, gaps["reported"], color="tab:gray", label="reported (Paper A)")
    ax.scatter(gaps["fair_95th_percentile"], labels, color="tab:red", zorder=3,
               label="fair model, 95th percentile (simulated)")
    ax.legend(fontsize=7)
    ax.set_xlabel("gap")
    fig.tight_layout()
    return fig


__all__ = ["MECHANISMS", "adaptation_figure", "adaptation_lesson", "claims_figure", "claims_lesson", "claims_table", "gap_figure",
           "group_metrics_figure", "knobs_lesson", "labels_lesson", "metrics_lesson",
           "mitigation_figure", "mitigation_lesson", "noise_figure", "noise_lesson",
           "signature_figure"]


# ------------------------------------------------ lesson 7: adaptation

def adaptation_lesson(*, n: int, n_train: int, shares: Sequence[float],
                      seed: int) -> dict[str, pd.DataFrame]:
    """Zero-shot against adapted, on :func:`compendium.adapt.demo.disparity_embeddings`
    (synthetic; both groups equally common in the pool).  The "zero-shot" score is the
    embedding's first coordinate, the direction along which group A shows the finding (a
    stand-in for a text prompt learnt from a corpus where A dominates); "adapted" is a
    logistic probe trained on ``n_train`` rows whose share of group B is each of ``shares``.
    Test AUROC overall and per group, and the signed gap A - B (``methods``)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    from ..adapt.demo import disparity_embeddings

    X, rows = disparity_embeddings(n, minority=0.5, seed=seed)
    y = rows["Finding"].to_numpy().astype(int)
    g = rows["group"].to_numpy()
    test = (rows["split"] == "test").to_numpy()
    pool = np.flatnonzero(~test)
    rng = np.random.default_rng(seed)

    def scores_row(method: str, share: float, s: np.ndarray) -> dict:
        yt, gt = y[test], g[test]
        a = roc_auc_score(yt[gt == "A"], s[gt == "A"])
        b = roc_auc_score(yt[gt == "B"], s[gt == "B"])
        return {"method": method, "share_B_in_training": share, "auroc": roc_auc_score(yt, s),
                "auroc_A": a, "auroc_B": b, "gap_A_minus_B": a - b}

    out = [scores_row("zero-shot", float("nan"), X[test, 0])]
    for share in shares:
        n_b = int(round(share * n_train))
        a_rows = rng.choice(pool[g[pool] == "A"], size=n_train - n_b, replace=False)
        b_rows = rng.choice(pool[g[pool] == "B"], size=n_b, replace=False)
        idx = np.concatenate([a_rows, b_rows])
        model = LogisticRegression(max_iter=1000).fit(X[idx], y[idx])
        out.append(scores_row("adapted", float(share), model.predict_proba(X[test])[:, 1]))
    return {"methods": pd.DataFrame(out)}


def adaptation_figure(methods: pd.DataFrame):
    """Per-group AUROC of the adapted probe against the share of B in its training set,
    with the zero-shot values as horizontal lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    zs = methods[methods["method"] == "zero-shot"].iloc[0]
    ad = methods[methods["method"] == "adapted"]
    for grp, colour in (("A", "tab:blue"), ("B", "tab:orange")):
        ax.plot(ad["share_B_in_training"], ad[f"auroc_{grp}"], "o-", color=colour,
                label=f"adapted, group {grp}")
        ax.axhline(zs[f"auroc_{grp}"], color=colour, ls="--", label=f"zero-shot, group {grp}")
    ax.set_xlabel("share of group B in the adaptation set")
    ax.set_ylabel("test AUROC")
    ax.legend(fontsize=7)
    ax.set_title("Synthetic embeddings: adaptation and the gap", fontsize=9)
    fig.tight_layout()
    return fig
