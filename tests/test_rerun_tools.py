"""Issue 24, re-executors' tools: ``compendium params`` (documented from the specs),
named runs, ``compendium runs`` and ``compendium compare``."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from compendium.cli import main
from compendium.config import field_range
from compendium.notebook import PROFILES, get_spec, load_specs
from compendium.paramdoc import field_docs, parameters_cell
from compendium.papers.readings import load_readings
from compendium.runner import notebook_path, project_root, resolve_params

ROOT = project_root()
NOTEBOOKS = sorted(load_specs().names())


def _run(capsys, argv, code=0):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == code, err
    return out, err


def _one_line_error(capsys, argv, expected):
    out, err = _run(capsys, argv, code=2)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert expected in err, err
    return err


# ----------------------------------------------------------------------------- params


def _comment_blocks(cls) -> set[str]:
    """Every block of consecutive ``#:`` lines in the source of ``cls`` and its bases."""
    blocks = set()
    for klass in cls.__mro__:
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for block in re.findall(r"(?:^[ \t]*#:.*\n)+", src, re.M):
            blocks.add(" ".join(line.strip()[2:].strip() for line in block.splitlines()))
    return blocks


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_parameter_has_a_meaning_in_its_spec(name):
    docs = field_docs(get_spec(name))
    assert [k for k, v in docs.items() if not v] == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_params_output_matches_the_spec_exactly(name, capsys):
    spec = get_spec(name)
    out, _ = _run(capsys, ["params", name, "--json"])
    rows = json.loads(out)
    fields = dataclasses.fields(spec)
    assert [r["name"] for r in rows] == [f.name for f in fields]
    blocks = _comment_blocks(spec)
    hints = typing.get_type_hints(spec)
    resolved = {p: resolve_params(name, p).to_dict() for p in PROFILES}
    readings = {r.parameter: list(r.candidates) for r in load_readings(name)}
    for row, f in zip(rows, fields):
        # the meaning is the field's own #: comment block in the spec's source
        assert row["meaning"] in blocks, (f.name, row["meaning"])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        assert row["default"] == json.loads(json.dumps(default, default=str))
        assert row["profiles"] == {p: resolved[p][f.name] for p in PROFILES}
        rng = field_range(spec, f.name)
        if f.name in readings:
            assert row["allowed"] == "a reading (readings.yaml): one of " + ", ".join(
                json.dumps(c) for c in readings[f.name])
        elif typing.get_origin(hints[f.name]) is typing.Literal:
            assert row["allowed"] == "one of " + ", ".join(
                json.dumps(a) for a in typing.get_args(hints[f.name]))
        elif rng is not None and (rng.lo is not None or rng.hi is not None):
            assert row["allowed"].startswith(rng.describe())
        else:
            assert rng is not None or row["allowed"] == ""


def test_params_text_shows_every_parameter_meaning_and_profile_value(capsys):
    out, _ = _run(capsys, ["params", "glossary"])
    docs = json.loads(_run(capsys, ["params", "glossary", "--json"])[0])
    text = " ".join(out.split())
    for d in docs:
        assert f"{d['name']} ({d['type']}" in text
        assert " ".join(d["meaning"].split()) in text
        if d["name"] != "output_dir":
            assert f"smoke {json.dumps(d['profiles']['smoke'])}" in text
            assert f"full {json.dumps(d['profiles']['full'])}" in text
    # glossary's smoke profile sets n_rows: 600 (params/glossary/smoke.yaml)
    assert re.search(r"default 4000 \| smoke 600 \| demo \d+ \| full \d+", out)
    only, _ = _run(capsys, ["params", "glossary", "--profile", "smoke"])
    assert "smoke 600" in only and "demo " not in only.split("n_rows")[1].split("\n\n")[0]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_cell_is_generated_from_the_spec(name):
    """The notebook's parameters cell carries the same meanings (regenerate it with
    ``compendium params NB --write-cell``)."""
    cells = nbformat.read(str(notebook_path(name, ROOT)), as_version=4).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert tagged[0].source == parameters_cell(name)


def test_params_unknown_notebook_is_one_line(capsys):
    _one_line_error(capsys, ["params", "nope"], "unknown notebook 'nope'")


# --------------------------------------------------------------- hand-made run folders


def _fake_run(folder: Path, *, notebook="nb", profile="smoke", run="default", params=None,
              values=None, tables=None):
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "notebook": notebook, "profile": profile, "run": run,
        "parameters": params or {"profile": profile, "seed": 0, "knobs": "default"},
        "differs_from_profile": {k: v for k, v in (params or {}).items() if k == "knobs"},
        "finished": "2026-01-02T03:04:05Z", "git": {"commit": "0123456789abcdef", "dirty": False},
        "seconds": 1.5}))
    (folder / "values.json").write_text(json.dumps(values or {}))
    (folder / "tables").mkdir()
    for name, df in (tables or {}).items():
        df.to_csv(folder / "tables" / f"{name}.csv", index=False)


def _gaps(estimates, p_values):
    return pd.DataFrame({"model": ["m1", "m1", "m2"], "attribute": ["sex", "age", "sex"],
                         "estimate": estimates, "ci_low": [e - 0.05 for e in estimates],
                         "ci_high": [e + 0.05 for e in estimates], "p_adjusted": p_values,
                         "verdict": ["gap", "gap", "none"]})


@pytest.fixture()
def two_runs(tmp_path, monkeypatch):
    res = tmp_path / "results"
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(res))
    _fake_run(res / "nb" / "smoke", values={"n_sig": 2, "label": "x"},
              tables={"gaps": _gaps([0.15, 0.12, 0.01], [0.001, 0.01, 0.8])})
    _fake_run(res / "nb" / "smoke" / "knobs-off",
              params={"profile": "smoke", "seed": 0, "knobs": "zero"}, run="knobs-off",
              values={"n_sig": 0, "label": "x"},
              tables={"gaps": _gaps([0.03, 0.02, 0.09], [0.4, 0.6, 0.02])})
    return res


def test_compare_joins_tables_on_keys_and_flags_significance(two_runs, capsys, tmp_path):
    out_csv = tmp_path / "cmp.csv"
    out, _ = _run(capsys, ["compare", "nb/smoke", "nb/smoke/knobs-off", "--out", out_csv])
    assert "parameters that differ: knobs \"default\" -> \"zero\"" in out
    assert "significance changed (p < 0.05): 3" in out
    df = pd.read_csv(out_csv)
    est = df[(df.table == "gaps") & (df.column == "estimate")].set_index("row")
    assert list(est.index) == ["model=m1; attribute=sex", "model=m1; attribute=age",
                               "model=m2; attribute=sex"]
    row = est.loc["model=m1; attribute=sex"]
    assert (float(row.a), float(row.b), row.a_ci_low, row.b_ci_high, row.a_p, row.b_p) \
        == pytest.approx((0.15, 0.03, 0.10, 0.08, 0.001, 0.4))
    assert row.difference == pytest.approx(-0.12)
    assert list(est.change) == ["became non-significant", "became non-significant",
                                "became significant"]
    values = df[df.section == "value"].set_index("column")
    assert float(values.loc["n_sig", "difference"]) == -2 and values.loc["n_sig", "change"] == "differs"
    assert pd.isna(values.loc["label", "change"])        # equal text: no change
    verdict = df[(df.column == "verdict") & (df["row"] == "model=m2; attribute=sex")]
    assert verdict.a.item() == "none" and pd.isna(verdict.change.item())


def test_compare_rows_only_in_one_run(tmp_path, monkeypatch, capsys):
    res = tmp_path / "results"
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(res))
    _fake_run(res / "nb" / "demo", profile="demo", tables={"t": pd.DataFrame(
        {"group": ["F", "M"], "n": [5, 7]})})
    _fake_run(res / "nb" / "full", profile="full", tables={"t": pd.DataFrame(
        {"group": ["F", "X"], "n": [6, 1]})})
    out, _ = _run(capsys, ["compare", "nb/demo", "nb/full"])     # two profiles of one notebook
    assert "(1 only in A, 1 only in B)" in out
    df = pd.read_csv(res / "comparisons" / "nb.demo--nb.full.csv")
    assert float(df[df["row"] == "group=F"].difference.item()) == 1


def test_compare_bad_inputs_are_one_line(two_runs, capsys):
    _one_line_error(capsys, ["compare", "nb/smoke", "nb/smoke/nope"],
                    "unknown run 'nb/smoke/nope'")
    _one_line_error(capsys, ["compare", "nb/smoke", "nope/smoke"], "unknown run 'nope/smoke'")
    _fake_run(two_runs / "other" / "smoke", notebook="other")
    _one_line_error(capsys, ["compare", "nb/smoke", "other/smoke"],
                    "runs of different notebooks cannot be compared")
    (two_runs / "nb" / "smoke" / "knobs-off" / "tables" / "gaps.csv").unlink()
    _one_line_error(capsys, ["compare", "nb/smoke", "nb/smoke/knobs-off"],
                    "table gaps.csv is in run nb/smoke but missing from run nb/smoke/knobs-off")
    out, _ = _run(capsys, ["compare", "nb/smoke", "nb/smoke/knobs-off", "--skip-missing"])
    assert "tables one run lacks: gaps (only in A)" in out
    assert "table cells: 0 compared" in out
    _one_line_error(capsys, ["compare", "nb/smoke", "nb/smoke", "--alpha", "2"], "--alpha")


def test_runs_lists_differences_date_commit_and_duration(two_runs, capsys):
    out, _ = _run(capsys, ["runs"])
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["run", "finished"]
    assert lines[1].split() == ["nb/smoke", "2026-01-02T03:04:05Z", "0123456789", "1.5", "-"]
    assert lines[2].split() == ["nb/smoke/knobs-off", "2026-01-02T03:04:05Z", "0123456789",
                                "1.5", 'knobs="zero"']


def test_run_bad_name_is_one_line(capsys):
    for bad in ("Knobs Off", "tables", "../x"):
        _one_line_error(capsys, ["run", "glossary", "--profile", "smoke", "--name", bad],
                        "a run name is")


# ----------------------------------------------------------------- real smoke runs


@pytest.mark.slow
def test_named_runs_and_compare_on_glossary_smoke(capsys, tmp_path, monkeypatch):
    res = tmp_path / "results"
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(res))
    _run(capsys, ["run", "glossary", "--profile", "smoke", "--no-progress"])
    out, _ = _run(capsys, ["run", "glossary", "--profile", "smoke", "--no-progress",
                           "--name", "no-gap", "--set", "tpr_b=0.85"])
    assert "glossary (smoke, run no-gap) finished" in out
    named = res / "glossary" / "smoke" / "no-gap"
    # the default run's re-run keeps the named run inside its folder
    _run(capsys, ["run", "glossary", "--profile", "smoke", "--no-progress"])
    info = json.loads((named / "run.json").read_text())
    assert info["run"] == "no-gap" and info["differs_from_profile"] == {"tpr_b": 0.85}
    listing, _ = _run(capsys, ["runs", "glossary"])
    assert re.search(r"^glossary/smoke\s.*\s-$", listing, re.M)
    assert re.search(r"^glossary/smoke/no-gap\s.*tpr_b=0.85$", listing, re.M)

    out, _ = _run(capsys, ["compare", "glossary/smoke", "glossary/smoke/no-gap"])
    assert "parameters that differ: tpr_b 0.7 -> 0.85" in out
    df = pd.read_csv(res / "comparisons" / "glossary.smoke--glossary.smoke.no-gap.csv")
    a = pd.read_csv(res / "glossary" / "smoke" / "tables" / "audit_example_key_rows.csv")
    b = pd.read_csv(named / "tables" / "audit_example_key_rows.csv")
    pick = (lambda t: t[(t.metric == "tpr") & (t.group == "B")].iloc[0])
    row = df[(df.table == "audit_example_key_rows") & (df.column == "estimate")
             & (df["row"] == "metric=tpr; attribute=group; group=B")].iloc[0]
    assert (float(row.a), float(row.b), row.a_ci_low, row.b_ci_low) == pytest.approx(
        (pick(a).estimate, pick(b).estimate, pick(a).ci_low, pick(b).ci_low))
    assert row.difference == pytest.approx(pick(b).estimate - pick(a).estimate)
    gap = df[(df.section == "value") & (df.column == "true_tpr_gap")].iloc[0]
    assert (float(gap.a), float(gap.b)) == pytest.approx((0.15, 0.0))


def test_runs_bad_inputs_and_no_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path / "empty"))
    _one_line_error(capsys, ["runs", "nope"], "unknown notebook 'nope'")
    out, _ = _run(capsys, ["runs", "glossary"])
    assert out.startswith("no runs of glossary yet")


def test_rerun_example_checks_its_runs_before_starting(capsys):
    _one_line_error(capsys, ["run", "rerun_example", "--profile", "smoke", "--set",
                             "notebook=rerun_example"], "cannot be rerun_example itself")
    _one_line_error(capsys, ["run", "rerun_example", "--profile", "smoke", "--set",
                             "changes=[knobz=zero]"], "unknown key 'knobz'")
    _one_line_error(capsys, ["run", "rerun_example", "--profile", "smoke", "--set",
                             "run_name=Bad Name"], "a run name is")


def test_compare_demo_stand_ins_with_full_models(tmp_path, monkeypatch, capsys):
    """A demo run's stand-ins line up with a full run's models on the paper's model."""
    res = tmp_path / "results"
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(res))
    demo = pd.DataFrame({"model": ["toy-a", "toy-a", "toy-b"],
                         "model_label": ["toy-a (stand-in for A)", "toy-a (stand-in for A)",
                                         "toy-b (stand-in for B)"],
                         "metric": ["acc", "f1", "acc"], "estimate": [0.5, 0.4, 0.6]})
    full = pd.DataFrame({"model": ["a", "b", "a"], "model_label": ["A", "B", "A"],
                         "metric": ["acc", "acc", "f1"], "estimate": [0.7, 0.8, 0.65]})
    _fake_run(res / "nb" / "demo", profile="demo", tables={"t": demo})
    _fake_run(res / "nb" / "full", profile="full", tables={"t": full})
    out, _ = _run(capsys, ["compare", "nb/demo", "nb/full"])
    assert "(0 only in A, 0 only in B)" in out
    df = pd.read_csv(res / "comparisons" / "nb.demo--nb.full.csv")
    est = df[df.column == "estimate"].set_index("row")
    assert list(est.index) == ["model_label=A; metric=acc", "model_label=A; metric=f1",
                               "model_label=B; metric=acc"]
    assert [float(x) for x in est.difference] == pytest.approx([0.2, 0.25, 0.2])
    model = df[df.column == "model"].set_index("row")
    assert (model.loc["model_label=B; metric=acc", "a"], model.loc["model_label=B; metric=acc", "b"]) \
        == ("toy-b", "b")


def test_highlights_and_counts_of_a_comparison(two_runs):
    from compendium.compare import compare_runs, counts, highlights
    from compendium.runs import resolve_run

    df = compare_runs(resolve_run("nb/smoke"), resolve_run("nb/smoke/knobs-off"))
    top = highlights(df, limit=2)
    assert list(top.section) == ["parameter", "table", "table"]
    assert list(top.change[1:]) == ["became non-significant"] * 2
    assert highlights(df, tables=["other"]).section.tolist() == ["parameter"]
    # intervals and p-values are folded into the estimate rows; the verdicts are equal
    assert counts(df) == {"n_cells_differ": 3, "n_significance_changes": 3}
