"""``compendium sweep NOTEBOOK --profile P --grid key=v1,v2 ... [--seeds 0..9]``: run a
notebook over a grid of parameters (also from a sweep file, ``--sweep FILE``), each point a
Ray task through the runner into ``results/NOTEBOOK/PROFILE/<point>/``.

Every point is validated before anything runs; points whose results are current (same
parameters, same code) are skipped, so a sweep stopped by a crash or Ctrl-C resumes where it
was.  Without ``--address`` a local Ray starts with this machine's cores; with one, the
points run on that cluster (see the book's "Sweeps and clusters" page).  At the end: one
table across points (parameters + every value the notebook published) and a summary.
Needs Ray: ``pip install -e .[scale]``.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError


def add_arguments(parser) -> None:
    from ..config import cli_number

    parser.add_argument("notebook", nargs="?",
                        help="notebook to sweep (default: the sweep file's notebook)")
    parser.add_argument("--profile", choices=["smoke", "demo", "full"],
                        help="parameter profile (default: the sweep file's, else demo)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="a swept parameter and its values, read as YAML (repeatable)")
    parser.add_argument("--seeds", metavar="A..B",
                        help="seeds to sweep: A..B (both included), a,b,c; KEY=A..B sweeps "
                             "another seed parameter (e.g. world_seed=0..19)")
    parser.add_argument("--sweep", dest="sweep_file", metavar="FILE",
                        help="a sweep file (YAML: notebook, profile, grid, seeds, set)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a parameter fixed for every point (repeatable)")
    parser.add_argument("--address", metavar="ADDR",
                        help="join this Ray cluster (auto, HOST:6379, ray://HOST:10001); "
                             "default: a local Ray with this machine's cores")
    parser.add_argument("--cpus-per-run", type=cli_number(float, lo=0, lo_open=True, hi=1024),
                        default=1.0, metavar="C", help="CPU cores each point reserves (default 1)")
    parser.add_argument("--gpus-per-run", type=cli_number(float, lo=0, hi=64), default=0.0,
                        metavar="G", help="GPUs each point reserves (default 0; 0.5 shares one)")
    parser.add_argument("--max-parallel", type=cli_number(int, lo=1, hi=100_000), metavar="N",
                        help="most points running at once (default: as resources allow)")
    parser.add_argument("--num-cpus", type=cli_number(int, lo=1, hi=100_000), metavar="N",
                        help="cores of the local Ray (default: this machine's)")
    parser.add_argument("--retries", type=cli_number(int, lo=0, hi=100), default=1,
                        metavar="R", help="runs again a point that crashed, up to R times "
                                          "(default 1; a user error is not retried)")
    parser.add_argument("--serial", action="store_true",
                        help="run the points one after another in this process (no Ray)")
    parser.add_argument("--list", action="store_true",
                        help="validate and list the points with their state; run nothing")
    parser.add_argument("--out", metavar="FILE",
                        help="the table across points (default: "
                             "results/sweeps/NOTEBOOK.PROFILE.SWEEP.csv)")
    parser.add_argument("--rows", action="append", default=[], metavar="TABLE",
                        help="also collect this table's rows from every point, beside the "
                             "table across points (.../SWEEP.TABLE.csv; repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args) -> int:
    from ..atomic import check_output
    from .execute import (default_table_path, is_done, point_rows, require_ray, run_sweep,
                          sweep_table, write_table)
    from ..results import _check_name
    from .grid import build_sweep, validate_points

    sweep = build_sweep(args.notebook, args.profile, grid_options=args.grid, seeds=args.seeds,
                        set_options=args.overrides, sweep_file=args.sweep_file)
    points = validate_points(sweep)
    out = check_output(args.out) if args.out else default_table_path(sweep)
    for name in args.rows:
        _check_name(name)
    if args.list:
        for p in points:
            state = "current" if is_done(sweep, p) else "to run"
            print(f"{p.index:>4}  {p.name:<64}  {state:<8}  {p.describe()}")
        return 0
    if args.serial:
        ray_only = [opt for opt, given in (("--address", args.address),
                                           ("--num-cpus", args.num_cpus),
                                           ("--max-parallel", args.max_parallel)) if given]
        if ray_only:
            raise ConfigError(f"--serial runs the points here, one after another: "
                              f"{ray_only[0]} is for Ray")
    else:
        require_ray()
    if args.address and args.num_cpus:
        raise ConfigError("--num-cpus sizes a local Ray; a cluster (--address) has its own")
    report = run_sweep(sweep, points, executor="serial" if args.serial else "ray",
                       address=args.address, cpus_per_run=args.cpus_per_run,
                       gpus_per_run=args.gpus_per_run, max_parallel=args.max_parallel,
                       retries=args.retries, num_cpus=args.num_cpus,
                       progress=not args.no_progress)
    table = sweep_table(sweep, report)
    write_table(table, out)
    print(report.summary())
    print(f"table ({len(table)} rows: parameters + published values): {out}")
    for name in args.rows:
        try:
            rows = point_rows(sweep, report, name)
        except ConfigError as exc:
            print(f"rows of {name}: none ({exc})")
            continue
        path = write_table(rows, out.with_name(f"{out.stem}.{name}.csv"))
        print(f"rows of {name} from every point ({len(rows)}): {path}")
    return 1 if report.count("failed") else 0
