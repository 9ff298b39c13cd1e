"""scripts/reproduce.py stopped by Ctrl-C (SIGINT) or `kill` (SIGTERM) while a cell trains: the running
train.py saves and exits, no child outlives the runner, no queued cell starts, and the same command run at
once continues the cell from its checkpoint: Ctrl-C, then at once the same command, stopped by SIGTERM while
it continues the cell, then at once the same command to the end (real subprocesses, the smoke scale on 150
training frames)."""
import os
import signal
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRST, SECOND = "adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0"


def _argv(work, dataroot):
    return [sys.executable, os.path.join(REPO, "scripts", "reproduce.py"), "--scale", "smoke", "--work_dir",
            str(work), "--dataroot", str(dataroot), "--jobs", "1", "--threads", "1"]


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


def _stop(argv, signum, train_log, runs_before):
    """Start the grid, send `signum` once its first cell trains (in its run number `runs_before` + 1), check
    that the runner stopped its child and exited; the runner's output."""
    def training():
        text = train_log.read_text() if train_log.exists() else ""
        return text.count("$ ") > runs_before and "epoch 1/2:" in text.split("$ ")[-1]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(training, "training to start")
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signum, out[-3000:]
    assert "run the same command to continue" in out
    assert train_log.read_text().split("$ ")[-1].count("stopped by SIGTERM") == 1      # as the runner sends it
    return out


@pytest.mark.slow
def test_a_stopped_grid_stops_its_children_and_continues_at_once(tmp_path, synthcity_150):
    logs = tmp_path / "results" / "repro_smoke"
    train_log = logs / FIRST / "logs" / "train.log"
    argv = _argv(tmp_path, synthcity_150)
    for runs_before, signum in enumerate((signal.SIGINT, signal.SIGTERM)):   # the second run resumes at once
        _stop(argv, signum, train_log, runs_before)
        assert processes_mentioning(str(tmp_path)) == []                  # no child outlived the runner
        assert (tmp_path / "checkpoints" / "repro_smoke" / FIRST / "latest_net_G.pth").exists()
        assert not (logs / FIRST / "logs" / "test_latest.log").exists()   # nothing ran after it
        assert not (logs / SECOND / "logs").exists()

    again = subprocess.run(argv + ["--cells", FIRST], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]   # no "in use" refusal
    runs = [line for line in train_log.read_text().splitlines() if line.startswith("$ ")]
    assert len(runs) == 3 and not runs[0].endswith("--continue_train")
    assert all(run.endswith("--continue_train") for run in runs[1:])
    assert (logs / FIRST / "val_latest" / "fcn_scores.json").exists()
