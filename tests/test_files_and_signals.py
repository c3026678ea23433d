"""Issue 13, files: umask, atomic publication of `compendium synthetic`, SIGTERM and stale
partial folders in the runner, small-cell suppression, quiet papermill parameters."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from compendium.atomic import atomic_write, partial_dir, replace_dir, sweep_partials
from compendium.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755),
                                                        (0o077, 0o600, 0o700)])
def test_outputs_respect_the_umask(tmp_path, mask, file_mode, dir_mode):
    old = os.umask(mask)
    try:
        with atomic_write(tmp_path / "a.csv") as fh:
            fh.write("x\n")
        work = partial_dir(tmp_path, "demo")
        final = replace_dir(work, tmp_path / "demo")
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == file_mode
    assert final.stat().st_mode & 0o777 == dir_mode


def test_stale_partial_folders_are_swept_and_live_ones_kept(tmp_path):
    dead = tmp_path / ".smoke.partial-999999999-abc"
    live = tmp_path / f".smoke.partial-{os.getpid()}-def"
    old_style = tmp_path / ".smoke.partial-xyz"
    other = tmp_path / ".demo.partial-999999999-abc"
    for p in (dead, live, old_style, other):
        p.mkdir()
    os.utime(old_style, (time.time() - 3 * 86400,) * 2)
    removed = sweep_partials(tmp_path, "smoke")
    assert sorted(removed) == sorted([dead, old_style])
    assert live.exists() and other.exists()


def test_sigterm_during_a_run_leaves_no_partial_folder(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COMPENDIUM_RESULTS": str(tmp_path / "results")}
    proc = subprocess.Popen([sys.executable, "-m", "compendium.cli", "run", "glossary",
                             "--profile", "smoke", "--no-progress"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    parent = tmp_path / "results" / "glossary"
    deadline = time.time() + 120
    while time.time() < deadline and not list(parent.glob(".smoke.partial-*")):
        time.sleep(0.1)
    assert list(parent.glob(".smoke.partial-*")), "the run never started"
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM); nothing partial was kept" in err
    assert "Traceback" not in err
    assert not list(parent.glob(".smoke.partial-*"))
    assert not (parent / "smoke").exists()


def _synthetic(tmp_path, out, n, monkeypatch=None):
    return main(["synthetic", "--n", str(n), "--size", "16", "--out", str(out)])


def test_synthetic_streams_in_chunks_and_replaces_a_previous_sample_whole(tmp_path, monkeypatch):
    import compendium.synthetic as synth
    import compendium.synthetic.cli as scli

    out = tmp_path / "sample"
    assert _synthetic(tmp_path, out, 30) == 0
    assert len(list((out / "images").iterdir())) == 30
    seen = []
    real = synth.render_rows

    def spy(cohort, indices, size):
        seen.append(len(indices))
        return real(cohort, indices, size)

    monkeypatch.setattr(synth, "render_rows", spy)
    monkeypatch.setattr(scli, "CHUNK_ROWS", 4)
    assert _synthetic(tmp_path, out, 10) == 0
    assert seen == [4, 4, 2]                          # never all rows at once
    assert len(list((out / "images").iterdir())) == 10  # no image of the older run
    assert len(pd.read_csv(out / "cohort.csv")) == 10
    # chunked images equal images rendered in one go
    from compendium.cohorts import build_cohort
    from PIL import Image

    cohort = build_cohort("synthetic-cxr", n=10, seed=0, knobs="default")
    whole = real(cohort, None, 16)
    sid = cohort.table.sample_id.iloc[7]
    assert (np.asarray(Image.open(out / "images" / f"{sid}.png")) == whole[7]).all()


def test_synthetic_interrupt_keeps_nothing_and_leaves_the_old_sample(tmp_path, monkeypatch, capsys):
    import compendium.synthetic as synth
    import compendium.synthetic.cli as scli

    out = tmp_path / "sample"
    assert _synthetic(tmp_path, out, 6) == 0
    before = sorted(p.name for p in (out / "images").iterdir())
    calls = []

    def interrupted(cohort, indices, size):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.zeros((len(indices), size, size), np.uint8)

    monkeypatch.setattr(synth, "render_rows", interrupted)
    monkeypatch.setattr(scli, "CHUNK_ROWS", 3)
    assert _synthetic(tmp_path, out, 9) == 130
    assert "interrupted; nothing partial was kept" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "images").iterdir()) == before
    assert len(pd.read_csv(out / "cohort.csv")) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]
    # a new folder interrupted: nothing at all
    calls.clear()
    assert _synthetic(tmp_path, tmp_path / "fresh", 9) == 130
    assert not (tmp_path / "fresh").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sample"]


# ------------------------------------------------------------------ small-cell suppression
def test_small_counts_are_suppressed_in_tables_under_full(tmp_path):
    from compendium.results import Results

    df = pd.DataFrame({"group": ["F", "M", "X", "Y"], "samples": [14, 9, 0, 120],
                       "patients": [12, 3, 0, 100], "share": [0.1, 0.06, 0.0, 0.84],
                       "age": [5, 6, 7, 8]})
    shown = Results(tmp_path, min_cell=10, glue=False).table(df, "composition", display=False)
    written = pd.read_csv(tmp_path / "tables" / "composition.csv", dtype=str)
    for t in (shown.astype(str), written):
        assert t.samples.tolist() == ["14", "<10", "0", "120"]
        assert t.patients.tolist() == ["12", "<10", "0", "100"]
        assert t.share.tolist()[1] == "suppressed" and t.share.tolist()[0] == "0.1"
        assert t.age.tolist() == ["5", "6", "7", "8"]  # not a count: untouched
    explicit = Results(None, min_cell=10, glue=False).table(df, "x", display=False,
                                                            counts=["age"])
    assert explicit.age.tolist() == ["<10"] * 4
    plain = Results(tmp_path / "demo", glue=False).table(df, "composition", display=False)
    assert plain.samples.tolist() == [14, 9, 0, 120]


@pytest.mark.parametrize("profile, expected", [("full", 10), ("demo", None), ("smoke", None)])
def test_setup_turns_suppression_on_for_the_full_profile(profile, expected):
    from compendium.notebook import setup

    ns = {"profile": profile, "cohorts": ["nih"]}
    _, out = setup("data", ns, banner=False)
    assert out.min_cell == expected
    ns["min_cell_count"] = 20
    _, out = setup("data", ns, banner=False)
    assert out.min_cell == (20 if profile == "full" else None)


# ------------------------------------------------------------------ papermill warnings
def test_runner_hides_papermill_false_warnings_about_validated_parameters():
    from compendium.runner import _KnownParameters

    flt = _KnownParameters({"bias_knobs", "n"})

    def record(msg):
        return logging.LogRecord("papermill", logging.WARNING, __file__, 1, msg, None, None)

    assert not flt.filter(record("Passed unknown parameter: bias_knobs"))
    assert not flt.filter(record("Unable to parse line 9 'bias_knobs = {'sex=F': {}}'."))
    assert flt.filter(record("Passed unknown parameter: typo_key"))
    assert flt.filter(record("Input notebook does not contain a cell with tag 'parameters'"))


@pytest.mark.slow
def test_synthetic_world_run_logs_no_papermill_warning(tmp_path, monkeypatch, caplog):
    from compendium.runner import run_notebook

    monkeypatch.setenv("COMPENDIUM_RESULTS", str(tmp_path))
    with caplog.at_level(logging.WARNING):
        run_notebook("synthetic_world", "smoke", progress=False)
    assert not [r for r in caplog.records if r.name.startswith("papermill")
                and r.levelno >= logging.WARNING], caplog.text


def test_ctrl_c_during_a_run_prints_one_line_without_a_kernel_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COMPENDIUM_RESULTS": str(tmp_path / "results")}
    proc = subprocess.Popen([sys.executable, "-m", "compendium.cli", "run", "glossary",
                             "--profile", "smoke", "--no-progress", "--set", "n_rows=400000"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    parent = tmp_path / "results" / "glossary"
    deadline = time.time() + 120
    while time.time() < deadline and not list(parent.glob(".smoke.partial-*")):
        time.sleep(0.1)
    time.sleep(3.0)
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole process group
    out, err = proc.communicate(timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("INFO")]
    assert proc.returncode == 130, err
    assert lines == ["compendium run: interrupted; nothing partial was kept"], err
    assert not list(parent.glob(".smoke.partial-*"))
