"""Spec of ``notebooks/sweep_example.ipynb``: the "Sweeps and clusters" page's example.

The notebook runs ``compendium sweep`` on a sweep file in a child process (a local Ray
when Ray is installed, else the points in sequence), shows what it prints, and draws from
the sweep's table how one published number spreads over seeds under each setting of a
swept parameter: the page's figure is made from a real sweep, not typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import ConfigError
from ..notebook import NotebookSpec, register_notebook


@register_notebook(
    "sweep_example", title="Example: a fairness gap over seeds, with and without a bias",
    description="compendium sweep over seeds and an injected gap (simulated predictions), "
                "the table across points and the spread over seeds; all numbers synthetic.")
@dataclass(frozen=True)
class SweepExampleSpec(NotebookSpec):
    """Parameters of the sweep example (its runs are simulated, synthetic runs)."""

    #: the sweep file, relative to the project's root (notebook, profile, grid, seeds)
    sweep_file: str = "params/sweeps/glossary_seeds.yaml"
    #: seeds swept instead of the file's, as A..B or a,b,c ('': the file's)
    seeds: str = ""
    #: parameters fixed for every point, as KEY=VALUE (VALUE read as YAML)
    fixed: list[str] = field(default_factory=list)
    #: the published value (values.json) whose spread over seeds is shown
    value: str = "tpr_gap"
    #: the published value holding the true value of each setting ('': none)
    truth: str = "true_tpr_gap"
    #: the swept parameter whose settings are compared
    by: str = "tpr_b"
    #: where the points run: a local Ray (ray), one after another (serial), or Ray when it
    #: is installed (auto)
    executor: Literal["auto", "ray", "serial"] = "auto"

    def sweep(self):
        """The sweep as the command line builds it (validated by :meth:`check`)."""
        from ..runner import project_root
        from ..sweep.grid import build_sweep

        return build_sweep(None, None, sweep_file=project_root() / self.sweep_file,
                           seeds=self.seeds or None, set_options=self.fixed)

    def results_folder(self) -> Path:
        """Where the example's runs go: ``runs/`` in this run's own folder (a temporary
        folder when the notebook runs by hand, without an ``output_dir``)."""
        import tempfile

        return Path(self.output_dir or tempfile.mkdtemp(prefix="sweep-example-")) / "runs"

    def sweep_args(self, results: Path) -> list[str]:
        """The ``compendium sweep`` command line of the example (its table goes to
        ``<results>/sweep.csv``)."""
        import importlib.util

        args = ["sweep", "--sweep", self.sweep_file, "--no-progress",
                "--out", str(results / "sweep.csv")]
        if self.seeds:
            args += ["--seeds", self.seeds]
        for item in self.fixed:
            args += ["--set", item]
        serial = self.executor == "serial" or (
            self.executor == "auto" and importlib.util.find_spec("ray") is None)
        return args + (["--serial"] if serial else [])

    def settings(self):
        """The settings of ``by`` compared, each with what it sets (bias knobs described
        by :func:`compendium.notebook.describe_knobs`), and the parameters every point
        shares (the profile's, with the sweep's fixed ones)."""
        import pandas as pd

        from ..notebook import describe_knobs
        from ..runner import resolve_params

        sweep = self.sweep()
        base = {**resolve_params(sweep.notebook, sweep.profile).to_dict(), **sweep.fixed}
        shared = ", ".join(f"{k}={v}" for k, v in base.items()
                           if k not in {"profile", "output_dir", *sweep.grid})
        rows = []
        for v in sweep.grid[self.by]:
            what = describe_knobs(v).replace("`", "") if self.by == "knobs" else f"{self.by}={v}"
            rows.append({self.by: v if isinstance(v, (str, int, float)) else
                         v.get("preset", "custom"), "sets": what,
                         f"shared ({sweep.notebook}, {sweep.profile})": shared})
        return pd.DataFrame(rows)

    def synthetic_data(self) -> bool:
        """The sweep's points are runs of another notebook: synthetic when its spec, at the
        sweep's profile with the sweep's fixed parameters, says so."""
        from ..runner import resolve_params

        sweep = self.sweep()
        spec = resolve_params(sweep.notebook, sweep.profile)
        return type(spec).from_dict({**spec.to_dict(), **sweep.fixed}).synthetic_data()

    def figure_title(self) -> str:
        sweep = self.sweep()
        return (f"Synthetic: {sweep.notebook} ({sweep.profile} profile), "
                f"{len(sweep.grid.get('seed', []))} seeds per setting of {self.by}")

    def check(self) -> None:
        from ..runner import project_root
        from ..sweep.grid import validate_points

        if not (project_root() / self.sweep_file).is_file():
            raise ConfigError(f"sweep_example: sweep_file {self.sweep_file} not found")
        sweep = self.sweep()
        if sweep.notebook == "sweep_example":
            raise ConfigError("sweep_example: the sweep cannot run sweep_example itself")
        if self.by not in sweep.grid or "seed" not in sweep.grid:
            raise ConfigError(f"sweep_example: the sweep must sweep seed and {self.by!r} "
                              f"(it sweeps {', '.join(sweep.grid)})")
        validate_points(sweep)
