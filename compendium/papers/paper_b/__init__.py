"""Paper B (Mohan et al.): a fairness audit of MedImageInsight, MedSigLIP and BiomedCLIP on
INSPECT's CTPA studies.  Steps in :mod:`.pipeline`, tables and claim checks in :mod:`.tables`,
figures in :mod:`.figures`, parameters in :mod:`.spec`, every printed number in
``reported.yaml``.
"""

from . import figures, pipeline, tables
from .spec import ATTRIBUTES, PAPER_MODELS, STAND_INS, TASKS, PaperBSpec

__all__ = ["ATTRIBUTES", "PAPER_MODELS", "STAND_INS", "TASKS", "PaperBSpec", "figures",
           "pipeline", "tables"]
