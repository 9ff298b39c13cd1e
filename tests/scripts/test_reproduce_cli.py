"""scripts/reproduce.py's command line: listing, dry runs, report-only, and one-line user errors."""
import importlib.util
import os

import pytest

from pix2pix_tr.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("reproduce", os.path.join(REPO, "scripts", "reproduce.py"))
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def test_list_names_every_cell_with_its_groups(capsys):
    assert reproduce.main(["--scale", "synthcity", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len({line.split()[0] for line in lines})
    first = lines[0].split()
    assert first[0] == "adam-bs1-seed0" and "main" in first[1]
    assert any(line.startswith("tradam-S10-l0.1-nosawtooth-bs1-seed2 ") for line in lines)


def test_dry_run_prints_the_commands_of_the_selected_cells(capsys, tmp_path):
    assert reproduce.main(["--scale", "smoke", "--work_dir", str(tmp_path), "--dry_run",
                           "--only", "tradam-S10-l0.1-bs1-seed0"]) == 0
    out = capsys.readouterr().out
    assert "python data/synthcity.py" in out and "python evaluate/train_segmenter.py" in out
    assert out.count("python train.py") == 1 and "--optimizer tradam" in out
    assert not os.listdir(tmp_path)                  # nothing ran


def test_a_cell_with_several_gpus_on_slurm_trains_under_torchrun(capsys, tmp_path):
    assert reproduce.main(["--scale", "smoke", "--work_dir", str(tmp_path), "--dry_run", "--executor", "slurm",
                           "--slurm_gpus_per_cell", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("python -m torch.distributed.run --standalone --nproc_per_node=2 train.py --dataroot") == 2
    argv = ["--executor", "slurm", "--slurm_additional", "constraint"]
    with pytest.raises(UserError, match="--slurm_additional takes KEY=VALUE"):
        reproduce.make_executor(reproduce.Plan(reproduce.parse_args(argv), argv))


def test_report_only_on_an_empty_work_dir(tmp_path):
    report_dir = tmp_path / "report"
    assert reproduce.main(["--scale", "smoke", "--work_dir", str(tmp_path), "--report_only",
                           "--report_dir", str(report_dir)]) == 0
    md = (report_dir / "report.md").read_text()
    assert "No cell has finished yet." in md
    assert "python scripts/reproduce.py --scale smoke" in md and "--report_only" not in md


@pytest.mark.parametrize("argv, message", [
    (["--scale", "cityscapes"], "prepare Cityscapes with data/prepare_cityscapes.py"),
    (["--scale", "smoke", "--cells", "nope"], "no cell named nope"),
    (["--scale", "smoke", "--groups", "mian"], "unknown group"),
])
def test_user_errors(tmp_path, argv, message):
    with pytest.raises(UserError, match=message):
        reproduce.main([*argv, "--work_dir", str(tmp_path)])


def test_code_version_ignores_the_report_folder_but_not_the_code(tmp_path, monkeypatch):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "report.md").write_text("old\n")
    (tmp_path / "train.py").write_text("code\n")
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.setattr(reproduce.commands, "REPO", str(tmp_path))
    (tmp_path / "report" / "report.md").write_text("new\n")       # the grid rewrites its report
    clean = reproduce.code_version(str(tmp_path / "report"))
    assert clean and "uncommitted" not in clean
    assert "uncommitted" in reproduce.code_version()               # without the exclusion: dirty
    (tmp_path / "train.py").write_text("changed\n")
    assert "uncommitted" in reproduce.code_version(str(tmp_path / "report"))


def test_long_scale_defaults_keep_its_report_and_cells_in_the_repository(capsys, tmp_path):
    assert reproduce.main(["--scale", "synthcity_long", "--list"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 22
    argv = ["--scale", "synthcity_long", "--work_dir", str(tmp_path)]
    plan = reproduce.Plan(reproduce.parse_args(argv), argv)
    assert plan.report_dir == os.path.join(REPO, "docs", "results", "synthcity_long")
    assert plan.store.root == os.path.join(REPO, "docs", "results", "synthcity_long", "cells")
    assert plan.invocation == "python scripts/reproduce.py " + " ".join(argv)
    off = argv + ["--results_store", "none"]
    assert reproduce.Plan(reproduce.parse_args(off), off).store is None
    # the other scales keep no store unless asked, and report into the work dir
    smoke = ["--scale", "smoke", "--work_dir", str(tmp_path)]
    plan = reproduce.Plan(reproduce.parse_args(smoke), smoke)
    assert plan.store is None and plan.report_dir.startswith(str(tmp_path))
