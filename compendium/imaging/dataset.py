"""A torch ``Dataset`` over a cohort, torchxrayvision-style.

Each item is a dict::

    {"img": float32 tensor (C, size, size) in [0, 1] (C = 1, or n_slices for CT volumes),
     "label": float32 tensor (n_labels,) with NaN for unknown,
     "attrs": {"age": ..., "sex": ..., "race": ..., <group columns>},
     "idx": row position in the cohort table}

Pixels come from the memory-mapped cache of :mod:`compendium.imaging.cache` (decoded once,
then reused every epoch), or, with ``cache=False``, are decoded on each access.  A synthetic
cohort (``pixel_column == "synthetic_key"``) is rendered by
:func:`compendium.synthetic.render_rows`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import InputError
from .cache import cached_pixels, decode_row
from .io import LUNG_WINDOW

DEFAULT_ATTRS = ("age", "sex", "race", "age_group")


def render_synthetic(cohort, indices: Sequence[int], size: int) -> np.ndarray:
    """Synthetic pixels of some rows: ``compendium.synthetic.render_rows`` (uint8 (n, s, s))."""
    from ..synthetic import render_rows  # imported lazily: written by the synthetic part

    arr = np.asarray(render_rows(cohort, list(indices), size))
    if arr.dtype != np.uint8 or arr.shape[1:] != (size, size):
        raise InputError(f"render_rows returned {arr.dtype} {arr.shape}, expected uint8 (n, {size}, {size})")
    return arr


class CohortDataset(Dataset):
    """Samples of a cohort as ``{"img", "label", "attrs", "idx"}`` dicts.

    Parameters
    ----------
    cohort : Cohort
    size : int
        Side of the square images.
    transform : callable, optional
        Applied to the ``img`` tensor (e.g. an encoder's normalisation / augmentation).
    cache : bool
        Use the memory-mapped uint8 cache (built on first access to ``pixels``).
    attrs : sequence of str
        Columns reported in ``attrs`` (those absent from the table are skipped).
    n_slices, window : CT volumes only: slices per volume and HU window.
    progress : bool
        Show a progress bar while the cache is first filled.
    """

    def __init__(self, cohort, *, size: int = 224, transform: Callable | None = None,
                 cache: bool = True, attrs: Sequence[str] = DEFAULT_ATTRS,
                 n_slices: int | None = 16, window: tuple[float, float] = LUNG_WINDOW,
                 progress: bool = True) -> None:
        if cohort.pixel_column is None:
            raise InputError(f"cohort {cohort.name} has no pixels (source {cohort.source}); "
                             "build it with root=PATH to the images")
        self.cohort = cohort
        self.size = size
        self.transform = transform
        self.cache = cache
        self.attrs = tuple(a for a in attrs if a in cohort.table.columns)
        self.n_slices = n_slices
        self.window = window
        self.progress = progress
        self.labels = cohort.label_matrix().astype(np.float32)
        # collate-friendly attributes: age as float (NaN unknown), the others as strings
        # ("" unknown), so torch's default_collate batches them.
        rows = cohort.table[list(self.attrs)]
        self._attr_rows = [
            {k: (float(v) if k == "age" else ("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)))
             for k, v in r.items()} for r in rows.to_dict("records")]
        self._pixels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.cohort.table)

    @property
    def pixels(self) -> np.ndarray:
        """All rows' uint8 pixels (memory-mapped cache)."""
        if self._pixels is None:
            self._pixels = cached_pixels(self.cohort, self.size, n_slices=self.n_slices,
                                         window=self.window, progress=self.progress)
        return self._pixels

    def _read(self, i: int) -> np.ndarray:
        if self.cache:
            return np.asarray(self.pixels[i])
        col = self.cohort.pixel_column
        if col == "synthetic_key":
            return render_synthetic(self.cohort, [i], self.size)[0]
        return decode_row(str(self.cohort.table[col].iloc[i]), root=self.cohort.root,
                          size=self.size, n_slices=self.n_slices, window=self.window)

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        arr = self._read(i)
        img = torch.from_numpy(arr.astype(np.float32) / 255.0)
        if img.ndim == 2:
            img = img.unsqueeze(0)
        if self.transform is not None:
            img = self.transform(img)
        return {"img": img, "label": torch.from_numpy(self.labels[i].copy()),
                "attrs": dict(self._attr_rows[i]), "idx": i}
