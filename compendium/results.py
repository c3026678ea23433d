"""Writing a notebook's outputs: tables as CSV, figures as PNG, key numbers as JSON.

Every output is also *glued* (myst-nb) under its name so that the book's chapters can
paste figures, tables and numbers from the executed notebook instead of retyping them.

Outputs are deterministic: CSV floats are written with a fixed format and PNG/SVG files
carry no timestamps, so the same parameters give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from pathlib import Path
from typing import Any, Mapping

from .atomic import atomic_write, write_json
from .errors import ConfigError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")
#: Columns read as counts of people or images by small-cell suppression (integer columns).
COUNT_COLUMNS = re.compile(r"^(n|samples|patients|images|studies|rows|count|counts|positives|"
                           r"negatives|cases|controls)$|^n_|_n$|count|[ _]images$",
                           re.IGNORECASE)
#: Columns derived from counts (shares), blanked in a row whose count is suppressed.
SHARE_COLUMNS = re.compile(r"share|percent|pct|fraction|proportion|prevalence", re.IGNORECASE)
#: PhysioNet-style data-use agreements forbid publishing counts below 10.
MIN_CELL_COUNT = 10
#: Columns that identify one image, study, stay or patient: a table holding one is per-row
#: (per-patient) data, which the ``full`` profile never publishes.
ROW_ID_COLUMNS = ("sample_id", "patient_id", "subject_id", "study_id", "dicom_id", "image_path",
                  "impression_id", "person_id", "stay_id", "hadm_id", "image_id",
                  "Image Index", "Patient ID", "Path")


#: Where a table's numbers come from (``Results.table(..., source=...)``); two joined by
#: ``+`` (``"paper+run"``) when a table sets one beside the other.
SOURCES = ("run", "metadata", "paper", "simulation", "params", "reference")
#: The source line's words for the sources that do not depend on the run ("run" and
#: "params" name the run's profile and data: :func:`provenance`).
_FIXED_WORDING = {
    "metadata": "real dataset metadata, not synthetic",
    "paper": "what the paper reports",
    "simulation": "our simulation, synthetic under every profile",
    "reference": "the compendium's definitions, no data",
}


def provenance(source: str, *, profile: str | None = None, synthetic: bool = True,
               knobs: str = "") -> str:
    """The sentence a table's caption ends with: where its numbers come from.

    Parameters
    ----------
    source : str
        One of :data:`SOURCES`, or two joined by ``+`` (``"paper+run"``).
    profile : str, optional
        The run's profile (named in the sentence where the numbers depend on it).
    synthetic : bool
        Whether this run's own numbers come from the synthetic world (``"run"``).
    knobs : str
        The synthetic world's bias knobs, as the caption names them.

    Examples
    --------
    >>> provenance("run", profile="smoke", knobs="zero")[:60]
    'Source: this run on the synthetic world, not real patients ('
    >>> provenance("run", profile="smoke", knobs="zero")[60:]
    'profile smoke, bias knobs zero).'
    >>> provenance("paper+run", profile="full", synthetic=False)
    'Sources: what the paper reports; this run on your data (profile full).'
    """
    parts = source.split("+") if isinstance(source, str) else [source]
    unknown = [p for p in parts if p not in SOURCES]
    if unknown or not parts or len(set(parts)) < len(parts) or len(parts) > 2:
        raise ValueError(f"table source {source!r} is not one of {', '.join(SOURCES)} "
                         "(or two of them joined by '+', e.g. 'paper+run')")
    prof = f"profile {profile}" if profile else ""
    if synthetic:
        setting = ", ".join(s for s in (prof, f"bias knobs {knobs}" if knobs else "") if s)
        run = ("this run on the synthetic world, not real patients"
               + (f" ({setting})" if setting else ""))
    else:
        run = "this run on your data" + (f" ({prof})" if prof else "")
    text = {**_FIXED_WORDING, "run": run,
            "params": "this run's settings" + (f" ({prof})" if prof else "")}
    lead = "Sources: " if len(parts) > 1 else "Source: "
    return lead + "; ".join(text[p] for p in parts) + "."


def suppress_small_cells(df, min_cell: int = MIN_CELL_COUNT, *, counts=None):
    """A copy of ``df`` whose counts below ``min_cell`` (but above 0) read ``<min_cell``.

    Parameters
    ----------
    df : DataFrame
    min_cell : int
        Smallest count that may be shown (10 under PhysioNet-style agreements).
    counts : list of str, optional
        The count columns; default the integer columns named like counts
        (:data:`COUNT_COLUMNS`: ``n``, ``samples``, ``patients``, ``n_*``, ``*count*``...).
        In a row where a count is suppressed, share-like columns (:data:`SHARE_COLUMNS`)
        are suppressed too, so that a small count cannot be recovered from its share.

    Examples
    --------
    >>> import pandas as pd
    >>> suppress_small_cells(pd.DataFrame({"group": ["F", "M"], "samples": [14, 3]})).samples.tolist()
    [14, '<10']
    """
    import pandas as pd

    if counts is None:
        counts = [c for c in df.columns if COUNT_COLUMNS.search(str(c))
                  and pd.api.types.is_integer_dtype(df[c])]
    out = df.copy()
    small = pd.Series(False, index=df.index)
    for c in counts:
        values = pd.to_numeric(df[c], errors="coerce")
        hit = (values > 0) & (values < min_cell)
        if hit.any():
            out[c] = out[c].astype(object).where(~hit, f"<{min_cell}")
            small |= hit
    if small.any():
        for c in df.columns:
            if c not in counts and SHARE_COLUMNS.search(str(c)):
                out[c] = out[c].astype(object).where(~small, "suppressed")
        log.info("small-cell suppression: %d row(s) with counts below %d", int(small.sum()),
                 min_cell)
    return out


class Results:
    """Collects the tables, figures and values of one run under ``output_dir``.

    Parameters
    ----------
    output_dir : path or None
        Folder of the run (``results/<notebook>/<profile>/`` when run by ``compendium run``).
        ``None`` or ``""`` keeps outputs in memory only (interactive use).
    glue : bool
        Glue each output with ``myst_nb.glue`` for the book.
    prefix : str
        Prefix added to glue keys (to keep keys unique across notebooks of one book).
    min_cell : int, optional
        Small-cell suppression: counts below this are written and shown as ``<min_cell``
        in every table (:func:`suppress_small_cells`).  ``setup`` sets it under the
        ``full`` profile (real data) to the spec's ``min_cell_count`` (default 10).
    profile : str, optional
        The run's profile, named in every table's source line (:func:`provenance`).
    synthetic : bool, optional
        Whether the run's own numbers come from the synthetic world; default: unless the
        profile is ``full`` (``setup`` passes the spec's ``synthetic_data()``).
    knobs : str
        The synthetic world's bias knobs as a caption names them (``setup``: from
        :func:`~compendium.notebook.caption_knobs`).
    """

    def __init__(self, output_dir: str | Path | None, *, glue: bool = True, prefix: str = "",
                 min_cell: int | None = None, profile: str | None = None,
                 synthetic: bool | None = None, knobs: str = "") -> None:
        self.output_dir = Path(output_dir) if output_dir else None
        self.glue_enabled = glue
        self.prefix = prefix
        self.min_cell = min_cell
        self.profile = profile
        self.synthetic = profile != "full" if synthetic is None else synthetic
        self.knobs = knobs
        self.values: dict[str, Any] = {}
        self._started = time.perf_counter()

    # --------------------------------------------------------------------------- tables
    def table(self, df, name: str, *, index: bool = False, float_format: str = "%.6g",
              display: bool = True, counts: list[str] | None = None, caption: str = "",
              source: str = "run", headers: Mapping[str, str] | None = None):
        """Save ``df`` as ``tables/<name>.csv``, glue it, and display it.

        The CSV keeps the column names and full precision; what the notebook and the book
        show is a :class:`~compendium.display.TableView` (no index column, readable
        headers, formatted numbers; ``headers`` maps a column to its header where the
        default reading is not enough) under its caption: ``caption`` (what the table
        shows, one sentence per table) and the source line :func:`provenance` writes from
        ``source`` (one of :data:`SOURCES`, or two joined by ``+``; an unknown one is a
        ``ValueError``), the run's profile and whether its data are synthetic.

        With ``min_cell`` set (the ``full`` profile), a table with a per-row identifier
        column (:data:`ROW_ID_COLUMNS`) is neither written nor glued (a one-line note says
        so; ``df`` is returned for the next step), and small counts are suppressed first
        (``counts`` names the count columns when the default rule does not find them): the
        suppressed table is what is written, shown and returned.
        """
        _check_name(name)
        source_line = self.provenance(source)
        if self.min_cell:
            ids = [c for c in [*df.columns, *(df.index.names if index else [])]
                   if c in ROW_ID_COLUMNS]
            if ids:
                # full profile (real data): per-patient rows never leave the machine
                print(f"table {name!r} is not published: it has one row per "
                      f"{ids[0].replace('_', ' ')} (per-patient rows stay in memory under "
                      "the full profile)")
                log.info("table %s not published: per-row identifier column %s", name, ids[0])
                return df
            df = suppress_small_cells(df.reset_index() if index else df, self.min_cell,
                                      counts=counts)
            if index:
                df = df.set_index(df.columns[0])
        if self.output_dir is not None:
            path = self.output_dir / "tables" / f"{name}.csv"
            with atomic_write(path) as fh:
                df.to_csv(fh, index=index, float_format=float_format, lineterminator="\n")
            log.debug("table %s -> %s", name, path)
        from .display import TableView

        self._glue(name, TableView(df, caption=caption, source=source_line, headers=headers),
                   display=display)
        return df

    def provenance(self, source: str = "run") -> str:
        """The source line of a table of this run (:func:`provenance`)."""
        return provenance(source, profile=self.profile, synthetic=self.synthetic,
                          knobs=self.knobs)

    # -------------------------------------------------------------------------- figures
    def figure(self, fig, name: str, *, formats: tuple[str, ...] = ("png",), dpi: int = 110,
               display: bool = True, close: bool = True, alt: str = ""):
        """Save a matplotlib figure as ``figures/<name>.<fmt>`` and display it.

        The PNG is rendered once; the same bytes are written to disk and shown in the
        notebook (whatever the matplotlib backend), so the book shows exactly the saved file.
        Its alt text (``alt``, else :func:`describe_figure`: the titles and axis labels) is
        written beside it as ``figures/<name>.alt.txt``, which the book gives the image.
        Returns ``None`` when it displayed the figure (so that a cell ending with this call
        does not draw it a second time), else the figure.
        """
        alt = alt or describe_figure(fig, name.replace("_", " "))
        import io

        _check_name(name)
        rendered: dict[str, bytes] = {}
        for fmt in dict.fromkeys(("png", *formats)):
            buf = io.BytesIO()
            metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
            fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
            rendered[fmt] = buf.getvalue()
        if self.output_dir is not None:
            for fmt in formats:
                path = self.output_dir / "figures" / f"{name}.{fmt}"
                with atomic_write(path, "wb") as fh:
                    fh.write(rendered[fmt])
                log.debug("figure %s -> %s", name, path)
            with atomic_write(self.output_dir / "figures" / f"{name}.alt.txt") as fh:
                fh.write(alt + "\n")
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
        try:
            from IPython.display import Image
        except ImportError:  # pragma: no cover - IPython comes with ipykernel
            return fig
        if display:  # chapters show the saved file with {figure}; no glue key needed
            _display(Image(data=rendered["png"], format="png"))
            # shown once: a figure returned as a cell's last value would be drawn again
            return None
        return fig

    # --------------------------------------------------------------------------- values
    def value(self, name: str, value: Any, *, fmt: str | None = None, display: bool = False):
        """Record a key number in ``values.json`` and glue it (formatted with ``fmt``)."""
        _check_name(name)
        if isinstance(value, float) and not math.isfinite(value):
            stored: Any = None
        elif hasattr(value, "item"):
            stored = value.item()
        else:
            stored = value
        self.values[name] = stored
        if self.output_dir is not None:
            write_json(self.output_dir / "values.json", self.values)
        shown = format(value, fmt) if fmt else str(value)
        self._glue(name, GluedText(shown), display=display)
        return value

    def elapsed(self, name: str = "run_minutes") -> float:
        """Record the minutes since this writer was created (the notebook's run time)."""
        return self.value(name, (time.perf_counter() - self._started) / 60, fmt=".1f")

    def values_from(self, values: Mapping[str, Any]) -> None:
        """Record several values: ``{name: value}`` or ``{name: (value, fmt)}`` (a pipeline
        step's key numbers, formatted where the step says how)."""
        for name, v in values.items():
            value, fmt = v if isinstance(v, tuple) else (v, None)
            self.value(name, value, fmt=fmt)

    def _glue(self, name: str, obj: Any, *, display: bool) -> None:
        if not self.glue_enabled:
            if display:
                _display(obj)
            return
        try:
            from myst_nb import glue
        except ImportError:  # pragma: no cover - myst-nb is a core dependency
            if display:
                _display(obj)
            return
        glue(self.prefix + name, obj, display=display)


def describe_figure(fig, name: str = "") -> str:
    """Alt text for a matplotlib figure from what it says about itself: its title, and each
    panel's title and axis labels (``name``, the figure's file name, when it has no title).

    >>> import matplotlib; matplotlib.use("Agg"); import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(); _ = ax.set(title="FPR gap", xlabel="model", ylabel="gap")
    >>> describe_figure(fig)
    'Plot. Panel "FPR gap": model (x) against gap (y).'
    >>> plt.close(fig)
    """
    parts = []
    sup = getattr(fig, "_suptitle", None)
    title = sup.get_text().strip() if sup is not None else ""
    parts.append(f"Plot: {title}." if title else f"Plot{': ' + name if name else ''}.")
    panels = []
    for ax in fig.get_axes():
        if not ax.get_visible() or not ax.axison and not ax.get_title():
            continue
        t = " ".join(ax.get_title().split())
        x = " ".join(ax.get_xlabel().split())
        y = " ".join(ax.get_ylabel().split())
        axes = " against ".join(s for s in (f"{x} (x)" if x else "", f"{y} (y)" if y else "")
                                if s)
        if t or axes:
            panels.append((f'Panel "{t}"' if t else "A panel") + (f": {axes}" if axes else ""))
    if len(panels) > 8:
        panels = panels[:8] + [f"and {len(panels) - 8} more panels"]
    if panels:
        parts.append("; ".join(panels) + ".")
    return " ".join(parts)


class GluedText:
    """A formatted value whose plain-text display has no quotes, so that the book's
    ``{glue}`/book/generated/NB::key``` role pastes ``0.204`` rather than ``'0.204'``."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(self.text)


def _display(obj: Any) -> None:
    try:
        from IPython.display import display

        display(obj)
    except ImportError:  # pragma: no cover
        print(obj)  # noqa: T201


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ConfigError(
            f"output name {name!r} must be lower-case letters, digits, '_' or '-'"
        )


def read_values(output_dir: str | Path) -> dict[str, Any]:
    """Read the ``values.json`` of a finished run."""
    path = Path(output_dir) / "values.json"
    return json.loads(path.read_text()) if path.exists() else {}
