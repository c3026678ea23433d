"""The papermill runner on a small project built under tmp_path."""

from __future__ import annotations

import json
from dataclasses import dataclass

import nbformat
import pytest

from compendium import cli
from compendium.errors import ConfigError, DataNotFoundError
from compendium.notebook import NOTEBOOKS, NotebookEntry, NotebookSpec
from compendium.runner import NotebookFailed, is_current, resolve_params, run_notebook

CODE = '''\
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from compendium.results import Results
out = Results(output_dir or None)
rng = np.random.default_rng(seed)
df = pd.DataFrame({"x": np.arange(n), "y": rng.normal(size=n)})
out.table(df, "numbers")
fig, ax = plt.subplots()
ax.plot(df.x, df.y)
out.figure(fig, "line")
out.value("mean_y", float(df.y.mean()), fmt=".3f")
if fail == "bug":
    raise RuntimeError("requested failure")
if fail == "user":
    from compendium.errors import DataNotFoundError
    raise DataNotFoundError("NIH images not found under /nowhere")
'''


@dataclass(frozen=True)
class TinySpec(NotebookSpec):
    n: int = 5
    fail: str = ""


@pytest.fixture()
def project(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "tiny").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "demo"\nseed = 0\noutput_dir = ""\nn = 5\nfail = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, nbformat.v4.new_code_cell(CODE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(root / "notebooks" / "tiny.ipynb"))
    (root / "params" / "tiny" / "smoke.yaml").write_text("profile: smoke\nn: 4\n")
    (root / "params" / "tiny" / "demo.yaml").write_text("n: 8\nseed: 1\n")
    monkeypatch.setenv("COMPENDIUM_ROOT", str(root))
    monkeypatch.setenv("COMPENDIUM_RESULTS", str(root / "results"))
    monkeypatch.setitem(NOTEBOOKS._entries, "tiny", NotebookEntry("tiny", TinySpec, "Tiny"))
    return root


def test_resolve_params_overlays_file_and_set(project, tmp_path):
    extra = tmp_path / "site.yaml"
    extra.write_text("n: 11\n")
    spec = resolve_params("tiny", "demo", params_file=extra, overrides=["seed=7"])
    assert (spec.n, spec.seed, spec.profile) == (11, 7, "demo")


def test_run_writes_results_folder(project):
    result = run_notebook("tiny", "smoke", progress=False)
    out = project / "results" / "tiny" / "smoke"
    assert result.output_dir == out
    assert sorted(p.name for p in out.iterdir()) == [
        "figures", "run.json", "tables", "tiny.ipynb", "values.json"]
    table = (out / "tables" / "numbers.csv").read_text().splitlines()
    assert table[0] == "x,y" and len(table) == 5  # header + n=4 rows from smoke.yaml
    assert (out / "figures" / "line.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    info = json.loads((out / "run.json").read_text())
    assert info["parameters"] == {"profile": "smoke", "seed": 0, "n": 4, "fail": ""}
    assert info["seed"] == 0 and info["notebook"] == "tiny"
    assert set(info) >= {"compendium_version", "git", "fingerprint", "python", "seconds"}
    assert "commit" in info["git"]
    executed = nbformat.read(str(out / "tiny.ipynb"), as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert "results/tiny/smoke" in injected[0].source and ".partial" not in injected[0].source
    assert json.loads((out / "values.json").read_text())["mean_y"] == pytest.approx(
        float(sum(float(r.split(",")[1]) for r in table[1:]) / 4), rel=1e-5)
    # no temporary folders left beside the results
    assert [p.name for p in (project / "results" / "tiny").iterdir()] == ["smoke"]
    assert is_current("tiny", resolve_params("tiny", "smoke"))
    assert not is_current("tiny", resolve_params("tiny", "smoke", overrides=["n=3"]))


def test_same_parameters_give_byte_identical_outputs(project):
    out = project / "results" / "tiny" / "smoke"
    run_notebook("tiny", "smoke", progress=False)
    first = {p: (out / p).read_bytes() for p in ("tables/numbers.csv", "figures/line.png", "values.json")}
    run_notebook("tiny", "smoke", progress=False)
    second = {p: (out / p).read_bytes() for p in first}
    assert first == second


@pytest.mark.parametrize("args, message", [
    (["--set", "nn=3"], "--set: unknown key 'nn' for notebook 'tiny' (allowed: fail, n, seed)"),
    (["--set", "output_dir=/tmp/x"], "--set: unknown key 'output_dir' for notebook 'tiny' (set by the runner)"),
    (["--set", "n=three"], "n: expected int, got 'three'"),
    (["--set", "seed"], "--set expects key=value"),
])
def test_bad_set_is_one_line_exit_2_and_writes_nothing(project, capsys, args, message):
    code = cli.main(["run", "tiny", "--profile", "smoke", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (project / "results").exists()


def test_unknown_notebook_and_missing_profile_file(project, capsys):
    assert cli.main(["run", "nope", "--profile", "smoke"]) == 2
    assert "unknown notebook 'nope'" in capsys.readouterr().err
    assert cli.main(["run", "tiny", "--profile", "full"]) == 2
    assert "parameter file not found" in capsys.readouterr().err


def test_failing_notebook_keeps_previous_results_and_leaves_nothing_partial(project):
    run_notebook("tiny", "smoke", progress=False)
    out = project / "results" / "tiny" / "smoke"
    before = (out / "tables" / "numbers.csv").read_bytes()
    with pytest.raises(NotebookFailed, match="RuntimeError: requested failure"):
        run_notebook("tiny", "smoke", overrides=["fail=bug", "n=9"], progress=False)
    assert (out / "tables" / "numbers.csv").read_bytes() == before
    assert [p.name for p in (project / "results" / "tiny").iterdir()] == ["smoke"]


def test_user_error_inside_notebook_is_a_one_line_exit_2(project, capsys):
    code = cli.main(["run", "tiny", "--profile", "smoke", "--set", "fail=user", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "notebook tiny: NIH images not found under /nowhere" in err
    assert not (project / "results" / "tiny" / "smoke").exists()


def test_spec_check_runs_before_any_kernel(project, monkeypatch):
    def check(self):
        raise DataNotFoundError("weights for clip-vit-b-16 not found in the HF cache")

    monkeypatch.setattr(TinySpec, "check", check)
    with pytest.raises(DataNotFoundError, match="clip-vit-b-16"):
        run_notebook("tiny", "smoke", progress=False)
    assert not (project / "results").exists()


def test_profile_mismatch_in_params_file(project):
    (project / "params" / "tiny" / "smoke.yaml").write_text("profile: demo\n")
    with pytest.raises(ConfigError, match="profile is 'demo' but --profile is 'smoke'"):
        resolve_params("tiny", "smoke")


def test_named_runs_live_beside_the_default_run_and_survive_it(project):
    base = project / "results" / "tiny" / "smoke"
    named = run_notebook("tiny", "smoke", progress=False, run_name="bigger", overrides=["n=6"])
    assert named.output_dir == base / "bigger" and named.run == "bigger"
    info = json.loads((base / "bigger" / "run.json").read_text())
    assert info["run"] == "bigger" and info["differs_from_profile"] == {"n": 6}
    assert len((base / "bigger" / "tables" / "numbers.csv").read_text().splitlines()) == 7
    run_notebook("tiny", "smoke", progress=False)             # the default run replaces base/
    assert (base / "run.json").is_file() and (base / "bigger" / "run.json").is_file()
    assert json.loads((base / "run.json").read_text())["differs_from_profile"] == {}
    with pytest.raises(NotebookFailed):                          # a failed default run
        run_notebook("tiny", "smoke", progress=False, overrides=["fail=bug"])
    assert (base / "bigger" / "run.json").is_file()
    assert sorted(p.name for p in base.iterdir()) == [
        "bigger", "figures", "run.json", "tables", "tiny.ipynb", "values.json"]
