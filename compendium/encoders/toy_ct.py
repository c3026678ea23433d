"""Toy CT slice encoders learned on the synthetic world's CTPA volumes (Paper B's demo).

Each toy is a single-layer feature network in the manner of Coates and Ng's k-means
features: ``n_filters`` centroids of whitened ``patch`` x ``patch`` patches of HU-windowed
axial slices, learned by k-means (no labels) from slices of the synthetic world's volumes;
a slice is encoded by the "triangle" activation ``max(0, mean_k d_k - d_k)`` of every patch
(``d_k`` its squared distance to centroid ``k``), averaged over a ``grid`` x ``grid`` layout
of the slice.  The embedding (``n_filters * grid**2`` numbers) keeps a focal finding of a
slice (a filling defect changes the patches around it) but, like any slice embedding, the
finding is diluted once slice embeddings are mean-pooled over a volume.

Learning is deterministic and takes seconds; weights are cached like the CLIP toys'
(``cache_dir("toy-encoders")/<name>-<key>/``).  ``tiny`` / ``pretrained=False`` builds random
centroids (wiring tests).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import ModelEntry, Preprocess, register_model

log = logging.getLogger(__name__)

#: Bump when the learning code changes what it produces (invalidates cached toys).
SLICE_TOY_VERSION = "1"
#: Side of the slices the toys see (slices are resized to it).
SLICE_SIZE = 64
#: The lung window of the registry's CT entries (level, width).
LUNG = (-600.0, 1500.0)
SLICE_PREPROCESS = Preprocess(size=SLICE_SIZE, mean=(0.0,), std=(1.0,), interpolation="bilinear",
                              channels=1, hu_window=LUNG)


@dataclasses.dataclass(frozen=True)
class SliceToySpec:
    """Architecture and learning recipe of one toy slice encoder."""

    n_filters: int
    patch: int = 5
    stride: int = 2
    grid: int = 4
    n_volumes: int = 40
    depth: int = 16
    n_patches: int = 8000
    whitening_eps: float = 0.01

    @property
    def embed_dim(self) -> int:
        return self.n_filters * self.grid * self.grid


SLICE_TOYS: dict[str, SliceToySpec] = {
    # stand-ins for Paper B's three encoders: dimensions in the ratio of theirs (1024 : 1152
    # : 512); the BiomedCLIP stand-in is the weaker, lower-dimensional one
    "toy-slice-kmeans-512": SliceToySpec(n_filters=32, patch=5),
    "toy-slice-kmeans-576": SliceToySpec(n_filters=36, patch=7),
    "toy-slice-kmeans-256": SliceToySpec(n_filters=16, patch=5),
}


def slice_toy_key(name: str, *, seed: int = 0) -> str:
    payload = {"name": name, "spec": dataclasses.asdict(SLICE_TOYS[name]), "seed": int(seed),
               "code": SLICE_TOY_VERSION, "preprocess": dataclasses.asdict(SLICE_PREPROCESS)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _net(spec: SliceToySpec):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class KMeansSliceNet(nn.Module):
        """Triangle k-means features of every patch, averaged over a grid of the slice."""

        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, spec.n_filters, spec.patch, stride=spec.stride, bias=True)
            self.register_buffer("centre_norm", torch.zeros(spec.n_filters))
            self.grid = spec.grid

        def forward(self, x):
            # squared distance to each centroid, up to the patch's own norm (the same for
            # every centroid, so it cancels in mean_k d_k - d_k)
            d = self.centre_norm.view(1, -1, 1, 1) - 2.0 * self.conv(x)
            f = torch.relu(d.mean(1, keepdim=True) - d)
            return F.adaptive_avg_pool2d(f, self.grid).flatten(1)

    return KMeansSliceNet()


def training_slices(spec: SliceToySpec, *, seed: int) -> np.ndarray:
    """HU-windowed slices in [0, 1] of the synthetic world's volumes (no labels, no knobs),
    (n_volumes * depth, SLICE_SIZE, SLICE_SIZE)."""
    from ..imaging.io import hu_window
    from ..synthetic import render_volumes, synthetic_inspect

    cohort = synthetic_inspect(n=spec.n_volumes, seed=int(seed) + 104729, knobs="zero")
    vols = render_volumes(cohort, None, size=SLICE_SIZE, depth=spec.depth)
    return hu_window(vols, *LUNG).reshape(-1, SLICE_SIZE, SLICE_SIZE)


def learn_centroids(slices: np.ndarray, spec: SliceToySpec, *, seed: int) -> dict[str, np.ndarray]:
    """k-means centroids of whitened random patches, folded into a convolution:
    ``weight`` (K, 1, p, p), ``bias`` (K,) and ``centre_norm`` (K,) such that
    ``centre_norm - 2 (conv(x) )`` is the squared distance of the whitened patch to each
    centroid minus the patch's own squared norm."""
    from sklearn.cluster import KMeans

    rng = np.random.default_rng([int(seed), 31])
    p = spec.patch
    views = np.lib.stride_tricks.sliding_window_view(slices, (p, p), axis=(1, 2))
    n = spec.n_patches
    idx = rng.integers(0, views.shape[0], n)
    ys = rng.integers(0, views.shape[1], n)
    xs = rng.integers(0, views.shape[2], n)
    patches = views[idx, ys, xs].reshape(n, -1).astype(np.float64)
    mu = patches.mean(0)
    w, u = np.linalg.eigh(np.cov(patches - mu, rowvar=False))
    whiten = u @ np.diag(1.0 / np.sqrt(np.clip(w, 0, None) + spec.whitening_eps)) @ u.T
    z = (patches - mu) @ whiten
    centres = KMeans(spec.n_filters, random_state=int(seed), n_init=1, max_iter=100).fit(z)
    c = centres.cluster_centers_
    weight = (whiten @ c.T).T.reshape(spec.n_filters, 1, p, p)
    return {"conv.weight": weight.astype(np.float32),
            "conv.bias": (-(mu @ whiten @ c.T)).astype(np.float32),
            "centre_norm": (c ** 2).sum(1).astype(np.float32)}


def pretrain_slice_toy(name: str, *, seed: int = 0) -> Path:
    """Learn toy ``name`` on the synthetic world's slices (or reuse the cache); its folder."""
    import torch
    from safetensors.torch import save_file

    from ..atomic import make_temp_dir, replace_dir, write_json
    from ..paths import cache_dir

    if name not in SLICE_TOYS:
        raise ConfigError(f"unknown toy slice encoder {name!r} (allowed: {', '.join(SLICE_TOYS)})")
    spec = SLICE_TOYS[name]
    root = cache_dir("toy-encoders")
    out = root / f"{name}-{slice_toy_key(name, seed=seed)}"
    if (out / "model.safetensors").is_file() and (out / "meta.json").is_file():
        return out
    t0 = time.perf_counter()
    state = learn_centroids(training_slices(spec, seed=seed), spec, seed=seed)
    tmp = make_temp_dir(root, f".{name}-")
    save_file({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
              str(tmp / "model.safetensors"))
    write_json(tmp / "meta.json", {"name": name, "seed": seed, "spec": dataclasses.asdict(spec),
                                   "seconds": round(time.perf_counter() - t0, 1),
                                   "code": SLICE_TOY_VERSION, "data": "synthetic CT slices"})
    return replace_dir(tmp, out)


def build_slice_toy(entry: ModelEntry, *, weights_path: Any = None, tiny: bool = False,
                    pretrained: bool = True, device: str = "cpu", trust_remote_code: bool = False,
                    tokenizer: Any = None, tokenizer_path: Any = None, seed: int = 0,
                    progress: bool = True) -> Any:
    """A toy slice encoder: learned (cached) or random centroids (``tiny`` / not
    ``pretrained``)."""
    import torch

    from .encoder import BackboneEncoder
    from .weights import fingerprint, load_into, load_state_dict

    spec = SLICE_TOYS[entry.name]
    net = _net(spec)
    wid = "tiny-random" if tiny else "random-init"
    if pretrained and not tiny:
        path = Path(weights_path) if weights_path is not None else pretrain_slice_toy(
            entry.name, seed=seed)
        if not path.exists():
            from .weights import missing_weights

            raise missing_weights(entry, [f"weights_path={path}"])
        load_into(net, load_state_dict(path), name=entry.name)
        wid = f"toy:{path.name}" if path.is_dir() else fingerprint(path)
    else:
        with torch.no_grad():
            net.centre_norm.copy_((net.conv.weight ** 2).flatten(1).sum(1))
    enc = BackboneEncoder(entry, net, kind="torchvision", embed_dim=spec.embed_dim)
    enc.weights_id = wid
    return enc.to(device).eval()


for _name, _spec in SLICE_TOYS.items():
    register_model(ModelEntry(
        name=_name, family="kmeans-slice-toy", kind="toy",
        description=(f"toy CT slice encoder: {_spec.n_filters} k-means filters "
                     f"{_spec.patch}x{_spec.patch}, {_spec.grid}x{_spec.grid} grid (synthetic CT)"),
        weights="synthetic-pretraining", preprocess=SLICE_PREPROCESS, embed_dim=_spec.embed_dim,
        has_text=False, lora_targets=(), paper="demo (B)", licence="MIT (this package)",
        access="built locally: learned on the synthetic world's CT slices on first use (cached)",
        demo_standin=_name, builder=build_slice_toy))
