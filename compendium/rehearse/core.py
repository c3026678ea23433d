"""Rehearsal of a paper's ``full`` profile on miniature data in the real on-disk formats.

:func:`rehearse` writes, under ``out``:

``data/``      a miniature dataset in each real layout the paper's ``full`` profile reads
               (pixels from the synthetic world; real public metadata rows where we have them)
``weights/``   the models' weights where the paper's full profile reads a file (the vendor
               tools' ``.npz`` embeddings files; checkpoints of the real architectures)
``hf/``        a Hugging Face cache (``HF_HOME``) holding weights in the hub's layout
``params.yaml`` the parameters passed to the run: the data folders and weights, and the
               budget parameters shrunk (epochs, sample counts, bootstrap sizes) - nothing else
``results/``   the run's results (``COMPENDIUM_RESULTS``), never the project's ``results/``
``cache/``     the run's embeddings and pixel caches (``COMPENDIUM_CACHE``)
``rehearsal.json`` what was rehearsed, skipped, and the privacy check's result

then runs the paper's notebook with ``compendium run PAPER --profile full --params
out/params.yaml`` (the normal runner: ``spec.check()``, papermill, publication) and scans
every output for per-patient rows (:func:`privacy_scan`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError, InputError

#: Output files scanned as text.
TEXT_SUFFIXES = (".csv", ".json", ".ipynb", ".txt", ".md", ".html", ".tsv", ".yaml", ".svg")


@dataclasses.dataclass
class Prepared:
    """What a paper's preparer wrote: the parameters of the run, the identifiers no output
    may contain, and what the rehearsal covers and skips (for ``rehearsal.json`` and the
    Re-running chapter)."""

    params: dict[str, Any]
    identifiers: set[str]
    covers: list[str]
    skips: list[str]
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the run is expected to stop with a ConfigError holding this text (a profile whose path
    #: is not implemented: the rehearsal then checks that it gets that far and no further)
    expect_refusal: str = ""
    #: checks run before the notebook (e.g. every cohort built, every encoder loaded by its
    #: real loader); each returns one line for ``covers``
    verify: Callable[[], list[str]] | None = None


#: Parameters a rehearsal may set besides the budget: where the inputs are, and the device.
INPUT_KEYS = ("data_roots", "weights", "ehr_features", "llm_labels", "device")
#: The budget parameters a rehearsal may shrink (epochs, sample counts, bootstrap sizes,
#: restarts, boosting rounds); any other parameter keeps its ``full`` value.
BUDGET_KEYS = ("n_bootstrap", "n_permutations", "null_sims", "n_draws", "epochs",
               "adapt_epochs", "finetune_epochs", "max_epochs", "eval_every", "patience",
               "n_per_class", "kmeans_n_init", "k_range", "umap_neighbors", "lightgbm",
               "n_slices", "slice_size", "min_group_size", "batch_size", "openi_reports",
               "openi_labelled", "mlp_epochs", "adversary_epochs", "baseline_epochs",
               "mil_epochs", "sweep_points", "group_size", "learning_rates", "interval_sims",
               "adapt_train_rows", "ood_strategies",
                # Paper E: alignment / pretraining epochs, the learning-rate grid, the
                # fine-tuning batch, its ablation grids, and the least rows of a validation
                # or test split (Table 1's CheXpert 0.1 % is empty at miniature size)
                "align_epochs", "pretrain_epochs", "lrs", "ft_batch_size", "ablation_k",
                "ablation_tau", "min_eval_rows")


PREPARERS: dict[str, Callable[..., Prepared]] = {}


def preparer(paper: str):
    def deco(fn):
        PREPARERS[paper] = fn
        return fn
    return deco


def papers() -> list[str]:
    from . import papers as _  # noqa: F401  (registers the preparers)

    return sorted(PREPARERS)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def privacy_scan(folder: Path, identifiers: set[str]) -> list[str]:
    """Problems of a ``full`` run's outputs: a table with a per-row identifier column, a
    count column (:data:`compendium.results.COUNT_COLUMNS`) holding a count from 1 to
    ``MIN_CELL_COUNT - 1`` (full's small-cell rule), or any output file holding one of
    ``identifiers`` (sample, image, study or patient ids of the rehearsal's data).  Returns
    one line per problem (empty: clean)."""
    from ..results import COUNT_COLUMNS, MIN_CELL_COUNT, ROW_ID_COLUMNS

    problems: list[str] = []
    ids = sorted((i for i in identifiers if i), key=len, reverse=True)
    pattern = (re.compile(r"(?<![\w.])(?:" + "|".join(re.escape(i) for i in ids) + r")(?![\w])")
               if ids else None)
    for path in sorted(Path(folder).rglob("*")):
        if not path.is_file() or path.suffix.lower() not in TEXT_SUFFIXES:
            continue
        rel = path.relative_to(folder)
        if path.suffix.lower() == ".csv":
            try:
                table = pd.read_csv(path)
            except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
                table = pd.DataFrame()
            bad = [c for c in table.columns if c in ROW_ID_COLUMNS]
            if bad:
                problems.append(f"{rel}: per-row identifier column(s) {bad}")
            for c in table.columns:
                if not COUNT_COLUMNS.search(str(c)):
                    continue
                v = pd.to_numeric(table[c], errors="coerce")
                small = (v > 0) & (v < MIN_CELL_COUNT) & (v == v.round())
                if small.any():
                    problems.append(f"{rel}: count column {c!r} shows {int(v[small].iloc[0])} "
                                    f"(full suppresses counts below {MIN_CELL_COUNT})")
        if pattern is not None:
            text = path.read_text(errors="replace")
            hit = pattern.search(text)
            if hit:
                problems.append(f"{rel}: holds identifier {hit.group(0)!r} of the rehearsal's "
                                "data")
    return problems


def write_params(path: Path, params: dict[str, Any]) -> Path:
    import yaml

    from ..atomic import atomic_write

    with atomic_write(path) as fh:
        yaml.safe_dump(params, fh, sort_keys=False)
    return path


def load_every_encoder(paper: str, params_file: Path, root=None) -> list[str]:
    """The run's preflight (``spec.check()``: every data folder and weight found), then every
    encoder the run needs built and loaded by its real loader, as the notebook would."""
    from ..encoders import load_encoder
    from ..runner import resolve_params

    spec = resolve_params(paper, "full", params_file=params_file, root=root)
    spec.check()
    lines = ["the full profile's preflight (spec.check: every folder and weight found)"]
    for enc in spec.encoders_needed():
        load_encoder(enc, pretrained=spec.pretrained, weights=spec.weights.get(enc) or None,
                     device="cpu", seed=spec.seed, progress=False)
        lines.append(f"{enc}: built and loaded by its real loader")
    return lines


def rehearse(paper: str, out: str | Path, *, device: str = "cpu", seed: int = 0,
             progress: bool = False, root: str | Path | None = None,
             check_only: bool = False) -> dict[str, Any]:
    """Write the miniature data and weights of ``paper``'s ``full`` profile under ``out``,
    run its notebook there with the normal runner, scan the outputs; returns the summary
    written to ``out/rehearsal.json``.  ``check_only``: write everything, run the preflight
    and load every encoder with its real loader, but not the notebook.  On CUDA the runs use bf16 autocast (the package's
    default there).  Raises :class:`InputError` when the privacy scan
    finds a per-patient row."""
    from ..atomic import write_json
    from ..runner import run_notebook

    if paper not in papers():
        raise ConfigError(f"rehearse: no rehearsal for {paper!r} (available: "
                          f"{', '.join(papers())})")
    out = Path(out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    env = {"COMPENDIUM_RESULTS": str(out / "results"), "COMPENDIUM_CACHE": str(out / "cache"),
           "HF_HOME": str(out / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    with _environ(env):
        os.environ.pop("HF_HUB_CACHE", None)
        prep = PREPARERS[paper](out, seed=seed, device=device)
        params = {**prep.params, "device": device}
        other = sorted(set(params) - set(INPUT_KEYS) - set(BUDGET_KEYS))
        if other:
            raise ConfigError(f"rehearse {paper}: only inputs and budget parameters may "
                              f"differ from the full profile, not {other}")
        params_file = write_params(out / "params.yaml", params)
        verified = prep.verify() if prep.verify else []
        if check_only:
            verified += load_every_encoder(paper, params_file, root)
        prepared_s = time.time() - started
        refused, result = "", None
        with _environ(prep.env):
            try:
                if not check_only:
                    result = run_notebook(paper, "full", params_file=params_file, root=root,
                                          progress=progress)
            except ConfigError as exc:
                if not prep.expect_refusal or prep.expect_refusal not in str(exc):
                    raise
                refused = str(exc)
        if prep.expect_refusal and not refused and not check_only:
            raise InputError(f"rehearse {paper}: expected the run to refuse "
                             f"({prep.expect_refusal!r}), but it ran")
    problems = privacy_scan(result.output_dir, prep.identifiers) if result else []
    summary = {"paper": paper, "check_only": check_only,
               "output_dir": str(result.output_dir) if result else "",
               "device": device, "params_file": str(params_file),
               "prepare_seconds": round(prepared_s, 1),
               "run_seconds": round(result.seconds, 1) if result else 0.0,
               "budget": {k: params[k] for k in BUDGET_KEYS if k in params},
               "covers": prep.covers + verified, "skips": prep.skips, "refused": refused,
               "identifiers_checked": len(prep.identifiers), "privacy_problems": problems}
    write_json(out / "rehearsal.json", summary)
    if problems:
        raise InputError(f"rehearse {paper}: the full profile's outputs hold per-patient rows: "
                         + " | ".join(problems[:5]))
    return summary
