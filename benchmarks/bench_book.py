"""Benchmark: the book's build time, notebook by notebook, against its targets.

Usage::

    python benchmarks/bench_book.py [--profile demo] [--jobs N]
    python benchmarks/bench_book.py --fresh [--jobs N] [--serial]

In place (default) it builds the book of this checkout as ``compendium book`` does, timing
the phases: the notebooks executed (those whose results are not current; ``--rerun`` for
all), the Sphinx build, then a warm rebuild after a chapter's text is edited (the edit is
undone afterwards).

``--fresh`` measures what a new user waits for: it clones the committed ``HEAD`` into a
temporary folder and times ``make setup`` there (a new virtual environment; empty uv and pip
caches), then runs this script inside the clone with an empty ``COMPENDIUM_CACHE`` and
results folder (cold: every toy encoder is pretrained and every embedding computed).  ``--serial`` also builds a second
fresh clone with ``--jobs 1``: the baseline, measured in the same run.

Prints each notebook's seconds (from its ``run.json``), the phases, the sum of the notebook
times (what one at a time would cost if the notebooks did not slow each other down: under
contention it overstates the serial time), the speed-up, and each target: cold build with
set-up at most 15 minutes, warm rebuild after a chapter edit at most 1 minute.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLD_TARGET_S = 15 * 60
WARM_TARGET_S = 60
EDITED = Path("book") / "intro.md"


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def here(profile: str, jobs: int | None, rerun: bool) -> dict:
    """Build the book of the current folder in place, timing its phases."""
    from compendium.book import book_notebooks, build_book, execute_notebooks
    from compendium.runner import is_current, resolve_params, results_dir

    names = book_notebooks()
    stale = [n for n in names if rerun or not is_current(n, resolve_params(n, profile))]
    t0 = time.perf_counter()
    execute_notebooks(stale, profile, jobs=jobs)
    notebooks_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    build_book(profile, jobs=jobs)
    sphinx_s = time.perf_counter() - t0
    chapter = Path.cwd() / EDITED
    text = chapter.read_text()
    try:
        chapter.write_text(text + "\n<!-- benchmark edit -->\n")
        t0 = time.perf_counter()
        build_book(profile, jobs=jobs)
        warm_s = time.perf_counter() - t0
    finally:
        chapter.write_text(text)
    seconds = {}
    for n in names:
        info = json.loads((results_dir(n, profile) / "run.json").read_text())
        seconds[n] = {"seconds": info["seconds"], "executed": n in stale}
    return {"notebooks": seconds, "notebooks_s": notebooks_s, "sphinx_s": sphinx_s,
            "warm_s": warm_s, "jobs": jobs, "cores": os.cpu_count()}


def fresh(profile: str, jobs: int | None) -> dict:
    """Clone HEAD, set it up and build its book cold; returns the clone's measurements."""
    with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
        # package caches empty too: a new machine has downloaded nothing yet
        setup_env = dict(os.environ, UV_CACHE_DIR=str(Path(tmp) / "uv-cache"),
                         PIP_NO_CACHE_DIR="1")
        t0 = time.perf_counter()
        subprocess.run(["make", "setup"], cwd=clone, check=True, stdout=subprocess.DEVNULL,
                       env=setup_env)
        setup_s = time.perf_counter() - t0
        env = {k: v for k, v in os.environ.items()
               if k not in ("COMPENDIUM_RESULTS", "COMPENDIUM_ROOT", "PYTHONPATH")}
        env["COMPENDIUM_CACHE"] = str(Path(tmp) / "cache")
        report = Path(tmp) / "report.json"
        cmd = [str(clone / ".venv" / "bin" / "python"), "benchmarks/bench_book.py",
               "--profile", profile, "--json", str(report)]
        if jobs is not None:
            cmd += ["--jobs", str(jobs)]
        subprocess.run(cmd, cwd=clone, env=env, check=True, stdout=subprocess.DEVNULL)
        result = json.loads(report.read_text())
        result["setup_s"] = setup_s
        return result


def show(label: str, r: dict) -> None:
    print(f"== {label}: jobs={r['jobs'] or 'default'}, {r['cores']} cores, load {_load()}")
    rows = sorted(r["notebooks"].items(), key=lambda kv: -kv[1]["seconds"])
    for name, info in rows:
        mark = "" if info["executed"] else "  (reused: current results)"
        print(f"  {name:<22} {info['seconds']:8.1f} s{mark}")
    executed = sum(i["seconds"] for i in r["notebooks"].values() if i["executed"])
    print(f"  {'sum of executed':<22} {executed:8.1f} s")
    print(f"  notebooks phase (wall)  {r['notebooks_s']:8.1f} s   speed-up over the sum: "
          f"{executed / r['notebooks_s']:.2f}x" if r["notebooks_s"] > 1 else
          f"  notebooks phase (wall)  {r['notebooks_s']:8.1f} s")
    print(f"  sphinx build            {r['sphinx_s']:8.1f} s")
    total = r["notebooks_s"] + r["sphinx_s"] + r.get("setup_s", 0.0)
    if "setup_s" in r:
        print(f"  set-up (make setup)     {r['setup_s']:8.1f} s")
        print(f"  cold build with set-up  {total:8.1f} s   target {COLD_TARGET_S} s: "
              f"{total / COLD_TARGET_S:.2f} of it")
    print(f"  warm rebuild after an edit of {EDITED}: {r['warm_s']:.1f} s   target "
          f"{WARM_TARGET_S} s: {r['warm_s'] / WARM_TARGET_S:.2f} of it")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo", choices=["smoke", "demo"])
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--rerun", action="store_true", help="in place: execute every notebook")
    ap.add_argument("--fresh", action="store_true", help="a fresh clone with empty caches")
    ap.add_argument("--serial", action="store_true",
                    help="with --fresh: also a second fresh clone built with --jobs 1")
    ap.add_argument("--json", metavar="FILE", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.fresh:
        r = fresh(args.profile, args.jobs)
        show("fresh clone, cold caches", r)
        if args.serial:
            s = fresh(args.profile, 1)
            show("fresh clone, cold caches, one notebook at a time (baseline)", s)
            print(f"speed-up of the notebooks phase over the baseline: "
                  f"{s['notebooks_s'] / r['notebooks_s']:.2f}x")
        return 0
    r = here(args.profile, args.jobs, args.rerun)
    if args.json:
        Path(args.json).write_text(json.dumps(r))
    else:
        show("this checkout", r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
