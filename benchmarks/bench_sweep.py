"""Benchmark: a sweep of smoke points on N local Ray workers vs the same points in sequence.

Usage::

    python benchmarks/bench_sweep.py [--notebook glossary] [--points 8] [--workers N]

Runs the notebook's ``smoke`` profile over seeds ``0..points-1`` twice, from scratch, in
two temporary results folders: once one point after another in this process (the serial
executor: the runner alone, no Ray) and once as Ray tasks on a local Ray with ``--workers``
CPUs (default: the cores this process may use).  Prints the wall time of each, the
speed-up (serial / Ray, > 1: Ray is faster), the CPU seconds used (this process and its
reaped children: papermill's kernels in the serial run; Ray's workers are counted only as
far as the OS reports them to the parent, so the Ray figure may be low) and the load
average before and after, since on a shared machine the ratio moves with other load.
The Ray wall time includes starting and stopping the local Ray.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(label: str, sweep, points, results: Path, **kw):
    from compendium.sweep.execute import run_sweep

    os.environ["COMPENDIUM_RESULTS"] = str(results)
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu()
    report = run_sweep(sweep, points, progress=False, **kw)
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    failed = [o for o in report.outcomes if o.status != "done"]
    if failed:
        raise SystemExit(f"{label}: {len(failed)} point(s) did not run: {failed[0].reason}")
    print(f"{label:<28} wall {wall:7.1f} s   CPU {cpu:7.1f} s   load {load0:.2f} -> "
          f"{os.getloadavg()[0]:.2f}   [{report.where}]")
    return wall


def main(argv=None) -> int:
    from compendium.sweep.execute import available_cpus
    from compendium.sweep.grid import build_sweep, validate_points

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--notebook", default="glossary")
    ap.add_argument("--points", type=int, default=8)
    ap.add_argument("--workers", type=int, default=available_cpus())
    args = ap.parse_args(argv)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sweep = build_sweep(args.notebook, "smoke", seeds=f"0..{args.points - 1}")
    points = validate_points(sweep)
    print(f"{len(points)} {args.notebook} smoke points; {os.cpu_count()} cores on this "
          f"machine, {available_cpus()} usable; load average {os.getloadavg()}")
    saved = os.environ.get("COMPENDIUM_RESULTS")
    try:
        with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
            serial = _timed("in sequence (no Ray)", sweep, points, Path(tmp) / "serial",
                            executor="serial")
            ray = _timed(f"local Ray, {args.workers} workers", sweep, points,
                         Path(tmp) / "ray", executor="ray", num_cpus=args.workers,
                         dashboard=False)
    finally:
        if saved is None:
            os.environ.pop("COMPENDIUM_RESULTS", None)
        else:
            os.environ["COMPENDIUM_RESULTS"] = saved
    print(f"speed-up, sequence / Ray with {args.workers} workers: {serial / ray:.2f}x "
          f"(ideal on idle cores: {min(args.workers, len(points))}x, less Ray's start-up)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
