"""``compendium prepare-cxr``: Paper D section 2.2 preprocessing of real DICOM/PNG files for
a vendor's embedding tool, written atomically with a manifest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from compendium.cli import main
from compendium.imaging import standardise_cxr
from tests.cohort_fixtures import write_dicom


def _one_line(capsys, argv, code=2):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("INFO", "WARNING"))]
    assert rc == code and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    (src / "p1").mkdir(parents=True)
    ramp = np.tile(np.arange(0, 4000, 125, dtype=np.uint16), (32, 1))
    write_dicom(src / "p1" / "a.dcm", ramp, slope=2, intercept=-100)
    write_dicom(src / "p1" / "b.dcm", ramp, photometric="MONOCHROME1")
    Image.fromarray(np.tile(np.arange(0, 256, 8, dtype=np.uint8), (32, 1))).save(src / "c.png")
    return src


def test_png_and_npy_outputs_follow_section_2_2(folder, tmp_path, capsys):
    out = tmp_path / "png"
    assert main(["prepare-cxr", str(folder), "--out", str(out), "--size", "16"]) == 0
    man = pd.read_csv(out / "manifest.csv")
    assert sorted(man["output"]) == ["c.png", "p1/a.png", "p1/b.png"]
    assert (man["source_height"] == 32).all() and not man["zscored"].any()
    a = np.asarray(Image.open(out / "p1" / "a.png"))
    assert a.shape == (16, 16) and a.dtype == np.uint16
    expect = standardise_cxr(folder / "p1" / "a.dcm", size=16, zscore=False)
    np.testing.assert_allclose(a / 65535.0, expect, atol=1 / 65535)
    b = np.asarray(Image.open(out / "p1" / "b.png")).astype(float)
    assert b[:, -1].mean() < b[:, 0].mean()              # MONOCHROME1 inverted
    npy = tmp_path / "npy"
    assert main(["prepare-cxr", str(folder), "--out", str(npy), "--size", "16",
                 "--format", "npy"]) == 0
    z = np.load(npy / "p1" / "a.npy")
    assert z.dtype == np.float32 and abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-4
    np.testing.assert_allclose(z, standardise_cxr(folder / "p1" / "a.dcm", size=16), atol=1e-6)
    # a rerun replaces the folder written by the command as a whole
    assert main(["prepare-cxr", str(folder), "--out", str(out), "--size", "24"]) == 0
    assert np.asarray(Image.open(out / "c.png")).shape == (24, 24)


def test_csv_input_and_unreadable_files(folder, tmp_path, capsys):
    (folder / "broken.dcm").write_bytes(b"not a dicom")
    listing = tmp_path / "list.csv"
    pd.DataFrame({"path": ["in/p1/a.dcm", "in/broken.dcm"]}).to_csv(listing, index=False)
    out = tmp_path / "out"
    msg = _one_line(capsys, ["prepare-cxr", listing, "--out", out, "--size", "16"])
    assert "broken.dcm" in msg and "--skip-unreadable" in msg
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))   # nothing half-written
    assert main(["prepare-cxr", str(listing), "--out", str(out), "--size", "16",
                 "--skip-unreadable"]) == 0
    assert list(pd.read_csv(out / "manifest.csv")["output"]) == ["in/p1/a.png"]
    assert "broken.dcm" in pd.read_csv(out / "unreadable.csv")["source"].iloc[0]


@pytest.mark.parametrize("case, expected", [
    ("missing", "no such file or folder"),
    ("empty", "no DICOM or image file"),
    ("nopath", "no 'path' column"),
    ("occupied", "holds other files"),
    ("inside", "overlaps the input folder"),
    ("zscore", "--no-zscore applies to --format npy only"),
    ("size", "--size"),
])
def test_bad_inputs_are_one_line(case, expected, folder, tmp_path, capsys):
    out = tmp_path / "out"
    args = [folder, "--out", out]
    if case == "missing":
        args[0] = tmp_path / "nowhere"
    elif case == "empty":
        (tmp_path / "empty").mkdir()
        args[0] = tmp_path / "empty"
    elif case == "nopath":
        (tmp_path / "l.csv").write_text("file\nx.dcm\n")
        args[0] = tmp_path / "l.csv"
    elif case == "occupied":
        out.mkdir()
        (out / "mine.txt").write_text("keep me")
    elif case == "inside":
        args[2] = folder / "prepared"
    elif case == "zscore":
        args.append("--no-zscore")
    elif case == "size":
        args += ["--size", "3"]
    assert expected in _one_line(capsys, ["prepare-cxr", *args])
    if case == "occupied":
        assert (out / "mine.txt").read_text() == "keep me"
