import pytest

from compendium.atomic import atomic_write, replace_dir, write_json


def test_atomic_write_keeps_old_content_on_failure(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]


def test_atomic_write_and_json(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a" / "x.json").read_text().startswith('{\n  "a"')


def test_replace_dir_swaps_whole_folders(tmp_path):
    old = tmp_path / "final"
    old.mkdir()
    (old / "old.txt").write_text("o")
    new = tmp_path / "work"
    new.mkdir()
    (new / "new.txt").write_text("n")
    replace_dir(new, old)
    assert sorted(p.name for p in old.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
