"""scripts/reproduce.py stopped by Ctrl-C (SIGINT) or `kill` (SIGTERM) while a cell trains: the running
train.py saves and exits, no child outlives the runner, no queued cell starts, and the same command run at
once continues the cell from its checkpoint (real subprocesses, the smoke scale on 150 training frames)."""
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRST, SECOND = "adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0"


def _argv(work, dataroot, *extra):
    return [sys.executable, os.path.join(REPO, "scripts", "reproduce.py"), "--scale", "smoke", "--work_dir",
            str(work), "--dataroot", str(dataroot), "--jobs", "1", "--threads", "1", *extra]


def processes_mentioning(text):
    """pids whose command line contains `text`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def wait_for(predicate, what, timeout=120):
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_grid_stops_its_children_and_continues_at_once(tmp_path, synthcity_150, signum):
    dataroot = synthcity_150
    logs = tmp_path / "results" / "repro_smoke"
    train_log = logs / FIRST / "logs" / "train.log"
    proc = subprocess.Popen(_argv(tmp_path, dataroot), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: train_log.exists() and "epoch 1/2:" in train_log.read_text(), "training to start")
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, out[-3000:]
    assert "run the same command to continue" in out
    assert processes_mentioning(str(tmp_path)) == []                  # no child outlived the runner
    assert "stopped by SIG" in train_log.read_text()                  # train.py saved and exited...
    assert (tmp_path / "checkpoints" / "repro_smoke" / FIRST / "latest_net_G.pth").exists()
    assert not (logs / FIRST / "logs" / "test_latest.log").exists()   # ... and nothing ran after it
    assert not (logs / SECOND / "logs").exists()

    again = subprocess.run(_argv(tmp_path, dataroot, "--cells", FIRST), cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]   # no "in use" refusal
    commands = [line for line in train_log.read_text().splitlines() if line.startswith("$ ")]
    assert len(commands) == 2 and commands[1].endswith("--continue_train")
    assert (logs / FIRST / "val_latest" / "fcn_scores.json").exists()
