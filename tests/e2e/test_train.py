"""train.py end to end on CPU with tiny networks: a step trains both nets, the run leaves pix2pix's
files, a NaN loss stops training with the last good checkpoint intact, user errors are one line."""
import json

import pytest
import torch

from pix2pix_tr.run import checkpoint
from pix2pix_tr.errors import UserError
from tests.trainer_helpers import TINY_RUN, assert_same_tensors, load_module, load_weights, make_synthcity

train = load_module("train")


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=3, num_val=2)


class RecordingModel(train.Pix2PixModel):
    """The real model; keeps a copy of both nets' parameters from before its first step."""

    before = None
    calls = 0

    def train_step(self, batch):
        if RecordingModel.before is None:
            RecordingModel.before = {n: {k: v.detach().clone() for k, v in net.named_parameters()}
                                     for n, net in (("G", self.netG), ("D", self.netD))}
        RecordingModel.calls += 1
        return super().train_step(batch)


def test_training_changes_both_nets_and_leaves_pix2pix_files(tmp_path, dataroot, monkeypatch):
    RecordingModel.before, RecordingModel.calls = None, 0
    monkeypatch.setattr(train, "Pix2PixModel", RecordingModel)
    ckpt = tmp_path / "checkpoints"
    train.main(["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN,
                "--optimizer", "tradam", "--n_epochs", "1", "--n_epochs_decay", "0", "--save_epoch_freq", "1",
                "--print_freq", "1", "--display_freq", "1", "--max_dataset_size", "2"])
    assert RecordingModel.calls == 2                       # --max_dataset_size 2, one epoch, batch 1
    run = ckpt / "run"
    for net in ("G", "D"):
        after = load_weights(run / f"latest_net_{net}.pth")
        unchanged = [k for k, v in RecordingModel.before[net].items() if torch.equal(v, after[k])]
        assert not unchanged, f"net{net} parameters not trained: {unchanged[:3]}"
        assert_same_tensors(after, load_weights(run / f"1_net_{net}.pth"))
    state = checkpoint.load_training_state(str(run))        # weights_only load
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (2, 0, 2)
    assert set(state["optimizers"]) == {"G", "D"} and set(state["rng"]) >= {"python", "numpy", "torch"}
    assert json.loads((run / "train_opt.json").read_text())["optimizer"] == "tradam"
    assert "optimizer" in (run / "train_opt.txt").read_text()
    records = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert len(records) == 2 and set(records[0]["losses"]) == {"G_GAN", "G_L1", "D_real", "D_fake"}
    assert (run / "loss_log.txt").is_file() and (run / "web" / "index.html").is_file()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, dataroot, monkeypatch):
    class BlowsUpAtStep3(train.Pix2PixModel):
        calls = 0

        def train_step(self, batch):
            BlowsUpAtStep3.calls += 1
            if BlowsUpAtStep3.calls == 3:                  # G's weights blow up before step 3
                with torch.no_grad():
                    for p in self.netG.parameters():
                        p.fill_(float("nan"))
            return super().train_step(batch)

    monkeypatch.setattr(train, "Pix2PixModel", BlowsUpAtStep3)
    ckpt = tmp_path / "checkpoints"
    said = r"epoch 1, sample 3: .*nan.*last good checkpoint is kept \(epoch 1, 2 samples in\)"
    with pytest.raises(UserError, match=said):
        train.main(["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN,
                    "--save_latest_freq", "2", "--n_epochs", "2", "--n_epochs_decay", "0"])
    run = ckpt / "run"
    state = checkpoint.load_training_state(str(run))
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (1, 2, 2)
    weights = load_weights(run / "latest_net_G.pth")
    assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point())
    assert not (run / "1_net_G.pth").exists()


def test_main_without_flags_names_generated_default_dataset(tmp_path, monkeypatch):
    """No --dataroot: train.py asks data/default.py, which finds or generates the default dataset."""
    seen = {}

    def fake_resolve(dataroot, *args, **kwargs):
        seen["dataroot"] = dataroot
        raise UserError("stop here")

    monkeypatch.setattr(train, "resolve_dataroot", fake_resolve)
    with pytest.raises(UserError, match="stop here"):
        train.main(["--checkpoints_dir", str(tmp_path), *TINY_RUN])
    assert seen == {"dataroot": None}


def test_one_input_channel_trains_on_grayscale_labels_as_pix2pix(tmp_path, dataroot):
    """--input_nc 1 on RGB data: the label side is converted to grayscale, as pix2pix does."""
    model = train.main(["--dataroot", dataroot, "--name", "gray", "--checkpoints_dir", str(tmp_path), *TINY_RUN,
                        "--input_nc", "1", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1"])
    assert model.netG.state_dict()["model.model.0.weight"].shape[1] == 1
    assert model.visuals()["real_A"].shape[1] == 1
