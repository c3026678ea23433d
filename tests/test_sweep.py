"""``compendium sweep``: the grid, point names and validation (no Ray), the serial executor
on a tiny project, and a 2x2 sweep of a smoke notebook on a local Ray that is stopped part
way and resumed."""

from __future__ import annotations

import doctest
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from compendium import cli
from compendium.errors import ConfigError
from compendium.runner import RUN_NAME
from compendium.sweep import grid as grid_mod
from compendium.sweep.execute import Outcome, SweepReport, run_sweep, sweep_table
from compendium.sweep.grid import (Point, Sweep, build_sweep, expand_grid, parse_grid_option,
                                   point_name, seeds_grid, validate_points)

ROOT = Path(__file__).resolve().parent.parent


def _one_line_error(capsys, argv, needle):
    try:
        status = cli.main(argv)
    except SystemExit as exc:                   # argparse's own checks of an option
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    assert needle in err, err
    return err


# ------------------------------------------------------------------------- the grid


def test_grid_module_examples():
    assert doctest.testmod(grid_mod).failed == 0


def test_grid_option_and_seeds():
    assert parse_grid_option("tpr_b=0.6, 0.7") == ("tpr_b", [0.6, 0.7])
    assert parse_grid_option("knobs=default,zero") == ("knobs", ["default", "zero"])
    assert parse_grid_option("models=[a, b],[c]") == ("models", [["a", "b"], ["c"]])
    assert parse_grid_option("knobs={sex=F: {noise: 0.1}},zero") == \
        ("knobs", [{"sex=F": {"noise": 0.1}}, "zero"])
    assert seeds_grid("0..9") == {"seed": list(range(10))}
    assert seeds_grid("3") == {"seed": [3]}
    assert seeds_grid("4, 1") == {"seed": [4, 1]}
    assert seeds_grid("world_seed=0..2") == {"world_seed": [0, 1, 2]}
    for bad in ("5..2", "a..b", "1,1", "-1", "0..99999"):
        with pytest.raises(ConfigError, match="--seeds"):
            seeds_grid(bad)
    for bad in ("tpr_b", "tpr_b=", "=1,2", "tpr_b=1,1", "tpr_b=[1"):
        with pytest.raises(ConfigError, match="--grid"):
            parse_grid_option(bad)


def test_expand_grid_is_the_product_in_order():
    points = expand_grid({"a": [1, 2, 3], "b": ["x", "y"]}, {"n": 5})
    assert points == [{"a": 1, "b": "x", "n": 5}, {"a": 1, "b": "y", "n": 5},
                      {"a": 2, "b": "x", "n": 5}, {"a": 2, "b": "y", "n": 5},
                      {"a": 3, "b": "x", "n": 5}, {"a": 3, "b": "y", "n": 5}]


def test_point_names_are_deterministic_distinct_and_valid():
    a = point_name({"tpr_b": 0.6, "seed": 0})
    assert a == point_name({"tpr_b": 0.6, "seed": 0})
    assert a.startswith("tpr_b-0p6_seed-0-") and len(a) == len("tpr_b-0p6_seed-0-") + 8
    # values that read alike still get their own folder; so do different fixed parameters
    names = {point_name(p) for p in [{"x": 0.6}, {"x": "0.6"}, {"x": "0p6"}, {"x": -1},
                                      {"x": 1}, {"x": 0.6, "n": 10}, {"x": 0.6, "n": 20}]}
    assert len(names) == 7
    long = point_name({"knobs": {"sex=F": {"soft_tissue": 0.5, "noise": 0.1}},
                       "models": ["clip-vit-b-16", "gloria", "medclip-vit"] * 5,
                       "a_very_long_parameter_name_indeed": "and a long value, too"})
    assert len(long) <= 64
    for name in names | {a, long}:
        assert RUN_NAME.match(name), name


def test_sweep_file_and_command_line_combine(tmp_path):
    f = tmp_path / "my_sweep.yaml"
    f.write_text("notebook: glossary\nprofile: smoke\ngrid:\n  tpr_b: [0.6, 0.7]\n"
                 "seeds: 0..2\nset: {n_rows: 200}\n")
    sweep = build_sweep(None, None, sweep_file=f, grid_options=["fpr=0.1,0.2"])
    assert (sweep.notebook, sweep.profile, sweep.name) == ("glossary", "smoke", "my_sweep")
    assert sweep.grid == {"tpr_b": [0.6, 0.7], "seed": [0, 1, 2], "fpr": [0.1, 0.2]}
    points = sweep.points()
    assert len(points) == 12 and [p.index for p in points] == list(range(1, 13))
    assert points[0].params == {"tpr_b": 0.6, "seed": 0, "fpr": 0.1, "n_rows": 200}
    assert len({p.name for p in points}) == 12
    # the command line's --seeds replaces the file's
    assert build_sweep(None, None, sweep_file=f, seeds="5..6").grid["seed"] == [5, 6]
    with pytest.raises(ConfigError, match="sweeps notebook 'glossary', not 'data'"):
        build_sweep("data", None, sweep_file=f)
    with pytest.raises(ConfigError, match="both swept .* and fixed"):
        build_sweep(None, None, sweep_file=f, set_options=["tpr_b=0.5"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("notebook: glossary\ngrids: {tpr_b: [0.5]}\n")
    with pytest.raises(ConfigError, match="unknown key 'grids'"):
        build_sweep(None, None, sweep_file=bad)
    bad.write_text("notebook: glossary\ngrid: {tpr_b: 0.5}\n")
    with pytest.raises(ConfigError, match="non-empty list"):
        build_sweep(None, None, sweep_file=bad)


def test_every_point_is_validated_before_anything_runs(tmp_path):
    sweep = build_sweep("glossary", "smoke", grid_options=["tpr_b=0.6,1.5", "n_rows=100,5"])
    with pytest.raises(ConfigError) as exc:
        validate_points(sweep)
    msg = str(exc.value)
    # the first bad point in grid order is point 2 (tpr_b=0.6, n_rows=5)
    assert msg.startswith("point 2 of 4 (tpr_b=0.6, n_rows=5): n_rows must lie in"), msg
    assert "\n" not in msg
    with pytest.raises(ConfigError, match="unknown parameter 'tpr' for notebook 'glossary'"):
        validate_points(build_sweep("glossary", "smoke", grid_options=["tpr=1,2"]))
    ok = validate_points(build_sweep("glossary", "smoke", seeds="0..2"))
    assert [p.params for p in ok] == [{"seed": 0}, {"seed": 1}, {"seed": 2}]


def test_shipped_sweep_files_validate():
    files = sorted((ROOT / "params" / "sweeps").glob("*.yaml"))
    assert files
    for f in files:
        points = validate_points(build_sweep(None, None, sweep_file=f))
        assert len(points) >= 2
    # Paper A's "default knobs" point is the demo profile's knobs, and "off" keeps only its
    # operating-point calibration (the same for every row)
    from compendium.config import load_yaml

    demo = load_yaml(ROOT / "params" / "paper_a" / "demo.yaml")["knobs"]
    on, off = load_yaml(ROOT / "params" / "sweeps" / "paper_a_sex_gap.yaml")["grid"]["knobs"]
    assert on == demo
    assert off == {"preset": "zero", "all": demo["all"]}


def test_cli_errors_are_one_line(capsys):
    _one_line_error(capsys, ["sweep", "glossary", "--profile", "smoke", "--grid",
                             "tpr_b=0.6,1.7", "--list"],
                    "point 2 of 2 (tpr_b=1.7): tpr_b must lie in [0, 1] (got 1.7)")
    _one_line_error(capsys, ["sweep", "nope", "--seeds", "0..1"], "unknown notebook")
    _one_line_error(capsys, ["sweep", "glossary", "--seeds", "2..1"], "range is empty")
    _one_line_error(capsys, ["sweep", "glossary", "--seeds", "0..1", "--max-parallel", "0"],
                    "--max-parallel")
    _one_line_error(capsys, ["sweep", "glossary"], "nothing to sweep")
    _one_line_error(capsys, ["sweep", "glossary", "--seeds", "0..1", "--serial", "--address",
                             "auto"], "--address is for Ray")


def test_sweep_without_ray_says_how_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)          # import ray -> ImportError
    _one_line_error(capsys, ["sweep", "glossary", "--profile", "smoke", "--seeds", "0..1"],
                    "needs Ray, an optional extra: pip install -e '.[scale]'")
    # listing the points needs no Ray
    assert cli.main(["sweep", "glossary", "--profile", "smoke", "--seeds", "0..1",
                     "--list"]) == 0
    assert "seed-1-" in capsys.readouterr().out


def test_table_has_parameters_then_published_values(tmp_path):
    sweep = Sweep("glossary", "smoke", {"seed": [0, 1, 2]}, {"models": ["a", "b"]}, "t")
    points = sweep.points()
    outcomes = []
    for p, status in zip(points, ["done", "skipped", "failed"]):
        folder = tmp_path / p.name
        folder.mkdir()
        (folder / "values.json").write_text(json.dumps({"gap": p.params["seed"] / 10,
                                                        "seed": 99}))
        outcomes.append(Outcome(p, status, folder, reason="boom" if status == "failed" else ""))
    table = sweep_table(sweep, SweepReport(sweep, outcomes, "test"))
    assert list(table.columns) == ["point", "status", "seed", "models", "gap", "value.seed"]
    assert table["seed"].tolist() == [0, 1, 2]
    assert table["models"].tolist() == ['["a", "b"]'] * 3
    assert table["gap"].tolist()[:2] == [0.0, 0.1] and pd.isna(table["gap"].iloc[2])
    assert table["value.seed"].tolist()[:2] == [99, 99]


# ------------------------------------------------------------ serial, tiny project


@pytest.fixture()
def tiny(tmp_path, monkeypatch):
    from test_runner import CODE, TinySpec  # noqa: F401 - the runner tests' tiny notebook
    import nbformat

    from compendium.notebook import NOTEBOOKS, NotebookEntry

    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "tiny").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "demo"\nseed = 0\noutput_dir = ""\nn = 5\n'
                                       'fail = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, str(root / "notebooks" / "tiny.ipynb"))
    (root / "params" / "tiny" / "smoke.yaml").write_text("profile: smoke\nn: 4\n")
    monkeypatch.setenv("COMPENDIUM_ROOT", str(root))
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(root / "results"))
    monkeypatch.setitem(NOTEBOOKS._entries, "tiny", NotebookEntry("tiny", TinySpec, "Tiny"))
    return root


@pytest.mark.slow
def test_serial_sweep_skips_current_points_and_retries_only_crashes(tiny):
    sweep = build_sweep("tiny", "smoke", grid_options=["fail='',bug,user"])
    points = validate_points(sweep)
    report = run_sweep(sweep, points, executor="serial", retries=1, progress=False)
    by = {o.point.params["fail"]: o for o in report.outcomes}
    assert by[""].status == "done" and by[""].attempts == 1
    assert by["bug"].status == "failed" and by["bug"].attempts == 2      # retried once
    assert "requested failure" in by["bug"].reason
    assert by["user"].status == "failed" and by["user"].attempts == 1    # not retried
    assert "NIH images not found" in by["user"].reason
    assert "failed 2" in report.summary() and "\n  failed " in report.summary()
    done = by[""].path / "run.json"
    info = json.loads(done.read_text())
    assert info["run"] == by[""].point.name and info["parameters"]["fail"] == ""
    assert not list(by["bug"].path.parent.glob(".*partial*"))
    assert not by["bug"].path.exists()
    stamp = done.stat().st_mtime_ns
    again = run_sweep(sweep, points, executor="serial", retries=0, progress=False)
    assert [o.status for o in again.outcomes] == ["skipped", "failed", "failed"]
    assert done.stat().st_mtime_ns == stamp
    table = sweep_table(sweep, again)
    assert table["status"].tolist() == ["skipped", "failed", "failed"]
    assert table.loc[0, "mean_y"] == pytest.approx(
        json.loads((by[""].path / "values.json").read_text())["mean_y"])


# ------------------------------------------------------------------ Ray, resumed


def _sweep_cmd(*extra):
    return [sys.executable, "-m", "compendium", "sweep", "glossary", "--profile", "smoke",
            "--grid", "tpr_b=0.6,0.7", "--seeds", "0..1", "--num-cpus", "2",
            "--no-progress", *extra]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_sweep_stopped_part_way_resumes_without_recomputing(tmp_path):
    pytest.importorskip("ray")
    results = tmp_path / "results"
    env = {**os.environ, "COMPENDIUM_RESULTS": str(results),
           "COMPENDIUM_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    folder = results / "glossary" / "smoke"
    sweep = build_sweep("glossary", "smoke", grid_options=["tpr_b=0.6,0.7"], seeds="0..1")
    names = [p.name for p in sweep.points()]

    first = subprocess.Popen(_sweep_cmd(), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    finished: list[str] = []
    while time.time() < deadline and first.poll() is None:
        finished = [n for n in names if (folder / n / "run.json").is_file()]
        if finished:
            break
        time.sleep(0.5)
    assert finished, f"no point finished: {first.poll()} {first.communicate()}"
    first.send_signal(signal.SIGTERM)                      # stopped part way
    out, err = first.communicate(timeout=120)
    finished = [n for n in names if (folder / n / "run.json").is_file()]
    stamps = {n: (folder / n / "run.json").stat().st_mtime_ns for n in finished}
    if first.returncode == 0:      # every point happened to finish before the signal landed
        pytest.fail(f"the sweep was not stopped part way: {out}")
    assert first.returncode == 143, err
    assert "terminated" in err and len(finished) < 4
    # the points that were running left no work folder behind
    assert not [p.name for p in folder.iterdir() if ".partial" in p.name]

    second = subprocess.run(_sweep_cmd(), cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert second.returncode == 0, second.stderr
    assert f"done {4 - len(finished)}, skipped {len(finished)}" in second.stdout, second.stdout
    assert "Ray dashboard:" in second.stdout
    for n in finished:            # finished points were not run again
        assert (folder / n / "run.json").stat().st_mtime_ns == stamps[n]
    assert not [p for p in folder.iterdir() if ".partial" in p.name]
    table = pd.read_csv(results / "sweeps" / f"glossary.smoke.{sweep.name}.csv")
    assert len(table) == 4
    assert table["point"].tolist() == names
    assert table["status"].tolist() == ["skipped" if n in finished else "done" for n in names]
    assert table["tpr_b"].tolist() == [0.6, 0.6, 0.7, 0.7]
    assert table["seed"].tolist() == [0, 1, 0, 1]
    # glossary's tpr_a is 0.85 in every profile: the injected gap is tpr_a - tpr_b
    assert table["true_tpr_gap"].round(6).tolist() == [0.25, 0.25, 0.15, 0.15]
    assert table["tpr_gap"].notna().all()
    for n in names:
        info = json.loads((folder / n / "run.json").read_text())
        assert info["run"] == n and info["parameters"]["seed"] in (0, 1)


# ---------------------------------------------------------------- figures and rows


def test_seed_spread_by_hand():
    from compendium.errors import InputError
    from compendium.sweep import figures

    assert doctest.testmod(figures).failed == 0
    t = pd.DataFrame({"status": ["done", "skipped", "done", "failed", "done", "done"],
                      "tpr_b": [0.7, 0.7, 0.7, 0.7, 0.85, 0.85],
                      "seed": [2, 0, 1, 3, 1, 0],
                      "gap": [0.2, 0.1, 0.3, 9.0, 0.05, -0.01]})
    s = figures.seed_spread(t, "gap", by="tpr_b").set_index("tpr_b")
    # the failed point (gap 9.0) is left out; seeds 0, 1, 2 -> 0.1, 0.3, 0.2
    assert s.loc[0.7, "seeds"] == 3 and s.loc[0.7, "mean"] == pytest.approx(0.2)
    assert s.loc[0.7, "sd"] == pytest.approx(0.1)
    assert s.loc[0.7, "at_first_seed"] == pytest.approx(0.1)
    assert s.loc[0.85, "at_first_seed"] == pytest.approx(-0.01)
    assert s.loc[0.85, "sd"] == pytest.approx(0.0424264069, abs=1e-9)  # |0.06| / sqrt(2)
    v = figures.spread_values(s.reset_index(), by="tpr_b")
    assert v["tpr_b_0_7_seeds"] == 3 and v["tpr_b_0_85_mean"] == (pytest.approx(0.02), ".3f")
    fig = figures.seed_spread_figure(t.assign(truth=[0.15] * 4 + [0.0] * 2), "gap",
                                     by="tpr_b", truth="truth")
    ax = fig.axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["0.7", "0.85"]
    from matplotlib.collections import PathCollection

    dots = [len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection)]
    assert dots == [3, 1, 2, 1]          # per setting: every finished seed, then the first
    with pytest.raises(InputError, match="no column 'nope'"):
        figures.seed_spread(t, "nope", by="tpr_b")
    with pytest.raises(InputError, match="no finished point"):
        figures.seed_spread(t, "gap", by="tpr_b", where={"seed": 7})


def test_point_rows_put_the_parameters_in_front(tmp_path):
    from compendium.sweep.execute import point_rows

    sweep = Sweep("paper_a", "demo", {"seed": [0, 1]}, {}, "t")
    outcomes = []
    for p in sweep.points():
        (tmp_path / p.name / "tables").mkdir(parents=True)
        pd.DataFrame({"metric": ["f1_gap", "eqodds"], "seed": [5, 5],
                      "estimate": [p.params["seed"] + 0.5, 1.0]}).to_csv(
            tmp_path / p.name / "tables" / "gaps.csv", index=False)
        outcomes.append(Outcome(p, "done", tmp_path / p.name))
    rows = point_rows(sweep, SweepReport(sweep, outcomes, "test"), "gaps")
    assert list(rows.columns) == ["point", "status", "seed", "metric", "table.seed", "estimate"]
    assert rows["seed"].tolist() == [0, 0, 1, 1]
    assert rows.query("metric == 'f1_gap'")["estimate"].tolist() == [0.5, 1.5]
    with pytest.raises(ConfigError, match="no finished point of the sweep has a table"):
        point_rows(sweep, SweepReport(sweep, outcomes, "test"), "audit")
