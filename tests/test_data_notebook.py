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
def test_data_notebook_smoke(smoke_runs):
    from compendium.results import read_values

    out = smoke_runs["data"]  # executed once per session by tests/conftest.py
    values = read_values(out)
    assert values["nih6x200_images"] == 1200
    assert (values["nih6x200_edema_old_f"], values["nih6x200_edema_old_m"]) == (47, 53)
    assert values["nih6x200_diseases"].split(", ") == ["Atelectasis", "Cardiomegaly", "Consolidation",
                                                       "Edema", "Effusion", "Pneumothorax"]
    assert (out / "figures" / "composition.png").is_file()
