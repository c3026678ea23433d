"""Bias mitigations and the demographic probe (Paper B, section 2 and 3.3).

* :func:`importance_weights`: inverse frequency of the (group, label) cell, scaled so that
  every non-empty cell carries the same total weight ``n / n_cells`` and the weights average 1.
* :func:`balanced_indices` and :class:`GroupBalancedSampler`: resampling to exactly the same
  number of samples in every (group, label) cell.
* :func:`grad_reverse` / :class:`GradientReversal` and :class:`Adversary`: a gradient-reversal
  adversary that predicts the protected attribute from the representation (Ganin & Lempitsky);
  the representation receives ``-alpha`` times the adversary's gradient.
* :func:`select_alpha`: the adversary strength chosen per attribute on the validation split.
* :func:`demographic_probe`: how well an attribute can be read from embeddings (macro-F1).

All functions take their randomness as an explicit seed or generator.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import ConfigError, InputError

log = logging.getLogger(__name__)

MITIGATIONS = ("none", "importance_weighting", "resampling", "adversarial")


def _cells(groups: Sequence, labels: Sequence | None) -> tuple[np.ndarray, np.ndarray]:
    """Integer cell id per sample and the cell keys, for (group, label) pairs."""
    g = np.asarray(pd_safe(groups), dtype=object)
    if labels is None:
        keys = g
    else:
        y = np.asarray(labels)
        if y.ndim != 1:
            raise InputError("cell balancing needs one label per sample (1-D labels)")
        if len(y) != len(g):
            raise InputError(f"{len(g)} groups for {len(y)} labels")
        keys = np.array([f"{a}\x1f{b}" for a, b in zip(g, y)], dtype=object)
    if len(keys) == 0:
        raise InputError("no samples to balance")
    uniq, inv = np.unique(keys.astype(str), return_inverse=True)
    return inv, uniq


def pd_safe(values: Sequence) -> list:
    """Missing attribute values (None/NaN) become the explicit group ``"unknown"``."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out.append("unknown")
        else:
            out.append(v)
    return out


def importance_weights(groups: Sequence, labels: Sequence | None = None) -> np.ndarray:
    """Inverse-frequency weights of the (group, label) cells.

    ``w_i = n / (K * n_c(i))`` with ``K`` non-empty cells and ``n_c`` the size of sample
    ``i``'s cell, so each cell's weights sum to ``n / K`` and the weights average 1.

    >>> importance_weights(["a", "a", "a", "b"], [1, 1, 0, 1]).tolist()
    [0.6666666666666666, 0.6666666666666666, 1.3333333333333333, 1.3333333333333333]
    """
    inv, uniq = _cells(groups, labels)
    counts = np.bincount(inv, minlength=len(uniq)).astype(float)
    n, k = len(inv), len(uniq)
    return n / (k * counts[inv])


def balanced_indices(groups: Sequence, labels: Sequence | None = None, *,
                     n_per_cell: int | None = None,
                     seed: int | np.random.Generator = 0) -> np.ndarray:
    """Indices of a resample with exactly ``n_per_cell`` samples from every (group, label) cell.

    Each cell contributes every one of its samples ``n_per_cell // n_c`` times plus a random
    subset (without replacement) of ``n_per_cell % n_c`` samples, so the resample is exactly
    balanced and uses every sample as evenly as possible.  The default ``n_per_cell`` is the
    size of the largest cell (oversampling).  The result is shuffled.
    """
    rng = np.random.default_rng(seed)
    inv, uniq = _cells(groups, labels)
    counts = np.bincount(inv, minlength=len(uniq))
    if n_per_cell is None:
        n_per_cell = int(counts.max())
    if n_per_cell < 1:
        raise ConfigError(f"n_per_cell must be >= 1, got {n_per_cell}")
    parts = []
    for c in range(len(uniq)):
        members = np.flatnonzero(inv == c)
        reps, rest = divmod(n_per_cell, len(members))
        parts.append(np.tile(members, reps))
        parts.append(rng.choice(members, size=rest, replace=False))
    idx = np.concatenate(parts).astype(np.int64)
    return idx[rng.permutation(len(idx))]


class GroupBalancedSampler:
    """A ``torch.utils.data.Sampler`` drawing an exactly (group, label)-balanced epoch.

    Epoch ``e`` uses :func:`balanced_indices` seeded with ``(seed, e)``; the training loop
    calls :meth:`set_epoch`, so a resumed run sees the same samples as an uninterrupted one.
    """

    def __init__(self, groups: Sequence, labels: Sequence | None = None, *,
                 n_per_cell: int | None = None, seed: int = 0) -> None:
        self.groups = list(groups)
        self.labels = None if labels is None else np.asarray(labels)
        self.n_per_cell = n_per_cell
        self.seed = int(seed)
        self.epoch = 0
        self._len = len(self._indices())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _indices(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        return balanced_indices(self.groups, self.labels, n_per_cell=self.n_per_cell, seed=rng)

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return self._len


# ------------------------------------------------------------------- gradient reversal

def _torch():
    import torch

    return torch


class _GradReverseFn:
    """Built lazily so that importing this module does not import torch."""

    fn = None

    @classmethod
    def get(cls):
        if cls.fn is None:
            torch = _torch()

            class GradReverse(torch.autograd.Function):
                @staticmethod
                def forward(ctx, x, alpha):
                    ctx.alpha = float(alpha)
                    return x.view_as(x)

                @staticmethod
                def backward(ctx, grad):
                    return -ctx.alpha * grad, None

            cls.fn = GradReverse
        return cls.fn


def grad_reverse(x, alpha: float = 1.0):
    """Identity in the forward pass; multiplies the gradient by ``-alpha`` going back."""
    return _GradReverseFn.get().apply(x, alpha)


def make_adversary(in_features: int, n_groups: int, *, hidden: int = 64, alpha: float = 1.0,
                   seed: int = 0):
    """An :class:`torch.nn.Module` ``GRL(alpha) -> Linear -> ReLU -> Linear(n_groups)``."""
    torch = _torch()
    nn = torch.nn

    class Adversary(nn.Module):
        """Predicts the protected attribute from a representation, through gradient reversal."""

        def __init__(self) -> None:
            super().__init__()
            self.alpha = float(alpha)
            self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, n_groups))
            init_linear_(self.net, seed)

        def forward(self, z):
            return self.net(grad_reverse(z, self.alpha))

    return Adversary()


def init_linear_(module, seed: int) -> None:
    """Re-initialise every ``nn.Linear`` of ``module`` from an explicit generator."""
    torch = _torch()
    g = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Linear):
                bound = 1.0 / max(1, m.in_features) ** 0.5
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 2 * bound - bound)
                if m.bias is not None:
                    m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 2 * bound - bound)


# ------------------------------------------------------------------ alpha selection

def group_gap(y_true: np.ndarray, y_pred: np.ndarray, groups: Sequence) -> float:
    """Largest difference between groups of the true-positive rate (binary targets) or of the
    accuracy (multi-class targets): the min-max gap used to select ``alpha``.

    For binary targets this is the min-max gap in underdiagnosis rate ``1 - TPR`` (Paper B).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    g = np.asarray(pd_safe(groups), dtype=str)
    binary = set(np.unique(y_true).tolist()) <= {0, 1}
    rates = []
    for v in np.unique(g):
        m = g == v
        if binary:
            pos = m & (y_true == 1)
            if pos.sum() == 0:
                continue
            rates.append(float((y_pred[pos] == 1).mean()))
        else:
            rates.append(float((y_pred[m] == y_true[m]).mean()))
    return float(max(rates) - min(rates)) if len(rates) > 1 else 0.0


def select_alpha(fit_predict: Callable[[float], tuple[np.ndarray, np.ndarray]],
                 y_val: np.ndarray, groups_val: Sequence, *,
                 alphas: Sequence[float] = (0.5, 1.0, 2.0),
                 max_utility_drop: float = 0.05) -> tuple[float, list[dict]]:
    """Choose the adversary strength on the validation split.

    ``fit_predict(alpha)`` trains with that strength and returns validation
    ``(predictions, scores)``.  The chosen ``alpha`` has the smallest :func:`group_gap` among
    those whose utility (AUROC for binary targets, accuracy otherwise) is within
    ``max_utility_drop`` of the best one; ties go to the smaller ``alpha``.

    Returns the chosen alpha and one dict per candidate (``alpha``, ``gap``, ``utility``).
    """
    from sklearn.metrics import accuracy_score, roc_auc_score

    if not alphas:
        raise ConfigError("alphas must list at least one adversary strength")
    y_val = np.asarray(y_val)
    rows = []
    for a in alphas:
        pred, score = fit_predict(float(a))
        score = np.asarray(score)
        if score.ndim == 1 or (score.ndim == 2 and score.shape[1] == 2
                                and set(np.unique(y_val).tolist()) <= {0, 1}):
            s = score if score.ndim == 1 else score[:, 1]
            util = float(roc_auc_score(y_val, s)) if len(np.unique(y_val)) > 1 else float("nan")
        else:
            util = float(accuracy_score(y_val, pred))
        rows.append({"alpha": float(a), "gap": group_gap(y_val, pred, groups_val),
                     "utility": util})
        log.info("alpha=%s validation gap=%.4f utility=%.4f", a, rows[-1]["gap"], util)
    best_util = max(r["utility"] for r in rows)
    ok = [r for r in rows if r["utility"] >= best_util - max_utility_drop] or rows
    chosen = min(ok, key=lambda r: (r["gap"], r["alpha"]))
    return chosen["alpha"], rows


# ------------------------------------------------------------------ demographic probe

def demographic_probe(X_train: np.ndarray, a_train: Sequence, X_test: np.ndarray,
                      a_test: Sequence, *, seed: int = 0, C: float = 1.0) -> dict:
    """Predict a protected attribute from embeddings (Paper B's "demographic probing").

    A standardised multinomial logistic regression is trained on ``(X_train, a_train)`` and
    scored on the test embeddings.  Returns ``macro_f1``, ``accuracy``, the majority-class
    ``chance_accuracy`` and the number of groups.  Higher macro-F1 means the attribute is
    more separable in the embedding space.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    a_train = np.asarray(pd_safe(a_train), dtype=str)
    a_test = np.asarray(pd_safe(a_test), dtype=str)
    if len(np.unique(a_train)) < 2:
        raise InputError("demographic probe needs at least two attribute values in training")
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000,
                                                             random_state=seed))
    clf.fit(np.asarray(X_train, dtype=float), a_train)
    pred = clf.predict(np.asarray(X_test, dtype=float))
    _, counts = np.unique(a_test, return_counts=True)
    return {"macro_f1": float(f1_score(a_test, pred, average="macro")),
            "accuracy": float(accuracy_score(a_test, pred)),
            "chance_accuracy": float(counts.max() / counts.sum()),
            "n_groups": int(len(np.unique(a_train)))}
