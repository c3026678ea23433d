"""Cohorts: real dataset builders, NIH 6x200, patient-wise utilities, synthetic cohorts."""

from .base import (COHORTS, STANDARD_COLUMNS, Cohort, build_cohort, load_builders,
                   register_cohort, validate_table)


def describe_cohorts() -> list[str]:
    """One line per registered cohort (for ``compendium list cohorts``)."""
    load_builders()
    return [f"{e.name:<28} {e.source:<32} {e.description}" for _, e in COHORTS.items()]


__all__ = ["COHORTS", "STANDARD_COLUMNS", "Cohort", "build_cohort", "register_cohort",
           "validate_table", "describe_cohorts", "load_builders"]
