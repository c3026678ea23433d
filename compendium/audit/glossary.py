"""The metric glossary, generated from the package's metric specs.

:func:`glossary_table` gives one row per metric (name, kind, formula, definition, papers,
other reading); :func:`glossary_markdown` renders it as MyST markdown with display math, for
the book's reference chapter.
"""

from __future__ import annotations

import pandas as pd

from .metrics import METRICS

_REDUCTION = {None: "per set", "range": "max - min over groups", "min": "min over groups",
              "pair": "named pair, signed"}


def glossary_table() -> pd.DataFrame:
    """One row per metric of :data:`compendium.audit.metrics.METRICS`.

    Examples
    --------
    >>> t = glossary_table()
    >>> "f1_gap" in set(t.metric)
    True
    """
    return pd.DataFrame([{
        "metric": m.name, "kind": m.kind, "title": m.title, "formula": f"${m.formula}$",
        "over groups": _REDUCTION[m.over_groups], "input": m.needs,
        "lower is better": not m.higher_is_better, "papers": m.papers,
        "definition": m.description, "other reading": m.alternative,
    } for m in METRICS])


#: Conventions shared by every metric, stated once in the glossary (and options of
#: ``compendium audit``).
CONVENTIONS = (
    ("Decision threshold",
     "A binary or multi-label score is predicted positive when score >= t (t = 0.5 unless "
     "--threshold says otherwise); a score exactly at the threshold is positive. Multi-class "
     "tasks predict the arg-max class."),
    ("ECE bins",
     "M equal-width bins (--ece-bins, default 10): bin b (b = 1..M) holds the confidences in "
     "[(b-1)/M, b/M); the last bin [(M-1)/M, 1] also holds 1. --ece-binning quantile uses "
     "equal-mass bins whose edges come from all audited rows (every group shares them); "
     "sample uses one bin per row."),
    ("ECE confidence",
     "--ece-confidence positive (default, as FairMedFM and MEDFAIR): binary and multi-label "
     "ECE bins the positive-class probability p and compares it with the share of positives. "
     "--ece-confidence predicted: the confidence max(p, 1 - p) of the predicted value against "
     "whether it is right. Example: two positives scored 0.3 and 0.7 give ECE = "
     "(|1 - 0.3| + |1 - 0.7|) / 2 = 0.5 (positive) but |0.5 - 0.7| = 0.2 (predicted: both "
     "confidences are 0.7, one prediction right). Multi-class ECE is top-label in both."),
    ("Gap readings",
     "--eqodds mean (default, Paper A eq. 3) or max (fairlearn's equalized_odds_difference); "
     "--gap-macro mean_of_gaps (default, the mean over classes of per-class gaps) or "
     "gap_of_macro (the gap between the groups' macro averages); --var-ddof 0 (population "
     "variance of the class-wise F1, default) or 1."),
    ("Undefined gaps",
     "A gap needs two groups with rows: an attribute with a single group gives an undefined "
     "(empty) gap flagged single_group, never 0. The column kind (overall, group, gap, pair) "
     "tells the rows apart, so a group may be called 'all'; a sample_id may not repeat."),
    ("Permutation tests and families",
     "Each gap's p-value shuffles group membership (between patients when a patient_id is "
     "given). Corrections (Holm by default) apply within a family: --family attribute_metric "
     "(default: one attribute and one metric, over its classes and macro average), attribute, "
     "or table. A family of m tests with N permutations cannot reach an adjusted p-value "
     "below m / (N + 1) (column p_floor, flagged p_floor when >= alpha); --max-permutations "
     "auto continues sequentially (Besag-Clifford: a test stops after 20 permutations reached "
     "its observed gap) until that floor is at most alpha / 10."),
)


def conventions_markdown() -> str:
    """The shared conventions as a MyST definition list."""
    return "\n".join(f"**{title}.** {text}\n" for title, text in CONVENTIONS)


def glossary_markdown() -> str:
    """The glossary as MyST markdown: the shared conventions, then one section per metric
    with its formula."""
    out = ["### Conventions\n", conventions_markdown()]
    for m in METRICS:
        out.append(f"### `{m.name}`: {m.title}\n")
        out.append(f"$$\n{m.formula}\n$$\n")
        out.append(f"{m.description}\n")
        meta = [f"kind: {m.kind}", f"over groups: {_REDUCTION[m.over_groups]}",
                f"input: {'scores' if m.needs == 'score' else 'predicted labels'}",
                "lower is better" if not m.higher_is_better else "higher is better"]
        if m.papers:
            meta.append(f"papers: {m.papers}")
        out.append("*" + "; ".join(meta) + ".*\n")
        if m.alternative:
            out.append(f"**Other reading (option):** {m.alternative}.\n")
    return "\n".join(out)


BEGIN = "<!-- BEGIN GENERATED: compendium.audit.glossary.glossary_markdown() -->"
END = "<!-- END GENERATED -->"


def generated_section(text: str) -> str:
    """The generated part of a chapter (between :data:`BEGIN` and :data:`END`)."""
    try:
        start = text.index(BEGIN) + len(BEGIN)
        stop = text.index(END, start)
    except ValueError:
        raise ValueError("chapter has no generated glossary section markers") from None
    return text[start:stop].strip()


def update_chapter(path) -> bool:
    """Rewrite the generated part of the glossary chapter; returns True when it changed.

    Run ``python -c "from compendium.audit.glossary import update_chapter;
    update_chapter('book/reference/glossary.md')"`` after editing a metric spec; a test
    fails while the chapter is out of date.
    """
    from pathlib import Path

    from ..atomic import atomic_write

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start = text.index(BEGIN) + len(BEGIN)
    stop = text.index(END, start)
    new = text[:start] + "\n\n" + glossary_markdown().strip() + "\n\n" + text[stop:]
    if new == text:
        return False
    with atomic_write(path) as fh:
        fh.write(new)
    return True


# ----------------------------------------------------------------------------- worked example

#: Rows of the worked example's audit that the glossary chapter shows.
KEY_METRICS = ("tpr", "fpr", "auroc", "tpr_gap", "fpr_gap", "eqodds", "auroc_gap")


def example_key_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The worked example's audit restricted to its key metrics and columns."""
    shown = table[table["metric"].isin(KEY_METRICS)]
    return shown[["metric", "attribute", "group", "estimate", "ci_low", "ci_high", "p_value",
                  "p_adjusted", "p_floor", "n", "flag"]]


def example_values(table: pd.DataFrame, *, tpr_a: float, tpr_b: float) -> dict:
    """The numbers the glossary chapter quotes: the injected and the estimated TPR gap, its
    interval and p-value, whether the interval covers the truth, and the FPR gap."""
    gap = table.query("metric == 'tpr_gap'").iloc[0]
    fpr_gap = table.query("metric == 'fpr_gap'").iloc[0]
    true = tpr_a - tpr_b
    return {"true_tpr_gap": (true, ".3f"), "tpr_gap": (float(gap.estimate), ".3f"),
            "tpr_gap_ci_low": (float(gap.ci_low), ".3f"),
            "tpr_gap_ci_high": (float(gap.ci_high), ".3f"),
            "tpr_gap_p": (float(gap.p_value), ".3g"), "fpr_gap": (float(fpr_gap.estimate), ".3f"),
            "fpr_gap_p": (float(fpr_gap.p_value), ".3g"),
            "tpr_gap_covered": bool(gap.ci_low <= true <= gap.ci_high)}


def example_rates_figure(table: pd.DataFrame, *, tpr: dict, fpr: float):
    """Per-group TPR and FPR with their intervals against the true values (dotted)."""
    import matplotlib.pyplot as plt
    import numpy as np

    rates = table[table["metric"].isin(["tpr", "fpr"]) & (table["kind"] == "group")]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for offset, metric, color in [(-0.1, "tpr", "C0"), (0.1, "fpr", "C1")]:
        rows = rates[rates["metric"] == metric]
        x = np.arange(len(rows)) + offset
        ax.errorbar(x, rows["estimate"], yerr=[rows["estimate"] - rows["ci_low"],
                                               rows["ci_high"] - rows["estimate"]],
                    fmt="o", capsize=4, color=color, label=metric.upper())
    for value in tpr.values():
        ax.axhline(value, color="C0", lw=0.8, ls=":")
    ax.axhline(fpr, color="C1", lw=0.8, ls=":")
    ax.set_xticks(range(len(rows)), rows["group"])
    ax.set_ylabel("rate at threshold 0.5 (95% CI)")
    ax.set_title("Synthetic: per-group rates vs the true values (dotted)")
    ax.legend()
    return fig
