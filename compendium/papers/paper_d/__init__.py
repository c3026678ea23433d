"""Paper D (Shin, Marshall, Komorowski): CXR-Foundation vs MedImageInsight on MIMIC-CXR and
NIH.  Steps in :mod:`.pipeline`, tables and quoted numbers in :mod:`.tables`, figures in
:mod:`.figures`, parameters in :mod:`.spec`, Table 1 as printed in ``reported.yaml``.
"""

from . import figures, pipeline, tables
from .spec import LABELS, NIH_OPACITY, PAPER_MODELS, PaperDSpec

__all__ = ["LABELS", "NIH_OPACITY", "PAPER_MODELS", "PaperDSpec", "figures", "pipeline",
           "tables"]
