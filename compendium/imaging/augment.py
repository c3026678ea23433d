"""Paper D's five augmented views per training image.

Shin et al. (Paper D, section 2.2): "five augmented views per training image were generated:
two small rotations (±5-10°), two brightness shifts (±10-15%), and one contrast scaling
(±10%)".  The views here, in order:

=====  ============  ===========================================================
view   kind          parameter
=====  ============  ===========================================================
1      rotation      ``+a``, ``a ~ U(5, 10)`` degrees (counter-clockwise)
2      rotation      ``-a``, ``a ~ U(5, 10)`` degrees (clockwise)
3      brightness    factor ``1 + b``, ``b ~ U(0.10, 0.15)`` (brighter)
4      brightness    factor ``1 - b``, ``b ~ U(0.10, 0.15)`` (darker)
5      contrast      factor ``1 ± 0.10`` (sign drawn with probability 1/2)
=====  ============  ===========================================================

Reading of "±": the two views of a pair go in opposite directions, so every training image
gets one of each; the paper does not say more.  Rotations are bilinear about the centre with
a black fill (the corners a rotation uncovers); brightness multiplies every pixel
(``adjust_brightness``), contrast blends with the image's mean grey (``adjust_contrast``),
both clipped to [0, 255] -- torchvision's ``transforms.v2.functional``.

Draws are deterministic per (``seed``, ``sample_id``): the same image gets the same views in
any cohort, in any order, which is also what lets a vendor tool embed them offline under the
ids of :func:`view_ids`.
"""

from __future__ import annotations

import zlib
from typing import Sequence

import numpy as np
import pandas as pd

from ..errors import InputError

N_VIEWS = 5
VIEW_KINDS = ("rotation", "rotation", "brightness", "brightness", "contrast")
ROTATION_DEG = (5.0, 10.0)
BRIGHTNESS = (0.10, 0.15)
CONTRAST = 0.10
#: Separator between a sample id and its view number in :func:`view_ids`.
VIEW_SEPARATOR = "#aug"


def view_ids(sample_ids: Sequence[str]) -> list[str]:
    """Ids of the augmented views, ``<sample_id>#aug1`` ... ``#aug5``, image by image.

    >>> view_ids(["a.png"])[:2]
    ['a.png#aug1', 'a.png#aug2']
    """
    return [f"{s}{VIEW_SEPARATOR}{k}" for s in map(str, sample_ids) for k in range(1, N_VIEWS + 1)]


def _rng(seed: int, sample_id: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(str(sample_id).encode())])


def view_parameters(sample_ids: Sequence[str], *, seed: int = 0) -> pd.DataFrame:
    """The drawn parameters: one row per (image, view).

    Columns ``sample_id``, ``view`` (1-5), ``view_id``, ``kind``, ``angle`` (degrees, NaN
    unless a rotation) and ``factor`` (brightness/contrast factor, NaN for rotations).
    """
    rows = []
    for sid in map(str, sample_ids):
        r = _rng(seed, sid)
        a1, a2 = r.uniform(*ROTATION_DEG, size=2)
        b1, b2 = r.uniform(*BRIGHTNESS, size=2)
        c = CONTRAST if r.uniform() < 0.5 else -CONTRAST
        values = [(a1, np.nan), (-a2, np.nan), (np.nan, 1 + b1), (np.nan, 1 - b2), (np.nan, 1 + c)]
        for k, ((angle, factor), kind) in enumerate(zip(values, VIEW_KINDS), start=1):
            rows.append({"sample_id": sid, "view": k, "view_id": f"{sid}{VIEW_SEPARATOR}{k}",
                         "kind": kind, "angle": angle, "factor": factor})
    return pd.DataFrame(rows, columns=["sample_id", "view", "view_id", "kind", "angle", "factor"])


def augment_views(images: np.ndarray, sample_ids: Sequence[str], *, seed: int = 0,
                  progress: bool = False) -> np.ndarray:
    """Five views of every image: uint8 (n, 5, H, W) from uint8 (n, H, W).

    Parameters
    ----------
    images : uint8 array (n, H, W)
        Grey images (the cohort's pixels at the encoder's size).
    sample_ids : sequence of str
        One id per image; with ``seed`` it fixes the drawn parameters.
    seed : int
        Augmentation seed.

    Examples
    --------
    >>> im = np.full((1, 8, 8), 100, dtype=np.uint8)
    >>> v = augment_views(im, ["x"])
    >>> v.shape, int(v[0, 2].mean()) > 100, int(v[0, 3].mean()) < 100
    ((1, 5, 8, 8), True, True)
    """
    import torch
    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF
    from tqdm.auto import tqdm

    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise InputError(f"augment_views needs uint8 images (n, H, W), got {images.dtype} "
                         f"{images.shape}")
    ids = [str(s) for s in sample_ids]
    if len(ids) != len(images):
        raise InputError(f"{len(ids)} sample ids for {len(images)} images")
    params = view_parameters(ids, seed=seed)
    angle = params["angle"].to_numpy().reshape(len(ids), N_VIEWS)
    factor = params["factor"].to_numpy().reshape(len(ids), N_VIEWS)
    out = np.empty((len(ids), N_VIEWS, *images.shape[1:]), dtype=np.uint8)
    for i in tqdm(range(len(ids)), desc="augmented views", disable=not progress, leave=False):
        img = torch.from_numpy(np.ascontiguousarray(images[i]))[None]     # (1, H, W) uint8
        for k, kind in enumerate(VIEW_KINDS):
            if kind == "rotation":
                v = TF.rotate(img, float(angle[i, k]), interpolation=InterpolationMode.BILINEAR,
                              fill=0)
            elif kind == "brightness":
                v = TF.adjust_brightness(img, float(factor[i, k]))
            else:
                v = TF.adjust_contrast(img, float(factor[i, k]))
            out[i, k] = v[0].numpy()
    return out


__all__ = ["BRIGHTNESS", "CONTRAST", "N_VIEWS", "ROTATION_DEG", "VIEW_KINDS", "VIEW_SEPARATOR",
           "augment_views", "view_ids", "view_parameters"]
