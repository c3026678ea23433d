"""Paper E (MedCAM): modular alignment of a pretrained chest-X-ray encoder with EHR time
series.  Steps in :mod:`.pipeline`, tables and quoted numbers in :mod:`.tables`, figures in
:mod:`.figures`, parameters in :mod:`.spec`, Tables 2-4 as printed in ``reported.yaml``.
"""

from .spec import PAPER_MODELS, STRATEGIES, PaperESpec

__all__ = ["PAPER_MODELS", "STRATEGIES", "PaperESpec"]
