"""data/synthcity.py: determinism, class coverage, prepared layout and metadata, re-runs."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from data import synthcity
from data.layout import PreparedLayout
from pix2pix_tr.errors import UserError, run_cli
from tests.trainer_helpers import REPO

# trainIds of the classes SynthCity must draw, restated from the Cityscapes definition.
REQUIRED = {"road": 0, "sidewalk": 1, "building": 2, "pole": 5, "traffic sign": 7, "vegetation": 8,
            "terrain": 9, "sky": 10, "person": 11, "car": 13}


def test_same_frame_twice_is_identical():
    a_labels, a_photo = synthcity.render_frame(3, 7, 64)
    b_labels, b_photo = synthcity.render_frame(3, 7, 64)
    np.testing.assert_array_equal(a_labels, b_labels)
    np.testing.assert_array_equal(a_photo, b_photo)
    assert a_labels.shape == (64, 64) and a_labels.dtype == np.uint8
    assert a_photo.shape == (64, 64, 3) and a_photo.dtype == np.uint8


def test_seeds_and_indices_differ():
    base = synthcity.render_frame(0, 1, 64)
    for other in (synthcity.render_frame(1, 1, 64), synthcity.render_frame(0, 2, 64)):
        assert (base[0] != other[0]).mean() > 0.05
        assert np.abs(base[1].astype(int) - other[1]).mean() > 5


def test_one_label_map_admits_many_photos():
    layout = synthcity.make_layout(np.random.default_rng(5), 64)
    one = synthcity.paint(layout, np.random.default_rng(1))
    two = synthcity.paint(layout, np.random.default_rng(2))
    assert np.abs(one.astype(int) - two).mean() > 5


def test_classes_cover_the_required_set():
    seen = set()
    for index in range(10):
        labels, photo = synthcity.render_frame(0, index, 128)
        seen |= set(np.unique(labels).tolist())
        assert {REQUIRED["road"], REQUIRED["sky"]} <= set(np.unique(labels).tolist())
    assert seen == set(REQUIRED.values())


def test_photo_follows_the_labels():
    """Sky is brighter than road, vegetation greener than road, in every frame."""
    for index in range(4):
        labels, photo = synthcity.render_frame(0, index, 128)
        photo = photo.astype(float)
        mean = {c: photo[labels == c].mean(0) for c in np.unique(labels)}
        assert mean[10].sum() > mean[0].sum()
        if 8 in mean:
            assert mean[8][1] - mean[8][[0, 2]].mean() > mean[0][1] - mean[0][[0, 2]].mean()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthcity")
    synthcity.generate(root, num_train=5, num_val=3, size=64, seed=2, workers=2, log=lambda *a: None)
    return root


def test_generate_writes_the_prepared_layout(generated):
    layout = PreparedLayout(generated)
    meta = layout.read_meta()
    assert meta.name == "synthcity" and meta.segmenters == ["checkpoints/segmenters/synthcity_64px"]
    assert meta.splits == {"train": 5, "val": 3} and meta.image_size == [64, 64] == meta.label_size
    assert meta.palette[13] == [0, 0, 142] and meta.classes[7] == "traffic sign"
    assert layout.frame_ids("train") == [f"synthcity_{i:07d}" for i in range(5)]
    assert layout.frame_ids("val") == [f"synthcity_{i:07d}" for i in range(1_000_000, 1_000_003)]


@pytest.mark.parametrize("split,index", [("train", 4), ("val", 1_000_002)])
def test_frame_alone_equals_frame_in_batch(generated, split, index):
    layout = PreparedLayout(generated)
    fid = f"synthcity_{index:07d}"
    labels, photo = synthcity.render_frame(2, index, 64)
    np.testing.assert_array_equal(np.asarray(Image.open(layout.label_path(split, fid))), labels)
    pair = np.asarray(Image.open(layout.pair_path(split, fid)).convert("RGB")).astype(int)
    palette = np.array(layout.read_meta().palette)
    assert np.abs(pair[:, :64] - palette[labels]).mean() < 3      # A = Cityscapes colours (JPEG)
    assert np.abs(pair[:, 64:] - photo).mean() < 3                # B = photo


def test_rerun_skips_and_refuses_other_parameters(generated):
    layout = PreparedLayout(generated)
    path = layout.pair_path("train", "synthcity_0000000")
    os.utime(path, (1, 1))
    synthcity.generate(generated, num_train=6, num_val=3, size=64, seed=2, workers=1, log=lambda *a: None)
    assert os.stat(path).st_mtime == 1 and len(layout.frame_ids("train")) == 6
    with pytest.raises(UserError, match="SynthCity made with"):
        synthcity.generate(generated, num_train=6, num_val=3, size=64, seed=3, workers=1)


def test_cli_bad_size_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run_cli(synthcity.main, ["--output_dir", str(tmp_path / "x"), "--size", "30"])
    err = capsys.readouterr().err
    assert err.startswith("error: --size 30") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_interrupted_generation_is_not_prepared_and_resumes(tmp_path, interrupt):
    restore = interrupt(synthcity, "_write_frames", 2)
    with pytest.raises(KeyboardInterrupt):
        synthcity.generate(tmp_path, num_train=20, num_val=2, size=32, workers=1)
    layout = PreparedLayout(tmp_path)
    assert not layout.is_prepared() and len(layout.frame_ids("train")) == 16   # first chunk only
    assert [f for _, _, fs in os.walk(tmp_path) for f in fs if "tmp" in f] == []
    restore()
    synthcity.generate(tmp_path, num_train=20, num_val=2, size=32, workers=1, log=lambda *a: None)
    assert layout.is_prepared() and len(layout.frame_ids("train")) == 20


def test_a_rerun_rewrites_frames_it_cannot_read_and_refuses_frames_beyond_the_count(generated, tmp_path):
    layout = PreparedLayout(generated)
    broken = {layout.pair_path("train", "synthcity_0000001"): b"", layout.label_path("val", "synthcity_1000000"):
              open(layout.label_path("val", "synthcity_1000000"), "rb").read()[:40]}     # zero-byte, truncated
    for path, data in broken.items():
        with open(path, "wb") as f:
            f.write(data)
    synthcity.generate(generated, num_train=6, num_val=3, size=64, seed=2, workers=1, log=lambda *a: None)
    for path in broken:
        assert Image.open(path).load() is not None and os.path.getsize(path) > 100
    with pytest.raises(UserError, match=f"{generated} holds 2 train frames beyond the 4 asked for "
                                        r"\(e.g. synthcity_0000004\)"):
        synthcity.generate(generated, num_train=4, num_val=3, size=64, seed=2, workers=1)


def test_ctrl_c_with_workers_is_one_line(tmp_path):
    """A terminal's Ctrl-C signals the whole process group: the pool's workers as well."""
    proc = subprocess.Popen([sys.executable, "data/synthcity.py", "--output_dir", str(tmp_path / "s"),
                             "--num_train", "400", "--num_val", "1", "--size", "64", "--workers", "2"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    train = tmp_path / "s" / "train"
    while not (train.is_dir() and len(os.listdir(train)) >= 20):
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    errors = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "Traceback" not in errors, errors[-3000:]
    assert errors.strip().splitlines()[-1] == "interrupted"
