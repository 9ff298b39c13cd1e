"""The smoke scale end to end: SynthCity → segmenter → Adam and TRAdam cells (train → test →
fcn_score) in parallel → the report; then a re-run skips the finished cells."""
import json
import os
import subprocess
import sys

import pytest

from scripts.repro import cells

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(work_dir, *extra):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "reproduce.py"), "--scale", "smoke",
                           "--work_dir", str(work_dir), "--jobs", "2", *extra],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_smoke_scale_runs_the_pipeline_and_reports(tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = tmp_path / "results" / "repro_smoke"
    names = [c.name for c in cells.expand(["main"], (0,), (0,)).cells]
    assert names == ["adam-bs1-seed0", "tradam-S10-l0.1-bs1-seed0"]
    for name in names:
        scores = json.loads((results / name / "val_latest" / "fcn_scores.json").read_text())
        (entry,) = scores["segmenters"].values()       # the smoke scale's own tiny segmenter
        assert 0.0 <= entry["pixel_acc"] <= 1.0 and entry["pixel_acc"] > 0
        assert (tmp_path / "checkpoints" / "repro_smoke" / name / "loss_log.jsonl").stat().st_size > 0
    # the first cell's last scoring carries the real photos' row
    assert "ground_truth" in json.loads((results / names[0] / "val_latest" / "fcn_scores.json").read_text())
    md = (results / "report" / "report.md").read_text()
    assert "| Ground truth (real photos) |" in md and "| Adam |" in md
    assert "TRAdam − Adam = " in md              # one seed: a difference but no interval
    assert json.loads((results / "report" / "results.json").read_text())["cells_finished"] == 2
    assert (results / "report" / "losses.png").exists() and (results / "report" / "samples.png").exists()

    stamp = {n: os.path.getmtime(results / n / "val_latest" / "fcn_scores.json") for n in names}
    again = _run(tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {n: os.path.getmtime(results / n / "val_latest" / "fcn_scores.json") for n in names} == stamp
