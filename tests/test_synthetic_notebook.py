"""The synthetic_world notebook's spec, params and the figure helpers it calls."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from compendium.config import load_yaml
from compendium.errors import ConfigError
from compendium.notebook import get_spec
from compendium.synthetic import FINDINGS, KNOB_NAMES, figures, synthetic_cxr, synthetic_inspect

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("profile", ["smoke", "demo", "full"])
def test_params_validate(profile):
    spec = get_spec("synthetic_world")
    data = load_yaml(ROOT / "params" / "synthetic_world" / f"{profile}.yaml")
    cfg = spec.from_dict(data)
    cfg.check()
    assert cfg.profile == profile



def test_bad_knobs_fail_the_check():
    spec = get_spec("synthetic_world")
    with pytest.raises(ConfigError):
        spec.from_dict({"knobs": {"sex=F": {"softtissue": 1.0}}}).check()


def test_figure_helpers_smoke():
    assert list(figures.knobs_table()["knob"]) == list(KNOB_NAMES)
    reps = figures.example_reports(seed=0)
    assert len(reps) == len(FINDINGS) + 1 and reps["report"].str.contains("IMPRESSION").all()
    zero = figures.effusion_sign_by_group({}, n=5, size=32)
    assert zero["mean_sign"].iloc[0] == zero["mean_sign"].iloc[1] > 0
    on = figures.effusion_sign_by_group(None, n=5, size=32)
    assert on["mean_sign"].iloc[1] < on["mean_sign"].iloc[0]
    c = synthetic_cxr(n=60, seed=0)
    for fig in (figures.finding_gallery(size=32, patients=1), figures.group_gallery(size=32),
                figures.ehr_figure(c), figures.ct_figure(synthetic_inspect(n=20), size=32, depth=16)):
        assert fig.axes
        matplotlib.pyplot.close(fig)
    share = figures.recorded_vs_true(synthetic_cxr(n=300, seed=1), by="race").set_index("race")
    assert share.loc["White", "recorded_share"] == 1.0


def test_cli_writes_a_sample(tmp_path, capsys):
    from compendium.cli import main

    assert main(["synthetic", "--n", "3", "--size", "32", "--knobs", "zero",
                 "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s" / "images").glob("*.png"))) == 3
    assert (tmp_path / "s" / "cohort.csv").is_file()
    assert "synthetic" in capsys.readouterr().out
    assert main(["synthetic", "--cohort", "synthetic-inspect", "--n", "2", "--size", "16",
                 "--out", str(tmp_path / "ct")]) == 0
    assert (tmp_path / "ct" / "volumes_hu.npy").is_file()
    with pytest.raises(SystemExit) as exc:  # the parser refuses it: one line, status 2
        main(["synthetic", "--n", "0", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
