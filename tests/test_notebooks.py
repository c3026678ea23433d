"""Every notebook: consistent with its spec and params, free of definitions, and runnable
under its smoke profile (executed once per session; the book test reuses the results)."""

from __future__ import annotations

import ast
import json

import nbformat
import pytest

from compendium.config import load_yaml
from compendium.notebook import PROFILES, get_spec, load_specs
from compendium.results import provenance
from compendium.runner import (list_notebooks, notebook_files, notebook_path, project_root,
                               resolve_params, results_dir)

ROOT = project_root()
NOTEBOOKS = list_notebooks(ROOT)


def _cells(name):
    return nbformat.read(str(notebook_path(name, ROOT)), as_version=4).cells


def test_every_notebook_file_has_a_spec_and_every_spec_a_file():
    files = sorted(notebook_files(ROOT))
    assert files == NOTEBOOKS
    assert sorted(load_specs().names()) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_matches_spec(name):
    tagged = [c for c in _cells(name) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse(tagged[0].source)
    assigned = [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    assert all(isinstance(n, (ast.Assign, ast.AnnAssign)) for n in tree.body), "literals only"
    assert sorted(assigned) == sorted(get_spec(name).field_names())


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_definitions_in_notebooks(name):
    for cell in _cells(name):
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            defs = [n for n in ast.walk(tree)
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))]
            assert not defs, f"{name}: move definitions into the package"


def _caption_text(node) -> str:
    """The literal text of a caption argument (an f-string's literal parts)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value for v in node.values if isinstance(v, ast.Constant))
    return ""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_table_has_a_caption_and_a_known_source(name):
    """Each ``.table(`` call writes what the table shows (``caption``, a non-empty string
    written in the notebook) and names where its numbers come from (``source``: one of the
    vocabulary, checked as the provenance line would check it)."""
    problems, n_calls = [], 0
    for cell in _cells(name):
        if cell.cell_type != "code":
            continue
        calls = [n for n in ast.walk(ast.parse(cell.source)) if isinstance(n, ast.Call)
                 and isinstance(n.func, ast.Attribute) and n.func.attr == "table"]
        assert len(calls) == cell.source.count(".table("), "a .table( call the test cannot read"
        for call in calls:
            n_calls += 1
            kw = {k.arg: k.value for k in call.keywords}
            where = f"{name}: {ast.unparse(call.args[1]) if len(call.args) > 1 else '?'}"
            if not _caption_text(kw.get("caption")).strip():
                problems.append(f"{where}: no caption")
            source = kw.get("source")
            if source is not None:
                if not isinstance(source, ast.Constant):
                    problems.append(f"{where}: source is not a literal")
                    continue
                try:
                    provenance(source.value)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
    assert not problems, problems
    assert n_calls, f"{name} publishes no table: the check above read nothing"


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_file_exists_and_validates(name, profile):
    path = ROOT / "params" / name / f"{profile}.yaml"
    assert path.is_file()
    spec = resolve_params(name, profile, root=ROOT)
    assert spec.profile == profile
    assert "output_dir" not in load_yaml(path)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_under_smoke(name, smoke_runs):
    out = smoke_runs[name]
    assert (out / f"{name}.ipynb").is_file()
    info = json.loads((out / "run.json").read_text())
    assert info["profile"] == "smoke"
    executed = nbformat.read(str(out / f"{name}.ipynb"), as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    produced = list((out / "tables").glob("*.csv")) + list((out / "figures").glob("*.png"))
    assert produced, f"{name} produced no table or figure"
    assert results_dir(name, "smoke") == out
