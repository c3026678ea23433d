"""Images streamed from the pixel cache: training reads batches, never the split, and gives
what training on the same images held in memory gives."""

import pickle

import numpy as np
import pytest
import torch

from compendium.adapt.finetune import run_adaptation
from compendium.adapt.tiny import TinyClipEncoder
from compendium.adapt.training import DictDataset, TrainSpec, make_loader
from compendium.imaging.dataset import StreamedImages

from tests.adapt_synth import synthetic_rows

CLASSES = ["Atelectasis", "Cardiomegaly", "Effusion"]
BATCH = 16


class CountingStore:
    """A uint8 pixel store (n, S, S) that records every read and refuses to be converted to
    an array as a whole: training that materialised the cohort would fail here."""

    def __init__(self, pixels: np.ndarray) -> None:
        self._px = pixels
        self.shape, self.dtype = pixels.shape, pixels.dtype
        self.reads: list[int] = []

    def __len__(self) -> int:
        return len(self._px)

    def __getitem__(self, key):
        rows = np.asarray(key)
        if rows.ndim != 1:
            raise AssertionError(f"read with {key!r}: only lists of rows are expected")
        self.reads.append(len(rows))
        return self._px[rows]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole store was converted to an array")


def _uint8_images(y, sex, *, size=32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(96, 30, size=(len(y), size, size))
    h = size // len(CLASSES)
    for i, c in enumerate(np.asarray(y)):
        x[i, c * h:(c + 1) * h] += 80
    x[np.asarray(sex) == "F", :4, :4] += 80
    return np.clip(x, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def cohort():
    rows, y = synthetic_rows(240, CLASSES, seed=1)
    return rows, _uint8_images(y, rows["sex"], seed=2)


def _spec(**kw):
    return TrainSpec(**{"epochs": 2, "lr": 1e-3, "device": "cpu", "progress": False,
                        "threads": 1, **kw})


def _data(rows, images, store, transform):
    """The three splits, as tensors (``store`` None) or streamed from ``store``."""
    out = {}
    for s in ("train", "val", "test"):
        m = (rows["split"] == s).to_numpy()
        x = (transform(images[m]) if store is None
             else StreamedImages(store, np.flatnonzero(m), transform))
        out[s] = (x, rows[m].reset_index(drop=True))
    return out


def test_streamed_images_index_like_the_tensor(tmp_path):
    px = np.random.default_rng(0).integers(0, 256, (50, 8, 8), dtype=np.uint8)
    enc = TinyClipEncoder(image_size=8, seed=0)
    full = enc.preprocess(px)
    s = StreamedImages(px, transform=enc.preprocess)
    assert torch.equal(s[3], full[3])
    assert torch.equal(s[10:20], full[10:20])
    assert torch.equal(s[[7, 2, 7]], full[[7, 2, 7]])
    assert torch.equal(s[torch.tensor([4, 1])], full[[4, 1]])
    mask = np.arange(50) % 3 == 0
    sub = s.subset(mask)
    assert len(sub) == mask.sum() and torch.equal(sub[1:3], full[mask][1:3])
    assert torch.equal(sub.subset([2, 0])[:], full[mask][[2, 0]])
    # the default transform: [0, 1] with a channel axis
    assert torch.allclose(StreamedImages(px)[0], torch.from_numpy(px[0] / 255.0).float()[None])


def test_streamed_images_pickle_reopens_the_memmap(tmp_path):
    path = tmp_path / "px.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (400, 64, 64), dtype=np.uint8))
    mm = np.load(path, mmap_mode="r")
    s = StreamedImages(mm, positions=np.arange(100, 400))
    blob = pickle.dumps(s)
    assert len(blob) < 10_000            # the 1.6 MB of pixels were not copied in
    back = pickle.loads(blob)
    assert isinstance(back.pixels, np.memmap) and torch.equal(back[5:9], s[5:9])


def test_streamed_training_equals_in_memory(cohort):
    rows, images = cohort
    enc = TinyClipEncoder(seed=0)
    ref, _ = run_adaptation(enc, _data(rows, images, None, enc.preprocess), CLASSES,
                            "multiclass", _spec(), method="finetune", batch_size=BATCH)
    got, _ = run_adaptation(enc, _data(rows, images, images, enc.preprocess), CLASSES,
                            "multiclass", _spec(), method="finetune", batch_size=BATCH)
    scores = [c for c in ref.columns if c.startswith("score")]
    assert len(scores) == len(CLASSES)
    np.testing.assert_array_equal(got[scores].to_numpy(), ref[scores].to_numpy())
    assert got.equals(ref)


def test_streamed_training_reads_batches_only(cohort):
    """Memory is bounded by the batch: every read of the store is one batch (or the two
    rows that size the head), no read covers a split, the store is never turned into an
    array, and every training image is read once per epoch."""
    rows, images = cohort
    enc = TinyClipEncoder(seed=0)
    store = CountingStore(images)
    table, info = run_adaptation(enc, _data(rows, images, store, enc.preprocess), CLASSES,
                                 "multiclass", _spec(), method="finetune", batch_size=BATCH)
    n_train = int((rows["split"] == "train").sum())
    assert len(table) == int((rows["split"] == "test").sum())
    assert max(store.reads) <= BATCH < n_train
    epochs = len(info["history"].epochs)
    n_val = int((rows["split"] == "val").sum())
    # train once per epoch, val once per epoch, test once, plus the 2-row sizing read
    assert sum(store.reads) == epochs * (n_train + n_val) + len(table) + 2


def test_streamed_loader_with_workers_gives_the_same_batches(cohort, tmp_path):
    rows, images = cohort
    path = tmp_path / "px.npy"
    np.save(path, images)
    enc = TinyClipEncoder(seed=0)
    stream = StreamedImages(np.load(path, mmap_mode="r"), np.arange(0, 200, 2), enc.preprocess)
    y = np.arange(len(stream)) % 3
    ref = list(make_loader(DictDataset(stream, y), batch_size=BATCH, seed=3))
    two = list(make_loader(DictDataset(stream, y), batch_size=BATCH, seed=3, num_workers=2))
    assert len(ref) == len(two) == -(-len(stream) // BATCH)
    for a, b in zip(ref, two):
        assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])
    held = enc.preprocess(images[np.arange(0, 200, 2)])
    mem = list(make_loader(DictDataset(held, y), batch_size=BATCH, seed=3))
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(ref, mem))


def test_embedding_a_memory_mapped_cohort_reads_it_in_batches(tmp_path, monkeypatch):
    """Frozen embeddings (Paper C's ``embed``) of a memory-mapped pixel cache: the cache key
    hashes the pixels a block at a time (no copy of the array: the old key built one) and the
    encoder reads batches, so Python-level allocations stay far below the cohort's size."""
    import hashlib
    import tracemalloc

    from compendium.encoders import create_model
    from compendium.encoders.cache import extract_embeddings, rows_fingerprint

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "px.npy"
    n, side = 600, 96
    np.save(path, np.random.default_rng(0).integers(0, 256, (n, side, side), dtype=np.uint8))
    mm = np.load(path, mmap_mode="r")
    # the key is the digest of the whole array's bytes (the same as before the change)
    h = hashlib.sha256(str((mm.shape, mm.dtype.str)).encode())
    h.update(np.asarray(mm).tobytes())
    assert rows_fingerprint(mm) == h.hexdigest()
    torch.manual_seed(0)
    enc = create_model("toy-clip-vit", tiny=True)
    tracemalloc.start()
    try:
        emb = extract_embeddings(enc, np.asarray(mm), batch_size=8, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert emb.array.shape == (n, enc.embed_dim)
    assert peak < mm.nbytes / 4, (peak, mm.nbytes)
