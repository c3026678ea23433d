"""Executing the book's notebooks several at a time (``compendium book --jobs``)."""

from __future__ import annotations

import json

import pytest

from compendium import book, cli
from compendium.errors import ConfigError
from compendium.runner import results_dir, run_notebook


@pytest.mark.parametrize("cores, jobs", [(1, 1), (2, 2), (4, 2), (8, 4), (64, 4)])
def test_default_jobs_follow_the_cores(monkeypatch, cores, jobs):
    monkeypatch.setattr(book, "_cores", lambda: cores)
    assert book.default_jobs() == jobs


def test_expected_seconds_come_from_the_last_run(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    assert book.expected_seconds("glossary", "smoke", tmp_path) == book.UNKNOWN_SECONDS
    out = results_dir("glossary", "smoke", tmp_path)
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"seconds": 12.5}))
    assert book.expected_seconds("glossary", "smoke", tmp_path) == 12.5
    (out / "run.json").write_text("{not json")
    assert book.expected_seconds("glossary", "smoke", tmp_path) == book.UNKNOWN_SECONDS


def test_a_fresh_clone_starts_the_longest_notebook_first(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    names = ["data", "glossary", "paper_c", "paper_a", "teaching_metrics"]
    assert book.schedule(names, "demo")[:3] == ["paper_a", "paper_c", "glossary"]
    out = results_dir("data", "demo")
    out.mkdir(parents=True)
    (out / "run.json").write_text(json.dumps({"seconds": 9999}))   # its own last run
    assert book.schedule(names, "demo")[0] == "data"


def _tables(folder):
    return {p.name: p.read_bytes() for p in sorted((folder / "tables").glob("*.csv"))}


def test_two_notebooks_at_once_publish_what_one_at_a_time_does(tmp_path, monkeypatch):
    names = ["glossary", "synthetic_world"]
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "parallel"))
    seconds = book.execute_notebooks(names, "smoke", jobs=2)
    assert sorted(seconds) == names and all(s > 0 for s in seconds.values())
    parallel = {n: _tables(results_dir(n, "smoke")) for n in names}
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "serial"))
    for n in names:
        run_notebook(n, "smoke", progress=False)
    serial = {n: _tables(results_dir(n, "smoke")) for n in names}
    assert all(parallel[n] for n in names)
    assert parallel == serial


def test_a_failing_notebook_is_raised_and_the_others_results_stay(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "results"))
    with pytest.raises(ConfigError, match="no_such_notebook"):
        book.execute_notebooks(["glossary", "no_such_notebook"], "smoke", jobs=2)
    assert (results_dir("glossary", "smoke") / "run.json").is_file()
    assert not results_dir("no_such_notebook", "smoke").exists()


def test_book_jobs_below_one_is_a_one_line_error(capsys):
    assert cli.main(["book", "--profile", "smoke", "--jobs", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert "jobs must be at least 1" in err and len(err.splitlines()) == 1


def test_book_only_modules_are_not_run_by_any_notebook():
    """The fingerprint leaves them out, so an edit of them must not change what a notebook
    computes: no notebook (nor any other module of the package) imports them."""
    import re

    import nbformat

    from compendium.runner import BOOK_ONLY, notebook_files, project_root

    root = project_root()
    pkg = root / "compendium"
    assert all((pkg / m).is_file() for m in BOOK_ONLY)
    mods = {m[:-3].replace("/", ".") for m in BOOK_ONLY} | {m[:-3].split("/")[-1]
                                                             for m in BOOK_ONLY}
    pattern = re.compile(r"(?:from|import)\s+(?:compendium\.|\.+)?(" +
                         "|".join(re.escape(m) for m in mods) + r")\b")
    for nb in notebook_files(root).values():
        code = "\n".join(c.source for c in nbformat.read(str(nb), 4).cells
                         if c.cell_type == "code")
        assert not pattern.search(code), nb
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg).as_posix()
        if rel in BOOK_ONLY or rel == "cli.py":
            continue
        assert not pattern.search(path.read_text()), rel


@pytest.mark.slow
def test_sigterm_stops_the_running_notebooks_and_leaves_no_partial_run(tmp_path):
    """`compendium book` stopped by SIGTERM (a cancelled CI job) stops its workers and their
    kernels too, not only the queue (the running notebooks do not finish), and leaves no
    unfinished run behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    env = {**os.environ, "COMPENDIUM_RESULTS": str(tmp_path / "results")}
    # what `compendium book` does, on two notebooks that take minutes (the CLI's handler
    # turns SIGTERM into an exception that unwinds)
    script = ("import signal\n"
              "from compendium.cli import _raise_terminated\n"
              "from compendium.book import execute_notebooks\n"
              "signal.signal(signal.SIGTERM, _raise_terminated)\n"
              "execute_notebooks(['paper_a', 'paper_d'], 'smoke', jobs=2)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    parent = psutil.Process(proc.pid)
    deadline = time.time() + 300
    kernels = []
    while time.time() < deadline and len(kernels) < 2:   # both workers' kernels running
        kernels = [p for p in parent.children(recursive=True)
                   if "ipykernel" in " ".join(p.cmdline())]
        time.sleep(0.5)
    assert len(kernels) == 2, "two notebooks should be running at once"
    family = parent.children(recursive=True)
    results = tmp_path / "results"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) != 0
    gone, alive = psutil.wait_procs(family, timeout=60)
    assert not alive, [p.cmdline()[:4] for p in alive]
    # the notebooks running at the signal were stopped, not left to finish
    assert not list(results.rglob("run.json")) if results.exists() else True
    leftovers = [p for p in results.rglob("*") if p.is_dir() and p.name.startswith(".")] \
        if results.exists() else []
    assert not leftovers, leftovers
