"""The shared training loop: best checkpoint, early stopping, exact resume, safe loading."""

import numpy as np
import pytest
import torch

from compendium.adapt.models import Classifier
from compendium.adapt.training import (DictDataset, TrainSpec, fit, load_checkpoint,
                                       make_loader)
from compendium.errors import ConfigError

from tests.adapt_synth import synthetic_embeddings, synthetic_rows


class Interrupt(Exception):
    pass


def _setup(seed=0):
    rows, y = synthetic_rows(200, ["a", "b", "c"], seed=seed)
    X = synthetic_embeddings(y, rows["sex"], seed=seed).astype(np.float32)
    g = (rows["sex"] == "F").to_numpy().astype(int)
    train = DictDataset(X[:150], y[:150], group=g[:150])
    val = DictDataset(X[150:], y[150:])
    loaders = {"train": make_loader(train, batch_size=32, seed=seed),
               "val": make_loader(val, batch_size=64, shuffle=False)}
    # dropout and an adversary exercise the RNG and every part of the state
    model = Classifier(None, X.shape[1], 3, hidden=(16,), dropout=0.3, adversary_alpha=1.0,
                       seed=seed)
    return model, loaders


def _spec(tmp_path, name, **kw):
    return TrainSpec(epochs=6, lr=5e-3, device="cpu", progress=False, threads=1,
                     run_dir=str(tmp_path / name), **kw)


def test_resume_after_interrupt_matches_uninterrupted(tmp_path):
    model, loaders = _setup()
    ref_hist = fit(model, loaders, _spec(tmp_path, "ref"))
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    ref_last = load_checkpoint(tmp_path / "ref" / "last.pt")["model"]

    def stop_after_2(epoch, history, model):
        if epoch == 2:
            raise Interrupt

    model2, loaders2 = _setup()
    with pytest.raises(Interrupt):
        fit(model2, loaders2, _spec(tmp_path, "run"), callbacks=[stop_after_2])
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
    # a fresh process would build a fresh model (different init) and loaders
    model3, loaders3 = _setup(seed=0)
    torch.nn.init.zeros_(model3.head.weight)
    torch.rand(10)   # disturb the global RNG: the run must not depend on it
    hist = fit(model3, loaders3, _spec(tmp_path, "run"))
    assert hist.resumed_from == 3
    assert len(hist.epochs) == len(ref_hist.epochs) == 6
    assert [e["val_loss"] for e in hist.epochs] == [e["val_loss"] for e in ref_hist.epochs]
    assert hist.best_epoch == ref_hist.best_epoch
    for k, v in model3.state_dict().items():
        assert torch.equal(v, reference[k]), k
    run_last = load_checkpoint(tmp_path / "run" / "last.pt")["model"]
    for k in ref_last:
        assert torch.equal(run_last[k], ref_last[k]), k


def test_checkpoint_loads_weights_only(tmp_path):
    model, loaders = _setup()
    fit(model, loaders, _spec(tmp_path, "w"))
    ck = torch.load(tmp_path / "w" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "history", "best_state"} <= set(ck)
    assert isinstance(ck["rng"]["torch"], torch.Tensor)
    assert not list((tmp_path / "w").glob("*.partial"))


def test_best_checkpoint_is_lowest_validation_loss():
    model, loaders = _setup()
    hist = fit(model, loaders, TrainSpec(epochs=8, lr=5e-2, device="cpu", progress=False,
                                         threads=1))
    losses = [e["val_loss"] for e in hist.epochs]
    assert hist.best_epoch == int(np.argmin(losses))
    from compendium.adapt.training import evaluate_loss

    assert evaluate_loss(model, loaders["val"], "multiclass",
                         torch.device("cpu")) == pytest.approx(min(losses), rel=1e-5)


def test_early_stopping():
    model, loaders = _setup()
    # a huge learning rate makes the validation loss rise quickly
    hist = fit(model, loaders, TrainSpec(epochs=50, lr=5.0, patience=2, device="cpu",
                                         progress=False, threads=1))
    assert hist.stopped_early and len(hist.epochs) < 50
    assert len(hist.epochs) == hist.best_epoch + 3


def test_resume_refuses_other_parameters(tmp_path):
    model, loaders = _setup()
    fit(model, loaders, _spec(tmp_path, "x"))
    with pytest.raises(ConfigError, match="different training parameters"):
        fit(model, loaders, _spec(tmp_path, "x", weight_decay=0.5))


def test_spec_validation():
    with pytest.raises(ConfigError, match="epochs"):
        TrainSpec(epochs=0)
    with pytest.raises(ConfigError, match="unknown key"):
        TrainSpec.from_dict({"epoch": 3})


def test_batches_are_the_stacked_items_bit_for_bit():
    """DictDataset hands the loader whole batches (one indexing per tensor); they must equal
    item-by-item indexing and default collation exactly, weights and groups included."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(70, 5)).astype(np.float32)
    y = rng.integers(0, 3, 70)
    ds = DictDataset(X, y, weight=rng.random(70), group=rng.integers(0, 2, 70))
    loader = make_loader(ds, batch_size=16, seed=4)
    order = list(loader.sampler)
    assert order != sorted(order)                      # shuffled: indexing order matters
    batches = list(loader)
    assert len(batches) == 5
    for b, fast in enumerate(batches):
        idx = order[b * 16:(b + 1) * 16]
        ref = torch.utils.data.default_collate([ds[i] for i in idx])
        assert set(fast) == set(ref) == {"x", "y", "weight", "group"}
        for k in ref:
            assert fast[k].dtype == ref[k].dtype and torch.equal(fast[k], ref[k]), k
