"""One training loop for every trainable head, LoRA and full fine-tuning.

``fit(model, loaders, spec) -> History``:

* AdamW, cosine annealing of the learning rate over all steps (Paper A, section 3.1);
* the checkpoint with the lowest validation loss is kept and loaded at the end;
* optional early stopping (``patience`` epochs without a lower validation loss);
* bf16 autocast on CUDA, deterministic algorithms on CPU;
* a tqdm progress bar over epochs;
* resumable: after each epoch the model, optimizer, scheduler, RNG states, history and best
  weights are written atomically to ``run_dir/last.pt``; calling ``fit`` again with the same
  ``run_dir`` continues after the last finished epoch and ends with exactly the weights of an
  uninterrupted run.  Checkpoints load with ``torch.load(..., weights_only=True)``.

Contract of the pieces
----------------------
``model(x)`` returns a dict with ``"logits"`` (and ``"adv_logits"`` when it carries a
gradient-reversal adversary).  Loaders yield dicts with ``"x"``, ``"y"`` and optionally
``"weight"`` (per-sample loss weights: importance weighting) and ``"group"`` (integer
protected attribute, ``-1`` unknown: the adversary's target).  A loader's sampler may have
``set_epoch(epoch)`` (e.g. :class:`EpochSampler`, :class:`~compendium.adapt.mitigation.GroupBalancedSampler`);
the loop calls it so that every epoch's order depends only on ``(seed, epoch)``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import random
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..atomic import atomic_write
from ..config import Spec
from ..errors import ConfigError
from ..runtime import resolve_device, torch_threads

log = logging.getLogger(__name__)

Task = Literal["multiclass", "binary", "multilabel"]


@dataclasses.dataclass(frozen=True)
class TrainSpec(Spec):
    """Parameters of :func:`fit`.

    Attributes
    ----------
    task : loss and output type (cross-entropy, or binary cross-entropy per output)
    epochs : maximum number of epochs (Paper A: 150)
    lr, weight_decay : AdamW parameters
    min_lr : floor of the cosine schedule
    patience : early stopping after this many epochs without a lower validation loss
        (``None``: never stop early)
    seed : seeds the torch generator used during training (dropout); restored on resume
    device : ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"``
    amp : bf16 autocast on CUDA (ignored on CPU)
    grad_clip : clip the gradient norm to this value (``None``: no clipping)
    run_dir : folder for ``last.pt`` / ``best.pt`` (``""``: keep nothing on disk)
    resume : continue from ``run_dir/last.pt`` when it exists
    progress : show a tqdm progress bar
    threads : torch intra-op threads during training (``None``: leave as is; 1 is fastest
        for small heads on embeddings), restored afterwards
    """

    task: Literal["multiclass", "binary", "multilabel"] = "multiclass"
    epochs: int = 150
    lr: float = 1e-3
    weight_decay: float = 0.01
    min_lr: float = 0.0
    patience: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    grad_clip: float | None = None
    run_dir: str = ""
    resume: bool = True
    progress: bool = True
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.patience is not None and self.patience < 1:
            raise ConfigError(f"patience must be >= 1 or null, got {self.patience}")

    def fingerprint(self) -> dict[str, Any]:
        """Fields that must match for a checkpoint to be resumed."""
        d = self.to_dict()
        for k in ("run_dir", "resume", "progress", "device", "patience", "threads"):
            d.pop(k)
        return d


@dataclasses.dataclass
class History:
    """Per-epoch record of a training run."""

    epochs: list[dict[str, float]] = dataclasses.field(default_factory=list)
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    stopped_early: bool = False
    resumed_from: int | None = None

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.epochs)

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": [dict(e) for e in self.epochs], "best_epoch": self.best_epoch,
                "best_val_loss": float(self.best_val_loss), "stopped_early": self.stopped_early,
                "resumed_from": -1 if self.resumed_from is None else self.resumed_from}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "History":
        r = int(d.get("resumed_from", -1))
        return cls(epochs=[dict(e) for e in d["epochs"]], best_epoch=int(d["best_epoch"]),
                   best_val_loss=float(d["best_val_loss"]),
                   stopped_early=bool(d["stopped_early"]), resumed_from=None if r < 0 else r)


# ----------------------------------------------------------------------------- data

class DictDataset(Dataset):
    """Row-aligned tensors as a dataset of dict samples (``x``, ``y``, ``weight``, ``group``).

    ``x`` may be a :class:`~compendium.imaging.dataset.StreamedImages` (images read from the
    pixel cache and preprocessed per batch): the DataLoader then fetches each batch with one
    read (``__getitems__``), so memory holds batches, not the split.
    """

    def __init__(self, x, y, *, weight=None, group=None) -> None:
        if _streamed(x):
            self.x = x
        else:
            self.x = torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x)
            if self.x.is_floating_point():
                self.x = self.x.float()
        self.y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
        n = len(self.x)
        if len(self.y) != n:
            raise ConfigError(f"{len(self.y)} targets for {n} inputs")
        self.weight = None if weight is None else torch.as_tensor(np.asarray(weight),
                                                                  dtype=torch.float32)
        self.group = None if group is None else torch.as_tensor(np.asarray(group),
                                                                dtype=torch.long)
        for name, t in (("weight", self.weight), ("group", self.group)):
            if t is not None and len(t) != n:
                raise ConfigError(f"{len(t)} {name} values for {n} inputs")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"x": self.x[i], "y": self.y[i]}
        if self.weight is not None:
            item["weight"] = self.weight[i]
        if self.group is not None:
            item["group"] = self.group[i]
        return item

    def __getitems__(self, indices: Sequence[int]) -> "Batch":
        """A whole batch by one indexing per tensor (streamed images: one read and
        preprocessing); :func:`collate` passes it through.  The same tensors, bit for bit,
        as indexing item by item and stacking (tested), without a Python call per sample
        (which was ~15 % of a linear probe's epoch)."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        x = self.x[list(indices)].float() if _streamed(self.x) else self.x[idx]
        batch = Batch(x=x, y=self.y[idx])
        if self.weight is not None:
            batch["weight"] = self.weight[idx]
        if self.group is not None:
            batch["group"] = self.group[idx]
        return batch


class Batch(dict):
    """A batch a dataset's ``__getitems__`` already assembled (see :func:`collate`)."""


def collate(data):
    """DataLoader collation: a :class:`Batch` as it is, anything else by ``default_collate``."""
    if isinstance(data, Batch):
        return dict(data)
    return torch.utils.data.default_collate(data)


def _streamed(x) -> bool:
    from ..imaging.dataset import StreamedImages

    return isinstance(x, StreamedImages)


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles with a generator seeded by ``(seed, epoch)``: order independent of history."""

    def __init__(self, n: int, *, seed: int = 0, shuffle: bool = True) -> None:
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        rng = np.random.default_rng([self.seed, self.epoch])
        return iter(rng.permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


def make_loader(dataset: Dataset, *, batch_size: int = 64, shuffle: bool = True,
                seed: int = 0, sampler=None, num_workers: int = 0,
                drop_last: bool = False) -> DataLoader:
    """A DataLoader whose order is a function of ``(seed, epoch)`` only.

    ``num_workers`` processes read and preprocess batches (the sampler's order is drawn in
    the main process, so the batches, and training, do not depend on it); they persist
    across epochs.  ``drop_last`` drops a last, incomplete batch."""
    if sampler is None:
        sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle)
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                      persistent_workers=num_workers > 0, collate_fn=collate,
                      drop_last=drop_last)


# ----------------------------------------------------------------------------- losses

def task_loss(logits: torch.Tensor, y: torch.Tensor, task: str) -> torch.Tensor:
    """Per-sample loss: cross-entropy (multiclass) or binary cross-entropy (binary,
    multilabel; NaN targets of a multilabel row are ignored)."""
    logits = logits.float()
    if task == "multiclass":
        return F.cross_entropy(logits, y.long(), reduction="none")
    if task == "binary":
        return F.binary_cross_entropy_with_logits(logits.reshape(-1), y.float().reshape(-1),
                                                  reduction="none")
    if task == "multilabel":
        y = y.float()
        known = ~torch.isnan(y)
        per = F.binary_cross_entropy_with_logits(logits, torch.nan_to_num(y), reduction="none")
        return (per * known).sum(1) / known.sum(1).clamp(min=1)
    raise ConfigError(f"unknown task {task!r} (allowed: multiclass, binary, multilabel)")


def scores_from_logits(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Probabilities: softmax (multiclass), sigmoid (binary -> (n,), multilabel)."""
    logits = logits.float()
    if task == "multiclass":
        return logits.softmax(-1)
    if task == "binary":
        return logits.reshape(-1).sigmoid()
    return logits.sigmoid()


def batch_loss(model: torch.nn.Module, batch: Mapping[str, torch.Tensor], task: str,
               *, weighted: bool = True) -> tuple[torch.Tensor, dict[str, float]]:
    """Task loss (weighted by ``batch["weight"]``) plus the adversary's loss when present."""
    out = model(batch["x"])
    per = task_loss(out["logits"], batch["y"], task)
    if weighted and "weight" in batch:
        loss = (per * batch["weight"].float()).mean()
    else:
        loss = per.mean()
    parts = {"task_loss": float(loss.detach())}
    adv = out.get("adv_logits")
    if adv is not None and "group" in batch:
        g = batch["group"]
        known = g >= 0
        if known.any():
            adv_loss = F.cross_entropy(adv.float()[known], g[known])
            loss = loss + adv_loss
            parts["adv_loss"] = float(adv_loss.detach())
    return loss, parts


# ----------------------------------------------------------------------------- fit

def _to(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _autocast(device: torch.device, amp: bool):
    if device.type == "cuda" and amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@contextlib.contextmanager
def _deterministic(device: torch.device):
    if device.type != "cpu":
        yield
        return
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def _rng_state() -> dict[str, Any]:
    """RNG states as tensors and plain types (loadable with ``weights_only=True``)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": np_state[0], "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]),
                   "gauss": py_state[2]},
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _clone_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_checkpoint(path: Path, payload: Mapping[str, Any]) -> None:
    """Write a checkpoint atomically."""
    with atomic_write(path, "wb") as fh:
        torch.save(dict(payload), fh)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def evaluate_loss(model: torch.nn.Module, loader: Iterable, task: str,
                  device: torch.device, amp: bool = True) -> float:
    """Mean unweighted task loss over a loader."""
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad(), _autocast(device, amp):
        for batch in loader:
            batch = _to(batch, device)
            per = task_loss(model(batch["x"])["logits"], batch["y"], task)
            total += float(per.sum())
            n += len(per)
    return total / max(n, 1)


def predict_scores(model: torch.nn.Module, loader: Iterable, task: str, *,
                   device: str | torch.device = "auto", amp: bool = True) -> np.ndarray:
    """Probabilities for every sample of ``loader`` (in the loader's order)."""
    device = resolve_device(device) if isinstance(device, str) else device
    model.to(device).eval()
    out = []
    with torch.no_grad(), _autocast(device, amp):
        for batch in loader:
            logits = model(batch["x"].to(device))["logits"]
            out.append(scores_from_logits(logits, task).cpu())
    return torch.cat(out).numpy().astype(np.float64)


Callback = Callable[[int, History, torch.nn.Module], None]


def fit(model: torch.nn.Module, loaders: Mapping[str, Iterable], spec: TrainSpec, *,
        callbacks: Sequence[Callback] = ()) -> History:
    """Train ``model`` on ``loaders["train"]``, select on ``loaders["val"]``.

    Parameters
    ----------
    model : nn.Module
        Returns ``{"logits": ...}`` (and ``"adv_logits"``); only parameters with
        ``requires_grad`` are optimised (LoRA: adapters and head; fine-tuning: all).
    loaders : mapping
        ``"train"`` and ``"val"`` iterables of dict batches (see module docstring).
    spec : TrainSpec
    callbacks : sequence of callables
        ``cb(epoch, history, model)`` after each epoch's checkpoint is written; an exception
        raised by a callback interrupts training (the run resumes from that checkpoint).

    Returns
    -------
    History
        The model holds the best-validation weights on return.
    """
    if "train" not in loaders or "val" not in loaders:
        raise ConfigError("fit needs 'train' and 'val' loaders")
    device = resolve_device(spec.device)
    model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("the model has no trainable parameters")
    train_loader, val_loader = loaders["train"], loaders["val"]
    steps_per_epoch = len(train_loader)
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, spec.epochs * steps_per_epoch), eta_min=spec.min_lr)
    history = History()
    best_state = _clone_state(model)
    bad_epochs, start = 0, 0
    run_dir = Path(spec.run_dir) if spec.run_dir else None
    last = run_dir / "last.pt" if run_dir else None

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), \
            _deterministic(device), torch_threads(spec.threads):
        torch.manual_seed(spec.seed)
        if last is not None and spec.resume and last.exists():
            ck = load_checkpoint(last)
            if ck["fingerprint"] != spec.fingerprint():
                raise ConfigError(f"{last} was written with different training parameters; "
                                  "use another run_dir or resume=false")
            model.load_state_dict(ck["model"])
            optimizer.load_state_dict(ck["optimizer"])
            scheduler.load_state_dict(ck["scheduler"])
            _set_rng_state(ck["rng"])
            history = History.from_dict(ck["history"])
            best_state = ck["best_state"]
            bad_epochs = int(ck["bad_epochs"])
            start = int(ck["epoch"]) + 1
            history.resumed_from = start
            log.info("resuming %s at epoch %d", last, start)
        done = history.stopped_early
        bar = _progress(range(start, spec.epochs), spec, start)
        for epoch in bar:
            if done:
                break
            for loader in (train_loader,):
                sampler = getattr(loader, "sampler", None)
                if hasattr(sampler, "set_epoch"):
                    sampler.set_epoch(epoch)
            model.train()
            tot, parts_sum, nb = 0.0, {}, 0
            for batch in train_loader:
                batch = _to(batch, device)
                optimizer.zero_grad(set_to_none=True)
                with _autocast(device, spec.amp):
                    loss, parts = batch_loss(model, batch, spec.task)
                loss.backward()
                if spec.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
                optimizer.step()
                scheduler.step()
                tot += float(loss.detach())
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0.0) + v
                nb += 1
            val_loss = evaluate_loss(model, val_loader, spec.task, device, spec.amp)
            record = {"epoch": epoch, "train_loss": tot / max(nb, 1), "val_loss": val_loss,
                      "lr": float(scheduler.get_last_lr()[0])}
            record.update({k: v / max(nb, 1) for k, v in parts_sum.items()})
            history.epochs.append(record)
            if val_loss < history.best_val_loss:
                history.best_val_loss, history.best_epoch = val_loss, epoch
                best_state = _clone_state(model)
                bad_epochs = 0
            else:
                bad_epochs += 1
            if spec.patience is not None and bad_epochs >= spec.patience:
                history.stopped_early = True
                done = True
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(train=f"{record['train_loss']:.4f}", val=f"{val_loss:.4f}")
            if last is not None:
                save_checkpoint(last, {
                    "epoch": epoch, "model": _clone_state(model),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(), "history": history.to_dict(),
                    "best_state": best_state, "bad_epochs": bad_epochs,
                    "fingerprint": spec.fingerprint()})
            for cb in callbacks:
                cb(epoch, history, model)
            if done:
                log.info("early stopping after epoch %d (best %d)", epoch, history.best_epoch)
                break
    model.load_state_dict(best_state)
    if run_dir is not None:
        save_checkpoint(run_dir / "best.pt", {"model": best_state, "history": history.to_dict()})
    return history


def _progress(it: Iterable, spec: TrainSpec, start: int):
    if not spec.progress:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, total=spec.epochs, initial=start, desc="epochs", leave=False)
