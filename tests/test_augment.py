"""Paper D's augmented views: the drawn parameters, the pixels, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest

from compendium.errors import InputError
from compendium.imaging import augment

IDS = [f"img{i:03d}.png" for i in range(40)]


def test_parameters_lie_in_the_papers_ranges_with_opposite_directions():
    p = augment.view_parameters(IDS, seed=3)
    assert len(p) == 5 * len(IDS)
    assert p["view_id"].tolist() == augment.view_ids(IDS)
    v = {k: p[p["view"] == k] for k in range(1, 6)}
    assert (v[1]["angle"].between(5, 10)).all() and (v[2]["angle"].between(-10, -5)).all()
    assert v[1]["factor"].isna().all() and v[3]["angle"].isna().all()
    assert (v[3]["factor"].between(1.10, 1.15)).all() and (v[4]["factor"].between(0.85, 0.90)).all()
    assert set(np.round(v[5]["factor"], 6)) == {0.9, 1.1}
    assert v[1]["angle"].std() > 0.5        # drawn, not constant


def test_parameters_depend_on_seed_and_image_only():
    a = augment.view_parameters(IDS, seed=0).set_index("view_id")
    b = augment.view_parameters(IDS[::-1][:10], seed=0).set_index("view_id")
    assert np.allclose(a.loc[b.index, "angle"].fillna(0), b["angle"].fillna(0))
    c = augment.view_parameters(IDS, seed=1).set_index("view_id")
    assert not np.allclose(a["angle"].fillna(0), c["angle"].fillna(0))


def test_views_change_pixels_as_documented_and_are_reproducible():
    rng = np.random.default_rng(0)
    img = np.full((3, 32, 32), 100, dtype=np.uint8)
    img[:, 8:24, 8:24] = rng.integers(120, 200, (3, 16, 16))
    views = augment.augment_views(img, IDS[:3], seed=0)
    assert views.shape == (3, 5, 32, 32) and views.dtype == np.uint8
    assert np.array_equal(views, augment.augment_views(img, IDS[:3], seed=0))
    p = augment.view_parameters(IDS[:3], seed=0)
    for i in range(3):
        f = p[p["sample_id"] == IDS[i]].set_index("view")["factor"]
        # brightness multiplies every pixel
        assert views[i, 2].astype(float).mean() == pytest.approx(img[i].mean() * f[3], rel=0.02)
        assert views[i, 3].astype(float).mean() == pytest.approx(img[i].mean() * f[4], rel=0.02)
        # contrast scales the spread around the mean grey
        ratio = views[i, 4].astype(float).std() / img[i].astype(float).std()
        assert ratio == pytest.approx(f[5], abs=0.03)
        # rotations move pixels and uncover black corners
        assert not np.array_equal(views[i, 0], img[i]) and views[i, 0][0, 0] == 0
        assert not np.array_equal(views[i, 0], views[i, 1])


def test_bad_input_is_an_input_error():
    with pytest.raises(InputError, match="uint8"):
        augment.augment_views(np.zeros((2, 8, 8), dtype=np.float32), ["a", "b"])
    with pytest.raises(InputError, match="2 sample ids for 3 images"):
        augment.augment_views(np.zeros((3, 8, 8), dtype=np.uint8), ["a", "b"])
