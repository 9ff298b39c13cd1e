"""Applying a trained generator to your own label maps: data/single.py (pix2pix's SingleDataset) and
test.py --model test / --dataset_mode single: a folder (sub-folders too) or one file in,
<frame_id>_real.png and <frame_id>_fake.png out, any input size resized per --preprocess, a size the
generator cannot take named in one line, the run's --direction and channel counts honoured."""
import os

import numpy as np
import pytest
import torch
from PIL import Image

from data.single import SingleDataset
from options import TrainOptions, save_options
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.images import tensor2im
from pix2pix_tr.models.networks import define_G
from tests.trainer_helpers import load_module

test_entry = load_module("test")

SIZES = {"a": (50, 40), "b": (37, 61), "town/c": (64, 64), "town/old/d": (20, 90)}    # (w, h)


def label_maps(root, sizes=SIZES, ext=".png"):
    rng = np.random.default_rng(0)
    for name, (w, h) in sizes.items():
        path = os.path.join(root, name + ext)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    with open(os.path.join(root, "README.txt"), "w") as f:
        f.write("not an image")
    return str(root)


def trained_run(ckpt, *flags, input_nc=3, netG="resnet_6blocks"):
    """A run folder as train.py leaves it (train_opt.json + latest_net_G.pth), untrained weights."""
    opt = TrainOptions().parse(["--name", "run", "--checkpoints_dir", str(ckpt), "--netG", netG, "--ngf", "4",
                                "--load_size", "32", "--crop_size", "32", "--input_nc", str(input_nc), *flags])
    folder = os.path.join(ckpt, "run")
    os.makedirs(folder)
    save_options(opt, folder)
    torch.manual_seed(0)
    netG = define_G(input_nc, 3, 4, netG, norm="batch", use_dropout=True)
    torch.save(netG.state_dict(), os.path.join(folder, "latest_net_G.pth"))
    return netG


def synthesize(tmp_path, dataroot, *extra):
    return test_entry.main(["--dataroot", str(dataroot), "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                            "--results_dir", str(tmp_path / "results"), "--model", "test", "--eval",
                            "--num_threads", "0", "--device", "cpu", *extra])


# --- data/single.py ---------------------------------------------------------------------------------
def test_folder_with_sub_folders_any_size_resized(tmp_path):
    ds = SingleDataset(label_maps(tmp_path / "maps"), load_size=32, crop_size=32)
    assert ds.frame_ids == ["a", "b", "town/c", "town/old/d"]
    for item, name in zip(ds, ds.frame_ids):
        assert item["frame_id"] == name and item["A"].shape == (3, 32, 32)
        source = Image.open(item["A_paths"]).convert("RGB").resize((32, 32), Image.BICUBIC)
        want = torch.from_numpy(np.asarray(source).copy()).permute(2, 0, 1).float() / 255 * 2 - 1
        torch.testing.assert_close(item["A"], want, atol=1e-6, rtol=0)


def test_one_file_and_grayscale(tmp_path):
    label_maps(tmp_path / "maps", {"x": (24, 16)}, ext=".bmp")
    ds = SingleDataset(tmp_path / "maps" / "x.bmp", load_size=16, crop_size=16, input_nc=1)
    item = ds[0]
    assert len(ds) == 1 and item["frame_id"] == "x" and item["A"].shape == (1, 16, 16)


def test_preprocess_none_and_scale_width_keep_the_aspect(tmp_path):
    root = label_maps(tmp_path / "maps", {"wide": (130, 66)})
    assert SingleDataset(root, preprocess="none")[0]["A"].shape == (3, 64, 128)       # multiples of 4
    assert SingleDataset(root, preprocess="scale_width", load_size=64, crop_size=16)[0]["A"].shape == (3, 32, 64)


@pytest.mark.parametrize("make, says", [
    (lambda p: p / "nowhere", "does not exist: pass a folder of images or one image file"),
    (lambda p: (p / "notes.txt").write_text("x") and p / "notes.txt", "is not an image file"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "holds no images (label maps to synthesize from)"),
])
def test_bad_roots_are_one_line(tmp_path, make, says):
    with pytest.raises(UserError) as err:
        SingleDataset(make(tmp_path))
    assert says in str(err.value) and "\n" not in str(err.value)


# --- test.py --model test ---------------------------------------------------------------------------
def test_fake_is_the_generator_applied_to_each_map(tmp_path):
    netG = trained_run(tmp_path / "ckpt")
    netG.eval()
    out = synthesize(tmp_path, label_maps(tmp_path / "maps"))
    assert out == os.path.join(str(tmp_path / "results"), "run", "test_latest")     # pix2pix's phase
    images = os.path.join(out, "images")
    for name in SIZES:
        real = np.asarray(Image.open(os.path.join(images, f"{name}_real.png")))
        assert real.shape == (32, 32, 3)
        with torch.no_grad():
            want = tensor2im(netG(torch.from_numpy(real.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1))
        assert np.array_equal(np.asarray(Image.open(os.path.join(images, f"{name}_fake.png"))), want)
    page = open(os.path.join(out, "index.html")).read()
    assert page.index("images/town/old/d_real.png") < page.index("images/town/old/d_fake.png")


def test_one_file_and_dataset_mode_single_with_model_pix2pix(tmp_path):
    trained_run(tmp_path / "ckpt")
    label_maps(tmp_path / "maps")
    out = synthesize(tmp_path, tmp_path / "maps" / "a.png")
    assert sorted(os.listdir(os.path.join(out, "images"))) == ["a_fake.png", "a_real.png"]
    out = synthesize(tmp_path, tmp_path / "maps" / "a.png", "--model", "pix2pix", "--dataset_mode", "single")
    assert {"a_real_A.png", "a_fake_B.png"} <= set(os.listdir(os.path.join(out, "images")))


def test_direction_of_the_run_and_one_channel_input(tmp_path):
    """A run trained BtoA (labels on the right of its pairs, as pix2pix's facades) takes label maps
    as one trained AtoB: the maps are G's input, with G's input_nc channels."""
    trained_run(tmp_path / "ckpt", "--direction", "BtoA", input_nc=1)
    out = synthesize(tmp_path, label_maps(tmp_path / "maps"))
    real = np.asarray(Image.open(os.path.join(out, "images", "a_real.png")))
    assert (real[..., 0] == real[..., 1]).all() and (real[..., 1] == real[..., 2]).all()    # gray, shown as RGB


def test_model_suffix(tmp_path):
    trained_run(tmp_path / "ckpt")
    os.rename(tmp_path / "ckpt" / "run" / "latest_net_G.pth", tmp_path / "ckpt" / "run" / "latest_net_G_A.pth")
    out = synthesize(tmp_path, label_maps(tmp_path / "maps"), "--model_suffix", "_A")
    assert os.path.isfile(os.path.join(out, "images", "a_fake.png"))


def test_a_size_the_generator_cannot_take_is_one_line(tmp_path):
    trained_run(tmp_path / "ckpt", "--load_size", "128", "--crop_size", "128", netG="unet_128")
    root = label_maps(tmp_path / "maps", {"odd": (200, 100)})
    with pytest.raises(UserError) as err:
        synthesize(tmp_path, root, "--preprocess", "none")
    assert "odd.png comes to 200x100 after --preprocess, but --netG unet_128 takes sides that are multiples " \
           "of 128" in str(err.value)
