"""Assemble executed notebooks and the markdown chapters into the Jupyter Book.

The notebooks that belong to the book are the ``book/generated/<name>`` entries of
``_toc.yml``.  For each, the results of the requested profile are reused when current
(same notebook, parameters and package sources: see :func:`compendium.runner.is_current`)
and executed otherwise.  The book's sources are staged in ``_build/src`` (the executed
notebooks copied to ``book/generated/``), then built with Jupyter Book 1.x into
``_build/html``, with no network access.
"""

from __future__ import annotations

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


def build_book(profile: str = "demo", *, rerun: bool = False, out: str | Path | None = None,
               root: str | Path | None = None, strict: bool = False) -> Path:
    """Execute (or reuse) the book's notebooks under ``profile`` and build the HTML book.

    Returns the path of ``index.html``.
    """
    from tqdm.auto import tqdm

    root = project_root(root)
    out = Path(out) if out else root
    names = book_notebooks(root)
    executed: dict[str, Path] = {}
    for name in tqdm(names, desc=f"notebooks ({profile})", unit="nb", disable=None):
        spec = resolve_params(name, profile, root=root)
        if rerun or not is_current(name, spec, root):
            run_notebook(name, profile, root=root, progress=False)
        else:
            log.info("reusing current results of %s (%s)", name, profile)
        executed[name] = results_dir(name, profile, root) / f"{name}.ipynb"

    build = out / "_build"
    src = build / "src"
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for item in ("_config.yml", "_toc.yml", "references.bib"):
        if (root / item).exists():
            shutil.copy2(root / item, src / item)
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


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def book_warnings(output: str) -> list[str]:
    """Sphinx warnings of a build log (a glue key that does not resolve, a broken
    reference...), without colour codes.  They are also written to ``_build/warnings.txt``."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    return [line for line in lines if "WARNING:" in line or ": ERROR:" in line]
