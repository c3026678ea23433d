"""Adaptation and mitigation: zero-shot, probes, LoRA, full fine-tuning, mitigations.

Every method returns the predictions table of the test split
(:func:`compendium.adapt.predictions.predictions_table`) and its training history.
Submodules import torch; this package module stays light.
"""

from .predictions import ATTRIBUTE_COLUMNS, labels_from_rows, predictions_table

__all__ = ["ATTRIBUTE_COLUMNS", "labels_from_rows", "predictions_table"]
