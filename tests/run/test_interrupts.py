"""A run survives being stopped anywhere: signals save the step in flight, kills lose nothing saved.

- SIGTERM (SIGINT has the same handler) finishes the step in flight, saves latest at exactly that step
  and exits 128+signal with one line saying how to resume; the resumed run ends bit-identical to one
  never stopped.
- A second Ctrl-C stops at once, leaving the last checkpoint as it was.
- Signalled from outside with loader workers running, train.py exits cleanly (the workers ignore
  the signal) and the checkpoint holds every logged step.
- SIGKILL at 10 moments -- at start-up, right after reading the checkpoint, inside steps, half-way
  through writing a checkpoint file, with a file written but not renamed, and between the state and
  the weight files -- each followed by --continue_train (or a fresh start when nothing was saved
  yet): the chain ends bit-identical to an uninterrupted run. Runs are forked from one process that
  imported train.py once (tests/kill_zygote.py).
(That loader workers do not hold the run's lock is tested in test_resume_flags.py, that they do not
keep a failed run alive in tests/test_errors.py.)
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pix2pix_tr.run import checkpoint
from tests.trainer_helpers import REPO, TINY_RUN, assert_same_latest_weights, load_module, make_synthcity

train = load_module("train")
NUM_FRAMES = 4
SMALLER = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "72", "--crop_size", "64"]


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=NUM_FRAMES, num_val=1)


def run_args(dataroot, ckpt, *extra, epochs=(2, 1)):
    return ["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN, *SMALLER,
            "--optimizer", "tradam", "--tr_inner_steps", "3", "--lr", "0.001", "--n_epochs", str(epochs[0]),
            "--n_epochs_decay", str(epochs[1]), "--save_latest_freq", "3", "--seed", "4", *extra]


def assert_same_weights(run, straight):
    assert_same_latest_weights(run, straight)
    total = checkpoint.load_training_state(str(straight))["total_iters"]
    assert checkpoint.load_training_state(str(run))["total_iters"] == total


def signal_at_steps(monkeypatch, signum, steps):
    """Make the real model send `signum` to this process at the end of each step in `steps`."""
    count = [0]

    class SignallingModel(train.Pix2PixModel):
        def train_step(self, batch):
            losses = super().train_step(batch)
            count[0] += 1
            for _ in range(steps.count(count[0])):
                os.kill(os.getpid(), signum)
            return losses

    monkeypatch.setattr(train, "Pix2PixModel", SignallingModel)


def test_a_signal_saves_the_step_in_flight_and_the_resume_is_exact(tmp_path, dataroot, straight_run, monkeypatch,
                                                                   capsys):
    signum = signal.SIGTERM
    ckpt = tmp_path / "ckpt"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)   # SIG_IGN under nohup
    with monkeypatch.context() as patch:
        signal_at_steps(patch, signum, [5])                     # mid epoch 2, between saves at 3 and 6
        with pytest.raises(SystemExit) as stopped:
            train.main(run_args(dataroot, ckpt))
    assert stopped.value.code == 128 + signum
    out = capsys.readouterr().out
    assert f"stopped by {signal.Signals(signum).name} after 5 iterations; saved latest (epoch 2, 1 samples in)" in out
    assert "--continue_train" in out
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before   # handlers put back
    state = checkpoint.load_training_state(str(ckpt / "run"))
    assert (state["epoch"], state["epoch_iter"], state["total_iters"]) == (2, 1, 5)
    train.main(["--name", "run", "--checkpoints_dir", str(ckpt), "--continue_train"])
    assert_same_weights(ckpt / "run", straight_run)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path, dataroot, monkeypatch):
    ckpt = tmp_path / "ckpt"
    signal_at_steps(monkeypatch, signal.SIGINT, [4, 4])
    with pytest.raises(KeyboardInterrupt):
        train.main(run_args(dataroot, ckpt))
    state = checkpoint.load_training_state(str(ckpt / "run"))
    assert state["total_iters"] == 3                           # the periodic save, nothing after


class Zygote:
    """Client of tests/kill_zygote.py: fork a training run, optionally killing itself at a hook."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tests", "kill_zygote.py")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)

    def start(self, argv, log, kill_at=None):
        self.proc.stdin.write(json.dumps({"argv": argv, "kill_at": kill_at, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())["pid"]

    def wait(self):
        return json.loads(self.proc.stdout.readline())["status"]

    def run(self, argv, log, kill_at=None):
        self.start(argv, log, kill_at)
        return self.wait()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def zygote():
    client = Zygote()
    yield client
    client.close()


@pytest.mark.slow
def test_sigterm_from_outside_with_loader_workers_saves_and_exits_cleanly(tmp_path, dataroot, zygote):
    ckpt, log = tmp_path / "ckpt", tmp_path / "train.log"
    argv = run_args(dataroot, ckpt, "--num_threads", "2", "--print_freq", "1", "--n_epochs", "50")
    pid = zygote.start(argv, log)
    jsonl = ckpt / "run" / "loss_log.jsonl"
    deadline = time.time() + 120
    while not (jsonl.exists() and len(jsonl.read_text().splitlines()) >= 2) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(pid, signal.SIGTERM)
    assert zygote.wait() == 128 + signal.SIGTERM, log.read_text()[-2000:]
    text = log.read_text()
    assert "stopped by SIGTERM" in text and "Traceback" not in text and "error" not in text.lower()
    state = checkpoint.load_training_state(str(ckpt / "run"))
    logged = len(jsonl.read_text().splitlines())                # --print_freq 1: one record a step
    assert state["total_iters"] == logged >= 2


# (hook, n): the n-th such event of that process's own run (2 + 1 epochs of 4 frames: 12 steps;
# a save every 3 steps and at each epoch's end, 3 files a save; replace 1-2 are train_opt.*).
KILLS = [("start", 1), ("step", 2), ("write", 1), ("fsync", 2), ("restore", 1), ("replace", 3),
         ("step", 3), ("replace", 4), ("write", 2), ("fsync", 1)]


@pytest.fixture(scope="module")
def long_straight_run(tmp_path_factory, dataroot, zygote):
    """Forked like the killed runs: a fresh process's thread count (tests may change this one's)."""
    ckpt = tmp_path_factory.mktemp("long_straight")
    assert zygote.run(run_args(dataroot, ckpt), ckpt / "train.log") == 0
    return ckpt / "run"


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_ends_bit_identical(tmp_path, dataroot, long_straight_run, zygote):
    ckpt, log = tmp_path / "ckpt", tmp_path / "train.log"
    fresh = run_args(dataroot, ckpt)
    resume = ["--name", "run", "--checkpoints_dir", str(ckpt), "--continue_train"]
    progress = []
    for hook, n in KILLS:
        state_file = ckpt / "run" / checkpoint.STATE_FILE
        status = zygote.run(resume if state_file.exists() else fresh, log, kill_at=[hook, n])
        state = checkpoint.load_training_state(str(ckpt / "run"))      # always readable
        progress.append((hook, n, status, state and state["total_iters"]))
        assert status in (-signal.SIGKILL, 0), (progress, log.read_text()[-3000:])
    assert sum(status == -signal.SIGKILL for _, _, status, _ in progress) >= 8, progress
    assert len({total for *_, total in progress}) >= 3, progress       # the kills spread over the run
    while (state := checkpoint.load_training_state(str(ckpt / "run"))) is None or state["epoch"] <= 3:
        assert zygote.run(resume if state else fresh, log) == 0, log.read_text()[-3000:]
    assert_same_weights(ckpt / "run", long_straight_run)
    assert not [p for p in (ckpt / "run").iterdir() if p.name.startswith(".")]   # no temporaries left
