"""--executor slurm on a real one-node SLURM cluster (tests/scripts/slurm_cluster.py): the smoke grid's two
cells as an array job; one job cancelled mid-training (scancel) fails alone with its log's last lines, the
other preempted mid-training (SIGUSR2, as before a time limit) is requeued and continues by itself; the same
command resubmits the cancelled cell, which continues from its checkpoint; the stored cells and the weights
equal a local run's bit for bit."""
import json
import os
import subprocess
import sys

import pytest
import torch

from tests.scripts import slurm_cluster
from tests.scripts.test_reproduce_signals import REPO, processes_mentioning, wait_for

CELLS = ("adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = slurm_cluster.why_not()
    if reason:
        pytest.skip(f"no local SLURM cluster: {reason}")
    with slurm_cluster.local_cluster(tmp_path_factory.mktemp("slurm")) as env:
        yield env


def _argv(tmp_path, name, dataroot, *extra):
    return [sys.executable, os.path.join(REPO, "scripts", "reproduce.py"), "--scale", "smoke", "--work_dir",
            str(tmp_path / name), "--dataroot", str(dataroot), "--results_store", str(tmp_path / name / "store"),
            "--threads", "1", *extra]


def _same(tmp_path, cell, file_name):
    texts = [(tmp_path / run / "store" / cell / file_name).read_text().replace(str(tmp_path / run), "WORK")
             for run in ("local", "slurm")]
    return texts[0] == texts[1]


@pytest.mark.slow
def test_a_grid_on_slurm_survives_cancel_and_preemption_and_equals_a_local_run(tmp_path, cluster, synthcity_150,
                                                                              request):
    local = subprocess.Popen(_argv(tmp_path, "local", synthcity_150, "--jobs", "2"), cwd=REPO,   # meanwhile
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    argv = _argv(tmp_path, "slurm", synthcity_150, "--executor", "slurm")
    request.addfinalizer(local.kill)
    submitter = subprocess.Popen(argv, cwd=REPO, env=cluster, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)
    logs = [tmp_path / "slurm" / "results" / "repro_smoke" / c / "logs" / "train.log" for c in CELLS]
    try:
        wait_for(lambda: all(p.exists() and "epoch 1/2:" in p.read_text() for p in logs), "both cells to train")
        jobs = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], env=cluster, capture_output=True,
                              text=True).stdout.split()
        array = jobs[0].split("_")[0]
        subprocess.run(["scancel", f"{array}_0"], env=cluster, check=True)                     # cancelled
        subprocess.run(["scancel", "--signal=USR2", f"{array}_1"], env=cluster, check=True)    # preempted
        out, _ = submitter.communicate(timeout=300)
    finally:
        submitter.kill()
    assert submitter.returncode == 1, out[-3000:]
    assert f"FAILED {CELLS[0]}: SLURM job {array}_0" in out and "its log ends:" in out, out[-3000:]
    assert "stopped by SIGTERM" in out, out                 # train.py saved when the job was cancelled
    store = tmp_path / "slurm" / "store"
    assert not (store / CELLS[0]).exists() and (store / CELLS[1] / "cell.json").exists()
    assert json.loads((store / CELLS[1] / "cell.json").read_text())["executor"] == "slurm"

    again = subprocess.run(argv, cwd=REPO, env=cluster, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "submitted 1 cell(s) as SLURM array job" in again.stdout
    for log in logs:             # both continued from their checkpoint: one by requeue, one resubmitted
        runs = [line for line in log.read_text().splitlines() if line.startswith("$ ")]
        assert len(runs) == 2 and runs[1].endswith("--continue_train"), log
    assert processes_mentioning(str(tmp_path / "slurm")) == []

    assert local.wait(timeout=300) == 0, local.stderr.read()[-3000:]
    for cell in CELLS:
        assert _same(tmp_path, cell, "fcn_scores_latest.json") and _same(tmp_path, cell, "losses.json"), cell
        weights = [torch.load(tmp_path / run / "checkpoints" / "repro_smoke" / cell / "latest_net_G.pth",
                              weights_only=True) for run in ("local", "slurm")]
        assert weights[0].keys() == weights[1].keys()
        assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), cell
