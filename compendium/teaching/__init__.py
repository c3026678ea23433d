"""The fairness-auditing course: lesson computations (:mod:`.lessons`), auto-checked
exercises (:mod:`.checks`), the teaching world (:mod:`.world`) and the 'find the bias'
challenges (:mod:`.challenge`, ``compendium teaching``).  Light to import."""

from .checks import EXERCISES, Verdict, check, exercises

__all__ = ["EXERCISES", "Verdict", "check", "exercises"]
