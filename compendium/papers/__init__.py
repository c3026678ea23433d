"""Per-paper pipelines: the steps of one paper's notebook, so that the notebook only wires them.

Each module holds what is specific to one paper (its cohort, its model list, its figures and
the numbers it reports: Paper A's in ``reported/paper_a.yaml``, Paper D's Table 1 in
:mod:`.paper_d`); the general machinery stays in :mod:`compendium.cohorts`,
:mod:`compendium.encoders`, :mod:`compendium.adapt` and :mod:`compendium.audit`.
"""

from __future__ import annotations

from pathlib import Path

REPORTED_DIR = Path(__file__).with_name("reported")
