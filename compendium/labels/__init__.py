"""Report labellers: one interface (:class:`~.base.Labeller`, ``label(texts)`` -> CheXpert
codes per observation), a registry (:func:`create_labeller`, :func:`list_labellers`), the
readers of reports and label files (:mod:`.io`) and the ``compendium labels`` command
(:mod:`.cli`).  Built in: ``chexpert-rules`` (spaCy + negspacy, :mod:`.rules`),
``minilm-head`` and ``hf-head`` (frozen text encoder + logistic regressions,
:mod:`.encoder`).  Light to import: spaCy and torch load on first use.
"""

from .base import (COLUMNS, LABELLERS, NO_FINDING, OBSERVATIONS, Labeller, binarise,
                   create_labeller, describe_labellers, list_labellers, no_finding,
                   register_labeller)
from .io import read_label_csv, read_reports

__all__ = ["COLUMNS", "LABELLERS", "Labeller", "NO_FINDING", "OBSERVATIONS", "binarise",
           "create_labeller", "describe_labellers", "list_labellers", "no_finding",
           "read_label_csv", "read_reports", "register_labeller"]
