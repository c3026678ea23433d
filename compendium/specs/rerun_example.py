"""Spec of ``notebooks/rerun_example.ipynb``: the Re-running chapter's worked example.

The notebook runs ``compendium params``, two ``compendium run`` (the profile's own run and a
named run with some parameters changed), ``compendium runs`` and ``compendium compare`` in
child processes, and shows what they print: the chapter's example is generated, not typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..config import ranged
from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook


@register_notebook(
    "rerun_example", title="Example: a parameter changed, two runs compared",
    description="compendium params, run --name, runs and compare on a real pair of runs "
                "(bias knobs on and off), with their output.")
@dataclass(frozen=True)
class RerunExampleSpec(NotebookSpec):
    """Parameters of the Re-running chapter's example (its runs are synthetic-world runs)."""

    #: the notebook the example runs twice
    notebook: str = "synthetic_world"
    #: the profile of the example's two runs
    run_profile: Literal["smoke", "demo", "full"] = "smoke"
    #: the name of the second run (compendium run --name)
    run_name: str = "knobs-off"
    #: the parameters the second run changes, as --set KEY=VALUE (VALUE read as YAML)
    changes: list[str] = ranged(default_factory=lambda: ["knobs=zero"], min_items=1)
    #: tables whose cells the page's highlights list (empty: every table)
    tables: list[str] = field(default_factory=list)

    @property
    def run_a(self) -> str:
        """The profile's own run, as ``compendium compare`` names it."""
        return f"{self.notebook}/{self.run_profile}"

    @property
    def run_b(self) -> str:
        """The named run with the changed parameters."""
        return f"{self.run_a}/{self.run_name}"

    def set_args(self) -> list[str]:
        """``changes`` as command-line arguments: ``--set KEY=VALUE`` each."""
        return [arg for change in self.changes for arg in ("--set", change)]

    def results_folder(self) -> Path:
        """Where the example's runs go: ``runs/`` in this run's own folder (a temporary
        folder when the notebook runs by hand, without an ``output_dir``)."""
        import tempfile

        return Path(self.output_dir or tempfile.mkdtemp(prefix="rerun-example-")) / "runs"

    def synthetic_data(self) -> bool:
        """The tables compare two runs of another notebook: synthetic when either is."""
        from ..runner import resolve_params

        return any(resolve_params(self.notebook, self.run_profile, overrides=o).synthetic_data()
                   for o in ((), self.changes))

    def check(self) -> None:
        from ..runner import check_run_name, resolve_params

        if self.notebook == "rerun_example":
            raise ConfigError("rerun_example: notebook cannot be rerun_example itself")
        check_run_name(self.run_name)
        resolve_params(self.notebook, self.run_profile, overrides=self.changes).check()
