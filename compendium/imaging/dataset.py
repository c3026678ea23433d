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


class StreamedImages:
    """Rows of a uint8 pixel store read on demand and preprocessed per read: a lazy stand-in
    for the float tensor ``transform(pixels[positions])`` that never builds that tensor.

    Indexing follows a tensor's rows: ``s[i]`` gives one preprocessed image (C, H, W),
    ``s[a:b]``, ``s[[i, j, ...]]`` or ``s[index_tensor]`` the preprocessed batch (B, C, H, W)
    of those rows only (one read of the store per call, so a batch costs a batch's memory);
    :meth:`subset` gives a lazy view of some rows (positions or a boolean mask).  ``len(s)``
    is the number of rows.

    Parameters
    ----------
    pixels : array-like
        The uint8 store, (n, H, W) or (n, C, H, W): typically the memory-mapped cache of
        :func:`~compendium.imaging.cache.cached_pixels`.  A ``numpy.memmap`` is reopened by
        path when the object is pickled into a DataLoader worker (its data is not copied).
    positions : sequence of int, optional
        The store rows this object stands for, in order (default: all).
    transform : callable, optional
        uint8 batch -> float tensor (B, C, H, W), e.g. an encoder's ``preprocessor``; the
        default scales to [0, 1] and adds a channel axis to grey images.

    >>> s = StreamedImages(np.arange(32, dtype=np.uint8).reshape(2, 4, 4))
    >>> tuple(s[:2].shape), tuple(s[1].shape), len(s.subset([1]))
    ((2, 1, 4, 4), (1, 4, 4), 1)
    """

    def __init__(self, pixels, positions: Sequence[int] | None = None,
                 transform: Callable | None = None) -> None:
        self.pixels = pixels
        n = len(pixels)
        pos = np.arange(n) if positions is None else np.asarray(positions, dtype=np.int64)
        if pos.ndim != 1 or (len(pos) and (pos.min() < 0 or pos.max() >= n)):
            raise InputError(f"StreamedImages: positions must be row numbers in [0, {n})")
        self.positions = pos
        self.transform = transform

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, rows) -> "StreamedImages":
        """A lazy view of some of these rows: a boolean mask of ``len(self)`` or positions."""
        rows = np.asarray(rows.cpu() if torch.is_tensor(rows) else rows)
        if rows.dtype == bool:
            if len(rows) != len(self):
                raise InputError(f"mask of {len(rows)} rows for {len(self)} images")
            rows = np.flatnonzero(rows)
        return StreamedImages(self.pixels, self.positions[rows.astype(np.int64)],
                              self.transform)

    def read(self, rows) -> np.ndarray:
        """The raw uint8 pixels of some of these rows (positions), one read of the store."""
        pos = self.positions[np.asarray(rows, dtype=np.int64)]
        if len(pos) == 0:
            return np.zeros((0, *self.pixels.shape[1:]), dtype=np.uint8)
        order = np.argsort(pos, kind="stable")       # the store is read in file order
        out = np.empty((len(pos), *self.pixels.shape[1:]), dtype=np.uint8)
        out[order] = np.asarray(self.pixels[pos[order]])
        return out

    def _apply(self, raw: np.ndarray) -> torch.Tensor:
        if self.transform is not None:
            return self.transform(raw)
        x = torch.from_numpy(raw).float() / 255.0
        return x[:, None] if x.ndim == 3 else x

    def __getitem__(self, key) -> torch.Tensor:
        if isinstance(key, (int, np.integer)) or (torch.is_tensor(key) and key.ndim == 0):
            i = int(key)
            if not -len(self) <= i < len(self):
                raise IndexError(i)
            return self._apply(self.read([i % len(self)]))[0]
        if isinstance(key, slice):
            rows = np.arange(len(self))[key]
        else:
            rows = np.asarray(key.cpu() if torch.is_tensor(key) else key)
            if rows.dtype == bool:
                raise InputError("index StreamedImages with positions; use subset(mask) for "
                                 "a boolean mask")
        return self._apply(self.read(rows))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        mm = self.pixels
        name = str(getattr(mm, "filename", "") or "")
        if isinstance(mm, np.memmap) and name.endswith(".npy"):
            state["pixels"] = ("memmap", name)    # reopened, not copied, in a worker
        return state

    def __setstate__(self, state: dict) -> None:
        px = state["pixels"]
        if isinstance(px, tuple) and px[:1] == ("memmap",):
            state["pixels"] = np.load(px[1], mmap_mode="r")
        self.__dict__.update(state)
