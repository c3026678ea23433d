"""Image and volume I/O: DICOM rescale/VOI/MONOCHROME1, HU windowing, NIfTI, the memmap
cache (reuse and atomicity) and the torch Dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from cohort_fixtures import write_dicom, write_jpeg, write_nifti
from PIL import Image

from compendium.cohorts import Cohort
from compendium.errors import DataNotFoundError, InputError
from compendium.imaging import hu_window, read_dicom, read_image, read_nifti, read_pixels, volume_slices
from compendium.imaging import cache as cache_mod
from compendium.imaging.cache import cached_pixels

RAMP = np.arange(16, dtype=np.uint16).reshape(4, 4) * 100  # 0..1500


def test_dicom_monochrome1_is_inverted(tmp_path):
    m2 = read_dicom(write_dicom(tmp_path / "m2.dcm", RAMP))
    m1 = read_dicom(write_dicom(tmp_path / "m1.dcm", RAMP, photometric="MONOCHROME1"))
    assert m2[0, 0] == 0 and m2[3, 3] == 1500
    np.testing.assert_array_equal(m1, 1500 - m2)


def test_dicom_rescale_slope_intercept(tmp_path):
    arr = read_dicom(write_dicom(tmp_path / "r.dcm", RAMP, slope=2, intercept=-1024))
    assert arr[0, 0] == -1024 and arr[3, 3] == 1500 * 2 - 1024


def test_dicom_window_is_applied(tmp_path):
    arr = read_dicom(write_dicom(tmp_path / "w.dcm", RAMP, window=(750, 500)))
    # linear VOI: below 500 -> min, above 1000 -> max of the 12-bit output range
    assert arr[0, 0] == arr[1, 0] == 0 and arr[3, 3] == 4095
    assert 0 < arr[1, 3] < 4095
    raw = read_dicom(tmp_path / "w.dcm", voi_lut=False)
    assert raw[3, 3] == 1500


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"not a dicom at all")
    with pytest.raises(InputError, match="cannot read DICOM .*bad.dcm"):
        read_dicom(bad)
    png = tmp_path / "bad.png"
    png.write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read image"):
        read_image(png)
    with pytest.raises(DataNotFoundError, match="image file not found"):
        read_pixels(tmp_path / "none.jpg")


def test_hu_window_values_and_nifti_volume(tmp_path):
    np.testing.assert_allclose(hu_window(np.array([-1350, -600, 150, 3000]), -600, 1500),
                               [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(hu_window(np.array([-160, 40, 240]), 40, 400), [0.0, 0.5, 1.0])
    hu = np.zeros((6, 5, 4)) - 1000.0
    hu[:, :, 2] = 40.0
    hu[0, 0, :] = 2000.0
    vol = read_nifti(write_nifti(tmp_path / "ct.nii.gz", hu, slope=2.0, inter=-1024.0))
    assert vol.shape == (6, 5, 4)
    np.testing.assert_allclose(vol, hu, atol=1.0)
    sl = volume_slices(vol, n_slices=4, window=(40, 400))
    assert sl.shape == (4, 5, 6) and sl.dtype == np.uint8
    assert sl[0].min() == 0 and sl[2][sl[2] > 0].min() == 128 and sl[0].max() == 255
    with pytest.raises(InputError, match="3-D"):
        read_nifti(write_nifti(tmp_path / "flat.nii", np.zeros((3, 3))))


def image_cohort(tmp_path, n=4):
    rows = []
    for i in range(n):
        Image.fromarray(np.full((30, 20), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
        rows.append({"sample_id": f"s{i}", "patient_id": f"p{i}", "split": "train", "age": 30.0 + i,
                     "sex": "MF"[i % 2], "race": np.nan, "y": float(i % 2), "image_path": f"{i}.png"})
    return Cohort("toy", pd.DataFrame(rows), ("y",), "real", "image_path", str(tmp_path))


def test_cache_is_reused_and_keyed(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    c = image_cohort(tmp_path)
    a = cached_pixels(c, 16, progress=False)
    assert a.shape == (4, 16, 16) and a.dtype == np.uint8 and isinstance(a, np.memmap)
    assert a[0].max() == 0 and (np.asarray(a[3]) == 120).all()
    files = list((tmp_path / "cache" / "pixels").glob("*.npy"))
    assert len(files) == 1
    calls = []
    monkeypatch.setattr(cache_mod, "decode_row", lambda *a, **k: calls.append(1))
    b = cached_pixels(c, 16, progress=False)
    assert calls == [] and np.array_equal(a, b)
    monkeypatch.undo()
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    cached_pixels(c, 8, progress=False)
    sub = dataclasses.replace(c, table=c.table.iloc[:2].reset_index(drop=True))
    cached_pixels(sub, 16, progress=False)
    assert len(list((tmp_path / "cache" / "pixels").glob("*.npy"))) == 3


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    c = image_cohort(tmp_path)
    (tmp_path / "2.png").write_bytes(b"broken")
    with pytest.raises(InputError, match="cannot read image"):
        cached_pixels(c, 16, progress=False)
    assert list((tmp_path / "cache" / "pixels").iterdir()) == []


def test_dataset_items(tmp_path, monkeypatch):
    from torch.utils.data import DataLoader

    from compendium.imaging.dataset import CohortDataset

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    ds = CohortDataset(image_cohort(tmp_path), size=8)
    item = ds[3]
    assert item["img"].shape == (1, 8, 8) and float(item["img"].max()) == pytest.approx(120 / 255)
    assert item["label"].tolist() == [1.0] and item["idx"] == 3
    assert item["attrs"] == {"age": 33.0, "sex": "F", "race": ""}
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["img"].shape == (4, 1, 8, 8) and batch["attrs"]["sex"] == ["M", "F", "M", "F"]
    nocache = CohortDataset(image_cohort(tmp_path), size=8, cache=False)
    assert np.array_equal(nocache[2]["img"].numpy(), ds[2]["img"].numpy())
    with pytest.raises(IndexError):
        ds[4]


def test_dataset_over_volumes_and_jpeg(tmp_path, monkeypatch):
    from compendium.imaging.dataset import CohortDataset

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    hu = np.full((10, 10, 7), -1000.0)
    write_nifti(tmp_path / "v0.nii.gz", hu)
    write_nifti(tmp_path / "v1.nii.gz", hu + 900)
    t = pd.DataFrame({"sample_id": ["a", "b"], "patient_id": ["1", "2"], "split": ["test"] * 2,
                      "age": [50.0, 60.0], "sex": ["M", "F"], "race": ["White", "Asian"],
                      "pe": [0.0, 1.0], "volume_path": ["v0.nii.gz", "v1.nii.gz"]})
    ds = CohortDataset(Cohort("ct", t, ("pe",), "real", "volume_path", str(tmp_path)), size=12, n_slices=3)
    assert ds[0]["img"].shape == (3, 12, 12)
    assert float(ds[0]["img"].max()) < float(ds[1]["img"].min())
    write_jpeg(tmp_path / "x.jpg", 200)
    assert read_pixels(tmp_path / "x.jpg").mean() == pytest.approx(200, abs=2)


def test_metadata_only_cohort_has_no_pixels(tmp_path):
    from compendium.imaging.dataset import CohortDataset

    c = image_cohort(tmp_path)
    bare = dataclasses.replace(c, pixel_column=None, source="real-metadata")
    with pytest.raises(InputError, match="has no pixels"):
        CohortDataset(bare)
    with pytest.raises(InputError, match="has no pixels"):
        cached_pixels(bare, 8)


def test_synthetic_cohorts_are_rendered_by_render_rows(tmp_path, monkeypatch):
    """The synthetic branch calls compendium.synthetic.render_rows(cohort, indices, size);
    here a stand-in module records the calls (the real one is another part's)."""
    import sys
    import types

    from compendium.imaging.dataset import CohortDataset

    calls = []

    def render_rows(cohort, indices, size):
        calls.append(list(indices))
        return np.stack([np.full((size, size), 10 * i, np.uint8) for i in indices])

    monkeypatch.setitem(sys.modules, "compendium.synthetic", types.SimpleNamespace(render_rows=render_rows))
    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    t = image_cohort(tmp_path).table.drop(columns=["image_path"]).assign(synthetic_key=[f"k{i}" for i in range(4)])
    syn = Cohort("syn", t, ("y",), "synthetic", "synthetic_key")
    ds = CohortDataset(syn, size=6)
    assert float(ds[3]["img"][0, 0, 0]) == pytest.approx(30 / 255)
    assert calls == [[0, 1, 2, 3]]                              # one batch, then served from the cache
    ds[1]
    assert len(calls) == 1
    live = CohortDataset(syn, size=6, cache=False)
    assert float(live[2]["img"].max()) == pytest.approx(20 / 255) and calls[-1] == [2]
    bad = types.SimpleNamespace(render_rows=lambda cohort, indices, size: np.zeros((len(indices), 3, 3)))
    monkeypatch.setitem(sys.modules, "compendium.synthetic", bad)
    with pytest.raises(InputError, match="render_rows returned"):
        CohortDataset(syn, size=6, cache=False)[0]


def test_synthetic_pixel_cache_depends_on_the_world(tmp_path, monkeypatch):
    """Same rows under other bias knobs or another world seed are other pixels (no stale hit)."""
    from compendium.synthetic import synthetic_cxr, with_synthetic_pixels

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    base = synthetic_cxr(n=6, seed=0, knobs="zero")
    a = with_synthetic_pixels(base, knobs="zero", seed=0)
    b = with_synthetic_pixels(base, knobs="default", seed=0)
    c = with_synthetic_pixels(base, knobs="zero", seed=1)
    pa, pb, pc = (np.asarray(cached_pixels(x, 32, progress=False)) for x in (a, b, c))
    assert len(list((tmp_path / "cache" / "pixels").glob("*.npy"))) == 3
    assert not np.array_equal(pa, pc)
    assert np.array_equal(pa, np.asarray(cached_pixels(a, 32, progress=False)))


def test_standardise_cxr_follows_paper_d_section_2_2(tmp_path):
    from compendium.imaging import standardise_cxr

    ramp = np.tile(np.arange(0, 4000, 125, dtype=np.uint16), (32, 1))     # 32 x 32, left dark
    m2 = standardise_cxr(write_dicom(tmp_path / "m2.dcm", ramp, slope=2, intercept=-100),
                         size=16)
    m1 = standardise_cxr(write_dicom(tmp_path / "m1.dcm", ramp, photometric="MONOCHROME1"),
                         size=16)
    assert m2.shape == (16, 16) and m2.dtype == np.float32
    assert abs(float(m2.mean())) < 1e-5 and abs(float(m2.std()) - 1) < 1e-4
    assert m2[:, -1].mean() > m2[:, 0].mean()          # MONOCHROME2: high values bright
    assert m1[:, -1].mean() < m1[:, 0].mean()          # MONOCHROME1 inverted to MONOCHROME2
    # rescale slope/intercept is linear: after [0, 1] scaling and z-score nothing changes
    plain = standardise_cxr(write_dicom(tmp_path / "p.dcm", ramp), size=16)
    assert np.allclose(plain, m2, atol=1e-5)
    unit = standardise_cxr(tmp_path / "m2.dcm", size=16, zscore=False)
    assert unit.min() >= 0 and unit.max() <= 1
    with pytest.raises(InputError, match="one grey image"):
        standardise_cxr(np.zeros((2, 3, 3)))
