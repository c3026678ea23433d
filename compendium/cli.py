"""The ``compendium`` command line: the one way to run things.

``compendium run NOTEBOOK --profile demo [--set key=value ...] [--params FILE] [--name RUN]``
``compendium list notebooks|models|cohorts``
``compendium book [--profile demo] [--rerun] [--jobs N] [--solutions]``

plus the commands contributed by the package's parts (``audit``, ``cohort``, ``weights``),
each a module with ``add_arguments(parser)`` and ``run(args) -> int``, listed in
:data:`SUBCOMMANDS`.  User mistakes (:class:`~compendium.errors.CompendiumError`) print one
line and exit with status 2; an interrupt exits 130 after the command cleaned up.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Callable, Sequence

from . import __version__
from .errors import CompendiumError, Terminated

log = logging.getLogger("compendium")

#: Sub-commands contributed by parts of the package: name -> (module, one-line help).
#: Modules must stay light to import (no torch at module level).
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "params": ("compendium.paramdoc", "a notebook's parameters: type, allowed values, meaning, "
               "value per profile"),
    "runs": ("compendium.runs", "list the runs in results/ with their parameters' differences"),
    "compare": ("compendium.compare", "compare two runs: parameters, values and tables side by "
                "side"),
    "cohort": ("compendium.cohorts.cli", "build a cohort table and show its composition"),
    "synthetic": ("compendium.synthetic.cli", "write a sample of the synthetic world to a folder"),
    "adapt": ("compendium.adapt.cli", "adaptation and mitigation: demo, list"),
    "audit": ("compendium.audit.cli", "audit a predictions table (metrics, gaps, CIs, p-values)"),
    "weights": ("compendium.encoders.cli", "where model weights are looked for; fetch them"),
    "prepare-cxr": ("compendium.imaging.cli", "prepare radiographs for a vendor embedding tool "
                    "(Paper D section 2.2)"),
    "labels": ("compendium.labels.cli", "label radiology reports with a registered labeller"),
    "teaching": ("compendium.teaching.cli", "'find the bias' challenges: write hand-outs, "
                 "grade answers"),
    "sweep": ("compendium.sweep.cli", "run a notebook over a grid of parameters and seeds, "
              "as Ray tasks (local cores or a cluster); needs the [scale] extra"),
    "rehearse": ("compendium.rehearse.cli", "rehearse a paper's full profile end to end on "
                 "miniature data in the real formats"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with exit status 2 and a one-line message naming the command and the
    option (argparse's own error prints the whole usage first)."""

    def error(self, message: str):  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def _raise_terminated(signum, frame):  # pragma: no cover - exercised in a subprocess
    raise Terminated()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="compendium", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"compendium {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("run", help="execute a notebook with a parameter profile")
    p.add_argument("notebook", help="notebook name (see `compendium list notebooks`)")
    p.add_argument("--profile", default="demo", choices=["smoke", "demo", "full"])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one parameter (repeatable); VALUE is read as YAML")
    p.add_argument("--params", dest="params_file", metavar="FILE",
                   help="YAML file overlaid on params/NOTEBOOK/PROFILE.yaml")
    p.add_argument("--name", dest="run_name", metavar="NAME",
                   help="keep this run beside the others in results/NOTEBOOK/PROFILE/NAME/ "
                        "(default: the profile's own run, results/NOTEBOOK/PROFILE/)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("list", help="list notebooks, models or cohorts")
    p.add_argument("what", choices=["notebooks", "models", "cohorts"])
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("book", help="execute the book's notebooks and build the HTML book")
    p.add_argument("--profile", default="demo", choices=["smoke", "demo", "full"])
    p.add_argument("--rerun", action="store_true",
                   help="execute every notebook even if its results are current")
    p.add_argument("--out", metavar="DIR", help="where _build/ goes (default: the root; "
                   "with --solutions: _build/teacher/)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="notebooks executed at a time (default: 2 on a 2-core machine, one "
                        "per two cores above that, at most 4)")
    p.add_argument("--solutions", action="store_true",
                   help="the teacher's edition: show the exercises' solutions (the default "
                        "student build has no solution text)")
    p.set_defaults(func=_cmd_book)

    for name, (module, help_text) in SUBCOMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import signal
    import threading

    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int] = args.func
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return int(func(args) or 0)
    except CompendiumError as exc:
        print(f"compendium {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"compendium {args.command}: terminated (SIGTERM); nothing partial was kept",
              file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"compendium {args.command}: interrupted; nothing partial was kept", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"compendium {args.command}: error: out of memory; use a smaller input or "
              "fewer resamples", file=sys.stderr)
        return 1
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            import os

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"compendium {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _one_line(exc: BaseException) -> str:
    """The message on one line (a notebook's error may carry several)."""
    return " ".join(str(exc).split())


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")


# ---------------------------------------------------------------------------- commands


def _cmd_run(args: argparse.Namespace) -> int:
    from .runner import NotebookFailed, run_notebook

    try:
        result = run_notebook(args.notebook, args.profile, overrides=args.overrides,
                              params_file=args.params_file, progress=not args.no_progress,
                              run_name=args.run_name)
    except NotebookFailed as exc:
        print(f"compendium run: {exc}", file=sys.stderr)
        return 1
    shown = f"{result.profile}, run {result.run}" if args.run_name else result.profile
    print(f"{result.name} ({shown}) finished in {result.seconds:.1f} s: {result.output_dir}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "notebooks":
        from .notebook import load_specs
        from .runner import list_notebooks

        entries = load_specs()
        for name in list_notebooks():
            print(f"{name:<24} {entries.get(name).title}")
        return 0
    module, attr = {
        "models": ("compendium.encoders", "describe_models"),
        "cohorts": ("compendium.cohorts", "describe_cohorts"),
    }[args.what]
    try:
        describe = getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        print(f"no {args.what} registered yet")
        return 0
    for line in describe():
        print(line)
    return 0


def _cmd_book(args: argparse.Namespace) -> int:
    from .book import build_book
    from .runner import NotebookFailed

    if args.out:
        from .atomic import check_output

        check_output(args.out, directory=True)

    try:
        index = build_book(args.profile, rerun=args.rerun, out=args.out, jobs=args.jobs,
                           solutions=args.solutions)
    except NotebookFailed as exc:
        print(f"compendium book: {exc}", file=sys.stderr)
        return 1
    print(f"book built: {index}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
