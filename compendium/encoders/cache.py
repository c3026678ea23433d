"""Embedding extraction with an on-disk cache that survives interruptions.

:func:`extract_embeddings` runs an encoder over images (a uint8 array, a map-style Dataset
of dicts with ``"img"``/``"idx"``, or any iterable of such dicts) in batches, with a
progress bar, under ``torch.inference_mode``; on a GPU in bf16 autocast and channels-last.
Decoding and preprocessing run in DataLoader worker processes (``num_workers``).

Results are stored under ``cache_dir("embeddings")/<key>/`` where ``key`` hashes (model,
weights, preprocessing, options, cohort rows).  Rows are encoded in chunks; each chunk is
written atomically as ``chunk-NNNNNN.npy``, so an interrupted run resumes with the chunks it
finished.  When all are there they are joined into ``embeddings.npy`` and ``manifest.json``
(with the file's SHA-256) is written last: an entry without a valid manifest is not
finished.  Loading checks the manifest, shape and checksum and rebuilds what is corrupt.

CT volumes (Paper B): each item is a (D, H, W) volume in Hounsfield units, its slices are
encoded and pooled (``pooling="mean"``, or ``"max"``) to one vector per volume.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..atomic import atomic_write, write_json
from ..errors import ConfigError, InputError
from ..paths import cache_dir

log = logging.getLogger(__name__)

CACHE_VERSION = 1
POOLINGS = ("mean", "max")


@dataclasses.dataclass(frozen=True)
class Embeddings:
    """A finished cache entry: ``array`` is a read-only memory map (n, dim) float32."""

    array: np.ndarray
    key: str
    path: Path
    computed_chunks: int     # chunks encoded by this call (0 when everything was cached)


# ----------------------------------------------------------------------------- keys


def rows_fingerprint(rows: Any) -> str:
    """Hash of the cohort rows: sample ids (and pixel pointers) of a table, a list of ids,
    or the bytes of an image array."""
    import pandas as pd

    h = hashlib.sha256()
    if isinstance(rows, pd.DataFrame):
        cols = [c for c in ("sample_id", "image_path", "synthetic_key", "volume_path")
                if c in rows.columns]
        if not cols:
            raise InputError("cohort rows need a 'sample_id' column to be cached")
        for c in cols:
            h.update(c.encode())
            h.update("\x1f".join(map(str, rows[c].tolist())).encode())
    elif isinstance(rows, np.ndarray):
        h.update(str((rows.shape, rows.dtype.str)).encode())
        # in blocks of rows: the digest of the whole array's bytes, without a copy of it
        # (a memory-mapped pixel cache is read a block at a time)
        if rows.ndim == 0:
            h.update(np.ascontiguousarray(rows).tobytes())
        else:
            step = max(1, (64 << 20) // max(1, rows[:1].nbytes))
            for s in range(0, len(rows), step):
                # a C-contiguous block is hashed in place (no copy); others copied per block
                h.update(np.ascontiguousarray(rows[s:s + step]))
    else:
        h.update("\x1f".join(map(str, list(rows))).encode())
    return h.hexdigest()


def _is_synthetic(rows: Any) -> bool:
    return hasattr(rows, "columns") and "synthetic_key" in rows.columns


def embedding_key(encoder: Any, rows_fp: str, **options: Any) -> str:
    """Cache key of (model, weights, preprocessing, options, cohort rows)."""
    payload = {"model": encoder.entry.name, "weights": getattr(encoder, "weights_id", ""),
               "preprocess": dataclasses.asdict(encoder.entry.preprocess),
               "embed_dim": int(encoder.embed_dim), "rows": rows_fp, "options": options,
               "version": CACHE_VERSION}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


# ----------------------------------------------------------------------------- datasets


class _ArrayDataset:
    """Map-style dataset over a uint8/float array (n, H, W[, C]) or (n, D, H, W) volumes."""

    def __init__(self, images: np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"img": self.images[i], "idx": i}


class _Batches:
    """Batches of a dataset, decoded *and* preprocessed together (in DataLoader workers).

    Array input is read with one fancy index per batch (a memory-mapped image cache reads
    contiguous rows) and preprocessed as one tensor; dataset items are stacked when they
    share a shape, else preprocessed one by one.
    """

    def __init__(self, dataset: Any, positions: Sequence[int], preprocessor: Any,
                 volumes: bool, batch_size: int) -> None:
        self.dataset = dataset
        pos = list(positions)
        step = 1 if volumes else batch_size
        self.batches = [pos[i:i + step] for i in range(0, len(pos), step)]
        self.pre = preprocessor
        self.volumes = volumes

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, j: int) -> tuple[list[int], Any]:
        import torch

        pos = self.batches[j]
        if isinstance(self.dataset, _ArrayDataset) and not self.volumes:
            return pos, self.pre(np.asarray(self.dataset.images[pos]))
        imgs = [_img(self.dataset[p]) for p in pos]
        if self.volumes:
            vols = [np.asarray(v, dtype=np.float32) for v in imgs]
            for p, v in zip(pos, vols):
                if v.ndim != 3:
                    raise InputError(f"volume {p} must be (D, H, W), got {v.shape}")
            return pos, [self.pre(v, hu=True) for v in vols]   # each (D, C, H, W)
        try:
            return pos, self.pre(imgs)
        except InputError:  # items differ in shape: one by one
            return pos, torch.cat([self.pre([im]) for im in imgs])


def _img(item: Any) -> Any:
    return item["img"] if isinstance(item, dict) else item


def _identity(batch: Any) -> Any:
    return batch


# ----------------------------------------------------------------------------- cache entry


def _entry_dir(key: str, root: Path | None) -> Path:
    return (root or cache_dir("embeddings")) / key


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_entry(key: str, *, root: Path | None = None, verify: bool = True) -> np.ndarray | None:
    """The finished entry ``key`` as a read-only memmap, or None if absent/corrupt."""
    d = _entry_dir(key, root)
    man, arr = d / "manifest.json", d / "embeddings.npy"
    if not (man.is_file() and arr.is_file()):
        return None
    try:
        meta = json.loads(man.read_text("utf-8"))
        data = np.load(arr, mmap_mode="r")
        if list(data.shape) != [meta["n"], meta["dim"]] or data.dtype != np.float32:
            raise ValueError(f"shape {data.shape} != manifest ({meta['n']}, {meta['dim']})")
        if verify and _sha256(arr) != meta["sha256"]:
            raise ValueError("checksum differs from the manifest")
    except (ValueError, KeyError, OSError, json.JSONDecodeError) as exc:
        log.warning("embedding cache entry %s is corrupt (%s); it will be rebuilt", key, exc)
        return None
    return data


def _chunk_ok(path: Path, rows: int, dim: int) -> bool:
    try:
        a = np.load(path, mmap_mode="r")
        return a.shape == (rows, dim) and a.dtype == np.float32 and bool(np.isfinite(a).all())
    except (ValueError, OSError, EOFError):
        return False


def _save_chunk(path: Path, arr: np.ndarray) -> None:
    with atomic_write(path, "wb") as fh:
        np.save(fh, np.ascontiguousarray(arr, dtype=np.float32))


# ----------------------------------------------------------------------------- extraction


def extract_embeddings(encoder: Any, images: Any, *, rows: Any = None, chunk_size: int = 2048,
                       batch_size: int = 64, num_workers: int = 0, device: str | None = None,
                       bf16: bool | None = None, volumes: bool = False, pooling: str = "mean",
                       slice_batch: int = 64, cache: bool = True, root: Path | None = None,
                       progress: bool = True, verify: bool = True) -> Embeddings:
    """Encode ``images`` with ``encoder`` (cached); returns an :class:`Embeddings`.

    Parameters
    ----------
    encoder : an :class:`~compendium.encoders.encoder.Encoder`
    images : uint8/float array (n, H, W[, C]) (or (n, D, H, W) HU volumes with
        ``volumes=True``), a map-style dataset of dicts with ``"img"`` (and ``"idx"``), or an
        iterable of such dicts (then ``rows`` is required and ``num_workers`` is unused).
    rows : cohort table (its ``sample_id`` and pixel pointer are hashed) or list of sample
        ids identifying the inputs; defaults to the array's bytes for array input.
    chunk_size : rows per atomically written chunk (the unit of resumption).
    num_workers : DataLoader worker processes that decode and preprocess.
    device : ``"cpu"`` / ``"cuda"``; default the encoder's device.
    bf16 : autocast to bfloat16 (default: on for CUDA, off on CPU).
    volumes, pooling : CT mode: encode each volume's slices and pool (``"mean"``/``"max"``).
    cache : False computes without reading or writing the cache (returns an in-memory array).
    """
    import torch

    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r} (allowed: {', '.join(POOLINGS)})")
    if chunk_size < 1 or batch_size < 1:
        raise ConfigError("chunk_size and batch_size must be >= 1")
    if getattr(encoder.entry, "kind", "module") == "embeddings-file":
        return _from_file(encoder, rows, cache=cache, root=root)
    dataset, n = _as_dataset(images, rows)
    if rows is None:
        if isinstance(images, np.ndarray):
            rows_fp = rows_fingerprint(images)
        elif hasattr(dataset, "fingerprint"):
            rows_fp = str(dataset.fingerprint)
        else:
            raise ConfigError("pass rows= (the cohort table or sample ids) so that the "
                              "embeddings of a dataset can be cached")
    else:
        rows_fp = rows_fingerprint(rows)
        if len(rows) != n:
            raise InputError(f"{len(rows)} rows but {n} images")
        if _is_synthetic(rows) and isinstance(images, np.ndarray):
            # synthetic keys name a row, not its pixels (other bias knobs or world seeds
            # render the same keys differently): key on the pixels too
            rows_fp = hashlib.sha256((rows_fp + rows_fingerprint(images)).encode()).hexdigest()
    dim = int(encoder.embed_dim)
    options = {"volumes": volumes, "pooling": pooling if volumes else None}
    key = embedding_key(encoder, rows_fp, **options)
    d = _entry_dir(key, root)
    if cache:
        done = load_entry(key, root=root, verify=verify)
        if done is not None:
            return Embeddings(done, key, d, 0)
        d.mkdir(parents=True, exist_ok=True)
        for stale in ("manifest.json", "embeddings.npy"):
            (d / stale).unlink(missing_ok=True)
    dev = torch.device(device) if device else encoder.device
    use_bf16 = (dev.type == "cuda") if bf16 is None else bool(bf16)
    model = encoder.to(dev).eval()
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    bounds = [(s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    todo = [c for c, (s, e) in enumerate(bounds)
            if not (cache and _chunk_ok(d / f"chunk-{c:06d}.npy", e - s, dim))]
    results: dict[int, np.ndarray] = {}
    if todo:
        log.info("%s: encoding %d of %d chunk(s) (%d rows) on %s", encoder.entry.name, len(todo),
                 len(bounds), sum(bounds[c][1] - bounds[c][0] for c in todo), dev)
        results = _encode_chunks(encoder, dataset, bounds, todo, d, dim, dev=dev,
                                 bf16=use_bf16, batch_size=batch_size, num_workers=num_workers,
                                 volumes=volumes, pooling=pooling, slice_batch=slice_batch,
                                 cache=cache, progress=progress)
    if not cache:
        arr = np.concatenate([results[c] for c in range(len(bounds))]) if bounds else \
            np.zeros((0, dim), np.float32)
        return Embeddings(arr, key, d, len(todo))
    _finalise(d, bounds, dim, encoder, rows_fp, options)
    out = load_entry(key, root=root, verify=False)
    assert out is not None
    return Embeddings(out, key, d, len(todo))


def _as_dataset(images: Any, rows: Any) -> tuple[Any, int]:
    if isinstance(images, np.ndarray):
        return _ArrayDataset(images), len(images)
    if hasattr(images, "__getitem__") and hasattr(images, "__len__"):
        return images, len(images)
    if isinstance(images, Iterable):
        if rows is None:
            raise ConfigError("an iterable of images needs rows= (the cohort table or ids)")
        items = list(images)  # an iterable is consumed once; keep it addressable
        return items, len(items)
    raise InputError(f"cannot read images from a {type(images).__name__}")


def _encode_chunks(encoder: Any, dataset: Any, bounds: list[tuple[int, int]], todo: list[int],
                   d: Path, dim: int, *, dev: Any, bf16: bool, batch_size: int,
                   num_workers: int, volumes: bool, pooling: str, slice_batch: int,
                   cache: bool, progress: bool) -> dict[int, np.ndarray]:
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    positions = [p for c in todo for p in range(*bounds[c])]
    prepared = _Batches(dataset, positions, encoder.preprocessor, volumes, batch_size)
    loader = DataLoader(prepared, batch_size=None, shuffle=False,
                        num_workers=num_workers, pin_memory=dev.type == "cuda",
                        collate_fn=_identity, persistent_workers=False,
                        multiprocessing_context="spawn" if num_workers and dev.type == "cuda"
                        else None)
    pending = list(todo)
    buf: list[np.ndarray] = []
    have = 0
    done: dict[int, np.ndarray] = {}
    bar = tqdm(total=len(positions), desc=f"embed {encoder.entry.name}", unit="img",
               disable=not progress, leave=False)
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)
    with torch.inference_mode(), autocast:
        for _, x in loader:
            if volumes:
                feats = [_encode_volume(encoder, v, dev, pooling, slice_batch) for v in x]
                out = torch.stack(feats)
            else:
                x = x.to(dev, non_blocking=True)
                if dev.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                out = encoder.encode_images(x)
            arr = out.float().cpu().numpy()
            if arr.shape[1] != dim:
                raise InputError(f"{encoder.entry.name} returned {arr.shape[1]}-d embeddings, "
                                 f"expected {dim}")
            buf.append(arr)
            have += len(arr)
            bar.update(len(arr))
            while pending and have >= bounds[pending[0]][1] - bounds[pending[0]][0]:
                c = pending.pop(0)
                rows = bounds[c][1] - bounds[c][0]
                joined = np.concatenate(buf)
                chunk, rest = joined[:rows], joined[rows:]
                buf, have = ([rest] if len(rest) else []), len(rest)
                if cache:
                    _save_chunk(d / f"chunk-{c:06d}.npy", chunk)
                else:
                    done[c] = chunk
    bar.close()
    return done


def _encode_volume(encoder: Any, slices: Any, dev: Any, pooling: str, slice_batch: int) -> Any:
    import torch

    feats = [encoder.encode_images(slices[i:i + slice_batch].to(dev)).float()
             for i in range(0, len(slices), slice_batch)]
    f = torch.cat(feats)
    return f.mean(0) if pooling == "mean" else f.max(0).values


def encode_volume(encoder: Any, volume: Any, *, pooling: str = "mean",
                  slice_batch: int = 64) -> np.ndarray:
    """One CT volume (D, H, W) in HU -> one pooled embedding (Paper B: slice-wise + mean)."""
    import torch

    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling {pooling!r} (allowed: {', '.join(POOLINGS)})")
    x = encoder.preprocess(np.asarray(volume, dtype=np.float32), hu=True)
    with torch.inference_mode():
        return _encode_volume(encoder, x, encoder.device, pooling, slice_batch).cpu().numpy()


def _finalise(d: Path, bounds: list[tuple[int, int]], dim: int, encoder: Any, rows_fp: str,
              options: dict[str, Any]) -> None:
    n = bounds[-1][1] if bounds else 0
    arr_path = d / "embeddings.npy"
    with atomic_write(arr_path, "wb") as fh:  # header, then the chunks streamed in
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                  "fortran_order": False, "shape": (n, dim)}
        np.lib.format.write_array_header_1_0(fh, header)
        for c in range(len(bounds)):
            fh.write(np.ascontiguousarray(np.load(d / f"chunk-{c:06d}.npy"),
                                          dtype=np.float32).tobytes())
    write_json(d / "manifest.json", {
        "n": n, "dim": dim, "dtype": "float32", "sha256": _sha256(arr_path),
        "model": encoder.entry.name, "weights": getattr(encoder, "weights_id", ""),
        "preprocess": dataclasses.asdict(encoder.entry.preprocess), "rows": rows_fp,
        "options": options, "chunks": len(bounds), "version": CACHE_VERSION})
    for c in range(len(bounds)):
        (d / f"chunk-{c:06d}.npy").unlink(missing_ok=True)


def _from_file(encoder: Any, rows: Any, *, cache: bool, root: Path | None) -> Embeddings:
    import pandas as pd

    if rows is None:
        raise ConfigError(f"{encoder.entry.name} reads precomputed embeddings: pass rows= "
                          "(the cohort table or its sample ids)")
    ids = rows["sample_id"].astype(str).tolist() if isinstance(rows, pd.DataFrame) else \
        [str(r) for r in rows]
    arr = encoder.encode_samples(ids)
    return Embeddings(arr, embedding_key(encoder, rows_fingerprint(ids)), Path(""), 0)


def clear(key: str, *, root: Path | None = None) -> None:
    """Remove one cache entry."""
    shutil.rmtree(_entry_dir(key, root), ignore_errors=True)


__all__ = ["Embeddings", "clear", "embedding_key", "encode_volume", "extract_embeddings",
           "load_entry", "rows_fingerprint"]
