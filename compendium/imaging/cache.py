"""A pre-resized uint8 pixel cache, memory-mapped, so that epochs do not decode again.

:func:`cached_pixels` returns a read-only :class:`numpy.memmap` of shape
``(n_rows, size, size)`` (images) or ``(n_rows, n_slices, size, size)`` (CT volumes) for the
rows of a cohort.  The cache file is keyed by a SHA-256 of the rows' pixel pointers (the
``image_path`` / ``volume_path`` / ``synthetic_key`` values, with the dataset root), the
size and the slice settings, so another cohort, size or window gets another file.  It is
written to a temporary ``.npy`` beside the final one and moved into place with
:func:`os.replace` only when every row was decoded: an interrupted fill leaves no file
that a later run could mistake for a complete one.

Location: ``compendium.paths.cache_dir("pixels")`` (``$COMPENDIUM_CACHE/pixels``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ..paths import cache_dir
from .io import LUNG_WINDOW, read_pixels, resize_uint8, volume_slices

log = logging.getLogger(__name__)

CACHE_VERSION = 1


def cache_key(pointers: Sequence[str], *, root: str | None, size: int,
              n_slices: int | None = None, window: tuple[float, float] | None = None,
              world: dict | None = None) -> str:
    """SHA-256 (hex, 24 chars) of what determines the cached pixels.

    ``world`` (a synthetic cohort's ``meta["synthetic"]``: seed and bias knobs) is part of
    the key, since the same synthetic keys render differently under other knobs.
    """
    payload = json.dumps({"v": CACHE_VERSION, "root": root, "size": int(size),
                          "n_slices": n_slices, "window": list(window) if window else None,
                          "rows": [str(p) for p in pointers], "world": world},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def decode_row(pointer: str, *, root: str | None, size: int, n_slices: int | None = None,
               window: tuple[float, float] = LUNG_WINDOW) -> np.ndarray:
    """Read one file and return its resized uint8 pixels (``(size, size)`` or
    ``(n_slices, size, size)`` for a 3-D volume)."""
    path = Path(root) / pointer if root else Path(pointer)
    arr = read_pixels(path)
    if arr.ndim == 3:
        slices = volume_slices(arr, n_slices=n_slices, window=window)
        return np.stack([resize_uint8(s, size) for s in slices])
    return resize_uint8(arr, size)


def cached_pixels(cohort, size: int = 224, *, n_slices: int | None = None,
                  window: tuple[float, float] = LUNG_WINDOW, directory: str | Path | None = None,
                  progress: bool = True) -> np.memmap:
    """The memory-mapped uint8 pixels of every row of ``cohort`` (built on first use).

    Parameters
    ----------
    cohort : Cohort
        Its ``pixel_column`` must be ``image_path``, ``volume_path`` or ``synthetic_key``.
    size : int
        Side of the square images.
    n_slices, window : for CT volumes, slices per volume and the HU window.
    directory : path, optional
        Cache folder (default ``cache_dir("pixels")``).
    """
    from tqdm.auto import tqdm

    from ..errors import InputError

    col = cohort.pixel_column
    if col is None:
        raise InputError(f"cohort {cohort.name} has no pixels (source {cohort.source}); "
                         "build it with root=PATH to the images")
    pointers = cohort.table[col].astype(str).tolist()
    key = cache_key(pointers, root=cohort.root, size=size,
                    n_slices=n_slices if col == "volume_path" else None,
                    window=window if col == "volume_path" else None,
                    world=cohort.meta.get("synthetic") if col == "synthetic_key" else None)
    folder = Path(directory) if directory else cache_dir("pixels")
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{cohort.name}-{size}-{key}.npy"
    if final.is_file():
        log.debug("pixel cache hit: %s", final)
        return np.load(final, mmap_mode="r")
    n = len(pointers)
    if col == "synthetic_key":
        first = np.zeros((size, size), np.uint8)  # render_rows returns (n, size, size)
    else:
        first = decode_row(pointers[0], root=cohort.root, size=size, n_slices=n_slices,
                           window=window) if n else np.zeros((size, size), np.uint8)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".partial", dir=folder)
    os.close(fd)
    from ..atomic import current_umask

    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, *first.shape))
        if col == "synthetic_key":
            from .dataset import render_synthetic

            step = 256
            for start in tqdm(range(0, n, step), desc=f"render {cohort.name}", disable=not progress):
                idx = list(range(start, min(n, start + step)))
                out[start:start + len(idx)] = render_synthetic(cohort, idx, size)
        else:
            if n:
                out[0] = first
            for i in tqdm(range(1, n), desc=f"decode {cohort.name}", disable=not progress or n < 2):
                arr = decode_row(pointers[i], root=cohort.root, size=size, n_slices=n_slices,
                                 window=window)
                if arr.shape != first.shape:
                    raise InputError(f"{pointers[i]}: gives {arr.shape}, other rows {first.shape} "
                                     "(set n_slices to give every volume the same depth)")
                out[i] = arr
        out.flush()
        del out
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    log.info("pixel cache written: %s (%d rows)", final, n)
    return np.load(final, mmap_mode="r")


def pixels(cohort, size: int, *, sample_ids: Sequence[str] | None = None,
           progress: bool = True) -> np.ndarray:
    """uint8 pixels ``(n, size, size)`` of a cohort's rows, however the cohort gets them.

    The one accessor the pipelines use: synthetic rows are rendered, real rows decoded, both
    through the memory-mapped cache (:func:`cached_pixels`).  ``sample_ids`` picks rows
    (in that order); default every row of the table.
    """
    import dataclasses

    from ..errors import InputError

    if sample_ids is not None:
        ids = _id_index(cohort.table["sample_id"])
        want = [str(s) for s in sample_ids]
        pos = ids.get_indexer(want)
        if (pos < 0).any():
            missing = [s for s, p in zip(want, pos) if p < 0]
            raise InputError(f"cohort {cohort.name} has no row {missing[0]!r} "
                             f"({len(missing)} requested ids missing)")
        cohort = dataclasses.replace(cohort, table=cohort.table.iloc[pos].reset_index(drop=True))
    return np.asarray(cached_pixels(cohort, size, progress=progress))


def _id_index(values):
    """A unique string index of sample ids (duplicate ids are an error)."""
    import pandas as pd

    from ..errors import InputError

    ids = pd.Index(pd.Series(values).astype(str))
    if not ids.is_unique:
        raise InputError(f"duplicate sample_id {ids[ids.duplicated()][0]!r}")
    return ids
