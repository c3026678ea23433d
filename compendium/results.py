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
    """

    def __init__(self, output_dir: str | Path | None, *, glue: bool = True, prefix: str = "") -> None:
        self.output_dir = Path(output_dir) if output_dir else None
        self.glue_enabled = glue
        self.prefix = prefix
        self.values: dict[str, Any] = {}
        self._started = time.perf_counter()

    # --------------------------------------------------------------------------- tables
    def table(self, df, name: str, *, index: bool = False, float_format: str = "%.6g",
              display: bool = True):
        """Save ``df`` as ``tables/<name>.csv``, glue it, and display it."""
        _check_name(name)
        if self.output_dir is not None:
            path = self.output_dir / "tables" / f"{name}.csv"
            with atomic_write(path) as fh:
                df.to_csv(fh, index=index, float_format=float_format, lineterminator="\n")
            log.debug("table %s -> %s", name, path)
        self._glue(name, df, display=display)
        return df

    # -------------------------------------------------------------------------- figures
    def figure(self, fig, name: str, *, formats: tuple[str, ...] = ("png",), dpi: int = 110,
               display: bool = True, close: bool = True):
        """Save a matplotlib figure as ``figures/<name>.<fmt>`` and display it.

        The PNG is rendered once; the same bytes are written to disk and shown in the
        notebook (whatever the matplotlib backend), so the book shows exactly the saved file.
        """
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
        if close:
            import matplotlib.pyplot as plt

            plt.close(fig)
        try:
            from IPython.display import Image
        except ImportError:  # pragma: no cover - IPython comes with ipykernel
            return fig
        if display:  # chapters show the saved file with {figure}; no glue key needed
            _display(Image(data=rendered["png"], format="png"))
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
