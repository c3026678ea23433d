"""The synthetic world: chest-X-ray-like images, reports, EHR and CTPA-like volumes.

Everything here is **synthetic**: no real patient's image, report or record is used.  Rows
may come from real public metadata (age and sex of NIH ChestX-ray14 or CheXpert rows as
shipped with ``torchxrayvision``); pixels, reports, EHR and volumes are generated.

Public API
----------
render_rows(cohort, indices, size)          uint8 images (n, size, size)
render_volumes(cohort, indices, size, depth) HU float32 volumes (n, depth, size, size)
render_ehr(cohort, indices)                  (n, T, 76) EHR, last 17 columns = masks
with_synthetic_pixels(cohort, knobs=, seed=) any cohort -> synthetic pixels + reports
synthetic_cxr / synthetic_inspect            the builders behind ``synthetic-cxr`` /
                                             ``synthetic-inspect`` / ``synthetic-ehr``
pretraining_pairs(n, seed=, knobs=, skew=)   image-report pairs for contrastive pretraining
BiasKnobs, GroupKnobs, default_knobs         the per-group bias knobs
extract_labels(reports)                      a simple rule-based report labeller
"""

from .cxr import FINDINGS
from .ehr import FEATURES as EHR_FEATURES
from .ehr import MASK_SLICE as EHR_MASK_SLICE
from .knobs import KNOB_MEANING, KNOB_NAMES, BiasKnobs, GroupKnobs, default_knobs, resolve_knobs
from .reports import extract_labels
from .world import (CT_LABELS, CXR_LABELS, draw_demographics, pretraining_pairs, render_ehr,
                    render_rows, render_volumes, synthetic_cxr, synthetic_inspect,
                    with_synthetic_pixels)

__all__ = ["FINDINGS", "EHR_FEATURES", "EHR_MASK_SLICE", "KNOB_MEANING", "KNOB_NAMES",
           "BiasKnobs", "GroupKnobs", "default_knobs", "resolve_knobs", "extract_labels",
           "CT_LABELS", "CXR_LABELS", "draw_demographics", "pretraining_pairs", "render_ehr",
           "render_rows", "render_volumes", "synthetic_cxr", "synthetic_inspect",
           "with_synthetic_pixels"]
