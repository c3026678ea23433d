"""'Find the bias' challenges for a fairness-auditing course (everything synthetic).

``compendium teaching challenge --seed S --out DIR --key KEY [--students N] [--rows R]``
writes hand-out folders (predictions table, cohort, README, sealed challenge.json); the key
file (the teacher's, created when absent) must stay outside them.
``compendium teaching grade --challenge DIR --answer FILE --key KEY [--reveal]`` grades an
answer file (``group: sex=F``, ``mechanism: label_noise``, optional ``strength: strong``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: A folder of several hand-outs written by this command carries this marker; only such a
#: folder (or a single hand-out) is replaced.
MARKER = ".compendium-challenges"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..cli import _Parser
    from ..config import cli_number

    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    sub.required = True
    p = sub.add_parser("challenge", help="write 'find the bias' hand-outs (one per student)")
    p.add_argument("--seed", type=cli_number(int, lo=0, hi=10**9), required=True, metavar="S",
                   help="challenge id (with --students N: ids S, S+1, ..., S+N-1)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="hand-out folder (with --students N: one sub-folder per student)")
    p.add_argument("--key", required=True, metavar="FILE",
                   help="the teacher's key file (created when absent; keep it outside DIR)")
    p.add_argument("--students", type=cli_number(int, lo=1, hi=10_000), default=1, metavar="N",
                   help="hand-outs to write, one per student (default 1)")
    p.add_argument("--rows", type=cli_number(int, lo=500, hi=1_000_000), default=None,
                   metavar="R", help="rows of each world (default 4000)")
    p = sub.add_parser("grade", help="grade an answer file against a challenge's secret")
    p.add_argument("--challenge", required=True, metavar="DIR", help="the hand-out folder")
    p.add_argument("--answer", required=True, metavar="FILE", help="the student's answer (YAML)")
    p.add_argument("--key", required=True, metavar="FILE", help="the teacher's key file")
    p.add_argument("--reveal", action="store_true", help="also print the secret (teachers)")


def run(args: argparse.Namespace) -> int:
    return _challenge(args) if args.action == "challenge" else _grade(args)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _challenge(args: argparse.Namespace) -> int:
    import shutil

    from ..atomic import check_output, partial_dir, replace_dir, sweep_partials
    from ..errors import ConfigError
    from .challenge import DEFAULT_ROWS, load_or_create_key, write_challenge

    out = check_output(args.out, directory=True)
    key_path = Path(args.key).expanduser()
    if _inside(key_path, out):
        raise ConfigError(f"--key {key_path} lies inside --out {out}: keep the key outside the "
                          "hand-outs, or students receive it")
    if key_path.is_dir():
        raise ConfigError(f"--key {key_path} is a directory: give a file name")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists() \
            and not (out / "challenge.json").exists():
        raise ConfigError(f"--out {out} exists and holds other files: give a new or empty folder "
                          "(a folder written by `compendium teaching challenge` is replaced)")
    key, created = load_or_create_key(key_path)
    rows = args.rows or DEFAULT_ROWS
    ids = list(range(args.seed, args.seed + args.students))
    if len(ids) == 1:
        write_challenge(out, key=key, challenge_id=ids[0], n=rows)
    else:
        sweep_partials(out.parent, out.name)
        work = partial_dir(out.parent, out.name)
        try:
            (work / MARKER).write_text(f"compendium teaching challenge --seed {args.seed} "
                                       f"--students {args.students}\n")
            width = len(str(len(ids)))
            lines = ["folder,challenge"]
            for i, cid in enumerate(ids, start=1):
                name = f"student-{i:0{width}d}"
                write_challenge(work / name, key=key, challenge_id=cid, n=rows)
                lines.append(f"{name},{cid}")
            (work / "index.csv").write_text("\n".join(lines) + "\n")
            replace_dir(work, out)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    made = f"created the key {key_path} (keep it private)" if created else f"key {key_path}"
    print(f"wrote {len(ids)} challenge(s) to {out}; {made}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from .challenge import grade, read_answer, read_challenge, read_key

    read_challenge(args.challenge)
    key = read_key(args.key)
    answer = read_answer(args.answer)
    result = grade(args.challenge, answer, key=key)
    for line in result.lines(reveal=args.reveal):
        print(line)
    sys.stdout.flush()
    return 0
