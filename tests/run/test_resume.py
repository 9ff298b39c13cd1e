"""--continue_train resumes exactly: a run stopped and resumed ends with the same weights, bit for
bit on CPU, as one that ran straight through -- stopped at an epoch end that falls inside a TR
inner cycle (TRAdam S=3, 5 samples per epoch), and stopped mid-epoch at a --save_latest_freq save."""
import shutil

import pytest
import torch

from pix2pix_tr.run import checkpoint
from pix2pix_tr.errors import UserError
from tests.trainer_helpers import (TINY_RUN, assert_same_latest_weights, assert_same_tensors, load_module, load_weights,
                                   make_synthcity)

train = load_module("train")

NUM_FRAMES, INNER_STEPS = 5, 3          # 5 % 3 != 0: epoch 1 ends 2 steps into an inner cycle


class Crash(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


class CountingModel(train.Pix2PixModel):
    """The real model; counts steps and keeps G's weights as they were before the first one."""

    steps, first_G = 0, None

    def train_step(self, batch):
        if CountingModel.steps == 0:
            CountingModel.first_G = {k: v.detach().clone() for k, v in self.netG.state_dict().items()}
        CountingModel.steps += 1
        return super().train_step(batch)


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=NUM_FRAMES, num_val=1)


def run_args(dataroot, ckpt):
    # Linear policy: lr decays at epoch 2, which the TR step size and lambda see. Dropout on,
    # random crops and flips on: every RNG matters.
    return ["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN,
            "--optimizer", "tradam", "--tr_inner_steps", str(INNER_STEPS), "--lr", "0.001",
            "--n_epochs", "1", "--n_epochs_decay", "1", "--save_latest_freq", "4", "--seed", "3"]


def crash_after_save(monkeypatch, when):
    real_save = checkpoint.save_checkpoint

    def save_then_maybe_crash(run_dir, labels, state):
        real_save(run_dir, labels, state)
        if when(state):
            raise Crash()

    monkeypatch.setattr(checkpoint, "save_checkpoint", save_then_maybe_crash)


def stop_and_resume(tmp_path, dataroot, monkeypatch, when):
    """Run until the first save where when(state) holds, 'crash', then --continue_train alone.
    Returns the run folder, the saved (epoch, epoch_iter) and the steps the resumed run took."""
    ckpt = tmp_path / "ckpt"
    with monkeypatch.context() as patch:
        crash_after_save(patch, when)
        with pytest.raises(Crash):
            train.main(run_args(dataroot, ckpt))
    saved = checkpoint.load_training_state(str(ckpt / "run"))
    monkeypatch.setattr(train, "Pix2PixModel", CountingModel)
    CountingModel.steps = 0
    train.main(["--name", "run", "--checkpoints_dir", str(ckpt), "--continue_train"])
    return ckpt / "run", (saved["epoch"], saved["epoch_iter"]), CountingModel.steps


def assert_same_run(run, straight):
    assert_same_latest_weights(run, straight)
    a, b = checkpoint.load_training_state(str(run)), checkpoint.load_training_state(str(straight))
    assert a["total_iters"] == b["total_iters"] == 2 * NUM_FRAMES
    anchors_a = [s for s in a["optimizers"]["G"]["state"].values()]
    anchors_b = [s for s in b["optimizers"]["G"]["state"].values()]
    for sa, sb in zip(anchors_a, anchors_b):
        for key in sa:
            if torch.is_tensor(sa[key]):
                assert torch.equal(sa[key], sb[key]), key


def test_resume_at_epoch_end_inside_an_inner_cycle(tmp_path, dataroot, monkeypatch, straight_run):
    run, saved_at, resumed_steps = stop_and_resume(
        tmp_path, dataroot, monkeypatch, when=lambda s: s["epoch"] == 2 and s["epoch_iter"] == 0)
    assert saved_at == (2, 0) and NUM_FRAMES % INNER_STEPS != 0
    assert resumed_steps == NUM_FRAMES                       # only epoch 2 ran again
    assert_same_run(run, straight_run)


def test_resume_mid_epoch_at_save_latest_freq(tmp_path, dataroot, monkeypatch, straight_run):
    run, saved_at, resumed_steps = stop_and_resume(
        tmp_path, dataroot, monkeypatch, when=lambda s: s["epoch_iter"] != 0)
    assert saved_at == (1, 4)                                # --save_latest_freq 4, mid epoch 1
    assert resumed_steps == 2 * NUM_FRAMES - 4               # the consumed 4 samples were skipped
    assert_same_run(run, straight_run)


def test_continue_without_checkpoint_is_an_error(tmp_path, dataroot):
    with pytest.raises(UserError, match="no latest_net_G.pth"):
        train.main(["--dataroot", dataroot, "--name", "nothing", "--checkpoints_dir", str(tmp_path),
                    "--continue_train", *TINY_RUN])


def test_pix2pix_style_continue_without_state_loads_weights_only(tmp_path, straight_run, monkeypatch):
    run = tmp_path / "ckpt" / "run"
    shutil.copytree(straight_run, run)
    (run / checkpoint.STATE_FILE).unlink()                   # as a pix2pix run leaves it
    monkeypatch.setattr(train, "Pix2PixModel", CountingModel)
    CountingModel.steps = 0
    model = train.main(["--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"), "--continue_train",
                        "--n_epochs_decay", "2", "--epoch_count", "3"])
    assert CountingModel.steps == NUM_FRAMES                 # epoch 3 only, from --epoch_count
    assert_same_tensors(CountingModel.first_G, load_weights(straight_run / "latest_net_G.pth"))
    state = checkpoint.load_training_state(str(run))
    assert (state["epoch"], state["total_iters"]) == (4, NUM_FRAMES)
    assert model is not None


def test_resume_puts_the_loss_plot_back(tmp_path, straight_run, monkeypatch):
    run = tmp_path / "ckpt" / "run"
    shutil.copytree(straight_run, run)
    calls = []
    monkeypatch.setattr(train.Visualizer, "restore_loss_plot",
                        lambda self, size, **where: calls.append((size, where)))
    train.main(["--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"), "--continue_train",
                "--n_epochs_decay", "2", "--display_id", "1", "--display_port", "9"])  # no server there
    assert calls == [(NUM_FRAMES, {"epoch": 3, "epoch_iter": 0})]
