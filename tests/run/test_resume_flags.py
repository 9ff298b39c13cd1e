"""What --continue_train does with flags typed anew, and what guards a run folder.

- Extending a finished run (`--n_epochs 1`, then `--continue_train --n_epochs 2`) equals a run of
  `--n_epochs 2`, bit for bit: the new schedule applies from the current epoch, never a negative
  or silently zero rate (the old LambdaLR state carried the old schedule into the new run).
- A changed --lr, λ or S is what the optimizer then runs with, and what train_opt.json records.
- Flags that cannot change in a running run (network shape, optimizer, seed) are one line.
- Two fresh runs with one seed and the default flags end bit-identical.
- One train.py per run folder (the lock), a dead holder's lock taken over, leftovers of a killed
  save cleaned at start.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pix2pix_tr.run import checkpoint
from pix2pix_tr.errors import UserError
from tests.trainer_helpers import REPO, TINY_RUN, assert_same_latest_weights, load_module, load_weights, make_synthcity

train = load_module("train")
NUM_FRAMES = 4


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=NUM_FRAMES, num_val=1)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, dataroot):
    ckpt = tmp_path_factory.mktemp("finished")
    train.main(args(dataroot, ckpt, "run", "--n_epochs", "1", "--n_epochs_decay", "0"))
    return ckpt / "run"


def copy_of(finished_run, tmp_path):
    """A run trained with `args(..., "--n_epochs", "1", "--n_epochs_decay", "0")`, in tmp_path/run."""
    shutil.copytree(finished_run, tmp_path / "run")
    return tmp_path


def args(dataroot, ckpt, name="run", *extra):
    return ["--dataroot", dataroot, "--name", name, "--checkpoints_dir", str(ckpt), *TINY_RUN,
            "--optimizer", "tradam", "--tr_inner_steps", "3", "--lr", "0.001", "--seed", "5", *extra]


class RecordingModel(train.Pix2PixModel):
    """The real model; records what G's optimizer runs each step with."""

    seen = []

    def train_step(self, batch):
        group = self.optimizer_G.param_groups[0]
        RecordingModel.seen.append({k: group[k] for k in ("lr", "tr_lambda", "inner_steps", "tr_lr0")})
        return super().train_step(batch)


def resume(ckpt, *extra, name="run"):
    return train.main(["--name", name, "--checkpoints_dir", str(ckpt), "--continue_train", *extra])


def test_extending_a_finished_run_equals_the_longer_run(tmp_path, dataroot, finished_run, capsys):
    straight = tmp_path / "straight"
    train.main(args(dataroot, straight, "run", "--n_epochs", "2", "--n_epochs_decay", "0"))
    extended = copy_of(finished_run, tmp_path / "extended")
    short = checkpoint.load_training_state(str(extended / "run"))
    assert short["optimizers"]["G"]["param_groups"][0]["lr"] == 0.0    # the short run ended at lr 0
    capsys.readouterr()
    resume(extended, "--n_epochs", "2")
    out = capsys.readouterr().out
    assert "--n_epochs 2 (checkpoint: 1)" in out and "from epoch 2 (0.0010000)" in out
    assert_same_latest_weights(extended / "run", straight / "run")
    assert json.loads((extended / "run" / "train_opt.json").read_text())["n_epochs"] == 2


def test_more_decay_epochs_never_give_a_negative_rate(tmp_path, dataroot, monkeypatch):
    ckpt = tmp_path / "ckpt"
    train.main(args(dataroot, ckpt, "run", "--n_epochs", "1", "--n_epochs_decay", "1"))
    monkeypatch.setattr(train, "Pix2PixModel", RecordingModel)
    RecordingModel.seen = []
    resume(ckpt, "--n_epochs_decay", "3")                 # epochs 3, 4 of 1 + 3: lr x 2/4, then 1/4
    rates = sorted({round(s["lr"], 12) for s in RecordingModel.seen}, reverse=True)
    assert rates == [0.0005, 0.00025]


def test_typed_lr_lambda_and_steps_are_what_runs_and_what_is_recorded(tmp_path, finished_run, monkeypatch, capsys):
    ckpt = copy_of(finished_run, tmp_path)
    monkeypatch.setattr(train, "Pix2PixModel", RecordingModel)
    RecordingModel.seen = []
    resume(ckpt, "--n_epochs", "2", "--lr", "0.01", "--tr_lambda", "0.7", "--tr_inner_steps", "2")
    assert len(RecordingModel.seen) == NUM_FRAMES
    assert all(s == {"lr": 0.01, "tr_lambda": 0.7, "inner_steps": 2, "tr_lr0": 0.01} for s in RecordingModel.seen)
    saved = json.loads((ckpt / "run" / "train_opt.json").read_text())
    assert (saved["lr"], saved["tr_lambda"], saved["tr_inner_steps"]) == (0.01, 0.7, 2)
    state = checkpoint.load_training_state(str(ckpt / "run"))
    assert state["optimizers"]["D"]["param_groups"][0]["tr_lambda"] == 0.7
    assert "applying --tr_lambda 0.7 (checkpoint: 0.1)" in capsys.readouterr().out


@pytest.mark.parametrize("flag, value", [("--ngf", "16"), ("--optimizer", "adam"), ("--seed", "9"),
                                         ("--direction", "BtoA")])
def test_flags_fixed_for_a_run_are_refused_in_one_line(tmp_path, finished_run, flag, value):
    ckpt = copy_of(finished_run, tmp_path)
    with pytest.raises(UserError, match=f"{flag} {value} \\(checkpoint: "):
        resume(ckpt, "--n_epochs", "2", flag, value)


def test_two_fresh_runs_with_default_flags_and_one_seed_are_bit_identical(tmp_path, dataroot):
    for name in ("a", "b"):     # the defaults: TRAdam's generic step, 1 + 0 epochs
        train.main(["--dataroot", dataroot, "--name", name, "--checkpoints_dir", str(tmp_path), *TINY_RUN,
                    "--optimizer", "tradam", "--n_epochs", "1", "--n_epochs_decay", "0", "--seed", "11"])
    assert_same_latest_weights(tmp_path / "a", tmp_path / "b")


def test_a_second_trainer_on_a_run_is_refused_naming_the_holder(tmp_path, dataroot):
    run_dir = str(tmp_path / "run")
    with checkpoint.run_lock(run_dir):
        with pytest.raises(UserError, match=f"in use by another train.py \\(pid {os.getpid()}\\)"):
            train.main(args(dataroot, tmp_path, "run", "--n_epochs", "1", "--n_epochs_decay", "0"))
    assert not (tmp_path / "run" / checkpoint.STATE_FILE).exists()


@pytest.mark.slow
def test_the_lock_is_not_held_by_forked_children_that_outlive_the_holder(tmp_path):
    """Loader workers are forked with the lock's descriptor; once the trainer is gone the run is free."""
    run_dir = str(tmp_path / "run")
    take = f"from pix2pix_tr.run import checkpoint\nwith checkpoint.run_lock({run_dir!r}): print('taken')"
    with checkpoint.run_lock(run_dir):
        refused = subprocess.run([sys.executable, "-c", take], cwd=REPO, capture_output=True, text=True)
        assert f"in use by another train.py (pid {os.getpid()})" in refused.stderr
        child = os.fork()
        if child == 0:                                    # a worker outliving its parent
            time.sleep(60)
            os._exit(0)
    try:
        result = subprocess.run([sys.executable, "-c", take], cwd=REPO, capture_output=True, text=True)
        assert result.stdout == "taken\n", result.stderr[-500:]
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_the_lock_of_a_dead_process_is_taken_over_and_leftovers_cleaned(tmp_path, dataroot, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / checkpoint.LOCK_FILE).write_text("999999 elsewhere\n")      # a holder killed with -9
    (run_dir / ".latest_state.k3x9q1.tmp.pth").write_bytes(b"half")    # a save killed half-way
    train.main(args(dataroot, tmp_path, "run", "--n_epochs", "1", "--n_epochs_decay", "0"))
    assert "removed the temporary files of a save cut short" in capsys.readouterr().out
    assert not any(p.name.startswith(".") for p in run_dir.iterdir())
    assert (run_dir / checkpoint.LOCK_FILE).read_text().split()[0] == str(os.getpid())


@pytest.mark.parametrize("name", ["", "../outside", "/abs/path", "."])
def test_run_names_outside_the_checkpoints_folder_are_refused(tmp_path, dataroot, name):
    with pytest.raises(UserError, match="--name"):
        train.main(args(dataroot, tmp_path, name))


def corrupt(path, how):
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": os.urandom(512)}[how])


@pytest.mark.parametrize("how", ["empty", "truncated", "garbage"])
def test_an_unreadable_state_is_one_line_naming_it(tmp_path, finished_run, how):
    copy_of(finished_run, tmp_path)
    corrupt(tmp_path / "run" / checkpoint.STATE_FILE, how)
    with pytest.raises(UserError) as err:
        resume(tmp_path, "--n_epochs", "2")
    assert str(tmp_path / "run" / checkpoint.STATE_FILE) in str(err.value) and "\n" not in str(err.value)


def test_unreadable_weight_files(tmp_path, finished_run, capsys):
    """Beside a state, they are rewritten from it; alone (a pix2pix run), one line names them (each kind
    of damage: test_checkpoint.py)."""
    copy_of(finished_run, tmp_path)
    how = "truncated"
    corrupt(tmp_path / "run" / "latest_net_G.pth", how)
    resume(tmp_path, "--n_epochs", "2")
    assert "rewritten from the checkpoint" in capsys.readouterr().out
    assert load_weights(tmp_path / "run" / "latest_net_G.pth")
    corrupt(tmp_path / "run" / "latest_net_G.pth", how)
    (tmp_path / "run" / checkpoint.STATE_FILE).unlink()
    with pytest.raises(UserError, match=f"{tmp_path / 'run' / 'latest_net_G.pth'} is not a readable checkpoint"):
        resume(tmp_path, "--n_epochs", "3")
