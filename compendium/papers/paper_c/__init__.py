"""Paper C (Khosravi et al.): label source (CheXpert rule-based vs LLM-extracted) and the
"No Finding" false-positive-rate gaps of a supervised CNN and heads on RAD-DINO, CXR
Foundation and DINOv2 embeddings; beyond the paper, a label audit on Open-i's real reports.
Steps in :mod:`.pipeline`, tables and claims in :mod:`.tables`, figures in :mod:`.figures`,
parameters in :mod:`.spec`, the abstract's numbers in ``reported.yaml``.
"""

from . import figures, pipeline, tables
from .spec import LABEL_SOURCES, PAIRS, PAPER_MODELS, PaperCSpec

__all__ = ["LABEL_SOURCES", "PAIRS", "PAPER_MODELS", "PaperCSpec", "figures", "pipeline",
           "tables"]
