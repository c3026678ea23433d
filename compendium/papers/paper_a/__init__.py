"""Paper A (Sun et al., ISBI 2025): CLIP-like models on NIH 6x200, zero-shot to full
fine-tuning.  Steps in :mod:`.pipeline`, tables and quoted numbers in :mod:`.tables`, figures
in :mod:`.figures`, parameters in :mod:`.spec`, the paper's numbers in ``reported.yaml``.

Light to import: torch and the models load when a step runs.
"""

from . import figures, pipeline, tables
from .spec import METHODS, PAPER_MODELS, PaperASpec

__all__ = ["METHODS", "PAPER_MODELS", "PaperASpec", "figures", "pipeline", "tables"]
