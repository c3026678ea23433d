"""Assemble executed notebooks and the markdown chapters into the Jupyter Book.

The notebooks that belong to the book are the ``book/generated/<name>`` entries of
``_toc.yml``.  For each, the results of the requested profile are reused when current
(same notebook, parameters and package sources: see :func:`compendium.runner.is_current`)
and executed otherwise.  The book's sources are staged in ``_build/src`` (the executed
notebooks copied to ``book/generated/``), then built with Jupyter Book 1.x into
``_build/html``, with no network access.

Exercises and solutions use sphinx-exercise.  The default build is the **student** build:
solutions are dropped when the pages are read (``hide_solutions``) and the page sources are
not copied into the HTML (``html_copy_source``), so no solution text reaches the output.
``solutions=True`` (``compendium book --solutions``) is the **teacher** build: it shows them,
and goes to ``<out>/_build/teacher/`` by default so that it never replaces the student book.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from .errors import CompendiumError, ConfigError
from .runner import is_current, project_root, resolve_params, results_dir, run_notebook
from .runtime import available_cpus as _cores

log = logging.getLogger(__name__)

GENERATED = "book/generated/"


def book_notebooks(root: str | Path | None = None) -> list[str]:
    """Notebook names that ``_toc.yml`` places in the book, in table-of-contents order."""
    root = project_root(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    names: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            f = node.get("file")
            if isinstance(f, str) and f.startswith(GENERATED):
                names.append(Path(f).stem)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc)
    return names


def staged_config(text: str, *, solutions: bool) -> str:
    """The ``_config.yml`` a build uses: the student build (``solutions=False``) hides the
    exercises' solutions and copies no page source; the teacher build shows the solutions
    and says so in the title."""
    cfg = yaml.safe_load(text) or {}
    conf = cfg.setdefault("sphinx", {}).setdefault("config", {})
    conf["hide_solutions"] = not solutions
    conf["html_copy_source"] = False
    if solutions:
        cfg["title"] = f"{cfg.get('title', 'The compendium')} (teacher's edition, with solutions)"
    return "# staged by compendium.book.staged_config\n" + yaml.safe_dump(cfg, sort_keys=False)


def build_book(profile: str = "demo", *, rerun: bool = False, out: str | Path | None = None,
               root: str | Path | None = None, strict: bool = False,
               jobs: int | None = None, solutions: bool = False) -> Path:
    """Execute (or reuse) the book's notebooks under ``profile`` and build the HTML book.

    ``jobs`` notebooks run at a time (default: :func:`default_jobs`). ``solutions`` builds
    the teacher's edition (see the module docstring); without ``out`` it goes to
    ``<root>/_build/teacher/``.  Returns the path of ``index.html``.
    """
    root = project_root(root)
    if out:
        out = Path(out)
    else:
        out = root / "_build" / "teacher" if solutions else root
    names = book_notebooks(root)
    stale = []
    for name in names:
        spec = resolve_params(name, profile, root=root)
        if rerun or not is_current(name, spec, root):
            stale.append(name)
        else:
            log.info("reusing current results of %s (%s)", name, profile)
    execute_notebooks(stale, profile, root=root, jobs=jobs)
    executed = {name: results_dir(name, profile, root) / f"{name}.ipynb" for name in names}

    build = out / "_build"
    src = build / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for item in ("_toc.yml", "references.bib"):
        if (root / item).exists():
            shutil.copy2(root / item, src / item)
    (src / "_config.yml").write_text(staged_config((root / "_config.yml").read_text(),
                                                   solutions=solutions))
    shutil.copytree(root / "book", src / "book",
                    ignore=shutil.ignore_patterns("generated", "_build", ".ipynb_checkpoints"))
    (src / GENERATED).mkdir(parents=True, exist_ok=True)
    for name, nb in executed.items():
        shutil.copy2(nb, src / GENERATED / f"{name}.ipynb")
        # the run's saved figures, for captioned {figure} directives in the chapters
        figures = nb.parent / "figures"
        if figures.is_dir():
            shutil.copytree(figures, src / GENERATED / name)
    # the claims ledger: the "What holds" chapter, each paper chapter's summary and the
    # first page's status table, from the same runs
    from .papers.ledger import stage_ledger

    stage_ledger(profile, src / GENERATED / "ledger", root=root)

    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        jb_cmd = [sys.executable, "-m", "jupyter_book"]
    else:
        jb_cmd = [str(jb)]
    cmd = [*jb_cmd, "build", str(src), "--path-output", str(out), "--builder", "html"]
    if strict:
        cmd += ["-W", "-n", "--keep-going"]
    log.info("building the book: %s", " ".join(cmd))
    env = {**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise CompendiumError(f"jupyter-book build failed:\n{tail}")
    index = build / "html" / "index.html"
    if not index.exists():
        raise ConfigError(f"the build finished but {index} is missing")
    warnings = book_warnings(proc.stdout + proc.stderr)
    for w in warnings:
        log.warning("book: %s", w)
    (build / "warnings.txt").write_text("".join(f"{w}\n" for w in warnings))
    return index


#: Seconds a notebook is expected to take when neither an earlier run of it nor
#: :data:`TYPICAL_DEMO_SECONDS` says: short (the book's notebooks not listed there are).
UNKNOWN_SECONDS = 30.0

#: Demo run times measured on a 2-core machine (2026-12-03, one notebook at a time), used
#: only to order a build with no earlier runs (a fresh clone): the longest first.  A run's
#: own ``run.json`` replaces them once it exists.
TYPICAL_DEMO_SECONDS = {"paper_a": 550, "paper_d": 250, "sweep_example": 240, "paper_b": 225,
                        "paper_e": 170, "paper_c": 120, "glossary": 90, "teaching_noise": 83,
                        "teaching_knobs": 77, "rerun_example": 70, "teaching_claims": 61,
                        "mitigation_demo": 45}


def default_jobs() -> int:
    """Notebooks run at a time by default: as many as cores up to two, then one per two
    cores, at most four.

    Each notebook's kernel gets ``cores // jobs`` math threads (see
    :func:`execute_notebooks`): on a 2-core laptop two notebooks use one core each.
    """
    cores = _cores()
    return cores if cores <= 2 else min(4, cores // 2)


def expected_seconds(name: str, profile: str, root: Path) -> float:
    """How long ``name`` took the last time it ran under ``profile`` (from its ``run.json``,
    current or not), else its :data:`TYPICAL_DEMO_SECONDS`, else :data:`UNKNOWN_SECONDS`."""
    try:
        info = json.loads((results_dir(name, profile, root) / "run.json").read_text())
        return float(info["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        if profile == "demo" and name in TYPICAL_DEMO_SECONDS:
            return float(TYPICAL_DEMO_SECONDS[name])
        return UNKNOWN_SECONDS


def schedule(names: list[str], profile: str, root: str | Path | None = None) -> list[str]:
    """``names`` in the order they start: the longest expected first (ties: as given)."""
    root = project_root(root)
    return sorted(names, key=lambda n: -expected_seconds(n, profile, root))


def _run_one(name: str, profile: str, root: str, threads: int) -> tuple[str, float]:
    """One notebook in a worker process, its kernel limited to ``threads`` math threads."""
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    result = run_notebook(name, profile, root=root, progress=False)
    return name, result.seconds


def _stop_workers(pool) -> None:
    """SIGTERM to every worker of ``pool`` (Python 3.11's executor has no public way; 3.14's
    ``terminate_workers`` does the same)."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        if proc.is_alive():
            proc.terminate()


#: Environment variables that cap the math libraries' threads in a notebook's kernel.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS")


def execute_notebooks(names: list[str], profile: str, *, root: str | Path | None = None,
                      jobs: int | None = None) -> dict[str, float]:
    """Execute ``names`` under ``profile``, ``jobs`` at a time; returns seconds per notebook.

    The longest first (by :func:`expected_seconds`): with a pool taking the next notebook as
    a worker frees up, that is the longest-processing-time rule, whose total is within 4/3
    of the best schedule's.  Independent runs only: each notebook reads the shared caches
    (toy encoders, embeddings), which are written atomically, so two notebooks needing the
    same toy at once both build it and one copy stays.  With several jobs, every kernel
    gets ``cores // jobs`` math threads.  A failure lets the running notebooks finish and
    is raised once they have; results already published stay.
    """
    from tqdm.auto import tqdm

    root = project_root(root)
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1 (got {jobs})")
    order = schedule(names, profile, root)
    seconds: dict[str, float] = {}
    bar = tqdm(total=len(order), desc=f"notebooks ({profile})", unit="nb", disable=None)
    if jobs == 1 or len(order) < 2:
        for name in order:
            bar.set_postfix_str(name)
            seconds[name] = run_notebook(name, profile, root=root, progress=False).seconds
            bar.update()
        bar.close()
        return seconds
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, _cores() // jobs)
    errors: list[BaseException] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(order)), mp_context=ctx) as pool:
        pending = {pool.submit(_run_one, n, profile, str(root), threads): n for n in order}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    name = pending.pop(fut)
                    if fut.cancelled():
                        continue
                    try:
                        seconds[name] = fut.result()[1]
                        log.info("notebook %s (%s): %.0f s", name, profile, seconds[name])
                    except BaseException as exc:   # noqa: BLE001 - re-raised below
                        log.error("notebook %s (%s) failed", name, profile)
                        errors.append(exc)
                        for other in pending:      # nothing new starts after a failure
                            other.cancel()
                    bar.update()
        except BaseException:
            # Ctrl-C, SIGTERM: stop the running notebooks too (SIGTERM makes each worker's
            # runner remove its unfinished run and stop its kernel), not only the queue
            for fut in pending:
                fut.cancel()
            _stop_workers(pool)
            raise
        finally:
            bar.close()
    if errors:
        raise errors[0]
    return seconds


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def book_warnings(output: str) -> list[str]:
    """Sphinx warnings of a build log (a glue key that does not resolve, a broken
    reference...), without colour codes.  They are also written to ``_build/warnings.txt``."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    return [line for line in lines if "WARNING:" in line or ": ERROR:" in line]
