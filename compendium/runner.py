"""Execute a parameterised notebook with papermill and write its results folder.

``results/<notebook>/<profile>/`` receives the executed notebook, ``tables/*.csv``,
``figures/*.png``, ``values.json`` and ``run.json`` (resolved parameters, package version,
git commit, seed, fingerprint).  The run executes in a temporary sibling folder that
replaces the old results only when the notebook finished: a failure or an interrupt
leaves the previous results untouched and no partial folder behind.

A named run (``run_name``, ``compendium run --name NAME``) goes to
``results/<notebook>/<profile>/<NAME>/`` instead, and stays when the profile's own run is
replaced (see :mod:`compendium.runs` and :mod:`compendium.compare`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import __version__
from .atomic import partial_dir, replace_dir, sweep_partials, write_json
from .config import load_yaml, parse_assignment
from .errors import ConfigError, DataNotFoundError, Terminated
from .notebook import PROFILES, NotebookSpec, get_spec, load_specs

log = logging.getLogger(__name__)


class NotebookFailed(Exception):
    """A notebook raised an error that is not a user error (a bug or an environment fault)."""


# ------------------------------------------------------------------------------- paths


def project_root(start: str | Path | None = None) -> Path:
    """The compendium's root folder (holding ``notebooks/`` and ``params/``).

    Taken from ``$COMPENDIUM_ROOT`` if set, else the first parent of ``start`` (default: the
    current folder) that has both folders, else the folder above the installed package.
    """
    env = os.environ.get("COMPENDIUM_ROOT")
    candidates: list[Path] = []
    if env:
        candidates.append(Path(env))
    here = Path(start or Path.cwd()).resolve()
    candidates += [here, *here.parents]
    candidates.append(Path(__file__).resolve().parent.parent)
    for c in candidates:
        if (c / "notebooks").is_dir() and (c / "params").is_dir():
            return c
    raise DataNotFoundError(
        "cannot find the compendium's root (a folder with notebooks/ and params/); "
        "run from inside the repository or set COMPENDIUM_ROOT"
    )


def notebook_files(root: str | Path | None = None) -> dict[str, Path]:
    """Every ``notebooks/<name>.ipynb`` and ``notebooks/<part>/<name>.ipynb`` (one level of
    sub-folders, e.g. ``notebooks/teaching/``), by name; a name used twice is an error."""
    root = project_root(root)
    found: dict[str, Path] = {}
    for path in sorted((root / "notebooks").glob("*.ipynb")) + \
            sorted((root / "notebooks").glob("*/*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        if path.stem in found:
            raise ConfigError(f"two notebooks are named {path.stem!r}: "
                              f"{found[path.stem].relative_to(root)} and {path.relative_to(root)}")
        found[path.stem] = path
    return found


def notebook_path(name: str, root: str | Path | None = None) -> Path:
    """The ``.ipynb`` file of notebook ``name`` (see :func:`notebook_files`)."""
    root = project_root(root)
    path = root / "notebooks" / f"{name}.ipynb"
    if path.is_file():
        return path
    path = notebook_files(root).get(name)
    if path is None:
        raise DataNotFoundError(f"notebook file not found: notebooks/{name}.ipynb")
    return path


def list_notebooks(root: str | Path | None = None) -> list[str]:
    """Names of notebooks that have both a registered spec and a ``.ipynb`` file."""
    root = project_root(root)
    registered = set(load_specs().names())
    return sorted(registered & set(notebook_files(root)))


# -------------------------------------------------------------------------- parameters


def resolve_params(name: str, profile: str, *, overrides: Iterable[str] = (),
                   params_file: str | Path | None = None,
                   root: str | Path | None = None) -> NotebookSpec:
    """Merge ``params/<name>/<profile>.yaml``, ``params_file`` and ``--set`` overrides and
    validate the result against the notebook's spec.  Raises :class:`ConfigError`."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r} (allowed: {', '.join(PROFILES)})")
    root = project_root(root)
    spec_cls = get_spec(name)
    notebook_path(name, root)
    base = root / "params" / name / f"{profile}.yaml"
    merged: dict[str, Any] = {}
    where = str(base.relative_to(root))
    merged.update(load_yaml(base))
    if params_file:
        extra = load_yaml(params_file)
        merged.update(extra)
        where += f" + {params_file}"
    settable = sorted(set(spec_cls.field_names()) - {"output_dir", "profile"})
    for item in overrides:
        key, value = parse_assignment(item)
        if key not in settable:
            hint = " (set by the runner)" if key in ("output_dir", "profile") else ""
            raise ConfigError(
                f"--set: unknown key {key!r} for notebook {name!r}{hint} "
                f"(allowed: {', '.join(settable)})"
            )
        merged[key] = value
        where = f"{where} + --set"
    declared = merged.get("profile", profile)
    if declared != profile:
        raise ConfigError(f"{where}: profile is {declared!r} but --profile is {profile!r}")
    merged["profile"] = profile
    merged.pop("output_dir", None)
    return spec_cls.from_dict(merged, where=where)


# ------------------------------------------------------------------------- provenance


def git_commit(root: Path) -> dict[str, Any]:
    """The commit of ``root`` and whether the work tree has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
        return {"commit": sha, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


#: Package modules that assemble the book from executed notebooks and that no notebook runs:
#: an edit of them rebuilds the book without executing the notebooks again (a test checks
#: that no notebook imports them).
BOOK_ONLY = frozenset({"book.py", "sphinx_ext.py", "papers/ledger.py"})


def fingerprint(name: str, params: Mapping[str, Any], root: Path) -> str:
    """Hash of what determines a run: notebook, resolved parameters and package sources."""
    h = hashlib.sha256()
    h.update(notebook_path(name, root).read_bytes())
    h.update(json.dumps(params, sort_keys=True, default=str).encode())
    pkg = Path(__file__).resolve().parent
    for path in sorted(pkg.rglob("*")):
        if path.is_file() and path.suffix in {".py", ".yaml", ".json", ".csv", ".txt"} \
                and "__pycache__" not in path.parts \
                and path.relative_to(pkg).as_posix() not in BOOK_ONLY:
            h.update(str(path.relative_to(pkg)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def results_root(root: str | Path | None = None) -> Path:
    """Where runs are published: ``$COMPENDIUM_RESULTS`` if set, else ``<root>/results``."""
    env = os.environ.get("COMPENDIUM_RESULTS")
    return Path(env) if env else project_root(root) / "results"


#: A run's name: lower-case letters, digits, ``_`` and ``-`` (a folder name on every system).
RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
#: Names a named run cannot take: the folders a run writes inside ``results/NB/PROFILE/``.
RESERVED_RUN_NAMES = frozenset({"tables", "figures", "default"})


def check_run_name(run: str | None) -> str | None:
    """``run`` if it is a valid run name (``None``: the default run), else ConfigError."""
    if run is None:
        return None
    if not RUN_NAME.match(run) or run in RESERVED_RUN_NAMES:
        raise ConfigError(f"--name {run!r}: a run name is 1-64 lower-case letters, digits, "
                          f"'_' or '-', not {', '.join(sorted(RESERVED_RUN_NAMES))}")
    return run


def results_dir(name: str, profile: str, root: str | Path | None = None,
                run: str | None = None) -> Path:
    """``results/<name>/<profile>/`` (the default run), or ``.../<profile>/<run>/`` for a
    named run."""
    base = results_root(root) / name / profile
    return base / run if check_run_name(run) else base


def named_run_dirs(folder: Path) -> list[Path]:
    """The named runs kept inside a default run's folder (sub-folders with a ``run.json``)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and RUN_NAME.match(p.name)
                  and p.name not in RESERVED_RUN_NAMES and (p / "run.json").is_file())


def is_current(name: str, spec: NotebookSpec, root: str | Path | None = None,
               run: str | None = None) -> bool:
    """True when ``results/<name>/<profile>`` (or the named run ``.../<run>``) was produced
    by exactly this code and params."""
    root = project_root(root)
    out = results_dir(name, spec.profile, root, run)
    try:
        info = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return False
    params = {k: v for k, v in spec.to_dict().items() if k != "output_dir"}
    return (out / f"{name}.ipynb").is_file() and info.get("fingerprint") == fingerprint(name, params, root)


# -------------------------------------------------------------------------------- run


@dataclass(frozen=True)
class RunResult:
    name: str
    profile: str
    output_dir: Path
    seconds: float
    run: str = "default"


def run_notebook(name: str, profile: str = "demo", *, overrides: Iterable[str] = (),
                 params_file: str | Path | None = None, root: str | Path | None = None,
                 progress: bool = True, run_name: str | None = None) -> RunResult:
    """Validate parameters, execute ``notebooks/<name>.ipynb`` and publish its results.

    ``run_name`` publishes to ``results/<name>/<profile>/<run_name>/`` instead of the
    default run's folder (which keeps the named runs inside it when it is replaced).

    Raises :class:`ConfigError` / :class:`DataNotFoundError` for user mistakes (before any
    file is written) and :class:`NotebookFailed` when the notebook raises something else.
    """
    import papermill as pm

    root = project_root(root)
    check_run_name(run_name)
    overrides = list(overrides)
    spec = resolve_params(name, profile, overrides=overrides, params_file=params_file, root=root)
    spec.check()
    params = {k: v for k, v in spec.to_dict().items() if k != "output_dir"}
    profile_params = resolve_params(name, profile, root=root).to_dict()
    changed = {k: v for k, v in params.items() if profile_params.get(k) != v}
    final = results_dir(name, profile, root, run_name)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in sweep_partials(final.parent, final.name):
        log.info("removed %s, left by a run that was killed", stale)
    work = partial_dir(final.parent, final.name)
    fd, kernel_log = tempfile.mkstemp(prefix=f"compendium-{name}-kernel-", suffix=".log")
    os.close(fd)
    started = time.time()
    moved: list[Path] = []
    try:
        executed = work / f"{name}.ipynb"
        try:
            with _quiet_kernel_env(), _sigterm_as_interrupt(), \
                    _papermill_param_warnings_off(set(params)):
                pm.execute_notebook(
                    str(notebook_path(name, root)), str(executed),
                    parameters={**params, "output_dir": str(work)},
                    cwd=str(root), kernel_name="python3", progress_bar=progress,
                    log_output=False, report_mode=False,
                    kernel_manager_class=_kernel_manager_class(kernel_log),
                )
        except pm.PapermillExecutionError as exc:
            raise _translate(name, exc) from None
        seconds = time.time() - started
        shown = final.relative_to(root) if final.is_relative_to(root) else final
        _finalise_notebook(executed, str(work), str(shown))
        write_json(work / "run.json", {
            "notebook": name,
            "profile": profile,
            "run": run_name or "default",
            "parameters": params,
            "differs_from_profile": changed,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seed": params.get("seed"),
            "compendium_version": __version__,
            "git": git_commit(root),
            "fingerprint": fingerprint(name, params, root),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "seconds": round(seconds, 1),
        })
        if run_name is None:
            for kept in named_run_dirs(final):   # the named runs stay where they were
                os.replace(kept, work / kept.name)
                moved.append(kept)
        replace_dir(work, final)
    except BaseException:
        for kept in moved:                      # put the named runs back first
            if (work / kept.name).is_dir() and not kept.exists():
                with contextlib.suppress(OSError):
                    os.replace(work / kept.name, kept)
        shutil.rmtree(work, ignore_errors=True)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(kernel_log)
    log.info("notebook %s (%s) finished in %.1f s -> %s", name, profile, seconds, final)
    return RunResult(name, profile, final, seconds, run_name or "default")


def _translate(name: str, exc: Exception) -> Exception:
    ename = getattr(exc, "ename", "Error")
    evalue = getattr(exc, "evalue", str(exc))
    user_errors = {"CompendiumError", "ConfigError", "InputError", "DataNotFoundError",
                   "MissingWeightsError"}
    if ename in user_errors:
        err = DataNotFoundError if ename in {"DataNotFoundError", "MissingWeightsError"} else ConfigError
        return err(f"notebook {name}: {evalue}")
    return NotebookFailed(f"notebook {name} failed with {ename}: {evalue}\n{exc}")


def _finalise_notebook(path: Path, work: str, final: str) -> None:
    """Point the injected ``output_dir`` at the published folder instead of the temp one."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = cell.source.replace(work, final)
    nbformat.write(nb, str(path))


def _kernel_manager_class(log_path: Path):
    """A jupyter KernelManager whose kernel writes its own log (stderr) to ``log_path``.

    The kernel's process log is not the notebook's output (cells' output and errors travel
    through the kernel's messages); on Ctrl-C or SIGTERM it is a kernel traceback about
    closed sockets that would bury the one-line message.  The runner removes the file
    after the run.
    """
    from jupyter_client.manager import KernelManager

    class _QuietKernelManager(KernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            fh = open(log_path, "wb")  # noqa: SIM115 - the kernel process owns it
            try:
                kw["stderr"] = fh
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                fh.close()  # the child has its own descriptor

    return _QuietKernelManager


class _KnownParameters(logging.Filter):
    """Drops papermill's warnings about parameters that the runner validated itself.

    papermill re-reads the notebook's ``parameters`` cell line by line and cannot parse a
    line with two ``=`` (a knob dict keyed ``"sex=F"``): it then warns "Unable to parse
    line" and "Passed unknown parameter" although the value is injected correctly.  The
    spec has already checked every name and value, so these warnings are noise that reads
    like an error; any other papermill warning passes.
    """

    def __init__(self, names: set[str]) -> None:
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if msg.startswith("Passed unknown parameter:"):
            return msg.split(":", 1)[1].strip() not in self.names
        if msg.startswith("Unable to parse line"):
            line = msg.split("'", 1)[1] if "'" in msg else ""
            return line.split("=", 1)[0].strip() not in self.names
        return True


@contextlib.contextmanager
def _papermill_param_warnings_off(names: set[str]):
    """Install :class:`_KnownParameters` on papermill's loggers for one run."""
    flt = _KnownParameters(names)
    loggers = [logging.getLogger("papermill"), logging.getLogger("papermill.translators")]
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Turn SIGTERM into :class:`Terminated` while a notebook runs (main thread only), so
    that a cancelled CI job, ``timeout`` or a scheduler leaves no ``.partial-*`` folder."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _quiet_kernel_env():
    """Deterministic, quiet kernels: fixed hash seed, no tqdm monitor thread noise."""
    saved = {k: os.environ.get(k) for k in ("PYTHONHASHSEED", "PYDEVD_DISABLE_FILE_VALIDATION")}
    os.environ["PYTHONHASHSEED"] = "0"
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
