"""Per-paper pipelines: the steps of one paper's notebook, so that the notebook only wires them.

Each module holds what is specific to one paper (its cohort, its model list, its figures and
the numbers it reports, read from ``reported/<paper>.yaml``); the general machinery stays in
:mod:`compendium.cohorts`, :mod:`compendium.encoders`, :mod:`compendium.adapt` and
:mod:`compendium.audit`.
"""

from __future__ import annotations

from pathlib import Path

REPORTED_DIR = Path(__file__).with_name("reported")
