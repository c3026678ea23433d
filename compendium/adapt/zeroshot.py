"""Zero-shot classification from image-text similarity (Paper A, section 2.3).

For one draw of prompts (:func:`~compendium.adapt.prompts.prompt_draw`), each class's text
embedding is the normalised mean of its normalised prompt embeddings; class probabilities
are ``softmax(scale * cos(image, class))``.  Stochastic families are evaluated over
``n_draws`` seeded draws (draw ``d`` uses the generator seeded with ``(seed, d)``, the same
prompts on every split); their accuracy is the mean over draws.  The predictions table of a
family either holds every draw as a run (``combine="mean_of_runs"``: a ``run`` column, for
``compendium.audit.audit(..., runs="run")``, which averages every metric over the runs) or
the mean probabilities over the draws (``combine="ensemble"``: one prediction per image).
:func:`zero_shot_eval` scores the three families and picks the best one per model on the
validation split, reporting all three.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import ConfigError, InputError
from .predictions import labels_from_rows, predictions_table
from .prompts import PROMPT_FAMILIES, list_prompt_families, prompt_draw

log = logging.getLogger(__name__)

#: How the draws of a stochastic prompt family become predictions (see the module docstring).
COMBINE = ("mean_of_runs", "ensemble")


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True).clamp(min=1e-12)


def class_text_embeddings(encoder, prompts: dict[str, list[str]],
                          classes: Sequence[str]) -> torch.Tensor:
    """(C, D) normalised class embeddings: mean of the normalised prompt embeddings."""
    if not getattr(encoder, "has_text", False):
        raise ConfigError("zero-shot needs an encoder with a text tower (has_text)")
    out = []
    with torch.no_grad():
        for c in classes:
            emb = torch.as_tensor(encoder.encode_text(list(prompts[c]))).float()
            out.append(_normalise(_normalise(emb).mean(0)))
    return torch.stack(out)


def zero_shot_probs(image_embeddings, text_embeddings, *, scale: float = 100.0) -> np.ndarray:
    """``softmax(scale * cosine(image, class))``, shape (N, C)."""
    img = _normalise(torch.as_tensor(np.asarray(image_embeddings), dtype=torch.float32))
    txt = _normalise(torch.as_tensor(text_embeddings, dtype=torch.float32))
    if img.shape[1] != txt.shape[1]:
        raise InputError(f"image embeddings have {img.shape[1]} dims, text {txt.shape[1]}")
    return (scale * img @ txt.T).softmax(-1).double().numpy()


@dataclasses.dataclass
class ZeroShotResult:
    """Scores of one prompt family on one split, per draw."""

    family: str
    prompts: list[dict[str, list[str]]]
    probs: np.ndarray                 # (n_draws, N, C)

    @property
    def mean_probs(self) -> np.ndarray:
        return self.probs.mean(0)

    def accuracies(self, y_true: np.ndarray) -> np.ndarray:
        """Accuracy of each draw."""
        return (self.probs.argmax(-1) == np.asarray(y_true)[None, :]).mean(1)


def prompt_draws(encoder, classes: Sequence[str], family: str, *, n_draws: int = 10,
                 seed: int = 0, n_prompts: int | None = None):
    """The draws of one family: ``[(prompts, class_text_embeddings), ...]`` (one draw for a
    deterministic family; draw ``d`` seeded with ``(seed, d)``)."""
    fam = PROMPT_FAMILIES.get(family)
    if n_draws < 1:
        raise ConfigError(f"n_draws must be >= 1, got {n_draws}")
    out = []
    for d in range(n_draws if fam.stochastic else 1):
        p = prompt_draw(family, list(classes), seed=np.random.default_rng([seed, d]),
                        n_prompts=n_prompts)
        out.append((p, class_text_embeddings(encoder, p, classes)))
    return out


def zero_shot(encoder, image_embeddings, classes: Sequence[str], family: str, *,
              n_draws: int = 10, seed: int = 0, n_prompts: int | None = None,
              scale: float = 100.0, draws=None) -> ZeroShotResult:
    """Zero-shot probabilities of one prompt family (one draw if it is deterministic).

    ``draws`` (from :func:`prompt_draws`) reuses text embeddings across splits.
    """
    if draws is None:
        draws = prompt_draws(encoder, classes, family, n_draws=n_draws, seed=seed,
                             n_prompts=n_prompts)
    probs = [zero_shot_probs(image_embeddings, txt, scale=scale) for _, txt in draws]
    return ZeroShotResult(family, [p for p, _ in draws], np.stack(probs))


def zero_shot_eval(encoder, data: dict[str, tuple[np.ndarray, pd.DataFrame]],
                   classes: Sequence[str], *, families: Sequence[str] | None = None,
                   n_draws: int = 10, seed: int = 0, scale: float = 100.0,
                   combine: str = "mean_of_runs") -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Evaluate every prompt family; choose the best on validation (multi-class tasks).

    Parameters
    ----------
    encoder : Encoder with a text tower
    data : dict
        ``{"val": (image_embeddings, rows), "test": (image_embeddings, rows)}``.
    classes : class names (label columns of the rows)
    combine : {"mean_of_runs", "ensemble"}
        What the predictions tables hold: every draw as a run (column ``run``; audit with
        ``runs="run"`` to average each metric over the draws), or one prediction per image
        from the draws' mean probabilities.

    Returns
    -------
    table : DataFrame
        Predictions table of the test split for the chosen family (see ``combine``).
    summary : DataFrame
        One row per family: validation and test accuracy (mean and std over draws),
        number of draws, ``chosen``.
    tables : dict
        Predictions table of every family.
    """
    for split in ("val", "test"):
        if split not in data:
            raise ConfigError(f"zero_shot_eval needs a {split!r} split")
    if combine not in COMBINE:
        raise ConfigError(f"combine {combine!r} (allowed: {', '.join(COMBINE)})")
    families = list(families or list_prompt_families())
    rows = []
    tables = {}
    for fam in families:
        res = {}
        draws = prompt_draws(encoder, classes, fam, n_draws=n_draws, seed=seed)
        for split in ("val", "test"):
            emb, r = data[split]
            y = labels_from_rows(r, classes, "multiclass")
            zs = zero_shot(encoder, emb, classes, fam, scale=scale, draws=draws)
            res[split] = (zs, zs.accuracies(y))
        zs_test, rows_test = res["test"][0], data["test"][1]
        if combine == "ensemble":
            tables[fam] = predictions_table(rows_test, zs_test.mean_probs, classes, "multiclass")
        else:
            tables[fam] = pd.concat(
                [predictions_table(rows_test, p, classes, "multiclass").assign(run=d)
                 for d, p in enumerate(zs_test.probs)], ignore_index=True)
        rows.append({"family": fam, "n_draws": len(res["val"][1]),
                     "val_accuracy": float(res["val"][1].mean()),
                     "val_accuracy_sd": float(res["val"][1].std()),
                     "test_accuracy": float(res["test"][1].mean()),
                     "test_accuracy_sd": float(res["test"][1].std())})
        log.info("zero-shot %s: val %.3f test %.3f", fam, rows[-1]["val_accuracy"],
                 rows[-1]["test_accuracy"])
    summary = pd.DataFrame(rows)
    best = summary.loc[summary["val_accuracy"].idxmax(), "family"]
    summary["chosen"] = summary["family"] == best
    return tables[best], summary, tables
