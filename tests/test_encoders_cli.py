"""`compendium weights` and `compendium list models`; the generated Models chapter."""

from __future__ import annotations

from pathlib import Path

from compendium.cli import main
from compendium.encoders import list_models
from compendium.encoders.table import chapter_text, models_table

ROOT = Path(__file__).resolve().parents[1]


def test_list_models(capsys):
    assert main(["list", "models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_models())


def test_fetch_dry_run(capsys):
    assert main(["weights", "fetch", "biomedclip", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would fetch microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224" in out
    assert "BiomedNLP-BiomedBERT" in out


def test_fetch_refuses_offline_and_toys(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["weights", "fetch", "rad-dino"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert main(["weights", "fetch", "toy-clip-vit"]) == 2
    assert "synthetic" in capsys.readouterr().err
    assert main(["weights", "fetch", "resnet50-barlowtwins-cxr"]) == 2
    assert main(["weights", "fetch", "nope"]) == 2


def test_where_missing(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    assert main(["weights", "where", "rad-dino"]) == 2
    err = capsys.readouterr().err
    assert "compendium weights fetch rad-dino" in err and str(tmp_path) in err
    (tmp_path / "w.safetensors").write_bytes(b"")
    assert main(["weights", "where", "rad-dino", "--weights-path",
                 str(tmp_path / "w.safetensors")]) == 0


def test_models_table_and_chapter_current():
    df = models_table()
    assert list(df["model"]).count("medsiglip") == 1 and len(df) == len(list_models())
    assert df["demo stand-in"].str.startswith("toy-").all()
    committed = (ROOT / "book" / "reference" / "models.md").read_text()
    assert committed == chapter_text(), \
        "run: python -m compendium.encoders.table book/reference/models.md"
