"""The Re-running chapter's list of what each rehearsal covers and skips, kept equal to
``rehearsal.json``.

Each paper has a block in ``book/guide/rerun.md`` between ``<!-- rehearsal:PAPER:begin -->``
and ``<!-- rehearsal:PAPER:end -->``; :func:`section` renders it from a rehearsal's summary
(the ``covers`` and ``skips`` lines of ``rehearsal.json``, nothing typed by hand),
:func:`chapter_problems` says where the chapter differs (the rehearsal tests fail on it) and
:func:`update_chapter` rewrites the block (``compendium rehearse PAPER --update-chapter``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

#: The chapter holding the blocks, relative to the project root.
CHAPTER = Path("book") / "guide" / "rerun.md"


def markers(paper: str) -> tuple[str, str]:
    return f"<!-- rehearsal:{paper}:begin -->", f"<!-- rehearsal:{paper}:end -->"


def section(summary: dict[str, Any]) -> str:
    """The chapter's block of one rehearsal: how far it runs, then its covers and skips."""
    paper = summary["paper"]
    if summary.get("check_only"):
        reach = "preflight and encoders only (`--check-only`)"
    elif summary.get("refused"):
        reach = "to the full profile's one-line refusal"
    else:
        reach = "end to end"
    name = f"Paper {paper.rsplit('_', 1)[-1].upper()}"
    lines = [f"**{name}** (`compendium rehearse {paper}`; the CPU test runs it {reach})", "",
             "Covers:", ""]
    lines += [f"- {c}" for c in summary["covers"]]
    lines += ["", "Skips:", ""]
    lines += [f"- {s}" for s in summary["skips"]]
    budget = summary.get("budget") or {}
    if budget:
        lines += ["", f"Budget shrunk (the rest as in `params/{paper}/full.yaml`): "
                  + ", ".join(f"`{k}: {_flow(v)}`" for k, v in sorted(budget.items()))]
    return "\n".join(lines)


def _flow(value: Any) -> str:
    """A parameter value as one line of YAML (as ``--set`` takes it)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix(
        "\n...").strip()


def _block(text: str, paper: str) -> re.Match[str] | None:
    begin, end = markers(paper)
    return re.search(re.escape(begin) + r"\n(.*?)\n?" + re.escape(end), text, re.S)


def chapter_problems(summary: dict[str, Any], chapter: str | Path = CHAPTER) -> list[str]:
    """How the chapter's block of ``summary['paper']`` differs from ``section(summary)``
    (empty: equal)."""
    paper = summary["paper"]
    text = Path(chapter).read_text(encoding="utf-8")
    found = _block(text, paper)
    if found is None:
        return [f"{chapter}: no block {markers(paper)[0]} ... {markers(paper)[1]}"]
    if found.group(1).strip() != section(summary).strip():
        return [f"{chapter}: the {paper} block differs from its rehearsal.json; run "
                f"`compendium rehearse {paper} --update-chapter`"]
    return []


def update_chapter(summary: dict[str, Any], chapter: str | Path = CHAPTER) -> Path:
    """Rewrite the chapter's block of ``summary['paper']`` from the summary (atomically)."""
    from ..atomic import atomic_write
    from ..errors import InputError

    paper = summary["paper"]
    path = Path(chapter)
    text = path.read_text(encoding="utf-8")
    found = _block(text, paper)
    if found is None:
        raise InputError(f"{path}: no block {markers(paper)[0]} ... {markers(paper)[1]}")
    begin, end = markers(paper)
    new = text[:found.start()] + f"{begin}\n{section(summary)}\n{end}" + text[found.end():]
    with atomic_write(path) as fh:
        fh.write(new)
    return path
