"""How a published table looks to a reader: one display for every table of the book.

:meth:`compendium.results.Results.table` writes the table itself (raw column names, full
precision) to CSV and shows, in the notebook and in the book, a :class:`TableView`: an HTML
table without pandas' 0, 1, 2... index column, with readable headers (``p_value`` reads
"p-value", ``take_young-M`` "take young-M"), numbers formatted per column (whole numbers with
thousands separators, fractions with three decimals, small p-values in scientific notation,
missing values as an en dash) and an optional caption.  The book's stylesheet
(``book/_static/compendium.css``) styles the ``compendium-table`` class and lets a wide table
scroll inside the text column.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping
from typing import Any

#: Words written in capitals or with their usual spelling in a header.
WORDS = {
    "auroc": "AUROC", "auprc": "AUPRC", "auc": "AUC", "f1": "F1", "fpr": "FPR", "tpr": "TPR",
    "fnr": "FNR", "tnr": "TNR", "udr": "UDR", "ece": "ECE", "ci": "CI", "id": "id",
    "eqodds": "EqOdds", "ehr": "EHR", "ct": "CT", "cxr": "CXR", "lr": "LR", "mlp": "MLP",
    "pe": "PE", "nih": "NIH", "mimic": "MIMIC", "knn": "kNN", "lora": "LoRA", "zs": "ZS",
    "ft": "FT", "sd": "SD", "se": "SE",
}
#: Whole headers with a reading of their own.
HEADERS = {"p_value": "p-value", "p_adjusted": "adjusted p", "p_adj": "adjusted p",
           "ci_low": "CI low", "ci_high": "CI high", "n": "n"}
#: Rows a displayed table shows at most (pandas showed 10 of a table over 60 rows).
MAX_ROWS = 200
_SNAKE = re.compile(r"^[A-Za-z0-9_\-\.]+$")
_P_COLUMN = re.compile(r"(^|[ _])p([ _\-]|$)|p[_\- ]?value|p_adj", re.IGNORECASE)


def readable_header(name: Any) -> str:
    """A column name as a reader reads it.

    Names with spaces are kept (they were written for the reader); identifiers lose their
    underscores and known abbreviations are spelled as in the papers.

    >>> readable_header("p_value"), readable_header("take_young-M"), readable_header("auroc_gap")
    ('p-value', 'take young-M', 'AUROC gap')
    >>> readable_header("AUROC, LLM-extracted labels")
    'AUROC, LLM-extracted labels'
    """
    text = str(name)
    if text in HEADERS:
        return HEADERS[text]
    if not _SNAKE.match(text) or "_" not in text and text.lower() not in WORDS:
        return text
    words = [w for w in text.split("_") if w != ""]
    return " ".join(WORDS.get(w.lower(), w) for w in words)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def column_formatter(name: str, values) -> Any:
    """The formatter of one column: a function from a cell to its text.

    Whole numbers (every finite value an integer): thousands separators.  p-values (a header
    naming ``p``): three significant digits, scientific below 0.001.  Other numbers: three
    decimals, or three significant digits where every value is below 0.01 in magnitude.
    Missing numbers: an en dash.  Text is shown as it is.
    """
    numbers = [float(v) for v in values if _is_number(v) and math.isfinite(float(v))]
    whole = bool(numbers) and all(float(v).is_integer() for v in numbers)
    pcol = bool(_P_COLUMN.search(str(name)))
    tiny = bool(numbers) and all(abs(v) < 0.01 for v in numbers) and any(numbers)

    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        if _is_number(v) or hasattr(v, "item") and _is_number(v.item()):
            x = float(v)
            if not math.isfinite(x):
                return "–"
            if whole and not pcol:
                return f"{int(x):,}"
            if pcol:
                return f"{x:.3g}" if x == 0 or abs(x) >= 1e-3 else f"{x:.1e}"
            if tiny:
                return f"{x:.3g}"
            return f"{x:.3f}"
        if isinstance(v, float) and math.isnan(v):
            return "–"
        return str(v)

    return fmt


class TableView:
    """A table as the book shows it (``_repr_html_``) and as a console prints it (``repr``).

    Parameters
    ----------
    df : DataFrame
        The table; a named or non-default index becomes the first column(s), a plain
        0..n-1 index is dropped.
    caption : str, optional
        Shown above the table: what it shows.
    source : str, optional
        Where its numbers come from (:func:`compendium.results.provenance`), shown in the
        caption after ``caption``.
    headers : mapping, optional
        Column name -> header, for names :func:`readable_header` cannot read.
    max_rows : int
        Rows shown; a longer table shows its first ``max_rows`` and says how many it has
        (its CSV holds them all).
    """

    def __init__(self, df, *, caption: str = "", source: str = "",
                 headers: Mapping[str, str] | None = None, max_rows: int = MAX_ROWS):
        import pandas as pd

        if not isinstance(df.index, pd.RangeIndex) or df.index.name is not None \
                or any(n is not None for n in df.index.names):
            df = df.reset_index()
        self.n_rows = len(df)
        self.df = df.iloc[:max_rows].reset_index(drop=True)
        self.caption = caption
        self.source = source
        self.headers = dict(headers or {})

    def header(self, name: Any) -> str:
        return self.headers.get(name, readable_header(name))

    def cells(self) -> list[list[str]]:
        cols = list(self.df.columns)
        fmts = [column_formatter(str(c), self.df.iloc[:, i].tolist()) for i, c in enumerate(cols)]
        return [[f(v) for f, v in zip(fmts, row)] for row in self.df.itertuples(index=False)]

    def _repr_html_(self) -> str:
        numeric = [self.df.iloc[:, i].map(_is_number).all() and len(self.df) > 0
                   for i in range(self.df.shape[1])]
        out = ['<div class="compendium-table-wrap"><table class="compendium-table">']
        if self.caption or self.source:
            source = (f'<span class="compendium-table-source">{html.escape(self.source)}</span>'
                      if self.source else "")
            out.append(f"<caption>{html.escape(self.caption)}"
                       f"{' ' if self.caption and source else ''}{source}</caption>")
        out.append("<thead><tr>" + "".join(f'<th scope="col">{html.escape(self.header(c))}</th>'
                                           for c in self.df.columns) + "</tr></thead><tbody>")
        for row in self.cells():
            out.append("<tr>" + "".join(
                f'<td class="num">{html.escape(v)}</td>' if num else f"<td>{html.escape(v)}</td>"
                for v, num in zip(row, numeric)) + "</tr>")
        out.append("</tbody></table>")
        if self.n_rows > len(self.df):
            out.append(f'<p class="compendium-table-note">First {len(self.df):,} of '
                       f"{self.n_rows:,} rows; the table's CSV has them all.</p>")
        out.append("</div>")
        return "".join(out)

    def __repr__(self) -> str:
        import pandas as pd

        shown = pd.DataFrame(self.cells(), columns=[self.header(c) for c in self.df.columns])
        text = shown.to_string(index=False) if len(shown.columns) else "(empty table)"
        if self.n_rows > len(self.df):
            text += f"\n(first {len(self.df):,} of {self.n_rows:,} rows)"
        title = " ".join(t for t in (self.caption, self.source) if t)
        return f"{title}\n{text}" if title else text

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))


__all__ = ["HEADERS", "MAX_ROWS", "WORDS", "TableView", "column_formatter", "readable_header"]
