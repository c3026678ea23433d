"""Adaptation and mitigation: zero-shot, probes, LoRA, full fine-tuning, mitigations.

Every method returns the predictions table of the test split
(:func:`compendium.adapt.predictions.predictions_table`) and its training history.

============================  ==============================================================
module                        what
============================  ==============================================================
``predictions``               the predictions table (the hand-off to ``compendium.audit``)
``prompts``, ``zeroshot``     prompt families (CLIP, GLoRIA, CXR-CLIP styles) and zero-shot
``probes``                    sklearn-style probes on embeddings, ``run_probe``, patient-wise CV
``training``                  ``fit(model, loaders, spec) -> History``: the one training loop
``lora``, ``finetune``        LoRA (peft) and full fine-tuning of ``encoder.visual``
``mitigation``                importance weights, balanced resampling, gradient-reversal
                              adversary, alpha selection, demographic probe
``demo``                      mitigations on synthetic embeddings with an injected disparity
``tiny``                      a tiny random open_clip behind the encoder interface (tests)
============================  ==============================================================

Submodules other than ``predictions`` import torch; this package module stays light.
"""

from .predictions import ATTRIBUTE_COLUMNS, attribute_columns, labels_from_rows, predictions_table

__all__ = ["ATTRIBUTE_COLUMNS", "attribute_columns", "labels_from_rows", "predictions_table"]
