"""train_segmenter's --output_dir: only a segmenter it wrote (or an empty folder) is replaced, whole and
in one step; a diverged segmenter is never saved, and one that holds NaN is never used as a judge."""

import pytest
import torch

from data import synthcity
from evaluate import segmenters, train_segmenter
from pix2pix_tr.errors import UserError

TINY = dict(arch="fpn", size=64, crop_size=None, steps=2, batch_size=2, max_frames=4)


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("synth") / "synthcity")
    synthcity.generate(root, num_train=4, num_val=2, size=64, seed=3, workers=1, log=lambda *a: None)
    return root


def test_a_folder_that_is_not_a_segmenter_is_refused_and_kept(dataroot, tmp_path):
    (tmp_path / "notes.txt").write_text("a month of runs")
    with pytest.raises(UserError, match=f"--output_dir {tmp_path} holds files that are not a segmenter"):
        train_segmenter.train(dataroot, str(tmp_path), **TINY)
    assert (tmp_path / "notes.txt").read_text() == "a month of runs"
    (tmp_path / "a_file").write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        train_segmenter.train(dataroot, str(tmp_path / "a_file"), **TINY)


def test_steps_below_one_are_one_line(dataroot, tmp_path):
    with pytest.raises(UserError, match="--steps 0 must be at least 1"):
        train_segmenter.main(["--dataroot", dataroot, "--output_dir", str(tmp_path / "seg"), "--steps", "0"])


def test_a_segmenter_is_replaced_whole_and_leftovers_of_a_killed_save_are_cleared(dataroot, tmp_path):
    out = tmp_path / "seg"
    train_segmenter.train(dataroot, str(out), seed=0, **TINY)
    first = (out / "model.safetensors").read_bytes()
    (tmp_path / "seg.tmp-999999999").mkdir()                    # a save killed at its switch, pid gone
    train_segmenter.train(dataroot, str(out), seed=1, **TINY)
    assert (out / "model.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seg"]
    segmenters.load_segmenter(str(out))


def test_a_diverged_segmenter_is_not_saved_and_a_nan_one_cannot_judge(dataroot, tmp_path):
    with pytest.raises(UserError, match="tensors of the segmenter are not finite .* nothing was saved"):
        train_segmenter.train(dataroot, str(tmp_path / "seg"), **{**TINY, "lr": 1e30})
    assert not (tmp_path / "seg").exists()
    good = tmp_path / "good"
    train_segmenter.train(dataroot, str(good), **TINY)
    model = segmenters.load_segmenter(str(good)).model
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    model.save_pretrained(str(good))
    with pytest.raises(UserError, match=f"tensors of segmenter {good} are not finite"):
        segmenters.load_segmenter(str(good))
