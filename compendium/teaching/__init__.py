"""The fairness-auditing course: lesson computations (:mod:`.lessons`), auto-checked
exercises (:mod:`.checks`), the teaching world (:mod:`.world`) and the 'find the bias'
challenges (:mod:`.challenge`, ``compendium teaching``).

Light to import (the command line imports :mod:`.cli` for every command): the names below
are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXERCISES", "Verdict", "check", "exercises", "lessons"]


def __getattr__(name: str) -> Any:
    import importlib

    if name in ("EXERCISES", "Verdict", "check", "exercises"):
        return getattr(importlib.import_module(f"{__name__}.checks"), name)
    if name == "lessons":
        return importlib.import_module(f"{__name__}.lessons")
    raise AttributeError(f"module 'compendium.teaching' has no attribute {name!r}")
