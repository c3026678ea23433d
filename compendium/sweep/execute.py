"""Running a sweep's points: each point is one :func:`compendium.runner.run_notebook` call
(papermill, atomic publish to ``results/NOTEBOOK/PROFILE/<point>/``), run as a Ray task,
or in this process one after another (``executor="serial"``, the benchmark's baseline).

Ray is imported only here, and only when a sweep runs on it: the rest of the package works
without it (``pip install -e .[scale]`` installs it).  Without an address a local Ray
starts with this machine's cores and stops at the end; with one (``auto``,
``ray://host:10001``, ``host:6379``) the points run on that cluster, which must see the
same results folder (shared storage) and the data and weights the runs read.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import CompendiumError, ConfigError
from ..runtime import available_cpus
from .grid import Point, Sweep

log = logging.getLogger(__name__)

#: AF_UNIX socket paths are limited to 107 bytes; Ray puts its sockets at
#: ``<temp>/session_<date>_<time>_<us>_<pid>/sockets/plasma_store`` (about 66 more).
_RAY_SOCKET_ROOM = 107 - 68


@dataclasses.dataclass
class Outcome:
    """What became of one point."""

    point: Point
    status: str                     # "done", "skipped" or "failed"
    path: Path
    attempts: int = 0
    seconds: float | None = None
    reason: str = ""


@dataclasses.dataclass
class SweepReport:
    """Every point's outcome, in grid order, and where the sweep ran."""

    sweep: Sweep
    outcomes: list[Outcome]
    where: str
    dashboard: str = ""
    wall_seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def summary(self) -> str:
        """``done 3, skipped 1, failed 0`` and one line per failed point."""
        lines = [f"sweep {self.sweep.notebook} ({self.sweep.profile}, {self.sweep.name}): "
                 f"{len(self.outcomes)} points: done {self.count('done')}, skipped "
                 f"{self.count('skipped')} (results current), failed {self.count('failed')} "
                 f"[{self.where}, {self.wall_seconds:.1f} s]"]
        for o in self.outcomes:
            if o.status == "failed":
                tries = f" after {o.attempts} attempt(s)" if o.attempts else ""
                lines.append(f"  failed {o.point.name} ({o.point.describe()}){tries}: {o.reason}")
        return "\n".join(lines)


def require_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("compendium sweep needs Ray, an optional extra: pip install -e "
                          "'.[scale]' (or pip install ray)") from None
    return ray


# ------------------------------------------------------------------------------- state


def point_dir(sweep: Sweep, point: Point, root: str | Path | None = None) -> Path:
    from ..runner import results_dir

    return results_dir(sweep.notebook, sweep.profile, root, point.name)


def is_done(sweep: Sweep, point: Point, root: str | Path | None = None) -> bool:
    """True when the point's folder holds a finished run of exactly these parameters and
    this code (its ``run.json`` fingerprint matches)."""
    from ..runner import is_current, resolve_params

    spec = resolve_params(sweep.notebook, sweep.profile, overrides=point.overrides(), root=root)
    return is_current(sweep.notebook, spec, root, run=point.name)


def _reason(exc: BaseException) -> str:
    """The first line of an error, as the summary prints it."""
    cause = getattr(exc, "cause", None)
    if cause is not None and cause is not exc:          # a RayTaskError wraps the task's error
        exc = cause
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return " ".join(text.split())[:300]


def _retryable(exc: BaseException) -> bool:
    """A user error (bad parameter, missing data) fails the same way every time."""
    cause = getattr(exc, "cause", None) or exc
    return not isinstance(cause, CompendiumError)


def run_point(notebook: str, profile: str, overrides: list[str], run_name: str) -> float:
    """Run one point through the runner (in a Ray worker or here); its seconds."""
    from ..runner import run_notebook

    return run_notebook(notebook, profile, overrides=overrides, progress=False,
                        run_name=run_name).seconds


# --------------------------------------------------------------------------------- ray


def ray_temp_dir() -> Path:
    """A fresh folder for a local Ray's session files (logs, sockets, spilled objects),
    removed after the sweep: under ``<cache>/ray/`` when that path leaves room for Ray's
    sockets, else in the system's temporary folder."""
    from ..paths import cache_dir

    cached = cache_dir("ray", create=False)
    if len(str(cached)) + 10 <= _RAY_SOCKET_ROOM:
        cached.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix="s-", dir=cached))
    return Path(tempfile.mkdtemp(prefix="compendium-ray-"))


def task_env(root: Path, results: Path, *, cluster: bool) -> dict[str, str]:
    """Environment variables every task gets: the package's import path (local Ray), the
    project root (local Ray; a cluster's tasks run in the uploaded working dir), the
    results folder and the cache."""
    import compendium

    env = {"COMPENDIUM_RESULTS": str(results)}
    if not cluster:
        env["COMPENDIUM_ROOT"] = str(root)
        pkg_parent = str(Path(compendium.__file__).resolve().parent.parent)
        paths = [pkg_parent, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                               if p and p != pkg_parent]]
        env["PYTHONPATH"] = os.pathsep.join(paths)
    for key in ("COMPENDIUM_CACHE", "HF_HOME", "HF_HUB_OFFLINE"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


#: What a cluster's tasks do not need from the project folder (the rest is uploaded as
#: Ray's working_dir: the package, notebooks/ and params/).
WORKING_DIR_EXCLUDES = [".git", ".venv", "results", "_build", "**/__pycache__", "*.ipynb_checkpoints",
                        ".pytest_cache", ".hypothesis"]


@contextlib.contextmanager
def ray_session(address: str | None, *, root: Path, results: Path, num_cpus: int | None,
                dashboard: bool | None):
    """Start a local Ray (``address`` None) or join a cluster; yields the dashboard URL
    ('' when this Ray install has none).  A local Ray is stopped and its temp folder
    removed on the way out, also on Ctrl-C."""
    ray = require_ray()
    if ray.is_initialized():
        raise ConfigError("Ray is already running in this process; compendium sweep starts "
                          "or joins its own")
    cluster = address is not None
    runtime_env: dict[str, Any] = {"env_vars": task_env(root, results, cluster=cluster)}
    kwargs: dict[str, Any] = dict(logging_level=logging.WARNING, log_to_driver=False,
                                  configure_logging=True)
    temp, remove = None, False
    if cluster:
        runtime_env["working_dir"] = str(root)
        runtime_env["excludes"] = WORKING_DIR_EXCLUDES
        kwargs["address"] = address
    else:
        temp, remove = ray_temp_dir(), True
        kwargs.update(num_cpus=num_cpus or available_cpus(), include_dashboard=dashboard,
                      _temp_dir=str(temp))
    try:
        with _keep_signal_handlers():
            try:
                ctx = ray.init(runtime_env=runtime_env, **kwargs)
            except ConnectionError as exc:
                hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                    "; a cluster with token authentication also needs RAY_AUTH_MODE=token "
                    "and its token in ~/.ray/auth_token or RAY_AUTH_TOKEN")
                raise ConfigError(f"--address {address}: cannot connect to a Ray cluster "
                                  f"({_reason(exc)}{hint})") from None
        url = getattr(ctx, "dashboard_url", "") or ""
        yield ray, (f"http://{url}" if url and "://" not in url else url)
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        if remove and temp is not None:
            shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def _keep_signal_handlers():
    """Put back the SIGTERM / SIGINT handlers that ``ray.init`` replaces with its own (which
    aborts the process): the command line's handlers stop the sweep cleanly instead."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:
                signal.signal(sig, handler)


@contextlib.contextmanager
def _sigterm_stays_sigterm():
    """Ray turns any exception raised by a signal handler during ``ray.wait`` into a plain
    KeyboardInterrupt; re-raise :class:`Terminated` when the signal was SIGTERM, so that the
    command says what happened (and exits 143)."""
    import signal
    import threading

    from ..errors import Terminated

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen = []

    def handler(signum, frame):
        seen.append(signum)
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except KeyboardInterrupt as exc:
        if seen and not isinstance(exc, Terminated):
            raise Terminated() from None
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


# ------------------------------------------------------------------------------- sweep


def run_sweep(sweep: Sweep, points: list[Point], *, executor: str = "ray",
              address: str | None = None, cpus_per_run: float = 1, gpus_per_run: float = 0,
              max_parallel: int | None = None, retries: int = 1, num_cpus: int | None = None,
              dashboard: bool | None = None, progress: bool = True,
              root: str | Path | None = None,
              on_event: Callable[[str, Outcome], None] | None = None) -> SweepReport:
    """Run the points that have no current results; skip the others.

    Parameters
    ----------
    executor : ``"ray"`` or ``"serial"``
        Ray tasks (a local Ray, or the cluster at ``address``), or one after another in
        this process (no Ray needed).
    cpus_per_run, gpus_per_run : float
        Ray resources each point reserves (a point needs a GPU when its ``device`` is one).
    max_parallel : int, optional
        Most points running at once (default: as many as the resources allow).
    retries : int
        A point that fails with an error other than a user error (a crash, a lost worker)
        is run again up to this many times.
    """
    from ..runner import project_root, results_root

    root = project_root(root)
    results = results_root(root).resolve()
    started = time.perf_counter()
    outcomes = {p.name: Outcome(p, "pending", point_dir(sweep, p, root)) for p in points}
    todo = []
    for p in points:
        if is_done(sweep, p, root):
            outcomes[p.name].status = "skipped"
        else:
            todo.append(p)
    bar = _bar(len(points), len(points) - len(todo), progress)

    def finish(o: Outcome) -> None:
        bar.update(1)
        bar.set_postfix(failed=sum(x.status == "failed" for x in outcomes.values()),
                        refresh=False)
        if on_event:
            on_event(o.status, o)

    where, url = "serial, this process", ""
    try:
        if executor == "serial":
            for p in todo:
                _serial_point(sweep, p, outcomes[p.name], retries)
                finish(outcomes[p.name])
        elif executor == "ray":
            with ray_session(address, root=root, results=results, num_cpus=num_cpus,
                             dashboard=dashboard) as (ray, url):
                res = ray.cluster_resources()
                where = (f"Ray at {address}" if address else "local Ray") + \
                    f", {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU"
                _check_resources(ray, cpus_per_run, gpus_per_run, where)
                shown = url or "none in this Ray install (pip install 'ray[default]' for one)"
                bar.write(f"{where}; Ray dashboard: {shown}", file=sys.stdout)
                with _sigterm_stays_sigterm():
                    _ray_points(ray, sweep, todo, outcomes, finish, cpus_per_run=cpus_per_run,
                                gpus_per_run=gpus_per_run, max_parallel=max_parallel,
                                retries=retries, results=results)
        else:
            raise ConfigError(f"unknown executor {executor!r} (ray or serial)")
    finally:
        bar.close()
        if executor == "ray" and address is None:
            _remove_partials(sweep, todo, root)
    return SweepReport(sweep, [outcomes[p.name] for p in points], where, url,
                       time.perf_counter() - started)


def _remove_partials(sweep: Sweep, todo: list[Point], root: Path, wait_s: float = 15.0) -> None:
    """Remove the work folders that tasks of a stopped local Ray left (the runner removes
    its own on an error, but a task ended by ``ray.shutdown`` cannot): those whose process
    is gone, waiting up to ``wait_s`` for the ended workers to exit.  (On a cluster the
    processes are on other nodes; the runner removes their folders when the point runs
    again.)"""
    from ..atomic import sweep_partials

    deadline = time.monotonic() + wait_s
    while True:
        left = []
        for p in todo:
            folder = point_dir(sweep, p, root)
            sweep_partials(folder.parent, folder.name)
            left += list(folder.parent.glob(f".{folder.name}.partial-*"))
        if not left or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def _check_resources(ray, cpus: float, gpus: float, where: str) -> None:
    """A one-line error when no node can hold one point (Ray would wait for ever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    if not any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in nodes):
        largest = max(((n.get("CPU", 0), n.get("GPU", 0)) for n in nodes), default=(0, 0))
        raise ConfigError(f"no node of the {where} can run a point with {cpus:g} CPU and "
                          f"{gpus:g} GPU (the largest has {largest[0]:g} CPU, "
                          f"{largest[1]:g} GPU): lower --cpus-per-run / --gpus-per-run")


def _bar(total: int, initial: int, progress: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="point", desc="sweep", disable=not progress,
                file=sys.stderr, dynamic_ncols=True)


def _serial_point(sweep: Sweep, p: Point, o: Outcome, retries: int) -> None:
    for attempt in range(1, retries + 2):
        o.attempts = attempt
        t0 = time.perf_counter()
        try:
            run_point(sweep.notebook, sweep.profile, p.overrides(), p.name)
        except Exception as exc:        # noqa: BLE001 - recorded as the point's reason
            o.status, o.reason = "failed", _reason(exc)
            if not _retryable(exc):
                return
            continue
        o.status, o.reason, o.seconds = "done", "", time.perf_counter() - t0
        return


def _ray_points(ray, sweep: Sweep, todo: list[Point], outcomes: dict[str, Outcome],
                finish: Callable[[Outcome], None], *, cpus_per_run: float,
                gpus_per_run: float, max_parallel: int | None, retries: int,
                results: Path) -> None:
    task = ray.remote(run_point).options(num_cpus=cpus_per_run, num_gpus=gpus_per_run,
                                         max_retries=0)
    queue = collections.deque((p, 1) for p in todo)
    running: dict[Any, tuple[Point, int, float]] = {}
    limit = max_parallel or len(todo) or 1
    # On Ctrl-C or SIGTERM the exception leaves this loop and ray_session stops the local Ray,
    # which ends the running tasks (their kernels follow their parent); a task's work folder
    # is removed by the runner when the point runs next.  (ray.cancel before ray.shutdown
    # trips a check in Ray 2.60's task manager, so the tasks are not cancelled one by one.)
    while queue or running:
        while queue and len(running) < limit:
            p, attempt = queue.popleft()
            ref = task.remote(sweep.notebook, sweep.profile, p.overrides(), p.name)
            running[ref] = (p, attempt, time.perf_counter())
        ready, _ = ray.wait(list(running), num_returns=1)
        ref = ready[0]
        p, attempt, t0 = running.pop(ref)
        o = outcomes[p.name]
        o.attempts = attempt
        try:
            ray.get(ref)
        except Exception as exc:        # noqa: BLE001 - a task's error or a lost worker
            o.status, o.reason = "failed", _reason(exc)
            if _retryable(exc) and attempt <= retries:
                queue.append((p, attempt + 1))
                continue
            finish(o)
            continue
        o.seconds = time.perf_counter() - t0
        if not (o.path / "run.json").is_file():
            o.status = "failed"
            o.reason = (f"the point finished but {o.path} is not visible here: on a "
                        "cluster the results folder must be storage every node shares "
                        "(COMPENDIUM_RESULTS)")
        else:
            o.status, o.reason = "done", ""
        finish(o)


# ------------------------------------------------------------------------------- table


def sweep_table(sweep: Sweep, report_or_points: SweepReport | Iterable[Point],
                root: str | Path | None = None):
    """One row per point: ``point``, ``status``, the swept and fixed parameters as columns
    (lists and mappings as JSON), then every value the point's notebook published
    (``values.json``; a value named like a parameter becomes ``value.<name>``)."""
    import pandas as pd

    from ..results import read_values

    if isinstance(report_or_points, SweepReport):
        outcomes = report_or_points.outcomes
    else:
        outcomes = [Outcome(p, "done" if is_done(sweep, p, root) else "missing",
                            point_dir(sweep, p, root)) for p in report_or_points]
    rows = []
    for o in outcomes:
        row: dict[str, Any] = {"point": o.point.name, "status": o.status}
        params = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v)
                  for k, v in o.point.params.items()}
        row.update(params)
        values = read_values(o.path) if o.status in ("done", "skipped") else {}
        for k, v in values.items():
            row[f"value.{k}" if k in row else k] = v
        rows.append(row)
    return pd.DataFrame(rows)


def point_rows(sweep: Sweep, report_or_points: SweepReport | Iterable[Point], table: str,
               root: str | Path | None = None):
    """The rows of one table the notebook published (``tables/<table>.csv``), from every
    finished point, each with ``point`` and the point's parameters in front: a number a
    notebook publishes as a table row (Paper A's sex F1 gap of one model) rather than a
    value is taken from here."""
    import pandas as pd

    from ..results import _check_name

    _check_name(table)
    if isinstance(report_or_points, SweepReport):
        outcomes = report_or_points.outcomes
    else:
        outcomes = [Outcome(p, "done" if is_done(sweep, p, root) else "missing",
                            point_dir(sweep, p, root)) for p in report_or_points]
    parts = []
    for o in outcomes:
        path = o.path / "tables" / f"{table}.csv"
        if o.status not in ("done", "skipped") or not path.is_file():
            continue
        rows = pd.read_csv(path)
        front = {"point": o.point.name, "status": o.status,
                 **{k: (json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v)
                    for k, v in o.point.params.items()}}
        rows = rows.rename(columns={c: f"table.{c}" for c in rows.columns if c in front})
        for i, (k, v) in enumerate(front.items()):
            rows.insert(i, k, v)
        parts.append(rows)
    if not parts:
        raise ConfigError(f"no finished point of the sweep has a table {table!r}")
    return pd.concat(parts, ignore_index=True)


def default_table_path(sweep: Sweep, root: str | Path | None = None) -> Path:
    """``results/sweeps/<notebook>.<profile>.<sweep>.csv``."""
    from ..runner import results_root

    return results_root(root) / "sweeps" / f"{sweep.notebook}.{sweep.profile}.{sweep.name}.csv"


def write_table(table, path: str | Path) -> Path:
    from ..atomic import atomic_write

    with atomic_write(path) as fh:
        table.to_csv(fh, index=False)
    return Path(path)
