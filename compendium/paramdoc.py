"""``compendium params NOTEBOOK``: every parameter of a notebook, documented from its spec.

For each parameter: its type, the allowed values or range, its meaning and its value in
each profile (``params/NOTEBOOK/PROFILE.yaml`` over the spec's defaults).  The meaning has
one source, the ``#:`` comment above the field in the spec class (the convention Sphinx
autodoc reads); a ``#:`` comment documents the fields that directly follow it, up to a
blank line or the next comment.  The command line, the notebooks' parameters cells (see
``--cell``) and the book's Re-running chapter all read it from there, so they cannot drift.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import typing
from pathlib import Path
from typing import Any, Literal

_NO_DEFAULT = "(required)"


@dataclasses.dataclass(frozen=True)
class ParamDoc:
    """One documented parameter of a notebook."""

    name: str
    type: str
    allowed: str
    meaning: str
    default: Any
    profiles: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@functools.lru_cache(maxsize=None)
def own_field_docs(cls: type) -> dict[str, str]:
    """``#:`` comments of the fields ``cls`` itself declares (not its bases'), by name."""
    try:
        lines, _ = inspect.getsourcelines(cls)
    except (OSError, TypeError):
        return {}
    source = textwrap.dedent("".join(lines))
    tree = ast.parse(source)
    body = next(n for n in tree.body if isinstance(n, ast.ClassDef)).body
    text = source.splitlines()
    docs: dict[str, str] = {}
    group: str | None = None
    prev_end: int | None = None
    for node in body:
        is_field = isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
        comment: list[str] = []
        i = node.lineno - 2                      # the line above, 0-based
        while i >= 0 and text[i].strip().startswith("#:"):
            comment.insert(0, text[i].strip()[2:].strip())
            i -= 1
        if comment:
            group = " ".join(comment)
        elif not (prev_end is not None and node.lineno == prev_end + 1):
            group = None                         # a blank line or other code ends a group
        if is_field:
            if group and not _is_classvar(node.annotation):
                docs[node.target.id] = group
            prev_end = node.end_lineno
        else:
            prev_end, group = None, None
    return docs


def _is_classvar(annotation: ast.expr) -> bool:
    return "ClassVar" in ast.unparse(annotation)


def field_docs(cls: type) -> dict[str, str]:
    """The meaning of every field of spec class ``cls``, from the nearest class in its MRO
    that declares the field (a subclass re-declaring a field documents it anew)."""
    docs: dict[str, str] = {}
    for name in (f.name for f in dataclasses.fields(cls)):
        for klass in cls.__mro__:
            if name in klass.__dict__.get("__annotations__", {}):
                docs[name] = own_field_docs(klass).get(name, "")
                break
    return docs


def undocumented(cls: type) -> list[str]:
    """Fields of ``cls`` without a ``#:`` meaning."""
    return [k for k, v in field_docs(cls).items() if not v]


def describe_parameters(name: str, root: str | Path | None = None) -> list[ParamDoc]:
    """Every parameter of notebook ``name``, in the spec's field order."""
    from .config import _describe, field_range
    from .notebook import PROFILES, get_spec
    from .runner import resolve_params

    cls = get_spec(name)
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    per_profile = {p: resolve_params(name, p, root=root).to_dict() for p in PROFILES}
    readings = _readings(cls)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        rng = field_range(cls, f.name)
        if typing.get_origin(hint) is Literal:
            allowed = "one of " + ", ".join(json.dumps(a) for a in typing.get_args(hint))
        elif rng is not None:
            parts = []
            if rng.lo is not None or rng.hi is not None:
                parts.append(rng.describe())
            if rng.min_items:
                parts.append(f"at least {rng.min_items} item(s)")
            allowed = ", ".join(parts)
        else:
            allowed = ""
        if f.name in readings:
            allowed = "a reading (readings.yaml): one of " + ", ".join(
                json.dumps(c) for c in readings[f.name])
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = _NO_DEFAULT
        default = _plain(default)
        if typing.get_origin(hint) is Literal:   # the values' type; allowed lists them
            kind = " or ".join(dict.fromkeys(type(a).__name__ for a in typing.get_args(hint)))
        else:
            kind = _describe(hint)
        out.append(ParamDoc(f.name, kind, allowed, docs.get(f.name, ""), default,
                            {p: per_profile[p][f.name] for p in PROFILES}))
    return out


def _readings(cls: type) -> dict[str, list[str]]:
    """Parameter -> candidates of a paper's readings (``readings.yaml``), for paper specs."""
    paper = getattr(cls, "NOTEBOOK", "")
    if not paper:
        return {}
    from .papers.readings import load_readings

    return {r.parameter: list(r.candidates) for r in load_readings(paper)}


def _plain(value: Any) -> Any:
    from .config import _plain as plain

    return plain(value)


def show(value: Any) -> str:
    """A value as it is typed after ``--set KEY=`` (JSON, which YAML reads)."""
    return json.dumps(value, default=str)


def parameters_cell(name: str) -> str:
    """The source of notebook ``name``'s ``parameters`` cell: every field with its default
    and its meaning as a comment (what ``--write-cell`` puts in the notebook)."""
    from .notebook import get_spec

    cls = get_spec(name)
    docs = field_docs(cls)
    lines = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        line = f"{f.name} = {_plain(default)!r}"
        if docs.get(f.name):
            line += f"  # {docs[f.name]}"
        lines.append(line)
    return "\n".join(lines)


def write_parameters_cell(name: str, root: str | Path | None = None) -> Path:
    """Replace the ``parameters`` cell of ``notebooks/<name>.ipynb`` by :func:`parameters_cell`."""
    import nbformat

    from .errors import ConfigError
    from .runner import notebook_path

    path = notebook_path(name, root)
    nb = nbformat.read(str(path), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    cells[0].source = parameters_cell(name)
    nbformat.write(nb, str(path))
    return path


def format_parameters(name: str, docs: list[ParamDoc], profile: str | None = None) -> str:
    """The text ``compendium params`` prints."""
    from .notebook import load_specs

    entry = load_specs().get(name)
    head = [f"{name}: {entry.title}",
            f"parameters of params/{name}/PROFILE.yaml; change one with "
            f"`compendium run {name} --set KEY=VALUE` (VALUE is YAML)", ""]
    body = []
    for d in docs:
        kind = d.type + (f", {d.allowed}" if d.allowed else "")
        body.append(f"{d.name}  ({kind})")
        body.append(textwrap.fill(d.meaning or "(no meaning documented)", width=88,
                                  initial_indent="    ", subsequent_indent="    "))
        if d.name == "output_dir":
            body.append("    set by the runner")
        else:
            values = [f"default {show(d.default)}"]
            profiles = [profile] if profile else list(d.profiles)
            values += [f"{p} {show(d.profiles[p])}" for p in profiles]
            body.append("    " + " | ".join(values))
    return "\n".join(head + body)


# ----------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    parser.add_argument("notebook", help="notebook name (see `compendium list notebooks`)")
    parser.add_argument("--profile", choices=["smoke", "demo", "full"],
                        help="show this profile's values only (default: every profile)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--json", action="store_true", help="print the parameters as JSON")
    what.add_argument("--cell", action="store_true",
                      help="print the notebook's parameters cell generated from the spec")
    what.add_argument("--write-cell", action="store_true",
                      help="write that cell into notebooks/NOTEBOOK.ipynb (maintainers)")


def run(args) -> int:
    from .notebook import get_spec

    get_spec(args.notebook)                      # unknown notebook: one line, exit 2
    if args.cell:
        print(parameters_cell(args.notebook))
        return 0
    if args.write_cell:
        print(f"wrote the parameters cell of {write_parameters_cell(args.notebook)}")
        return 0
    docs = describe_parameters(args.notebook)
    if args.json:
        rows = [d.to_dict() for d in docs]
        if args.profile:
            for r in rows:
                r["profiles"] = {args.profile: r["profiles"][args.profile]}
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(format_parameters(args.notebook, docs, args.profile))
    return 0
