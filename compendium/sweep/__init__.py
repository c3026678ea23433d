"""Parameter sweeps: one notebook over a grid of parameters, each point a run of the
runner, as Ray tasks on this machine's cores or on a cluster (``compendium sweep``).

- :mod:`compendium.sweep.grid`: the grid (command line or sweep file), its points, their
  names and their validation; no Ray needed.
- :mod:`compendium.sweep.execute`: running the points (Ray, or serially), skipping those
  with current results, retrying, and the tidy table across points.
- :mod:`compendium.sweep.figures`: figures drawn from a sweep's table.
- :mod:`compendium.sweep.cli`: the ``compendium sweep`` command.

Ray is an optional extra (``pip install -e .[scale]``), imported only when a sweep runs on it.
"""

from .grid import Point, Sweep, build_sweep, expand_grid, point_name, validate_points

__all__ = ["Point", "Sweep", "build_sweep", "expand_grid", "point_name", "validate_points"]
