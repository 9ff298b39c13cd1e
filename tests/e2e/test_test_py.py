"""test.py: synthesizes a split into results/<name>/<phase>_<epoch>/images/<frame_id>_{fake_B,real_A,
real_B}.png plus index.html, with the architecture read from the run's train_opt.json."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from data.aligned import AlignedDataset
from data.layout import PreparedLayout
from evaluate import frames
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.images import tensor2im
from pix2pix_tr.models.networks import define_G
from tests.trainer_helpers import TINY_RUN, load_module, load_weights, make_synthcity

train = load_module("train")
test_entry = load_module("test")

KINDS = ("fake_B", "real_A", "real_B")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=2, num_val=3)
    ckpt = tmp_path_factory.mktemp("ckpt")
    train.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN,
                "--n_epochs", "1", "--n_epochs_decay", "0", "--norm", "instance"])
    return root, ckpt


def test_outputs_named_by_frame_id_with_index_html(tmp_path, trained):
    root, ckpt = trained
    out = test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt),
                           "--results_dir", str(tmp_path), "--num_threads", "0", "--eval"])
    folder = tmp_path / "run" / "val_latest"
    assert str(folder) == str(out)
    frame_ids = PreparedLayout(root).frame_ids("val")
    expected = {f"{fid}_{kind}.png" for fid in frame_ids for kind in KINDS}
    assert {p.name for p in (folder / "images").iterdir()} == expected
    page = (folder / "index.html").read_text()
    assert all(f"images/{name}" in page for name in expected)

    # fake_B is G(real_A) of the saved weights, with the saved architecture (unet_128, ngf 8,
    # instance norm), rebuilt here independently of test.py.
    netG = define_G(3, 3, 8, "unet_128", norm="instance", use_dropout=True)
    netG.load_state_dict(load_weights(ckpt / "run" / "latest_net_G.pth"))
    netG.eval()
    dataset = AlignedDataset(root, "val", load_size=128, crop_size=128, no_flip=True)
    for item in dataset:
        with torch.no_grad():
            want = tensor2im(netG(item["A"][None]))
        got = np.asarray(Image.open(folder / "images" / f"{item['frame_id']}_fake_B.png"))
        # test.py ran on its default device: a GPU's convolutions round differently, by at most
        # one gray level after the uint8 conversion; on the CPU the images are identical
        tolerance = 1 if torch.cuda.is_available() else 0
        assert np.abs(got.astype(int) - want.astype(int)).max() <= tolerance
        real_a = np.asarray(Image.open(folder / "images" / f"{item['frame_id']}_real_A.png"))
        assert np.array_equal(real_a, tensor2im(item["A"]))


def test_num_test_epoch_and_phase(tmp_path, trained):
    root, ckpt = trained
    test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), "--phase", "train",
                     "--epoch", "latest", "--results_dir", str(tmp_path), "--num_threads", "0", "--num_test", "1"])
    images = list((tmp_path / "run" / "train_latest" / "images").iterdir())
    frames = {p.name.rsplit("_", 2)[0] for p in images}
    assert len(images) == 3 and frames <= set(PreparedLayout(root).frame_ids("train"))


def test_missing_run_or_epoch_is_a_user_error(tmp_path, trained):
    root, ckpt = trained
    with pytest.raises(UserError, match="7_net_G.pth"):
        test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), "--epoch", "7",
                         "--results_dir", str(tmp_path), "--num_threads", "0"])
    with pytest.raises(UserError, match="nothing"):
        test_entry.main(["--dataroot", root, "--name", "nothing", "--checkpoints_dir", str(ckpt),
                         "--results_dir", str(tmp_path), "--num_threads", "0", *TINY_RUN[:4]])


def test_a_results_folder_records_its_checkpoint_and_fcn_score_refuses_it_incomplete_or_mixed(
        tmp_path, trained, monkeypatch):
    root, ckpt = trained
    argv = ["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), "--results_dir", str(tmp_path),
            "--num_threads", "0"]
    folder = test_entry.main(argv)
    record = json.loads((tmp_path / "run" / "val_latest" / frames.SYNTHESIS_FILE).read_text())
    weights = ckpt / "run" / "latest_net_G.pth"
    assert record == {"checkpoint": str(weights), "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
                      "complete": True, "frames": PreparedLayout(root).frame_ids("val")}
    assert sorted(frames.find_results(folder)) == record["frames"]

    test_entry.main([*argv, "--num_test", "1"])             # over the 3 frames of the first run
    with pytest.raises(UserError, match="is mixed: it has 2 frames test.py did not write"):
        frames.find_results(folder)

    calls = []
    with monkeypatch.context() as patch:                    # Ctrl-C while re-synthesizing: a stale mixture
        def interrupted(*args, **kwargs):
            calls.append(1)
            if len(calls) == 4:
                raise KeyboardInterrupt
        patch.setattr(test_entry, "save_image", interrupted)
        with pytest.raises(KeyboardInterrupt):
            test_entry.main(argv)
    with pytest.raises(UserError, match=f"{folder} is incomplete: test.py stopped while synthesizing it"):
        frames.find_results(folder)
