"""Probes on cached embeddings, as scikit-learn estimators.

* :class:`TorchProbe`: linear probe (``hidden_layer_sizes=()``) or MLP trained by the shared
  loop :func:`compendium.adapt.training.fit` (Paper A: AdamW, cosine annealing, batch 64,
  up to 150 epochs, the checkpoint with the lowest validation loss; Paper B's MLP sweep:
  Adam, batch norm, dropout 0.2), with optional per-sample weights and an optional
  gradient-reversal adversary on the representation (adversarial debiasing);
* logistic regression (Paper B's primary probe) and LightGBM (Paper D) from their libraries.

:data:`PROBES` names every configuration used by the papers; :func:`run_probe` trains one
with a mitigation and returns the predictions table of the test split and the history.

The estimators follow scikit-learn's contract: ``__init__`` only stores parameters, ``fit``
returns ``self``, learned state ends in ``_``, ``predict``/``predict_proba`` check that the
estimator is fitted.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Literal, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ..errors import ConfigError, InputError
from ..registry import Registry
from .mitigation import MITIGATIONS, balanced_indices, importance_weights, pd_safe
from .predictions import Task, attribute_columns, labels_from_rows, predictions_table

log = logging.getLogger(__name__)


class TorchProbe(ClassifierMixin, BaseEstimator):
    """Linear or MLP probe on embeddings, trained with AdamW/Adam and best-validation selection.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int
        ``()`` is a linear probe; ``(512,)`` Paper A's one-hidden-layer MLP; Paper B sweeps
        ``(256, 128)``, ``(512, 256)``, ``(512, 256, 128)``.
    batch_norm, dropout : regularisation of the hidden layers.
    optimizer : {"adamw", "adam"}
        ``"adam"`` is Adam without weight decay (AdamW with ``weight_decay=0``).
    lr, weight_decay, batch_size, max_epochs, patience : training (see ``TrainSpec``).
    validation_fraction : float
        Held-out share of the training data (stratified) used to pick the best epoch when
        ``fit`` gets no ``eval_set``.
    standardize : bool
        Standardise features with training mean and std.
    adversary_alpha : float
        Gradient-reversal strength of an adversary predicting ``groups`` from the
        representation (``0``: none).  A linear probe with an adversary first learns a
        projection of width ``adv_projection`` (a fixed input cannot be debiased).
    random_state : int
    device : str
    n_jobs : int or None
        torch threads while training (1: fastest for small heads; ``None``: torch default).
    """

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (), *, batch_norm: bool = False,
                 dropout: float = 0.0, optimizer: Literal["adamw", "adam"] = "adamw",
                 lr: float = 1e-3, weight_decay: float = 0.01, batch_size: int = 64,
                 max_epochs: int = 150, patience: int | None = None,
                 validation_fraction: float = 0.1, standardize: bool = True,
                 adversary_alpha: float = 0.0, adv_projection: int = 128,
                 random_state: int = 0, device: str = "cpu", n_jobs: int | None = 1) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.standardize = standardize
        self.adversary_alpha = adversary_alpha
        self.adv_projection = adv_projection
        self.random_state = random_state
        self.device = device
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ sklearn plumbing
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        tags.non_deterministic = False
        return tags

    def _encode_y(self, y) -> tuple[np.ndarray, str]:
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] > 1:
            task = "multilabel"
            return y.astype(np.float32), task
        y = y.reshape(-1)
        return np.searchsorted(self.classes_, y).astype(np.int64), "multiclass"

    def fit(self, X, y, sample_weight=None, *, groups=None, eval_set=None):
        """Train on ``(X, y)``.

        Parameters
        ----------
        X : array (n, d)
        y : array (n,) of class labels, or (n, L) 0/1/NaN label matrix (multi-label)
        sample_weight : array (n,), optional
            Per-sample loss weights (importance weighting).
        groups : array (n,), optional
            Protected attribute, required when ``adversary_alpha > 0``.
        eval_set : tuple (X_val, y_val), optional
            Validation data for the best-epoch selection (default: a stratified
            ``validation_fraction`` of the training data).
        """
        from .models import Classifier
        from .training import DictDataset, TrainSpec, fit, make_loader

        y = np.asarray(y)
        multilabel = y.ndim == 2 and y.shape[1] > 1
        if multilabel:
            X = validate_data(self, X, dtype=np.float64, ensure_all_finite=True)
            y = np.asarray(y, dtype=np.float64)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"{y.shape[0]} label rows for {X.shape[0]} samples")
        else:
            X, y = validate_data(self, X, y, ensure_all_finite=True, dtype=np.float64)
        if multilabel:
            self.classes_ = np.arange(y.shape[1])
            yy, task = y.astype(np.float32), "multilabel"
        else:
            kind = type_of_target(y)
            if kind not in ("binary", "multiclass"):
                raise ValueError(f"Unknown label type: {kind}")
            self.classes_ = np.unique(y)
            if len(self.classes_) < 2:
                raise ValueError("Classifier can't train when only one class is present.")
            yy, task = self._encode_y(y)
        self.task_ = task
        n = X.shape[0]
        w = None
        if sample_weight is not None:
            from sklearn.utils.validation import _check_sample_weight

            w = _check_sample_weight(sample_weight, X, dtype=np.float64).astype(np.float32)
        g = None
        self.group_classes_ = None
        if self.adversary_alpha > 0:
            if groups is None:
                raise ConfigError("adversary_alpha > 0 needs fit(..., groups=protected_attribute)")
            gs = np.asarray(pd_safe(groups), dtype=str)
            if len(gs) != n:
                raise InputError(f"{len(gs)} group values for {n} samples")
            self.group_classes_, g = np.unique(gs, return_inverse=True)
        self.mean_ = X.mean(0) if self.standardize else np.zeros(X.shape[1])
        sd = X.std(0) if self.standardize else np.ones(X.shape[1])
        self.scale_ = np.where(sd > 0, sd, 1.0)
        Xs = ((X - self.mean_) / self.scale_).astype(np.float32)

        if eval_set is not None:
            Xv = validate_data(self, eval_set[0], reset=False, dtype=np.float64,
                               ensure_all_finite=True)
            Xv = ((Xv - self.mean_) / self.scale_).astype(np.float32)
            yv = self._encode_y(eval_set[1])[0]
            tr = np.arange(n)
        else:
            tr, va = self._split(yy, task)
            Xv, yv = Xs[va], yy[va]
        hidden = tuple(int(h) for h in self.hidden_layer_sizes)
        if self.adversary_alpha > 0 and not hidden:
            hidden = (int(self.adv_projection),)
        n_out = yy.shape[1] if task == "multilabel" else len(self.classes_)
        seed = int(self.random_state) if self.random_state is not None else 0
        self.model_ = Classifier(None, X.shape[1], n_out, hidden=hidden,
                                 dropout=float(self.dropout), batch_norm=bool(self.batch_norm),
                                 adversary_alpha=float(self.adversary_alpha),
                                 n_groups=max(2, 0 if g is None else int(g.max()) + 1),
                                 seed=seed)
        train_ds = DictDataset(Xs[tr], yy[tr], weight=None if w is None else w[tr],
                               group=None if g is None else g[tr])
        val_ds = DictDataset(Xv, yv)
        bs = int(self.batch_size)
        # a last batch of one sample cannot be batch-normalised: drop it
        one_left = bool(self.batch_norm) and len(tr) % bs == 1
        loaders = {"train": make_loader(train_ds, batch_size=bs, seed=seed, drop_last=one_left),
                   "val": make_loader(val_ds, batch_size=max(bs, 256), shuffle=False)}
        if self.optimizer not in ("adamw", "adam"):
            raise ConfigError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        wd = 0.0 if self.optimizer == "adam" else float(self.weight_decay)
        spec = TrainSpec(task=task, epochs=int(self.max_epochs), lr=float(self.lr),
                         weight_decay=wd, patience=self.patience, seed=seed,
                         device=self.device, progress=False, threads=self.n_jobs)
        self.history_ = fit(self.model_, loaders, spec)
        self.model_.to("cpu").eval()
        return self

    def _split(self, yy: np.ndarray, task: str) -> tuple[np.ndarray, np.ndarray]:
        n = len(yy)
        idx = np.arange(n)
        frac = float(self.validation_fraction)
        if not 0 < frac < 1 or n < 10:
            return idx, idx
        from sklearn.model_selection import train_test_split

        strat = yy if task == "multiclass" and np.bincount(yy).min() >= 2 else None
        try:
            tr, va = train_test_split(idx, test_size=frac, random_state=self.random_state,
                                      stratify=strat)
        except ValueError:
            tr, va = train_test_split(idx, test_size=frac, random_state=self.random_state)
        if task == "multiclass" and len(np.unique(yy[tr])) < len(np.unique(yy)):
            return idx, idx
        return np.sort(tr), np.sort(va)

    def _forward(self, X, what: str = "logits"):
        import torch

        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=True)
        Xs = torch.as_tensor(((X - self.mean_) / self.scale_).astype(np.float32))
        self.model_.eval()
        with torch.no_grad():
            return self.model_(Xs)[what]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, n_classes), or per-label probabilities (multi-label)."""
        logits = self._forward(X)
        if self.task_ == "multilabel":
            return logits.sigmoid().numpy().astype(np.float64)
        proba = logits.double().softmax(-1).numpy()
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)
        if self.task_ == "multilabel":
            return (proba >= 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]

    def representation(self, X) -> np.ndarray:
        """The representation the head (and the adversary) see."""
        return self._forward(X, "features").numpy().astype(np.float64)


# ------------------------------------------------------------------------- registry

PROBES: Registry = Registry("probe")


@PROBES.register("linear")
def _linear(**kw: Any) -> TorchProbe:
    """Paper A linear probe: one linear layer, AdamW, cosine, batch 64, 150 epochs."""
    return TorchProbe((), **kw)


@PROBES.register("mlp")
def _mlp(hidden: int = 512, **kw: Any) -> TorchProbe:
    """Paper A MLP: one hidden layer between the frozen embedding and the head."""
    return TorchProbe((hidden,), **kw)


def _paper_b_mlp(sizes: tuple[int, ...]):
    def factory(**kw: Any) -> TorchProbe:
        kw = {"batch_norm": True, "dropout": 0.2, "optimizer": "adam", **kw}
        return TorchProbe(sizes, **kw)

    factory.__doc__ = f"Paper B MLP {sizes}: Adam, batch norm, dropout 0.2."
    return factory


for _sizes in ((256, 128), (512, 256), (512, 256, 128)):
    PROBES.add("mlp-" + "-".join(map(str, _sizes)), _paper_b_mlp(_sizes))


@PROBES.register("logreg")
def _logreg(random_state: int = 0, C: float = 1.0, max_iter: int = 2000, **kw: Any):
    """Paper B logistic regression (standardised features, L2, lbfgs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    _no_extra(kw, "logreg")
    return Pipeline([("scale", StandardScaler()),
                     ("clf", LogisticRegression(C=C, max_iter=max_iter,
                                                random_state=random_state))])


@PROBES.register("lightgbm")
def _lightgbm(random_state: int = 0, n_estimators: int = 200, learning_rate: float = 0.05,
              num_leaves: int = 31, **kw: Any):
    """Paper D LightGBM classifier (deterministic, single thread)."""
    import lightgbm

    _no_extra(kw, "lightgbm")
    return lightgbm.LGBMClassifier(n_estimators=n_estimators, learning_rate=learning_rate,
                                   num_leaves=num_leaves, random_state=random_state,
                                   deterministic=True, force_row_wise=True, n_jobs=1,
                                   verbose=-1)


def _no_extra(kw: dict, name: str) -> None:
    if kw:
        raise ConfigError(f"probe {name!r} has no parameter {sorted(kw)[0]!r}")


def create_probe(name: str, **params: Any):
    """Build the probe registered as ``name`` (``list_probes()`` lists them)."""
    return PROBES.create(name, **params)


def list_probes() -> list[str]:
    return PROBES.names()


# ------------------------------------------------------------------------- running

def fit_estimator(est, X, y, *, sample_weight=None, groups=None, eval_set=None):
    """Fit any probe, passing weights, groups and validation data where it takes them."""
    from sklearn.pipeline import Pipeline

    if isinstance(est, TorchProbe):
        return est.fit(X, y, sample_weight=sample_weight, groups=groups, eval_set=eval_set)
    if groups is not None and getattr(est, "adversary_alpha", 0) > 0:
        raise ConfigError("adversarial debiasing needs a torch probe (linear or mlp)")
    if isinstance(est, Pipeline):
        last = est.steps[-1][0]
        kw = {} if sample_weight is None else {f"{last}__sample_weight": sample_weight}
        return est.fit(X, y, **kw)
    return est.fit(X, y, sample_weight=sample_weight)


def run_probe(probe: str, data: dict[str, tuple[np.ndarray, pd.DataFrame]],
              classes: Sequence[str], task: Task, *, attribute: str | None = None,
              mitigation: str = "none", alpha: float | None = None,
              alphas: Sequence[float] = (0.5, 1.0, 2.0), seed: int = 0,
              params: dict[str, Any] | None = None):
    """Train a probe on train embeddings with a mitigation; predict the test split.

    Parameters
    ----------
    probe : str
        A :data:`PROBES` name.
    data : dict
        ``{"train": (X, rows), "val": (X, rows), "test": (X, rows)}``: embeddings and their
        cohort rows (row-aligned).
    classes, task : label columns / class names and task (see :func:`predictions_table`).
    attribute : str
        Protected attribute column (required by every mitigation but ``"none"``).
    mitigation : {"none", "importance_weighting", "resampling", "adversarial"}
    alpha : float, optional
        Adversary strength; ``None`` selects it among ``alphas`` on the validation split.
    params : dict
        Extra parameters of the probe factory.

    Returns
    -------
    table : DataFrame
        The predictions table of the test split.
    info : dict
        ``history`` (a :class:`~compendium.adapt.training.History` or ``None``), the chosen
        ``alpha`` and the alpha-selection rows.
    """
    from .mitigation import select_alpha

    if mitigation not in MITIGATIONS:
        raise ConfigError(f"unknown mitigation {mitigation!r} (allowed: {', '.join(MITIGATIONS)})")
    for split in ("train", "val", "test"):
        if split not in data:
            raise ConfigError(f"run_probe needs a {split!r} split")
    if task == "multilabel" and mitigation in ("importance_weighting", "resampling"):
        raise ConfigError(f"{mitigation} balances (group, label) cells of one label; "
                          "use a binary or multiclass task")
    params = dict(params or {})
    (Xtr, rtr), (Xva, rva), (Xte, rte) = data["train"], data["val"], data["test"]
    ytr, yva = labels_from_rows(rtr, classes, task), labels_from_rows(rva, classes, task)
    gtr = gva = None
    if mitigation != "none":
        if attribute is None or attribute not in rtr.columns:
            raise ConfigError(f"mitigation {mitigation!r} needs an attribute column "
                              f"(got {attribute!r})")
        gtr, gva = rtr[attribute].to_numpy(), rva[attribute].to_numpy()
    info: dict[str, Any] = {"alpha": None, "alpha_selection": []}
    w = None
    if mitigation == "importance_weighting":
        w = importance_weights(gtr, ytr)
    if mitigation == "resampling":
        idx = balanced_indices(gtr, ytr, seed=seed)
        Xtr, ytr = Xtr[idx], ytr[idx]
    if mitigation == "adversarial":
        def fit_predict(a: float):
            est = create_probe(probe, random_state=seed, adversary_alpha=a, **params)
            fit_estimator(est, Xtr, ytr, groups=gtr, eval_set=(Xva, yva))
            return est.predict(Xva), est.predict_proba(Xva)

        if alpha is None:
            alpha, info["alpha_selection"] = select_alpha(fit_predict, yva, gva, alphas=alphas)
        params["adversary_alpha"] = float(alpha)
        info["alpha"] = float(alpha)
    est = create_probe(probe, random_state=seed, **params)
    if isinstance(est, TorchProbe):
        est.fit(Xtr, ytr, sample_weight=w, groups=gtr if mitigation == "adversarial" else None,
                eval_set=(Xva, yva))
        info["history"] = est.history_
    else:
        fit_estimator(est, Xtr, ytr, sample_weight=w)
        info["history"] = None
    proba = est.predict_proba(Xte)
    info["estimator"] = est
    return predictions_table(rte, _full_proba(proba, est, classes, task), classes, task,
                             attributes=attribute_columns(rte, attribute)), info


def _full_proba(proba: np.ndarray, est, classes: Sequence[str], task: Task) -> np.ndarray:
    """Probabilities in the order of ``classes`` even when a class was absent in training."""
    if task == "multilabel":
        return proba
    k = 2 if task == "binary" else len(classes)
    out = np.zeros((proba.shape[0], k))
    cls = getattr(est, "classes_", None)
    if cls is None:
        cls = est.steps[-1][1].classes_
    for j, c in enumerate(np.asarray(cls).astype(int)):
        out[:, c] = proba[:, j]
    return out


@dataclasses.dataclass
class CrossValidation:
    """Out-of-fold predictions of a probe (:func:`cross_validate`).

    Attributes
    ----------
    scores : ndarray (n, n_classes)
        Out-of-fold class probabilities of every row (binary: columns 0 and 1).
    fold : ndarray (n,)
        The fold in which each row was predicted.
    folds : DataFrame
        One row per fold: ``fold``, ``n_train`` (original rows), ``n_views`` (augmented
        views added to its training data), ``n_val`` and ``val_classes`` (classes present
        in the validation fold: a rank metric is undefined on a fold holding one class).
    """

    scores: np.ndarray
    fold: np.ndarray
    folds: pd.DataFrame

    def per_fold(self, y: np.ndarray, metrics: dict[str, Any]) -> pd.DataFrame:
        """``metrics`` (name -> ``f(y_true, scores_of_the_fold)``) on every validation fold,
        beside :attr:`folds`.  A metric that is undefined on a fold is NaN there, and the
        fold's ``flag`` says why (``single_class``: a fold holding one class)."""
        y = np.asarray(y)
        rows = []
        for f in self.folds["fold"]:
            m = self.fold == f
            row = {name: float(fn(y[m], self.scores[m])) for name, fn in metrics.items()}
            row["flag"] = "single_class" if len(np.unique(y[m])) < 2 else ""
            rows.append(row)
        return pd.concat([self.folds.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def fit_predict_proba(probe: str, X: np.ndarray, y: np.ndarray, X_new: np.ndarray, *,
                      n_classes: int, seed: int = 0, params: dict[str, Any] | None = None,
                      where: str = "training data") -> np.ndarray:
    """Fit probe ``probe`` on ``(X, y)`` (integer classes ``0..n_classes-1``) and return the
    probabilities ``(len(X_new), n_classes)`` of ``X_new``.

    Every class must occur in ``y``: a probe never shown a class would give it probability 0
    everywhere, a number that looks like a result.  A missing class is an
    :class:`~compendium.errors.InputError` naming ``where``.
    """
    y = np.asarray(y).astype(int)
    absent = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if absent:
        raise InputError(f"{where} has no example of class {absent[0]} ({len(y)} rows): a "
                         "probe fitted there cannot predict it; use fewer folds or more rows")
    est = create_probe(probe, random_state=int(seed), **dict(params or {}))
    fit_estimator(est, X, y)
    task: Task = "binary" if n_classes == 2 else "multiclass"
    return _full_proba(est.predict_proba(X_new), est, [str(i) for i in range(n_classes)], task)


def cross_validate(probe: str, X: np.ndarray, y: np.ndarray, groups: Sequence[Any], *,
                   n_splits: int = 5, seed: int = 0, params: dict[str, Any] | None = None,
                   views: np.ndarray | None = None, view_owner: np.ndarray | None = None,
                   n_classes: int | None = None) -> CrossValidation:
    """Patient-wise k-fold cross-validation of a probe (Paper D: LightGBM, 5 folds).

    Folds come from :func:`compendium.cohorts.splits.patient_folds` (stratified by ``y``,
    grouped by ``groups``), so no patient is in a training and a validation fold.
    ``views`` (augmented views, e.g. :func:`compendium.imaging.augment.augment_views`) with
    ``view_owner`` (the row of ``X`` each view was made from) join a fold's *training* data
    when their image is in it; validation folds hold original images only.
    """
    from ..cohorts.splits import patient_folds

    y = np.asarray(y).astype(int)
    if len(X) != len(y) or len(y) != len(groups):
        raise InputError(f"X, y and groups differ in length ({len(X)}, {len(y)}, {len(groups)})")
    if (views is None) != (view_owner is None):
        raise ConfigError("views and view_owner go together")
    if views is not None and len(views) != len(view_owner):
        raise InputError(f"{len(views)} views but {len(view_owner)} owners")
    k = int(n_classes or (y.max() + 1 if len(y) else 0))
    folds = patient_folds(np.asarray(groups), n_splits, y=y, seed=seed)
    scores = np.full((len(y), k), np.nan)
    fold_of = np.full(len(y), -1)
    info = []
    for f, (tr, va) in enumerate(folds):
        Xtr, ytr, n_views = X[tr], y[tr], 0
        if views is not None:
            keep = np.isin(view_owner, tr)
            n_views = int(keep.sum())
            Xtr = np.vstack([Xtr, views[keep]])
            ytr = np.concatenate([ytr, y[view_owner[keep]]])
        scores[va] = fit_predict_proba(probe, Xtr, ytr, X[va], n_classes=k, seed=seed,
                                       params=params, where=f"the training data of fold {f}")
        fold_of[va] = f
        info.append({"fold": f, "n_train": len(tr), "n_views": n_views, "n_val": len(va),
                     "val_classes": int(len(np.unique(y[va])))})
    return CrossValidation(scores, fold_of, pd.DataFrame(info))


def cross_validated_predictions(probe: str, X: np.ndarray, rows: pd.DataFrame,
                                classes: Sequence[str], task: Task, *, n_splits: int = 5,
                                seed: int = 0, params: dict[str, Any] | None = None
                                ) -> pd.DataFrame:
    """The predictions table of :func:`cross_validate` (patients from ``rows.patient_id``),
    every row in the order of ``rows``, with a ``fold`` column."""
    if task == "multilabel":
        raise ConfigError("cross_validated_predictions supports binary and multiclass tasks")
    y = labels_from_rows(rows, classes, task)
    k = 2 if task == "binary" else len(classes)
    cv = cross_validate(probe, X, y, rows["patient_id"].astype(str).to_numpy(),
                        n_splits=n_splits, seed=seed, params=params, n_classes=k)
    table = predictions_table(rows, cv.scores, classes, task)
    table.insert(2, "fold", cv.fold)
    return table
