"""Pooling slice embeddings into one study vector (Paper B, and the question it leaves open).

A CT study is a bag of slice embeddings ``(n_slices, d)``.  Paper B mean-pools them; a
focal finding present on a few slices is then diluted by the others.  Here:

* :func:`pool_slices`: ``mean`` or ``max`` over the slices of every study, ``(n, S, d) ->
  (n, d)``;
* :class:`AttentionMILProbe`: attention-based multiple-instance pooling (Ilse, Tomczak and
  Welling, 2018: gated attention), a small torch module trained on the slice embeddings
  with the study label, as a scikit-learn estimator (``fit(X (n, S, d), y)``,
  ``predict_proba``, ``slice_weights(X)`` the attention weight of every slice).

>>> import numpy as np
>>> E = np.arange(12, dtype=float).reshape(2, 3, 2)
>>> pool_slices(E, "mean").tolist(), pool_slices(E, "max").tolist()
([[2.0, 3.0], [8.0, 9.0]], [[4.0, 5.0], [10.0, 11.0]])
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..errors import ConfigError, InputError

#: Poolings of slice embeddings: the two fixed ones and the learned attention.
POOLINGS = ("mean", "max", "attention")


def _bags(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3:
        raise InputError(f"slice embeddings must be (studies, slices, dims), got shape {X.shape}")
    if X.shape[1] < 1:
        raise InputError("a study needs at least one slice")
    if not np.isfinite(X).all():
        raise InputError("slice embeddings hold NaN or infinite values")
    return X


def _bag_list(X) -> list[np.ndarray]:
    """Bags as a list of ``(S_i, d)`` arrays: a 3-D array ``(n, S, d)`` or a sequence of 2-D
    arrays whose slice counts may differ (one embedding size)."""
    if isinstance(X, np.ndarray) and X.ndim == 3:
        return list(_bags(X))
    bags = [np.asarray(b, dtype=np.float64) for b in X]
    if not bags:
        raise InputError("no studies")
    for b in bags:
        if b.ndim != 2:
            raise InputError(f"a bag of slice embeddings must be (slices, dims), got shape "
                             f"{b.shape}")
        if len(b) < 1:
            raise InputError("a study needs at least one slice")
        if not np.isfinite(b).all():
            raise InputError("slice embeddings hold NaN or infinite values")
    dims = {b.shape[1] for b in bags}
    if len(dims) > 1:
        raise InputError(f"bags of different embedding sizes: {sorted(dims)}")
    return bags


class _BagDataset:
    """Bags ``(S_i, d)`` with their label and loss weight, as dict samples."""

    def __init__(self, bags, y, weight) -> None:
        self.bags, self.y, self.weight = bags, y, weight

    def __len__(self) -> int:
        return len(self.bags)

    def __getitem__(self, i: int):
        import torch

        return {"x": torch.from_numpy(self.bags[i]), "y": torch.tensor(float(self.y[i])),
                "weight": torch.tensor(float(self.weight[i]))}


def pad_bags(samples):
    """Collate bags of different lengths: ``x`` ``(B, S_max, d)`` with the missing slices
    NaN (the module masks them), ``y`` and ``weight`` stacked."""
    import torch

    S = max(len(s["x"]) for s in samples)
    x = torch.full((len(samples), S, samples[0]["x"].shape[1]), float("nan"))
    for k, s in enumerate(samples):
        x[k, :len(s["x"])] = s["x"]
    out = {"x": x, "y": torch.stack([s["y"] for s in samples])}
    if "weight" in samples[0]:
        out["weight"] = torch.stack([s["weight"] for s in samples])
    return out


def pool_slices(X, how: str) -> np.ndarray:
    """Study vectors ``(n, d)`` from slice embeddings ``(n, S, d)`` by ``mean`` or ``max``."""
    X = _bags(X)
    if how == "mean":
        return X.mean(axis=1)
    if how == "max":
        return X.max(axis=1)
    raise ConfigError(f"unknown fixed pooling {how!r} (allowed: mean, max; attention is "
                      "learned: AttentionMILProbe)")


def _module(d: int, hidden: int, attention: int, dropout: float, seed: int):
    import torch
    from torch import nn

    class GatedAttentionMIL(nn.Module):
        """``h_s = ReLU(W x_s)``; ``a = softmax_s(w^T (tanh(V h_s) * sigmoid(U h_s)))``
        over the slices present (NaN rows are padding); logit ``= c^T sum_s a_s h_s + b``."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout))
            self.v = nn.Linear(hidden, attention)
            self.u = nn.Linear(hidden, attention)
            self.w = nn.Linear(attention, 1)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):                       # (B, S, d); padded slices NaN
            pad = torch.isnan(x).any(-1)                        # (B, S)
            h = self.embed(torch.nan_to_num(x))                 # (B, S, hidden)
            a = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(-1)
            a = torch.softmax(a.masked_fill(pad, float("-inf")), dim=1)   # (B, S)
            z = (a.unsqueeze(-1) * h).sum(1)
            return {"logits": self.head(z).squeeze(-1), "attention": a}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return GatedAttentionMIL()


class AttentionMILProbe(ClassifierMixin, BaseEstimator):
    """Gated-attention MIL pooling and a linear head, trained on bags of slice embeddings.

    Parameters
    ----------
    hidden, attention : widths of the slice projection and of the attention network.
    dropout : dropout on the slice projection.
    lr, weight_decay, batch_size, max_epochs, patience : training by the package's one loop
        (:func:`compendium.adapt.training.fit`: AdamW, cosine schedule); the epoch with the
        lowest validation loss is kept (``patience`` epochs without improvement stop it).
    validation_fraction : stratified share of the training bags used for that choice.
    random_state : seeds initialisation, the split and the batch order.
    device, n_jobs : where it trains, and torch threads while training.

    Bags may differ in length: ``X`` is ``(n, S, d)`` or a list of ``(S_i, d)`` arrays
    (batched by :func:`pad_bags`, the padding masked out of the attention).
    """

    def __init__(self, *, hidden: int = 64, attention: int = 32, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 32,
                 max_epochs: int = 60, patience: int = 10, validation_fraction: float = 0.2,
                 random_state: int = 0, device: str = "cpu", n_jobs: int = 1) -> None:
        self.hidden = hidden
        self.attention = attention
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None):
        """Train on bags ``X`` (``(n, S, d)``, or a list of ``(S_i, d)``) with labels ``y``
        by :func:`compendium.adapt.training.fit` (the lowest validation loss kept)."""
        from sklearn.model_selection import train_test_split
        from torch.utils.data import DataLoader

        from .training import EpochSampler, TrainSpec, fit

        bags = _bag_list(X)
        y = np.asarray(y).astype(int).ravel()
        if len(y) != len(bags):
            raise InputError(f"{len(y)} labels for {len(bags)} studies")
        self.classes_ = np.unique(y)
        if not set(self.classes_.tolist()) <= {0, 1} or len(self.classes_) < 2:
            raise InputError("AttentionMILProbe needs binary labels 0/1 with both classes")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        flat = np.concatenate(bags)
        self.mean_ = flat.mean(0)
        sd = flat.std(0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        scaled = [((b - self.mean_) / self.scale_).astype(np.float32) for b in bags]
        seed = int(self.random_state)
        tr, va = train_test_split(np.arange(len(y)), test_size=self.validation_fraction,
                                  random_state=seed,
                                  stratify=y if np.bincount(y).min() >= 2 else None)

        def loader(rows, shuffle):
            ds = _BagDataset([scaled[i] for i in rows], y[rows], w[rows])
            return DataLoader(ds, batch_size=int(self.batch_size), collate_fn=pad_bags,
                              sampler=EpochSampler(len(ds), seed=seed, shuffle=shuffle))

        model = _module(flat.shape[1], int(self.hidden), int(self.attention),
                        float(self.dropout), seed)
        spec = TrainSpec(task="binary", epochs=int(self.max_epochs), lr=float(self.lr),
                         weight_decay=float(self.weight_decay), patience=int(self.patience),
                         seed=seed, device=self.device, progress=False, threads=self.n_jobs)
        history = fit(model, {"train": loader(tr, True), "val": loader(va, False)}, spec)
        self.model_ = model.to("cpu").eval()
        self.history_ = [e["val_loss"] for e in history.epochs]
        return self

    def _forward(self, X):
        import torch

        check_is_fitted(self, "model_")
        bags = _bag_list(X)
        if bags[0].shape[1] != len(self.mean_):
            raise InputError(f"{bags[0].shape[1]}-d slice embeddings, the probe was fitted on "
                             f"{len(self.mean_)}-d")
        logits, att = [], []
        with torch.no_grad():
            for start in range(0, len(bags), 256):
                part = [{"x": torch.from_numpy(((b - self.mean_) / self.scale_)
                                               .astype(np.float32)), "y": torch.tensor(0.0)}
                        for b in bags[start:start + 256]]
                out = self.model_(pad_bags(part)["x"])
                logits.append(out["logits"].double().numpy())
                att += [a[:len(b)] for a, b in zip(out["attention"].double().numpy(),
                                                   bags[start:start + 256])]
        return np.concatenate(logits), att

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 2)``: probabilities of class 0 and 1."""
        p = 1.0 / (1.0 + np.exp(-self._forward(X)[0]))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def slice_weights(self, X):
        """The attention weight of every slice: ``(n, S)`` for a 3-D ``X``, else a list of
        ``(S_i,)`` arrays (each sums to 1)."""
        att = self._forward(X)[1]
        return np.stack(att) if isinstance(X, np.ndarray) and X.ndim == 3 else att


__all__ = ["AttentionMILProbe", "POOLINGS", "pad_bags", "pool_slices"]
