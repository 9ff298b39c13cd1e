"""An output folder that cannot be made or written -- its path is a file, or a folder under a file --
is one line naming the path and exit status 2 from every command, never a traceback."""
import subprocess
import sys

import pytest

from tests.trainer_helpers import REPO, TINY_RUN, load_module, make_synthcity

SMALL = [*TINY_RUN, "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "72", "--crop_size", "64"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    data = make_synthcity(root / "synthcity", num_train=1, num_val=1)
    load_module("train").main(["--dataroot", data, "--name", "run", "--checkpoints_dir", str(root / "ckpt"),
                               *SMALL, "--n_epochs", "1", "--n_epochs_decay", "0"])
    (root / "a_file").write_text("")
    return root, data


COMMANDS = {
    "train.py --checkpoints_dir": lambda data, ckpt, out: [
        "train.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", out, *SMALL],
    "test.py --results_dir": lambda data, ckpt, out: [
        "test.py", "--dataroot", data, "--name", "run", "--checkpoints_dir", ckpt, "--results_dir", out,
        "--num_threads", "0"],
    "synthcity --output_dir": lambda data, ckpt, out: [
        "data/synthcity.py", "--output_dir", out, "--num_train", "1", "--num_val", "1", "--size", "64"],
    "train_segmenter --output_dir": lambda data, ckpt, out: [
        "evaluate/train_segmenter.py", "--dataroot", data, "--output_dir", out, "--steps", "1", "--size", "64"],
}


@pytest.mark.parametrize("command, where", [                  # train_segmenter's start-up (smp, timm) is slow
    pytest.param(c, w, marks=[pytest.mark.slow] * c.startswith("train_segmenter"))
    for c, w in zip(COMMANDS, ["a_file", "a_file/sub"] * 2)])
def test_an_output_folder_that_cannot_be_made_is_one_line(world, command, where):
    root, data = world
    argv = COMMANDS[command](data, str(root / "ckpt"), str(root / where))
    result = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and str(root / "a_file") in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert (root / "a_file").read_text() == ""
