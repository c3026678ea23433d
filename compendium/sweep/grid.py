"""A sweep's points: the grid of parameters, read from the command line or a sweep file,
expanded, named and validated before anything runs.  Nothing here needs Ray.

A grid maps parameter names to the values they take; its points are every combination
(the Cartesian product, in the order the keys and values are given), each combined with
the fixed overrides of the sweep (``set:``).  A point's name is derived from its
parameters alone (readable part + hash), so that the same point lands in the same folder,
``results/NOTEBOOK/PROFILE/<point>/``, every time the sweep is run again.

>>> grid = {"tpr_b": [0.6, 0.7]} | seeds_grid("0..1")
>>> [point_name(p) for p in expand_grid(grid)]
['tpr_b-0p6_seed-0-07bc42bf', 'tpr_b-0p6_seed-1-2def2128', 'tpr_b-0p7_seed-0-76b5769d', 'tpr_b-0p7_seed-1-b5c370b1']
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from ..config import load_yaml
from ..errors import CompendiumError, ConfigError

#: Keys of a sweep file (``params/sweeps/*.yaml``).
SWEEP_FILE_KEYS = ("notebook", "profile", "grid", "seeds", "seed_key", "set", "description")
_SEEDS = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
#: Most points one sweep may have (a typo such as ``--seeds 0..100000`` is refused).
MAX_POINTS = 10_000


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: its name (a run name), its number (1-based, in grid order)
    and the parameters it sets on top of the profile."""

    index: int
    name: str
    params: dict[str, Any]

    def describe(self) -> str:
        """``key=value, ...`` as a user wrote it (values as compact JSON)."""
        return ", ".join(f"{k}={_show(v)}" for k, v in self.params.items())

    def overrides(self) -> list[str]:
        """The parameters as ``--set KEY=VALUE`` strings (VALUE in JSON, read back as YAML)."""
        return [f"{k}={json.dumps(v, sort_keys=True)}" for k, v in self.params.items()]


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# ------------------------------------------------------------------------------ parsing


def parse_grid_option(text: str) -> tuple[str, list[Any]]:
    """One ``--grid key=v1,v2,...`` option: the key and its values, each read as YAML
    (``[a, b]`` is one list value, ``{...}`` one mapping).

    >>> parse_grid_option("tpr_b=0.6,0.7")
    ('tpr_b', [0.6, 0.7])
    >>> parse_grid_option("models=[a, b],[c]")
    ('models', [['a', 'b'], ['c']])
    """
    if "=" not in text:
        raise ConfigError(f"--grid expects key=v1,v2,..., got {text!r}")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or not raw:
        raise ConfigError(f"--grid expects key=v1,v2,..., got {text!r}")
    try:
        values = yaml.safe_load(f"[{raw}]")
    except yaml.YAMLError:
        raise ConfigError(f"--grid {key}: cannot read the values {raw!r} (comma-separated "
                          "YAML values, e.g. 0.1,0.2 or default,zero)") from None
    return key, _check_values(key, values, "--grid")


def seeds_grid(text: str | int | Iterable[int], key: str = "seed") -> dict[str, list[int]]:
    """``--seeds``: ``A..B`` (both ends included), ``a,b,c``, one seed, or a list, as a
    grid of one key (``KEY=A..B`` names another key, e.g. ``world_seed=0..19``).

    >>> seeds_grid("0..3")
    {'seed': [0, 1, 2, 3]}
    >>> seeds_grid("world_seed=2,5")
    {'world_seed': [2, 5]}
    """
    if isinstance(text, str) and "=" in text:
        key, text = (s.strip() for s in text.split("=", 1))
    where = f"--seeds {text}" if isinstance(text, str) else "seeds"
    if isinstance(text, bool):
        raise ConfigError(f"{where}: expected A..B, a,b,c or a list of seeds")
    if isinstance(text, int):
        seeds = [text]
    elif isinstance(text, str):
        m = _SEEDS.match(text)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise ConfigError(f"{where}: the range is empty ({hi} < {lo})")
            if hi - lo + 1 > MAX_POINTS:
                raise ConfigError(f"{where}: {hi - lo + 1} seeds is more than a sweep's "
                                  f"{MAX_POINTS} points")
            seeds = list(range(lo, hi + 1))
        else:
            try:
                seeds = [int(s) for s in text.split(",") if s.strip()]
            except ValueError:
                raise ConfigError(f"{where}: expected A..B (e.g. 0..9) or a,b,c of "
                                  "non-negative integers") from None
    else:
        seeds = list(text)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"{where}: expected non-negative integer seeds, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: a seed is repeated ({seeds!r})")
    return {key: seeds}


def _check_values(key: str, values: Any, where: str) -> list[Any]:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where} {key}: expected a non-empty list of values, got {values!r}")
    shown = [_show(v) for v in values]
    dup = next((s for i, s in enumerate(shown) if s in shown[:i]), None)
    if dup is not None:
        raise ConfigError(f"{where} {key}: the value {dup} is given twice")
    return values


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A sweep as declared: notebook, profile, grid, fixed overrides and a name (the
    sweep file's stem, or one derived from the grid)."""

    notebook: str
    profile: str
    grid: dict[str, list[Any]]
    fixed: dict[str, Any]
    name: str
    description: str = ""

    def points(self) -> list[Point]:
        """Every point, in grid order (see :func:`expand_grid`)."""
        return [Point(i + 1, point_name(p), p)
                for i, p in enumerate(expand_grid(self.grid, self.fixed))]


def load_sweep_file(path: str | Path) -> dict[str, Any]:
    """Read and check a sweep file: ``notebook``, ``profile``, ``grid: {key: [values]}``,
    ``seeds`` (``A..B`` or a list), ``seed_key`` (default ``seed``), ``set: {key: value}``
    (fixed for every point), ``description``.  Returns the checked mapping."""
    data = load_yaml(path)
    unknown = sorted(set(data) - set(SWEEP_FILE_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} (allowed: "
                          f"{', '.join(SWEEP_FILE_KEYS)})")
    grid = data.get("grid") or {}
    if not isinstance(grid, dict):
        raise ConfigError(f"{path}: grid must map parameter names to lists of values")
    for k, v in grid.items():
        _check_values(str(k), v, f"{path}: grid")
    fixed = data.get("set") or {}
    if not isinstance(fixed, dict):
        raise ConfigError(f"{path}: set must map parameter names to values")
    for key in ("notebook", "profile", "seed_key", "description"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{path}: {key} must be a string, got {data[key]!r}")
    return data


def build_sweep(notebook: str | None, profile: str | None, *, grid_options: Iterable[str] = (),
                seeds: str | None = None, set_options: Iterable[str] = (),
                sweep_file: str | Path | None = None) -> Sweep:
    """Combine a sweep file (if any) with the command line's ``--grid``, ``--seeds`` and
    ``--set`` (the command line wins on a key both give).  Checks the grid's shape; the
    parameters themselves are checked by :func:`validate_points`."""
    from ..config import parse_assignment

    data = load_sweep_file(sweep_file) if sweep_file else {}
    file_nb = data.get("notebook")
    if notebook and file_nb and notebook != file_nb:
        raise ConfigError(f"{sweep_file} sweeps notebook {file_nb!r}, not {notebook!r}")
    notebook = notebook or file_nb
    if not notebook:
        raise ConfigError("name the notebook to sweep (compendium sweep NOTEBOOK ...) or give "
                          "a sweep file with notebook:")
    profile = profile or data.get("profile") or "demo"
    if sweep_file and data.get("profile") and data["profile"] != profile:
        raise ConfigError(f"{sweep_file} is a sweep of profile {data['profile']!r}, not "
                          f"{profile!r}")
    grid: dict[str, list[Any]] = {str(k): list(v) for k, v in (data.get("grid") or {}).items()}
    if "seeds" in data:
        grid.update(seeds_grid(data["seeds"], data.get("seed_key", "seed")))
    for item in grid_options:
        key, values = parse_grid_option(item)
        grid[key] = values
    if seeds is not None:
        grid.update(seeds_grid(seeds))
    fixed = {str(k): v for k, v in (data.get("set") or {}).items()}
    for item in set_options:
        key, value = parse_assignment(item)
        fixed[key] = value
    both = sorted(set(grid) & set(fixed))
    if both:
        raise ConfigError(f"{both[0]!r} is both swept (grid/seeds) and fixed (set)")
    if not grid:
        raise ConfigError("nothing to sweep: give --grid key=v1,v2, --seeds A..B or a sweep "
                          "file with a grid")
    n = 1
    for values in grid.values():
        n *= len(values)
    if n > MAX_POINTS:
        raise ConfigError(f"the grid has {n} points, more than a sweep's {MAX_POINTS}")
    name = Path(sweep_file).stem if sweep_file else \
        "grid-" + _digest({"grid": grid, "set": fixed})[:8]
    return Sweep(notebook, profile, grid, fixed, name, str(data.get("description", "")))


# --------------------------------------------------------------------------- expansion


def expand_grid(grid: Mapping[str, list[Any]], fixed: Mapping[str, Any] | None = None
                ) -> list[dict[str, Any]]:
    """Every combination of the grid's values (the last key varies fastest), each with the
    fixed parameters after the swept ones.

    >>> expand_grid({"a": [1, 2], "b": ["x", "y"]}, {"n": 5})
    [{'a': 1, 'b': 'x', 'n': 5}, {'a': 1, 'b': 'y', 'n': 5}, {'a': 2, 'b': 'x', 'n': 5}, {'a': 2, 'b': 'y', 'n': 5}]
    """
    keys = list(grid)
    fixed = dict(fixed or {})
    return [{**dict(zip(keys, combo)), **fixed}
            for combo in itertools.product(*(grid[k] for k in keys))]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def _slug(value: Any) -> str:
    if isinstance(value, Mapping):          # knobs: {preset: zero, ...} reads "zero"
        value = value.get("preset", "map")
    elif isinstance(value, (list, tuple)):
        value = "-".join(_slug(v) for v in value) or "empty"
    text = _show(value).lower().strip('"')
    text = text.replace(".", "p").replace("-", "m")
    return re.sub(r"[^a-z0-9]+", "", text)[:16] or "x"


def point_name(params: Mapping[str, Any]) -> str:
    """A point's run name, derived from its parameters only: ``key-value_...`` (values
    reduced to letters and digits, ``.`` as ``p``, ``-`` as ``m``, a mapping to its
    ``preset``) and 8 hex digits of a hash
    of the exact parameters, so that two points never share a name; at most 64 characters.

    >>> point_name({"knobs": "zero", "seed": 3})
    'knobs-zero_seed-3-77f542d8'
    """
    digest = _digest(dict(params))[:8]
    readable = "_".join(f"{re.sub(r'[^a-z0-9_]+', '', k.lower())}-{_slug(v)}"
                        for k, v in params.items())
    readable = readable[:64 - 9].rstrip("_-") or "point"
    return f"{readable}-{digest}"


# -------------------------------------------------------------------------- validation


def validate_points(sweep: Sweep, root: str | Path | None = None) -> list[Point]:
    """Every point of ``sweep``, each resolved against the notebook's spec and checked
    (``spec.check()``: data and weights of a ``full`` run) before anything runs.

    Raises a one-line :class:`ConfigError` naming the first bad point and its parameters.
    """
    from ..notebook import get_spec
    from ..runner import resolve_params

    spec_cls = get_spec(sweep.notebook)
    settable = sorted(set(spec_cls.field_names()) - {"output_dir", "profile"})
    for key in [*sweep.grid, *sweep.fixed]:
        if key not in settable:
            raise ConfigError(f"unknown parameter {key!r} for notebook {sweep.notebook!r} "
                              f"(allowed: {', '.join(settable)})")
    points = sweep.points()
    for p in points:
        try:
            spec = resolve_params(sweep.notebook, sweep.profile, overrides=p.overrides(),
                                  root=root)
            spec.check()
        except CompendiumError as exc:
            msg = " ".join(str(exc).split())
            msg = msg.split(" + --set: ", 1)[-1]
            raise type(exc)(f"point {p.index} of {len(points)} ({p.describe()}): {msg}") \
                from None
    return points
