"""atomic.py: a file appears whole under its final name or not at all, with a normal mode; a folder is
replaced in one step."""
import os
import signal
import stat

import pytest

from pix2pix_tr.run import atomic


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


@pytest.mark.slow
def test_a_write_past_the_file_size_limit_is_one_line_and_keeps_the_previous_file(tmp_path):
    """A real EFBIG (ulimit -f): torch's zip writer fails mid-file; the error names the file."""
    import resource
    import subprocess
    import sys

    path = tmp_path / "latest_state.pth"
    path.write_bytes(b"previous")
    code = ("import sys, torch; from pix2pix_tr.run import atomic; from pix2pix_tr.errors import run_cli; "
            f"run_cli(lambda argv: atomic.torch_save({str(path)!r}, torch.zeros(1 << 20)))")
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, resource.RLIM_INFINITY))  # noqa: E731
    proc = subprocess.run([sys.executable, "-c", code], preexec_fn=limit, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert proc.returncode == 2, proc.stderr
    line, = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot write {path}: ") and "file-size limit" in line
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path):
    blocker = tmp_path / "checkpoints"
    blocker.write_text("a file where the folder should be")
    with pytest.raises(atomic.UserError, match=f"cannot write {blocker}/run/x.json: "):
        atomic.write_json(blocker / "run" / "x.json", {})


@pytest.mark.parametrize("exists", [True, False])
def test_a_folder_replaced_and_killed_at_once_is_whole_and_new(tmp_path, exists):
    new, dst = tmp_path / "new.tmp-1", tmp_path / "dst"
    new.mkdir()
    (new / "weights").write_text("new")
    if exists:
        dst.mkdir()
        (dst / "weights").write_text("old")
    child = os.fork()
    if child == 0:                                            # killed right after the switch
        atomic.shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        atomic.replace_dir(str(new), str(dst))
        os._exit(0)
    os.waitpid(child, 0)
    assert (dst / "weights").read_text() == "new"
    assert not new.exists() or (new / "weights").read_text() == "old"   # only the old one is left over
