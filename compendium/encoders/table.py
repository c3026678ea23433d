"""The models reference table, generated from the registry.

``models_table()`` returns one row per registry entry; ``models_markdown()`` renders it;
``write_models_chapter(path)`` writes ``book/reference/models.md`` (run
``python -m compendium.encoders.table book/reference/models.md``; a test checks the
committed chapter is current).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from .base import MODELS, load_entries

COLUMNS = ["model", "paper", "family", "weights", "licence", "access", "preprocessing",
           "embed dim", "text encoder", "LoRA targets", "demo stand-in"]


def models_table() -> pd.DataFrame:
    """One row per registered model (toy encoders last)."""
    load_entries()
    rows = []
    for name, e in MODELS.items():
        rows.append({
            "model": name, "paper": e.paper, "family": e.family,
            "weights": e.hub_id or e.weights, "licence": e.licence,
            "access": ("gated; " if e.gated else "") + e.access,
            "preprocessing": e.preprocess.describe(), "embed dim": e.embed_dim,
            "text encoder": e.text_encoder or "-",
            "LoRA targets": ", ".join(e.lora_targets) or "-",
            "demo stand-in": e.demo_standin, "_toy": e.kind == "toy"})
    df = pd.DataFrame(rows).sort_values(["_toy", "model"]).drop(columns="_toy")
    return df.reset_index(drop=True)[COLUMNS]


def models_markdown(df: pd.DataFrame | None = None) -> str:
    df = models_table() if df is None else df
    esc = lambda v: str(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(esc(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


INTRO = """\
# Models

*This page is generated from the encoder registry by
`python -m compendium.encoders.table book/reference/models.md`; do not edit it by hand.*

Every model of the five papers is one entry of the registry (`compendium list models`).
Each entry carries its preprocessing, embedding size, text encoder and LoRA target modules,
and names the **toy encoder that stands in for it** in the `demo` and `smoke` profiles.
Weights are never downloaded by the package: they are looked up in the Hugging Face cache
(`HF_HOME`, offline) or at a `weights_path` given in the parameters, and read from
safetensors or with `torch.load(weights_only=True)`.  When they are missing the run stops
with a message naming the model, where it looked and the command to fetch them on a machine
with internet: `compendium weights fetch NAME` (`--dry-run` prints what it would fetch).

**MedImageInsight and CXR Foundation (ELIXR v2.0) are not run by this package.**  Their
official releases are not PyTorch modules, so the registry holds an *adapter* that reads the
embeddings the vendor's own tool produced: an `.npz` file with an array `sample_id` (n,) of
the cohort's sample ids and an array `embeddings`, either (n, D) vectors or (n, T, D) token
features, which are mean-pooled over tokens as Paper D does (CXR Foundation: 32 x 768 tokens
-> 768; MedImageInsight: 1024).  Their preprocessing column describes what that tool is fed.

The toy encoders (`toy-clip-*`) are small CLIP models built with `open_clip`'s model class
and pretrained contrastively on **synthetic** image-report pairs of the synthetic world on
first use (cached under `$COMPENDIUM_CACHE/toy-encoders`, never committed); one of them is
pretrained on a corpus in which women are rare (10 %).  They are teaching stand-ins: their
numbers are synthetic and say nothing about the real models.

"""


def chapter_text() -> str:
    return INTRO + models_markdown() + "\n"


def write_models_chapter(path: str | Path) -> Path:
    from ..atomic import atomic_write

    with atomic_write(path) as fh:
        fh.write(chapter_text())
    return Path(path)


if __name__ == "__main__":  # pragma: no cover
    write_models_chapter(sys.argv[1] if len(sys.argv) > 1 else "book/reference/models.md")
