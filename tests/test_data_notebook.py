"""The `data` notebook: its spec checks registry names and roots; its smoke run reproduces
NIH 6x200's published shape (values read back from values.json)."""

from __future__ import annotations

import pytest

from compendium.errors import ConfigError, DataNotFoundError
from compendium.notebook import get_spec


def test_data_spec_checks_names_and_roots(tmp_path):
    spec = get_spec("data")
    spec.from_dict({"cohorts": ["nih"]}).check()
    with pytest.raises(ConfigError, match="unknown cohort 'nhi'"):
        spec.from_dict({"cohorts": ["nhi"]}).check()
    with pytest.raises(DataNotFoundError, match="root of nih not found"):
        spec.from_dict({"profile": "full", "roots": {"nih": str(tmp_path / "none")}}).check()


@pytest.mark.slow
def test_data_notebook_smoke(tmp_path, monkeypatch):
    from compendium.results import read_values
    from compendium.runner import run_notebook

    monkeypatch.setenv("COMPENDIUM_CACHE", str(tmp_path / "cache"))
    result = run_notebook("data", "smoke", progress=False)
    values = read_values(result.output_dir)
    assert values["nih6x200_images"] == 1200
    assert (values["nih6x200_edema_old_f"], values["nih6x200_edema_old_m"]) == (47, 53)
    assert values["nih6x200_diseases"].split(", ") == ["Atelectasis", "Cardiomegaly", "Consolidation",
                                                       "Edema", "Effusion", "Pneumothorax"]
    assert (result.output_dir / "figures" / "composition.png").is_file()
