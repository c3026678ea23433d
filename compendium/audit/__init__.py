"""The audit engine: metrics, statistics and the tidy audit table.

>>> from compendium.audit import audit, f1_gap, tpr_gap
"""

from .metrics import (GAPS, METRICS, SPECS, MetricSpec, accuracy, auprc, auroc,
                      auroc_difference, auroc_gap, by_group, ece, ece_difference, ece_gap,
                      eqodds, f1, f1_difference, f1_gap, f1_var, fpr, fpr_difference, fpr_gap,
                      tpr, tpr_difference, tpr_gap, udr, udr_difference, udr_gap,
                      worst_group_auroc)
from .predictions import parse_predictions, read_predictions
from .report import COLUMNS, audit, summary
from .stats import adjust_pvalues, iter_resample_counts, percentile_interval, permutation_pvalue
from .thresholds import choose_threshold, threshold_sweep

__all__ = [
    "COLUMNS", "GAPS", "METRICS", "SPECS", "MetricSpec", "accuracy", "adjust_pvalues", "audit",
    "auprc", "auroc", "auroc_difference", "auroc_gap", "by_group", "choose_threshold", "ece",
    "ece_difference", "ece_gap", "eqodds", "f1", "f1_difference", "f1_gap", "f1_var", "fpr",
    "fpr_difference", "fpr_gap", "iter_resample_counts", "parse_predictions",
    "percentile_interval", "permutation_pvalue", "read_predictions", "summary",
    "threshold_sweep", "tpr", "tpr_difference", "tpr_gap", "udr", "udr_difference", "udr_gap",
    "worst_group_auroc",
]
