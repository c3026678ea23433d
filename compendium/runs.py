"""``compendium runs [NOTEBOOK]``: the runs kept in ``results/``.

A run is a folder with a ``run.json``: ``results/NB/PROFILE/`` (the profile's default run)
or ``results/NB/PROFILE/NAME/`` (a run made with ``compendium run NB --profile PROFILE
--name NAME``).  A run is named on the command line as ``NB/PROFILE`` or
``NB/PROFILE/NAME``, or by the path of its folder.  For each run the listing shows the
parameters that differ from its profile, when it finished, the commit it ran at and how
long it took.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from .errors import CompendiumError, ConfigError, DataNotFoundError


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One finished run: where it is and its ``run.json``."""

    notebook: str
    profile: str
    name: str                 # "default" for results/NB/PROFILE/
    path: Path
    info: dict[str, Any]

    @property
    def ref(self) -> str:
        """How the run is named on the command line (``NB/PROFILE[/NAME]``)."""
        base = f"{self.notebook}/{self.profile}"
        return base if self.name == "default" else f"{base}/{self.name}"

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.info.get("parameters", {}))

    @property
    def finished(self) -> str:
        """UTC time the run finished (older runs: the time ``run.json`` was written)."""
        if self.info.get("finished"):
            return str(self.info["finished"])
        mtime = (self.path / "run.json").stat().st_mtime
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mtime))

    @property
    def commit(self) -> str:
        git = self.info.get("git") or {}
        sha = (git.get("commit") or "unknown")[:10]
        return sha + ("+dirty" if git.get("dirty") else "")

    def differences(self) -> dict[str, Any]:
        """Parameters whose value differs from the profile's (``--set``, ``--params``)."""
        if "differs_from_profile" in self.info:
            return dict(self.info["differs_from_profile"])
        from .runner import resolve_params

        try:   # a run made before run.json recorded it: against today's profile file
            base = resolve_params(self.notebook, self.profile).to_dict()
        except CompendiumError:         # notebook or profile gone: nothing to compare to
            return {}
        return {k: v for k, v in self.parameters.items() if base.get(k, v) != v}


def _read(path: Path, notebook: str, profile: str, name: str) -> RunInfo | None:
    try:
        info = json.loads((path / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    return RunInfo(info.get("notebook", notebook), info.get("profile", profile),
                   name, path, info)


def find_runs(notebook: str | None = None, results: str | Path | None = None) -> list[RunInfo]:
    """Every run under ``results`` (default: :func:`compendium.runner.results_root`),
    optionally of one notebook, sorted by notebook, profile and name (default first)."""
    from .notebook import PROFILES
    from .runner import named_run_dirs, results_root

    root = Path(results) if results else results_root()
    runs: list[RunInfo] = []
    if not root.is_dir():
        return runs
    notebooks = [root / notebook] if notebook else sorted(p for p in root.iterdir() if p.is_dir())
    for nb_dir in notebooks:
        for profile in PROFILES:
            folder = nb_dir / profile
            default = _read(folder, nb_dir.name, profile, "default")
            if default is not None:
                runs.append(default)
            for sub in named_run_dirs(folder):
                run = _read(sub, nb_dir.name, profile, sub.name)
                if run is not None:
                    runs.append(run)
    return runs


def resolve_run(ref: str, results: str | Path | None = None) -> RunInfo:
    """The run named ``ref`` (``NB/PROFILE``, ``NB/PROFILE/NAME`` or a run folder's path).

    Raises a one-line :class:`ConfigError` naming the runs that exist when there is none.
    """
    from .runner import results_root

    root = Path(results) if results else results_root()
    path = Path(ref).expanduser()
    if path.is_dir() and (path / "run.json").is_file():
        run = _read(path, path.name, "", "")
        if run is None:
            raise ConfigError(f"run {ref}: its run.json cannot be read")
        name = "default" if path.name == run.profile else path.name
        return dataclasses.replace(run, name=name)
    parts = ref.strip("/").split("/")
    if len(parts) in (2, 3) and all(parts):
        folder = root.joinpath(*parts)
        if (folder / "run.json").is_file():
            run = _read(folder, parts[0], parts[1], parts[2] if len(parts) == 3 else "default")
            if run is not None:
                return run
    known = [r.ref for r in find_runs(parts[0], root)] \
        if parts[0] and (root / parts[0]).is_dir() else []
    hint = f"runs of {parts[0]}: {', '.join(known)}" if known else \
        "see `compendium runs` for the runs there are"
    raise DataNotFoundError(f"unknown run {ref!r}: no run.json in {root / ref} ({hint})")


def _show(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def format_runs(runs: list[RunInfo]) -> str:
    """The table ``compendium runs`` prints."""
    header = ("run", "finished (UTC)", "commit", "seconds", "parameters changed from the profile")
    rows = []
    for r in runs:
        diff = r.differences()
        changed = ", ".join(f"{k}={_show(v)}" for k, v in sorted(diff.items())) or "-"
        rows.append((r.ref, r.finished, r.commit, f"{r.info.get('seconds', '?')}", changed))
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    return "\n".join(line.rstrip() for line in lines)


# ----------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    parser.add_argument("notebook", nargs="?", help="only the runs of this notebook")
    parser.add_argument("--results", metavar="DIR",
                        help="the results folder (default: results/ or $COMPENDIUM_RESULTS)")


def run(args) -> int:
    if args.notebook:
        from .notebook import get_spec

        get_spec(args.notebook)                  # unknown notebook: one line, exit 2
    runs = find_runs(args.notebook, args.results)
    if not runs:
        where = f" of {args.notebook}" if args.notebook else ""
        print(f"no runs{where} yet (compendium run NOTEBOOK --profile P [--name NAME])")
        return 0
    print(format_runs(runs))
    return 0


# ------------------------------------------------------------ transcripts for the book


def transcript(argv: list[str], results: str | Path, *, shown: str = "results") -> str:
    """Run ``compendium ARGV`` in a child process whose results folder is ``results`` and
    return the command and what it printed (its standard output; the log on standard error
    is left out, and raised with the status when the command fails).  ``results`` is
    printed as ``shown``, so that the text does not carry a temporary path.
    The Re-running chapter's example is made of these transcripts, not typed by hand."""
    import os
    import shlex
    import subprocess
    import sys

    results = Path(results)
    env = {**os.environ, "COMPENDIUM_RESULTS": str(results)}
    proc = subprocess.run([sys.executable, "-m", "compendium", *argv], env=env,
                          capture_output=True, text=True)
    text = f"$ compendium {shlex.join(argv)}\n{proc.stdout}"
    if proc.returncode != 0:
        raise ConfigError(f"compendium {shlex.join(argv)} exited with {proc.returncode}: "
                          f"{' '.join((proc.stderr or proc.stdout).split())}")
    return text.replace(str(results), shown).rstrip("\n")
