"""Embedding cache: keys, resumption after an interruption, corrupt entries rebuilt."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from compendium.encoders import create_model
from compendium.encoders.cache import extract_embeddings, load_entry, rows_fingerprint
from compendium.errors import ConfigError, InputError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def enc():
    torch.manual_seed(0)
    return create_model("toy-clip-vit", tiny=True)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 255, (23, 40, 40), dtype=np.uint8)


class Interrupted(RuntimeError):
    pass


def counting(enc, monkeypatch, fail_after: int | None = None):
    """Count forward calls (batches); optionally raise on call number fail_after + 1."""
    calls = {"n": 0}
    enc.__dict__.pop("encode_images", None)  # drop an earlier counter
    real = enc.encode_images

    def wrapped(x, **kw):
        calls["n"] += 1
        if fail_after is not None and calls["n"] > fail_after:
            raise Interrupted("simulated kill")
        return real(x, **kw)

    enc.__dict__["encode_images"] = wrapped
    return calls


def test_same_inputs_same_key_and_values(cache, enc, images, monkeypatch):
    a = extract_embeddings(enc, images, chunk_size=8, batch_size=4, progress=False)
    calls = counting(enc, monkeypatch)
    b = extract_embeddings(enc, images, chunk_size=8, batch_size=4, progress=False)
    assert a.key == b.key and calls["n"] == 0 and b.computed_chunks == 0
    np.testing.assert_array_equal(np.asarray(a.array), np.asarray(b.array))
    assert isinstance(b.array, np.memmap) and b.array.shape == (23, enc.embed_dim)
    with torch.inference_mode():
        direct = enc.encode_images(enc.preprocess(images)).numpy()
    np.testing.assert_allclose(np.asarray(a.array), direct, rtol=1e-4, atol=1e-5)
    # different rows, preprocessing-relevant content or model -> different key
    c = extract_embeddings(enc, images[:-1], chunk_size=8, batch_size=4, progress=False)
    assert c.key != a.key
    other = create_model("toy-clip-resnet", tiny=True)
    assert extract_embeddings(other, images, chunk_size=8, progress=False).key != a.key


def test_rows_table_keys(cache, enc, images):
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(23)]})
    a = extract_embeddings(enc, images, rows=rows, chunk_size=10, progress=False)
    rows2 = rows.assign(sample_id=rows["sample_id"].str.upper())
    b = extract_embeddings(enc, images, rows=rows2, chunk_size=10, progress=False)
    assert a.key != b.key
    assert rows_fingerprint(rows) == rows_fingerprint(rows.copy())
    with pytest.raises(InputError, match="rows"):
        extract_embeddings(enc, images, rows=rows.iloc[:5], progress=False)


def test_synthetic_rows_are_keyed_by_their_pixels_too(cache, enc, images):
    """Synthetic keys name rows, not pixels: other knobs must not hit a stale entry."""
    rows = pd.DataFrame({"sample_id": [f"s{i}" for i in range(23)],
                         "synthetic_key": [f"c/s{i}" for i in range(23)]})
    a = extract_embeddings(enc, images, rows=rows, chunk_size=10, progress=False)
    b = extract_embeddings(enc, 255 - images, rows=rows, chunk_size=10, progress=False)
    assert a.key != b.key
    assert extract_embeddings(enc, images, rows=rows, progress=False).key == a.key
    # real rows (paths) stay keyed by the rows alone: resumption never re-hashes pixels
    real = rows.drop(columns="synthetic_key")
    assert (extract_embeddings(enc, images, rows=real, chunk_size=10, progress=False).key
            == extract_embeddings(enc, 255 - images, rows=real, chunk_size=10,
                                  progress=False).key)


def test_interrupted_run_resumes_without_recomputing(cache, enc, images, monkeypatch):
    # 23 rows, chunks of 8 (3 chunks), batches of 4: chunk 0 = calls 1-2, chunk 1 = calls 3-4
    calls = counting(enc, monkeypatch, fail_after=5)
    with pytest.raises(Interrupted):
        extract_embeddings(enc, images, chunk_size=8, batch_size=4, progress=False)
    key_dir = next(p for p in cache.joinpath("embeddings").iterdir() if p.is_dir())
    assert sorted(p.name for p in key_dir.glob("chunk-*.npy")) == ["chunk-000000.npy",
                                                                   "chunk-000001.npy"]
    assert not (key_dir / "manifest.json").exists()       # not finished, not loadable
    assert load_entry(key_dir.name) is None
    assert not list(key_dir.glob("*.partial"))            # nothing half-written left
    calls = counting(enc, monkeypatch)
    out = extract_embeddings(enc, images, chunk_size=8, batch_size=4, progress=False)
    assert calls["n"] == 2                                # only the last chunk (7 rows)
    assert out.computed_chunks == 1
    ref = extract_embeddings(enc, images, chunk_size=8, batch_size=4, progress=False,
                             cache=False)
    np.testing.assert_allclose(np.asarray(out.array), ref.array, rtol=1e-5, atol=1e-6)
    assert not list(key_dir.glob("chunk-*.npy"))          # joined into embeddings.npy
    manifest = json.loads((key_dir / "manifest.json").read_text())
    assert manifest["n"] == 23 and manifest["model"] == "toy-clip-vit"


def test_corrupt_entries_are_rebuilt(cache, enc, images, monkeypatch):
    a = extract_embeddings(enc, images, chunk_size=8, batch_size=8, progress=False)
    arr = a.path / "embeddings.npy"
    ref = np.array(a.array)
    del a
    # flip bytes in the payload: the checksum catches it
    raw = bytearray(arr.read_bytes())
    raw[-5] ^= 0xFF
    arr.write_bytes(bytes(raw))
    calls = counting(enc, monkeypatch)
    b = extract_embeddings(enc, images, chunk_size=8, batch_size=8, progress=False)
    assert calls["n"] == 3 and b.computed_chunks == 3
    np.testing.assert_allclose(np.asarray(b.array), ref, rtol=1e-6)
    # truncated file
    arr.write_bytes(arr.read_bytes()[:100])
    c = extract_embeddings(enc, images, chunk_size=8, batch_size=8, progress=False)
    assert c.computed_chunks == 3
    # a corrupt chunk left by an earlier run is recomputed, the good ones kept
    calls = counting(enc, monkeypatch, fail_after=2)
    imgs2 = images[::-1].copy()
    with pytest.raises(Interrupted):
        extract_embeddings(enc, imgs2, chunk_size=8, batch_size=8, progress=False)
    d = next(p for p in cache.joinpath("embeddings").iterdir()
             if p.is_dir() and not (p / "manifest.json").exists())
    (d / "chunk-000000.npy").write_bytes(b"garbage")
    calls = counting(enc, monkeypatch)
    e = extract_embeddings(enc, imgs2, chunk_size=8, batch_size=8, progress=False)
    assert calls["n"] == 2 and e.computed_chunks == 2     # chunk 0 (corrupt) and chunk 2


def test_dataset_of_dicts_with_workers(cache, enc, images):
    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return len(images)

        def __getitem__(self, i):
            return {"img": images[i], "idx": i}

    rows = [f"id{i}" for i in range(len(images))]
    a = extract_embeddings(enc, DS(), rows=rows, chunk_size=10, batch_size=5, num_workers=2,
                           progress=False)
    b = extract_embeddings(enc, images, rows=rows, chunk_size=10, batch_size=5,
                           progress=False, cache=False)
    np.testing.assert_allclose(np.asarray(a.array), b.array, rtol=1e-5, atol=1e-6)
    it = ({"img": images[i], "idx": i} for i in range(len(images)))
    c = extract_embeddings(enc, it, rows=rows, chunk_size=10, progress=False)
    assert c.key == a.key
    with pytest.raises(ConfigError, match="rows="):
        extract_embeddings(enc, DS(), progress=False)


def test_volumes_mean_pooled(cache, enc):
    from compendium.encoders.cache import encode_volume

    vols = np.random.default_rng(1).normal(-400, 400, (3, 4, 24, 24)).astype(np.float32)
    out = extract_embeddings(enc, vols, volumes=True, chunk_size=2, progress=False)
    assert out.array.shape == (3, enc.embed_dim)
    np.testing.assert_allclose(np.asarray(out.array)[1], encode_volume(enc, vols[1]),
                               rtol=1e-4, atol=1e-5)
    mx = extract_embeddings(enc, vols, volumes=True, pooling="max", chunk_size=2,
                            progress=False)
    assert mx.key != out.key
    with pytest.raises(ConfigError, match="pooling"):
        extract_embeddings(enc, vols, volumes=True, pooling="median", progress=False)


def test_items_in_any_image_layout(cache, enc, images):
    """(H, W) uint8, (C, H, W) float tensors and PIL images give the same embeddings."""
    from PIL import Image

    grey = images[:5]
    chw = [torch.from_numpy(np.repeat(g[None], 3, 0).astype(np.float32) / 255) for g in grey]
    pil = [Image.fromarray(g) for g in grey]
    ref = extract_embeddings(enc, grey, cache=False, progress=False).array
    for items in (chw, pil):
        ds = [{"img": im, "idx": i} for i, im in enumerate(items)]
        out = extract_embeddings(enc, ds, rows=list(range(5)), cache=False, progress=False)
        np.testing.assert_allclose(out.array, ref, rtol=1e-4, atol=1e-4)
