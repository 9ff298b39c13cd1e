"""End to end on SynthCity: fcn_score trains the dataset's default segmenter on first use
(evaluate/train_segmenter.py, tiny settings here), caches it, and real photos score clearly above
noise; the results-as-real-photos row equals the ground-truth row."""
import os

import numpy as np
import pytest

from data import synthcity
from evaluate import fcn_score, frames, segmenters
from evaluate.train_segmenter import WEIGHT_POWER, class_weights
from tests.eval_helpers import write_results

TINY = dict(arch="fpn", steps=150, size=64, batch_size=8, lr=1e-2)   # fast stand-in for the default


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    synthcity.generate(str(root / "synthcity"), num_train=48, num_val=6, size=64, seed=3, workers=1,
                       log=lambda *a: None)
    return root


@pytest.mark.slow
def test_first_use_trains_caches_and_separates_real_from_noise(synth, monkeypatch, capsys):
    monkeypatch.chdir(synth)                                  # the default lives at checkpoints/segmenters/...
    monkeypatch.setitem(fcn_score.TRAINABLE_DEFAULTS, "synthcity", TINY)
    dataroot = "synthcity"
    ids = frames.PreparedLayout(dataroot).frame_ids("val")
    photos = {f: frames.read_rgb(frames.PreparedLayout(dataroot).pair_path("val", f), "right") for f in ids}
    rng = np.random.default_rng(0)
    real = write_results("results/real/val_latest", photos)
    noise = write_results("results/noise/val_latest",
                          {f: rng.integers(0, 256, p.shape, dtype=np.uint8) for f, p in photos.items()})
    args = ["--dataroot", dataroot, "--device", "cpu", "--num_workers", "0"]

    out_real = fcn_score.main(["--results_dir", real, "--gt", *args])
    seg_dir = frames.PreparedLayout(dataroot).read_meta().segmenters[0]
    assert "training synthcity's default segmenter" in capsys.readouterr().out
    assert sorted(os.listdir(seg_dir)) == ["README.md", "albumentations_config_eval.json", "config.json",
                                           "model.safetensors", "segmenter.json"]
    seg = segmenters.load_segmenter(seg_dir)
    assert seg.preprocessing.native_size == (64, 64) and seg.preprocessing.classes[0] == "road"

    stamp = os.path.getmtime(os.path.join(seg_dir, "model.safetensors"))
    out_noise = fcn_score.main(["--results_dir", noise, *args])
    assert "training" not in capsys.readouterr().out and os.path.getmtime(
        os.path.join(seg_dir, "model.safetensors")) == stamp            # cached, not retrained

    r, n, gt = out_real["segmenters"][seg_dir], out_noise["segmenters"][seg_dir], out_real["ground_truth"][seg_dir]
    # real vs noise, 150 steps on 48 frames: pixel 0.78 vs 0.66-0.69, class acc 0.38 vs 0.28-0.30, IoU 0.29 vs
    # 0.20-0.22 on two x86 CPUs (noise sits near the decision boundaries, so its score moves with the CPU's float
    # kernels; the real photos' does not). Noise still gets the large grey classes by position and colour.
    for key in ("pixel_acc", "class_acc", "mean_iou"):
        assert r[key] > n[key] + 0.05, (key, r[key], n[key])
    assert r["pixel_acc"] == gt["pixel_acc"] and r["mean_iou"] == gt["mean_iou"]
    # SynthCity draws 10 of the 19 Cityscapes classes: the others are absent, out of the means
    assert {"train", "motorcycle", "bicycle"} <= set(r["absent"]) and "road" not in r["absent"]


def test_class_weights_by_hand():
    import torch

    labels = torch.tensor([[0, 0, 0, 0], [1, 255, 255, 255]], dtype=torch.uint8)
    w = class_weights(labels, 3)            # counts 4, 1, 0 -> 4^-p, 1, 0, scaled to mean 1 over seen
    raw = [4 ** -WEIGHT_POWER, 1.0]
    assert w.tolist() == pytest.approx([raw[0] / np.mean(raw), raw[1] / np.mean(raw), 0.0])
