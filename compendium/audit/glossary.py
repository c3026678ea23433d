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


def glossary_markdown() -> str:
    """The glossary as MyST markdown: one section per metric with its formula."""
    out = []
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
