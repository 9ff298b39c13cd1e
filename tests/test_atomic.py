"""atomic.py: a file appears whole under its final name or not at all, with a normal mode."""
import os
import stat

import pytest

from pix2pix_tr import atomic


def test_success_renames_into_place_with_umask_mode(tmp_path):
    path = tmp_path / "sub" / "out.json"
    atomic.write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["out.json"]


def test_failure_leaves_neither_file_nor_temporary(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_complete_file(tmp_path):
    path = tmp_path / "out.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path):
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
