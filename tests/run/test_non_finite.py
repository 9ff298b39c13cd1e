"""Weights or statistics that are not finite are never saved and never called good: a run whose
BatchNorm statistics overflow while its losses stay finite stops at its next save with one line, and
a state file holding them is refused on resume."""
import pytest
import torch

from pix2pix_tr.errors import UserError
from pix2pix_tr.run import checkpoint
from tests.trainer_helpers import TINY_RUN, load_module, make_synthcity

train = load_module("train")


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=4, num_val=1)


def every_saved_tensor_is_finite(run_dir):
    for path in run_dir.glob("*.pth"):
        state = torch.load(path, map_location="cpu", weights_only=True)
        nets = state["nets"].values() if path.name == checkpoint.STATE_FILE else [state]
        for weights in nets:
            checkpoint.check_finite(weights, path)


@pytest.mark.parametrize("lr", ["1e9", "1e15"])
def test_a_diverging_run_stops_with_one_line_and_saves_nothing_non_finite(tmp_path, dataroot, lr):
    argv = ["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(tmp_path), *TINY_RUN,
            "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "72", "--crop_size", "64",
            "--lr", lr, "--n_epochs", "3", "--n_epochs_decay", "0", "--save_latest_freq", "1", "--norm", "batch"]
    with pytest.raises(UserError, match="tensors of net[GD] are not finite .*: training diverged; the last good"):
        train.main(argv)
    every_saved_tensor_is_finite(tmp_path / "run")


def test_a_state_holding_inf_is_refused(tmp_path):
    net = torch.nn.BatchNorm2d(2)
    net.running_var[0] = float("inf")
    state = {"version": checkpoint.STATE_VERSION, "nets": {"G": net.state_dict()}}
    torch.save(state, tmp_path / checkpoint.STATE_FILE)
    with pytest.raises(UserError, match="1 of 5 tensors of netG in .* are not finite .*: its run had diverged"):
        checkpoint.load_training_state(str(tmp_path))
    with pytest.raises(checkpoint.NonFiniteWeights):
        checkpoint.save_checkpoint(str(tmp_path / "out"), ["latest"], state)
    assert not (tmp_path / "out").exists()
