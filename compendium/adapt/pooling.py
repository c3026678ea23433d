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
        """``h_s = ReLU(W x_s)``; ``a = softmax_s(w^T (tanh(V h_s) * sigmoid(U h_s)))``;
        logit ``= c^T sum_s a_s h_s + b``."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Dropout(dropout))
            self.v = nn.Linear(hidden, attention)
            self.u = nn.Linear(hidden, attention)
            self.w = nn.Linear(attention, 1)
            self.head = nn.Linear(hidden, 1)

        def forward(self, x):
            h = self.embed(x)                                   # (B, S, hidden)
            a = self.w(torch.tanh(self.v(h)) * torch.sigmoid(self.u(h))).squeeze(-1)
            a = torch.softmax(a, dim=1)                          # (B, S)
            z = (a.unsqueeze(-1) * h).sum(1)
            return self.head(z).squeeze(-1), a

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return GatedAttentionMIL()


class AttentionMILProbe(ClassifierMixin, BaseEstimator):
    """Gated-attention MIL pooling and a linear head, trained on bags of slice embeddings.

    Parameters
    ----------
    hidden, attention : widths of the slice projection and of the attention network.
    dropout : dropout on the slice projection.
    lr, weight_decay, batch_size, max_epochs, patience : Adam training; the epoch with the
        lowest validation loss is kept (``patience`` epochs without improvement stop it).
    validation_fraction : stratified share of the training bags used for that choice.
    random_state : seeds initialisation, the split and the batch order.
    n_jobs : torch threads while training.
    """

    def __init__(self, *, hidden: int = 64, attention: int = 32, dropout: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 1e-4, batch_size: int = 32,
                 max_epochs: int = 60, patience: int = 10, validation_fraction: float = 0.2,
                 random_state: int = 0, n_jobs: int = 1) -> None:
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
        self.n_jobs = n_jobs

    def fit(self, X, y, sample_weight=None):
        import torch
        from sklearn.model_selection import train_test_split

        from ..runtime import torch_threads

        X = _bags(X)
        y = np.asarray(y).astype(int).ravel()
        if len(y) != len(X):
            raise InputError(f"{len(y)} labels for {len(X)} studies")
        self.classes_ = np.unique(y)
        if not set(self.classes_.tolist()) <= {0, 1} or len(self.classes_) < 2:
            raise InputError("AttentionMILProbe needs binary labels 0/1 with both classes")
        w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        self.mean_ = X.reshape(-1, X.shape[2]).mean(0)
        sd = X.reshape(-1, X.shape[2]).std(0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        Xs = ((X - self.mean_) / self.scale_).astype(np.float32)
        seed = int(self.random_state)
        idx = np.arange(len(y))
        tr, va = train_test_split(idx, test_size=self.validation_fraction, random_state=seed,
                                  stratify=y if np.bincount(y).min() >= 2 else None)
        with torch_threads(self.n_jobs), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)   # dropout draws from the global generator: seeded, restored
            model = _module(X.shape[2], int(self.hidden), int(self.attention),
                            float(self.dropout), seed)
            opt = torch.optim.Adam(model.parameters(), lr=float(self.lr),
                                   weight_decay=float(self.weight_decay))
            xt, yt = torch.from_numpy(Xs), torch.from_numpy(y.astype(np.float32))
            wt = torch.from_numpy(w.astype(np.float32))
            g = torch.Generator().manual_seed(seed)
            loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
            best, best_state, bad, history = np.inf, None, 0, []
            for _epoch in range(int(self.max_epochs)):
                model.train()
                order = torch.from_numpy(tr)[torch.randperm(len(tr), generator=g)]
                for start in range(0, len(order), int(self.batch_size)):
                    b = order[start:start + int(self.batch_size)]
                    logit, _ = model(xt[b])
                    loss = (loss_fn(logit, yt[b]) * wt[b]).sum() / wt[b].sum()
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                model.eval()
                with torch.no_grad():
                    logit, _ = model(xt[va])
                    vl = float((loss_fn(logit, yt[va]) * wt[va]).sum() / wt[va].sum())
                history.append(vl)
                if vl < best - 1e-6:
                    best, bad = vl, 0
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    bad += 1
                    if bad >= int(self.patience):
                        break
            model.load_state_dict(best_state)
        self.model_ = model.eval()
        self.history_ = history
        return self

    def _forward(self, X):
        import torch

        check_is_fitted(self, "model_")
        X = _bags(X)
        if X.shape[2] != len(self.mean_):
            raise InputError(f"{X.shape[2]}-d slice embeddings, the probe was fitted on "
                             f"{len(self.mean_)}-d")
        xs = torch.from_numpy(((X - self.mean_) / self.scale_).astype(np.float32))
        with torch.no_grad():
            logit, a = self.model_(xs)
        return logit.double().numpy(), a.double().numpy()

    def predict_proba(self, X) -> np.ndarray:
        """``(n, 2)``: probabilities of class 0 and 1."""
        p = 1.0 / (1.0 + np.exp(-self._forward(X)[0]))
        return np.column_stack([1 - p, p])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    def slice_weights(self, X) -> np.ndarray:
        """The attention weight of every slice ``(n, S)`` (rows sum to 1)."""
        return self._forward(X)[1]


__all__ = ["AttentionMILProbe", "POOLINGS", "pool_slices"]
