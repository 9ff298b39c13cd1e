"""Segmenters enter through smp.from_pretrained: local save_pretrained folders with their
preprocessing configs, and one-line errors for an unreachable hub, a folder without a segmenter, and
a wrong class count. (The Cityscapes SegFormers' official scales: tests/evaluate/test_protocols.py.)"""
import json
import os
import subprocess
import sys

import pytest
import torch

from evaluate import segmenters
from evaluate.segmenters import load_segmenter, resize_labels
from pix2pix_tr.errors import UserError
from tests.eval_helpers import make_dataset, tiny_segmenter, write_results

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_local_folder_loads_with_its_albumentations_preprocessing(tmp_path):
    folder = str(tmp_path / "seg")
    model = tiny_segmenter(folder)
    # the smp-hub format: albumentations Compose.save_pretrained, mean/std in 0..255 units
    hub_style = {"__version__": "1.4.24", "transform": {"__class_fullname__": "Compose", "transforms": [
        {"__class_fullname__": "Resize", "height": 64, "width": 128, "p": 1},
        {"__class_fullname__": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375],
         "max_pixel_value": 1.0, "p": 1}]}}
    with open(os.path.join(folder, "albumentations_config_eval.json"), "w") as f:
        json.dump(hub_style, f)
    seg = load_segmenter(folder)
    assert seg.preprocessing.native_size == (64, 128)
    assert seg.preprocessing.mean == pytest.approx((0.485, 0.456, 0.406))
    assert seg.preprocessing.std == pytest.approx((0.229, 0.224, 0.225))
    assert seg.eval_size((256, 256)) == (64, 128) and seg.eval_size((256, 256), (96, 64)) == (96, 64)
    images = torch.randint(0, 256, (2, 3, 32, 64), dtype=torch.uint8)
    pred = seg.predict(images, (64, 128))
    assert pred.shape == (2, 64, 128) and pred.dtype == torch.int64
    # the same as the model on hand-normalised, hand-resized input
    x = torch.nn.functional.interpolate(images.float() / 255, size=(64, 128), mode="bilinear", antialias=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.equal(pred, model.eval()(x).argmax(1))
    with pytest.raises(UserError, match="not divisible by the output stride 32"):
        seg.eval_size((256, 256), (100, 100))


def test_without_configs_imagenet_and_label_size(tmp_path):
    folder = str(tmp_path / "plain")
    tiny_segmenter(folder)
    seg = load_segmenter(folder)
    assert seg.preprocessing.mean == segmenters.IMAGENET_MEAN and seg.preprocessing.native_size is None
    assert seg.eval_size((128, 256)) == (128, 256)


def test_labels_resize_nearest_like_pil():
    from PIL import Image
    import numpy as np

    lab = np.random.default_rng(0).integers(0, 19, (30, 50)).astype(np.uint8)
    want = np.asarray(Image.fromarray(lab).resize((20, 12), Image.NEAREST))
    got = resize_labels(torch.from_numpy(lab)[None], (12, 20))[0].numpy()
    assert np.array_equal(got, want)


def test_folder_without_segmenter_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"holds no segmenter \(no config.json\)"):
        load_segmenter(str(tmp_path / "empty"))
    with pytest.raises(UserError, match="segmenter folder .* does not exist"):
        load_segmenter(str(tmp_path / "nope"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"_model_class": "FPN", "encoder_name": "tu-mobilenetv3_small_050", '
                                         '"encoder_weights": null}')   # weights file missing
    with pytest.raises(UserError, match="is not a complete smp segmenter"):
        load_segmenter(str(broken))


@pytest.mark.slow
def test_unreachable_hub_id_is_one_line_from_the_cli(tmp_path):
    """The real condition: hub ids go through smp.from_pretrained; HF_HUB_OFFLINE makes it fail fast."""
    layout = make_dataset(tmp_path / "data", n_val=1, size=32, label_size=(32, 32))
    results = write_results(str(tmp_path / "res" / "val_latest"),
                            {f: torch.zeros(32, 32, 3, dtype=torch.uint8).numpy() for f in layout.frame_ids("val")})
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1")
    hub_id = "smp-hub/segformer-b0-512x1024-city-160k"
    proc = subprocess.run([sys.executable, "evaluate/fcn_score.py", "--results_dir", results, "--dataroot",
                           layout.root, "--segmenter", hub_id, "--device", "cpu"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: segmenter {hub_id} cannot be downloaded: the model hub is unreachable")
    assert f"hf download {hub_id} --local-dir segformer-b0-512x1024-city-160k" in lines[0]
    assert "--segmenter path/to/segformer-b0-512x1024-city-160k" in lines[0]


def test_wrong_class_count_is_refused(tmp_path):
    from evaluate import fcn_score

    layout = make_dataset(tmp_path / "data", n_val=1, size=32, label_size=(32, 32))
    results = write_results(str(tmp_path / "res" / "val_latest"),
                            {f: torch.zeros(32, 32, 3, dtype=torch.uint8).numpy() for f in layout.frame_ids("val")})
    tiny_segmenter(str(tmp_path / "seg7"), classes=7)
    with pytest.raises(UserError, match="predicts 7 classes but tiny evaluates 19"):
        fcn_score.main(["--results_dir", results, "--dataroot", layout.root, "--segmenter", str(tmp_path / "seg7"),
                        "--device", "cpu", "--num_workers", "0"])
