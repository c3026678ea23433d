"""The mitigation demo on synthetic data with an injected disparity, and its CLI."""

import numpy as np

from compendium.adapt.demo import disparity_embeddings, mitigation_demo
from compendium.cli import main


def test_disparity_is_injected():
    X, rows = disparity_embeddings(2000, seed=0)
    b = (rows["group"] == "B").to_numpy()
    y = rows["Finding"].to_numpy().astype(bool)
    assert 0.2 < b.mean() < 0.3
    assert y[~b].mean() > y[b].mean() + 0.1
    # the finding shifts dimension 0 in A and dimension 1 in B
    assert X[~b & y, 0].mean() - X[~b & ~y, 0].mean() > 1.5
    assert X[b & y, 1].mean() - X[b & ~y, 1].mean() > 1.5


def test_mitigations_narrow_the_injected_gap():
    t = mitigation_demo(probe="linear", n=2000, seed=0,
                        params={"max_epochs": 30}).set_index("mitigation")
    assert t.loc["none", "tpr_A"] > t.loc["none", "tpr_B"] + 0.1   # B is under-diagnosed
    for m in ("importance_weighting", "resampling", "adversarial"):
        assert t.loc[m, "udr_gap"] < t.loc["none", "udr_gap"], m
    assert t.loc["adversarial", "alpha"] in (0.5, 1.0, 2.0)
    assert np.isnan(t.loc["none", "alpha"])


def test_cli(capsys, tmp_path):
    assert main(["adapt", "list"]) == 0
    out = capsys.readouterr().out
    assert "logreg" in out and "gloria" in out and "adversarial" in out
    assert main(["adapt", "demo", "--probe", "svm"]) == 2
    assert "unknown probe" in capsys.readouterr().err
    csv = tmp_path / "demo.csv"
    assert main(["adapt", "demo", "--n", "600", "--epochs", "3", "--csv", str(csv)]) == 0
    assert "Synthetic" in capsys.readouterr().out
    assert csv.read_text().startswith("mitigation,auroc")


def test_notebook_spec_checks():
    import pytest

    from compendium.errors import ConfigError
    from compendium.notebook import get_spec

    spec = get_spec("mitigation_demo")
    spec.from_dict({"probe": "mlp"}).check()
    for bad in ({"probe": "logreg"}, {"mitigations": ["none", "magic"]},
                {"mitigations": ["resampling"]}, {"n_samples": 10}):
        with pytest.raises(ConfigError):
            spec.from_dict(bad).check()


def test_cli_module_is_light():
    import subprocess
    import sys

    code = ("import sys, compendium.adapt.cli, compendium.specs.mitigation_demo; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
