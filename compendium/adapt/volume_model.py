"""A task-specific CT model trained end to end: a slice CNN followed by a recurrent layer.

The shape of the long-term recurrent convolutional network (LRCN) that INSPECT's baselines
use for CTPA: every axial slice goes through the same small CNN, the sequence of slice
features through a bidirectional GRU, and the two final states through a linear head.
Unlike a frozen encoder with mean pooling, the whole model learns from the study label, so
it can learn to look for a focal sign on any slice.  Paper B compares its frozen-encoder
pipelines against such a baseline ("CT-LRCN").

:class:`SliceRecurrentClassifier` follows scikit-learn's contract:
``fit(volumes (n, S, H, W) uint8, y)``, ``predict_proba``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from ..errors import InputError


def _volumes(V) -> np.ndarray:
    V = np.asarray(V)
    if V.ndim != 4:
        raise InputError(f"volumes must be (studies, slices, H, W), got shape {V.shape}")
    if V.dtype != np.uint8:
        raise InputError(f"volumes must be uint8 windowed slices, got {V.dtype}")
    return V


def _module(width: int, hidden: int, dropout: float, seed: int):
    import torch
    from torch import nn

    class SliceGRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cnn = nn.Sequential(
                nn.Conv2d(1, width, 5, stride=2, padding=2), nn.ReLU(),
                nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.ReLU(),
                nn.AdaptiveMaxPool2d(1), nn.Flatten())
            self.rnn = nn.GRU(4 * width, hidden, batch_first=True, bidirectional=True)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(2 * hidden, 1)

        def forward(self, x):                      # (B, S, H, W) uint8 windowed slices
            b, s, h, w = x.shape
            x = x.float() / 255.0
            f = self.cnn(x.reshape(b * s, 1, h, w)).reshape(b, s, -1)
            _, last = self.rnn(f)                   # (2, B, hidden)
            z = torch.cat([last[0], last[1]], dim=1)
            return {"logits": self.head(self.drop(z)).squeeze(-1)}

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return SliceGRU()


class SliceRecurrentClassifier(ClassifierMixin, BaseEstimator):
    """Slice CNN + bidirectional GRU, trained end to end on windowed CT slices (binary).

    Parameters
    ----------
    width : channels of the first convolution (doubled twice).
    hidden : GRU width per direction.
    dropout, lr, weight_decay, batch_size, max_epochs, patience, validation_fraction :
        training by the package's one loop (:func:`compendium.adapt.training.fit`: AdamW,
        cosine schedule) with the best validation epoch kept.
    random_state, device, n_jobs : seed, where it runs, torch threads.
    """

    def __init__(self, *, width: int = 8, hidden: int = 32, dropout: float = 0.2,
                 lr: float = 2e-3, weight_decay: float = 1e-4, batch_size: int = 16,
                 max_epochs: int = 12, patience: int = 4, validation_fraction: float = 0.15,
                 random_state: int = 0, device: str = "cpu", n_jobs: int = 1) -> None:
        self.width = width
        self.hidden = hidden
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

    def fit(self, V, y, X_val=None, y_val=None):
        """Train on volumes ``V`` with labels ``y`` by :func:`compendium.adapt.training.fit`;
        ``(X_val, y_val)`` choose the epoch (default: a stratified ``validation_fraction`` of
        the training studies).  Positives are weighted by the negatives-to-positives ratio
        of the training studies."""
        from sklearn.model_selection import train_test_split

        from .training import DictDataset, TrainSpec, fit, make_loader

        V = _volumes(V)
        y = np.asarray(y).astype(int).ravel()
        if len(y) != len(V):
            raise InputError(f"{len(y)} labels for {len(V)} volumes")
        self.classes_ = np.unique(y)
        if not set(self.classes_.tolist()) <= {0, 1} or len(self.classes_) < 2:
            raise InputError("SliceRecurrentClassifier needs binary labels 0/1 with both classes")
        seed = int(self.random_state)
        if X_val is None:
            tr, va = train_test_split(np.arange(len(y)), test_size=self.validation_fraction,
                                      random_state=seed, stratify=y)
            Vt, yt_, Vv, yv_ = V[tr], y[tr], V[va], y[va]
        else:
            Vt, yt_, Vv, yv_ = V, y, _volumes(X_val), np.asarray(y_val).astype(int).ravel()
        pos = max(1.0, float((yt_ == 0).sum()) / max(1.0, float((yt_ == 1).sum())))
        bs = int(self.batch_size)
        loaders = {"train": make_loader(DictDataset(Vt, yt_.astype(np.float32),
                                                    weight=np.where(yt_ == 1, pos, 1.0)),
                                        batch_size=bs, seed=seed),
                   "val": make_loader(DictDataset(Vv, yv_.astype(np.float32)),
                                      batch_size=64, shuffle=False)}
        model = _module(int(self.width), int(self.hidden), float(self.dropout), seed)
        spec = TrainSpec(task="binary", epochs=int(self.max_epochs), lr=float(self.lr),
                         weight_decay=float(self.weight_decay), patience=int(self.patience),
                         seed=seed, device=self.device, progress=False, threads=self.n_jobs)
        history = fit(model, loaders, spec)
        self.model_ = model.eval()
        self.history_ = [e["val_loss"] for e in history.epochs]
        return self

    def predict_proba(self, V) -> np.ndarray:
        from .training import DictDataset, make_loader, predict_scores

        check_is_fitted(self, "model_")
        V = _volumes(V)
        if not len(V):
            return np.zeros((0, 2))
        loader = make_loader(DictDataset(V, np.zeros(len(V), np.float32)), batch_size=64,
                             shuffle=False)
        from ..runtime import torch_threads

        with torch_threads(self.n_jobs):
            p = predict_scores(self.model_, loader, "binary", device=self.device)
        return np.column_stack([1 - p, p])

    def predict(self, V) -> np.ndarray:
        return (self.predict_proba(V)[:, 1] >= 0.5).astype(int)


__all__ = ["SliceRecurrentClassifier"]
