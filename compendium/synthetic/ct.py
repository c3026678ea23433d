"""Small CT-pulmonary-angiography-like volumes in Hounsfield units (Paper B's INSPECT).

Axial slices through a thorax: air outside (-1000 HU), subcutaneous fat (-100), soft tissue
(40), lungs (-850 with vessel texture), spine (450), aorta (180) and contrast-filled
pulmonary arteries (about 300 HU: the trunk, both main arteries and lobar branches).  A
pulmonary embolism is a focal *filling defect*: a blob of thrombus (about 40 HU) inside an
artery.  The prognostic outcomes have diffuse correlates instead (emphysema lowers the lung
density, an enlarged heart, a posterior pleural effusion), so that mean-pooling slice
embeddings keeps prognosis but dilutes the focal PE sign, as Paper B describes.
"""

from __future__ import annotations

import functools

import numpy as np

from ._rng import stream

_F32 = np.float32

#: artery segments (x: patient right -> left, y: anterior -> posterior, z: feet -> head), radius
SEGMENTS = (
    ((0.10, -0.30, -0.25), (0.05, -0.10, 0.25), 0.12),   # pulmonary trunk
    ((0.05, -0.10, 0.25), (-0.33, 0.00, 0.20), 0.09),    # right pulmonary artery
    ((0.05, -0.10, 0.25), (0.36, 0.05, 0.30), 0.09),     # left pulmonary artery
    ((-0.33, 0.00, 0.20), (-0.43, 0.12, -0.70), 0.07),   # right lower lobe
    ((-0.33, 0.00, 0.20), (-0.40, -0.05, 0.80), 0.065),  # right upper lobe
    ((0.36, 0.05, 0.30), (0.45, 0.15, -0.70), 0.07),     # left lower lobe
    ((0.36, 0.05, 0.30), (0.42, 0.00, 0.80), 0.065),     # left upper lobe
)


@functools.lru_cache(maxsize=8)
def _grid(depth: int, size: int):
    c = lambda m: ((np.arange(m) + 0.5) / m * 2 - 1).astype(_F32)  # noqa: E731
    z = c(depth)[::-1].reshape(-1, 1, 1)      # first slice at the head
    y = c(size).reshape(1, -1, 1)
    x = c(size).reshape(1, 1, -1)
    return z, y, x


def _seg_dist2(z, y, x, a, b):
    a, b = np.asarray(a, _F32), np.asarray(b, _F32)
    d = b - a
    t = ((x - a[0]) * d[0] + (y - a[1]) * d[1] + (z - a[2]) * d[2]) / _F32(d @ d)
    t = np.clip(t, 0, 1)
    return (x - a[0] - t * d[0]) ** 2 + (y - a[1] - t * d[1]) ** 2 + (z - a[2] - t * d[2]) ** 2


def render_volume(key: str, patient: str, *, pe: float, frailty: float, knob: dict[str, float],
                  seed: int, size: int, depth: int, emboli: int = 1
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One volume (depth, size, size) in HU, its artery mask and its filling-defect mask.

    A PE study has ``emboli`` filling defects (the first as with one; the others in other
    lobar branches, drawn from their own stream, so ``emboli=1`` volumes never change)."""
    z, y, x = _grid(depth, size)
    ra = stream(seed, patient, "anatomy")
    rv = stream(seed, key, "volume")
    s = 1.0 + knob["anatomy"] + 0.04 * np.clip(ra.standard_normal(), -2, 2)
    jitter = ra.normal(0, 0.02, (len(SEGMENTS), 2, 3))
    seg_pick = rv.integers(3, len(SEGMENTS))
    seg_t = rv.uniform(0.25, 0.75)
    defect_r = rv.uniform(1.3, 1.9)
    noise_seed = rv.integers(0, 2**63 - 1)
    tex = rv.standard_normal((6, 6, 6)).astype(_F32)

    bx, by = x / _F32(0.9 * s), y / _F32(0.68 * s)
    r2 = bx * bx + by * by
    vol = np.where(r2 < 1, _F32(40), _F32(-1000)) + np.zeros_like(z)
    vol = np.where((r2 > 0.8) & (r2 < 1), _F32(-100), vol)
    emph = 60.0 * frailty
    lung = np.zeros(vol.shape, bool)
    for sign in (-1, 1):
        lx = (x - sign * 0.4 * s) / _F32(0.3 * s)
        ly = (y - 0.05) / _F32(0.45 * s)
        lz = z / _F32(0.95)
        lung |= (lx * lx + ly * ly + lz * lz) < 1
    # lung texture: a coarse random field, nearest-upsampled
    zi = np.minimum(((z + 1) / 2 * 6).astype(int), 5)
    yi = np.minimum(((y + 1) / 2 * 6).astype(int), 5)
    xi = np.minimum(((x + 1) / 2 * 6).astype(int), 5)
    field = tex[zi, yi, xi]
    vol = np.where(lung, _F32(-850 - emph) + _F32(25) * field, vol)
    # posterior effusion with frailty
    if frailty > 0.5:
        vol = np.where(lung & (y > 0.35) & (z < -0.2), _F32(10), vol)
    # heart and right heart blood pool, enlarged with frailty
    hs = 1 + 0.15 * frailty
    hx, hy, hz = (x - 0.1) / _F32(0.32 * hs), (y + 0.3) / _F32(0.26 * hs), (z + 0.55) / _F32(0.38)
    vol = np.where(hx * hx + hy * hy + hz * hz < 1, _F32(220), vol)
    vol = np.where((x ** 2 + (y - 0.5) ** 2) < 0.1 ** 2, _F32(450), vol)               # spine
    vol = np.where(((x - 0.15) ** 2 + (y - 0.2) ** 2) < 0.07 ** 2, _F32(180), vol)      # aorta
    artery = np.zeros(vol.shape, bool)
    for j, (a, b, r) in enumerate(SEGMENTS):
        a = np.asarray(a) * [s, 1, 1] + jitter[j, 0]
        b = np.asarray(b) * [s, 1, 1] + jitter[j, 1]
        artery |= _seg_dist2(z, y, x, a, b) < _F32(r * r)
    vol = np.where(artery, _F32(300), vol)
    defect = np.zeros(vol.shape, bool)
    if pe > 0:
        places = [(seg_pick, seg_t, defect_r)]
        if emboli > 1:
            re_ = stream(seed, key, "emboli")
            for _ in range(int(emboli) - 1):
                places.append((int(re_.integers(3, len(SEGMENTS))), float(re_.uniform(0.25, 0.75)),
                               float(re_.uniform(1.3, 1.9))))
        for pick, t_, dr in places:
            a, b, r = SEGMENTS[pick]
            a = np.asarray(a) * [s, 1, 1] + jitter[pick, 0]
            b = np.asarray(b) * [s, 1, 1] + jitter[pick, 1]
            c = a + t_ * (b - a)
            rad = r * dr * (1 - knob["sign_strength"])
            dd = (x - c[0]) ** 2 + (y - c[1]) ** 2 + (z - c[2]) ** 2
            defect |= artery & (dd < _F32(rad * rad))
        vol = np.where(defect, _F32(40), vol)
    rng = np.random.default_rng(int(noise_seed))
    vol = vol + rng.standard_normal(vol.shape, dtype=_F32) * _F32(12 + 400 * knob["noise"])
    if knob["contrast"]:
        vol = _F32(40) + (vol - _F32(40)) * _F32(1 - knob["contrast"])
    return vol.astype(_F32), artery, defect
