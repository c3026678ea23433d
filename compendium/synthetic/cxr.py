"""Chest-X-ray-like radiographs of the synthetic world (frontal view, 8-bit grey).

The picture is a projection cartoon with the anatomy a reader expects: a soft-tissue thorax
on dark air, two lungs cut by the domes of the diaphragm, a heart whose width gives the
cardiothoracic ratio, mediastinum and spine, curved ribs, and lung markings (vessels) that
fade towards the periphery.  Each finding adds its textbook sign in its region:

================  ===========================================================================
finding           sign (region)
================  ===========================================================================
Atelectasis       plate-like band in a lower zone and an elevated hemidiaphragm (lower zone)
Cardiomegaly      heart widened to a cardiothoracic ratio of about 0.6 (centre-lower)
Consolidation     dense lobar opacity with dark air bronchograms (one lung, mid/lower zone)
Edema             bilateral perihilar haze and Kerley B lines (hila, lateral bases)
Effusion          fluid filling the costophrenic angle with a lateral meniscus (basal-lateral)
Pneumothorax      a dark rim without lung markings and a thin pleural line (apex-lateral)
Opacity           several fuzzy patchy opacities (anywhere in the lungs)
Pneumonia         a patchy, ill-defined consolidation (lower zone)
================  ===========================================================================

All randomness comes from per-sample streams (:mod:`._rng`): the anatomy from the patient,
the acquisition and the finding geometry from the sample key.  Which other rows are rendered
in the same call never changes a row's image, and every random number is drawn whether or
not the finding is present, so the same key with and without a finding differs only by that
finding's sign.
"""

from __future__ import annotations

import functools
import logging
import math

import numpy as np
import pandas as pd

from ._rng import stream

log = logging.getLogger(__name__)

#: The findings the renderer draws, in a fixed order.
FINDINGS = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion",
            "Pneumothorax", "Opacity", "Pneumonia")

#: Other label names (lower case) that mean one of :data:`FINDINGS` (CheXpert, NIH, ...).
ALIASES = {
    "pleural effusion": "Effusion", "lung opacity": "Opacity", "infiltration": "Opacity",
    "infiltrate": "Opacity", "airspace opacity": "Opacity", "collapse": "Atelectasis",
}

_TEX = 20          # lung-marking texture grid (in normalised coordinates)
_F32 = np.float32


def finding_of(label: str) -> str | None:
    """The renderer's finding for a label name, or ``None`` (e.g. 'No Finding', 'Mass')."""
    for f in FINDINGS:
        if label.lower() == f.lower():
            return f
    return ALIASES.get(label.lower())


@functools.lru_cache(maxsize=16)
def _grids(size: int):
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2.0 - 1.0
    U = c.astype(_F32).reshape(1, 1, size)
    V = c.astype(_F32).reshape(1, size, 1)
    # bilinear interpolation matrix from the _TEX x _TEX texture grid to size x size
    pos = (c + 1.0) / 2.0 * (_TEX - 1)
    lo = np.clip(np.floor(pos).astype(int), 0, _TEX - 2)
    w = pos - lo
    A = np.zeros((size, _TEX))
    A[np.arange(size), lo] = 1 - w
    A[np.arange(size), lo + 1] = w
    return U, V, A.astype(_F32)


def _col(x) -> np.ndarray:
    return np.asarray(x, dtype=_F32).reshape(-1, 1, 1)


def _soft(x, k):
    """Soft step: 0 for x <= 0, 1 for x >= 1/k (linear in between; cheap, no exp)."""
    return np.clip(x * _F32(k), 0.0, 1.0)


def draw_parameters(table: pd.DataFrame, findings: np.ndarray, knobs: dict[str, np.ndarray],
                    seed: int) -> dict[str, np.ndarray]:
    """Per-sample scene parameters (anatomy, acquisition, finding geometry) of each row.

    Parameters
    ----------
    table : rows with ``patient_id`` and ``synthetic_key``
    findings : (n, len(FINDINGS)) 0/1 truth
    knobs : per-row knob values (:meth:`BiasKnobs.per_row`)
    seed : world seed
    """
    n = len(table)
    p: dict[str, list] = {}

    def put(name, value):
        p.setdefault(name, []).append(value)

    for i, (pid, key) in enumerate(zip(table["patient_id"].astype(str),
                                       table["synthetic_key"].astype(str))):
        ra = stream(seed, pid, "anatomy")
        ri = stream(seed, key, "image")
        rf = stream(seed, key, "finding")
        an = 1.0 + knobs["anatomy"][i]
        z = ra.standard_normal(8)
        put("scale", an * (1 + 0.035 * np.clip(z[0], -2.5, 2.5)))
        put("lung_h", 0.95 * (1 + 0.04 * np.clip(z[1], -2.5, 2.5)))
        put("ctr", 0.43 + 0.02 * np.clip(z[2], -2.5, 2.5))
        put("dia", 0.50 + 0.035 * np.clip(z[3], -2.5, 2.5))
        put("rib_period", 0.17 * (1 + 0.05 * np.clip(z[4], -2, 2)))
        put("rib_curv", 0.45 + 0.06 * np.clip(z[5], -2, 2))
        put("rib_phase", ra.uniform(0, 2 * math.pi))
        put("tex", ra.standard_normal((_TEX, _TEX)).astype(_F32))
        # acquisition (per image)
        zi = ri.standard_normal(4)
        ap = ri.uniform() < 0.25 + knobs["ap_portable"][i]
        put("ap", float(ap))
        put("du", 0.025 * np.clip(zi[0], -2, 2))
        put("dv", 0.025 * np.clip(zi[1], -2, 2))
        put("gain", 1 + 0.05 * np.clip(zi[2], -2, 2))
        put("gamma", 1 + 0.08 * np.clip(zi[3], -2, 2))
        put("noise_sd", 0.012 + 0.012 * ap + knobs["noise"][i])
        put("noise_seed", ri.integers(0, 2**63 - 1))
        put("contrast", knobs["contrast"][i])
        put("soft", knobs["soft_tissue"][i])
        # finding geometry and severity: always drawn, whatever the labels
        sev = rf.uniform(0.7, 1.0, len(FINDINGS)) * (1 - knobs["sign_strength"][i])
        put("sev", sev * findings[i])
        put("eff_side", rf.integers(0, 3))           # 0 right, 1 left, 2 both
        put("eff_h", rf.uniform(0.32, 0.45))
        put("ptx_side", rf.integers(0, 2))
        put("ptx_size", rf.uniform(0.35, 0.5))
        put("cons_side", rf.integers(0, 2))
        put("cons_v", rf.uniform(-0.05, 0.3))
        put("cons_du", rf.uniform(-0.05, 0.05))
        put("atel_side", rf.integers(0, 2))
        put("atel_v", rf.uniform(0.22, 0.36))
        put("atel_slope", rf.uniform(-0.25, 0.25))
        put("opa_uv", rf.uniform(-1, 1, (3, 2)))
        put("pna_side", rf.integers(0, 2))
        put("pna_v", rf.uniform(0.15, 0.35))
    out = {k: np.asarray(v) for k, v in p.items()}
    assert all(len(v) == n for v in out.values())
    return out


#: Rows rendered together (small batches stay in cache; the result never depends on it).
BATCH = 24


def render(params: dict[str, np.ndarray], size: int) -> np.ndarray:
    """Render :func:`draw_parameters` output: uint8 array (n, size, size)."""
    n = len(params["scale"])
    out = np.empty((n, size, size), dtype=np.uint8)
    for lo in range(0, n, BATCH):
        out[lo:lo + BATCH] = _render_batch({k: v[lo:lo + BATCH] for k, v in params.items()}, size)
    return out


def _render_batch(params: dict[str, np.ndarray], size: int) -> np.ndarray:
    U0, V0, A = _grids(size)
    n = len(params["scale"])
    P = {k: _col(v) for k, v in params.items() if k not in ("tex", "sev", "opa_uv", "noise_seed")}
    sev = params["sev"].astype(_F32)
    S = {f: _col(sev[:, j]) for j, f in enumerate(FINDINGS)}
    rows = {f: np.flatnonzero(sev[:, j] > 0) for j, f in enumerate(FINDINGS)}
    s = P["scale"]
    U = U0 - P["du"]                      # (n,1,W)
    V = V0 - P["dv"]                      # (n,H,1)
    ap = P["ap"]

    # ---- lung markings: ridges of a smooth per-patient random field
    tex = np.empty((n, size, size), dtype=_F32)
    for i in range(n):
        tex[i] = A @ params["tex"][i] @ A.T
    marks = np.clip(1.0 - np.abs(tex) * _F32(4.0), 0.0, 1.0)
    marks *= marks

    # ---- geometry
    lung_a = _F32(0.33) * s
    lung_c = _F32(0.08) * s + lung_a                  # lung centres at u = -/+ lung_c
    lung_b = P["lung_h"] * (1 - _F32(0.07) * ap)      # AP: lower inspiration
    cy = _F32(0.08)
    atel = S["Atelectasis"]
    dia_r = P["dia"] - _F32(0.05) * ap - _F32(0.06) * atel * (P["atel_side"] == 0)
    dia_l = P["dia"] + _F32(0.04) - _F32(0.05) * ap - _F32(0.06) * atel * (P["atel_side"] == 1)

    def lung(sign, dia):
        cu = sign * lung_c
        x = (U - cu) / lung_a                                  # (n,1,W)
        e = x * x + ((V - cy) / lung_b) ** 2
        lat = np.clip(x * sign, -1, 1)                          # -1 medial .. 1 lateral
        m = _soft(1 - e, 8) * _soft(dia + _F32(0.16) * x * x - V, 25)
        return m, lat, cu

    m_r, lat_r, cu_r = lung(-1, dia_r)
    m_l, lat_l, cu_l = lung(1, dia_l)
    lungm = np.maximum(m_r, m_l)
    hil = np.clip(1 - np.maximum(lat_r * m_r, lat_l * m_l) * _F32(0.5), 0.3, 1)
    L = _F32(0.16) + _F32(0.13) * marks * hil

    # pneumothorax: a collapsed lung inside the pleural space of one side (apex-lateral rim
    # of pleural air without markings, and a thin pleural line)
    for idx in [rows["Pneumothorax"]]:
        if not idx.size:
            continue
        side = P["ptx_side"][idx]
        sign = np.where(side == 0, _F32(-1), _F32(1))
        cu = sign * lung_c[idx]
        f = P["ptx_size"][idx]
        sv = S["Pneumothorax"][idx]
        a, b = lung_a[idx], lung_b[idx]
        ca, cb = a * (1 - _F32(0.45) * f), b * (1 - _F32(0.3) * f)
        ec = ((U[idx] - (cu - sign * a * _F32(0.35) * f)) / ca) ** 2 + \
            ((V[idx] - (cy + b * _F32(0.3) * f)) / cb) ** 2
        m = np.where(side == 0, m_r[idx], m_l[idx])
        gap = m * _soft(ec - 1, 10) * np.minimum(sv * _F32(1.4), 1)
        line = np.clip(1 - np.abs(ec - 1) * _F32(14), 0, 1) * m * sv
        L[idx] = (L[idx] - _F32(0.13) * marks[idx] * hil[idx] * gap - _F32(0.08) * gap
                  + _F32(0.22) * line)
    # edema: perihilar haze + Kerley B lines
    for idx in [rows["Edema"]]:
        if not idx.size:
            continue
        Ui, Vi = U[idx], V[idx]
        hz = np.exp(-((np.abs(Ui) - _F32(0.24) * s[idx]) ** 2 / _F32(0.03)
                      + (Vi - _F32(0.1)) ** 2 / _F32(0.09)))
        latm = np.maximum(lat_r[idx] * m_r[idx], lat_l[idx] * m_l[idx])
        kb = np.clip(np.cos(Vi * _F32(70.0)) * 4 - 3, 0, 1) * _soft(latm - 0.6, 6) * _soft(Vi - 0.15, 6)
        L[idx] += S["Edema"][idx] * (_F32(0.28) * hz + _F32(0.16) * kb)
    # consolidation: dense blob with dark air bronchograms
    for idx in [rows["Consolidation"]]:
        if not idx.size:
            continue
        cu = np.where(P["cons_side"][idx] == 0, cu_r[idx], cu_l[idx]) + P["cons_du"][idx]
        b = np.exp(-((U[idx] - cu) ** 2 + (V[idx] - P["cons_v"][idx]) ** 2) / _F32(2 * 0.13 ** 2))
        b = np.clip(b * _F32(1.6), 0, 1)
        L[idx] += S["Consolidation"][idx] * b * (_F32(0.42) - _F32(0.2) * marks[idx])
    # pneumonia: patchy, ill-defined lower-zone consolidation
    for idx in [rows["Pneumonia"]]:
        if not idx.size:
            continue
        cu = np.where(P["pna_side"][idx] == 0, cu_r[idx], cu_l[idx])
        b = np.exp(-((U[idx] - cu) ** 2 / _F32(2 * 0.15 ** 2)
                     + (V[idx] - P["pna_v"][idx]) ** 2 / _F32(2 * 0.1 ** 2)))
        L[idx] += S["Pneumonia"][idx] * b * _F32(0.34) * np.clip(0.55 + tex[idx] * 0.6, 0, 1)
    # opacity: three fuzzy patches
    for idx in [rows["Opacity"]]:
        if not idx.size:
            continue
        uv = params["opa_uv"][idx].astype(_F32)
        acc = 0
        for j in range(3):
            pu = np.where(_col(uv[:, j, 0]) < 0, cu_r[idx], cu_l[idx]) + _col(uv[:, j, 0]) * lung_a[idx] * _F32(0.35)
            pv = cy + _col(uv[:, j, 1]) * lung_b[idx] * _F32(0.45)
            acc = acc + np.exp(-((U[idx] - pu) ** 2 + (V[idx] - pv) ** 2) / _F32(2 * 0.07 ** 2))
        L[idx] += S["Opacity"][idx] * _F32(0.22) * acc
    # atelectasis: plate-like band in a lower zone
    for idx in [rows["Atelectasis"]]:
        if not idx.size:
            continue
        cu = np.where(P["atel_side"][idx] == 0, cu_r[idx], cu_l[idx])
        d = (V[idx] - P["atel_v"][idx]) - P["atel_slope"][idx] * (U[idx] - cu)
        band = np.clip(1 - np.abs(d) / _F32(0.035), 0, 1) * _soft(_F32(0.2) * s[idx] - np.abs(U[idx] - cu), 20)
        L[idx] += atel[idx] * _F32(0.38) * band
    # effusion: fluid in the costophrenic angle, meniscus rising laterally
    for idx in [rows["Effusion"]]:
        if not idx.size:
            continue
        fluid = 0
        for side, m, lat, dia in ((0, m_r, lat_r, dia_r), (1, m_l, lat_l, dia_l)):
            on = S["Effusion"][idx] * ((P["eff_side"][idx] == side) | (P["eff_side"][idx] == 2))
            y = dia[idx] + _F32(0.08) - P["eff_h"][idx] * (_F32(0.75) + _F32(0.5) * np.clip(lat[idx], 0, 1))
            fluid = np.maximum(fluid, _soft(V[idx] - y, 14) * m[idx] * on)
        L[idx] = L[idx] * (1 - fluid) + fluid * _F32(0.56)
    np.clip(L, 0, 0.75, out=L)

    # ---- compose the projection
    bx = U / (_F32(0.93) * s)
    by = (V - _F32(0.15)) / _F32(1.2)
    bx, by = bx * bx, by * by
    body = _soft(1 - (bx * bx + by * by), 5)
    ribs = np.clip(np.cos((V + P["rib_curv"] * U * U) * (_F32(2 * math.pi) / P["rib_period"])
                          + P["rib_phase"]) * 3 - 2, 0, 1)
    ribs *= _soft(_F32(0.92) * s - np.abs(U), 10) * _soft(P["dia"] + 0.1 - V, 10)
    img = _F32(0.04) + body * _F32(0.46) + ribs * _F32(0.07) * body
    img += lungm * (L + ribs * _F32(0.08) - img)
    # mediastinum, spine, heart (AP magnifies the heart)
    spine = _soft(_F32(0.065) - np.abs(U), 40) * body
    upper = _soft(_F32(0.12) * s - np.abs(U - _F32(0.01)), 20) * _soft(_F32(0.2) - V, 8)
    hw = (P["ctr"] + _F32(0.17) * S["Cardiomegaly"]) * lung_c * (1 + _F32(0.1) * ap) * _F32(1.85)
    hx = (U - _F32(0.3) * hw) / hw
    hy = (V - (P["dia"] - _F32(0.08))) / (_F32(0.25) * s)
    heart = _soft(1 - (hx * hx + hy * hy), 5) * _soft(P["dia"] + 0.1 - V, 20)
    np.maximum(img, _F32(0.6) * np.maximum(spine, upper), out=img)
    img += heart * (_F32(0.63) - img)
    img += _soft(V - np.maximum(dia_r, dia_l) - 0.05, 6) * body * _F32(0.05)
    # soft-tissue overlay over the lung bases (knob): compresses contrast there
    soft = params["soft"]
    for idx in [np.flatnonzero(soft > 0)]:
        if not idx.size:
            continue
        Ui, Vi = U[idx], V[idx]
        base = _soft(Vi - _F32(0.05), 3) * _soft(_F32(0.95) * s[idx] - np.abs(Ui), 4) * _soft(np.abs(Ui) - _F32(0.1), 6)
        o = P["soft"][idx] * base * _F32(0.75)
        img[idx] += o * (_F32(0.55) - img[idx])
    # AP portable marker (top right)
    for idx in [np.flatnonzero(params["ap"] > 0)]:
        if not idx.size:
            continue
        Ui, Vi = U[idx], V[idx]
        marker = ((Ui > 0.62) & (Ui < 0.9)) & ((Vi > -0.94) & (Vi < -0.86))
        img[idx] = np.where(marker, _F32(0.95), img[idx])
    # acquisition: contrast, exposure (a smooth tone curve), noise
    img = _F32(0.4) + (img - _F32(0.4)) * (1 - P["contrast"])
    np.clip(img, 0, 1, out=img)
    img += (P["gamma"] - 1) * _F32(-1.5) * img * (1 - img)
    img *= P["gain"]
    sd = params["noise_sd"].astype(_F32)
    for i in range(n):
        rng = np.random.default_rng(int(params["noise_seed"][i]))
        img[i] += rng.standard_normal((size, size), dtype=_F32) * sd[i]
    np.clip(img, 0, 1, out=img)
    img *= _F32(255)
    img += _F32(0.5)
    return img.astype(np.uint8)
