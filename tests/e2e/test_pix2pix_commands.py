"""pix2pix's documented commands, typed as its README, scripts/train_pix2pix.sh, test_pix2pix.sh,
test_single.sh and docs/tips.md (CPU: --gpu_ids -1) print them, run here on a pix2pix-format folder
made below (datasets/facades: train/ val/ test/ of 64x32 A|B pairs named 1.jpg ..., and testB/ of
single label maps of odd sizes), from that folder's parent as pix2pix's commands expect.

The commands fix pix2pix's sizes (unet_256 with 64 filters, 200 epochs); the training commands get
SHRINK appended (8 filters, one epoch), which changes nothing else, and a free --display_port so
that the default live view (--display_id 1) warns once instead of drawing into a visdom server
someone may run on 8097. The test commands run exactly as typed: their architecture comes from the
run's train_opt.json, except pix2pix's pretrained-model command, which names a run without one and
so gets --ngf 8 (the size of the weights it is handed) appended.
"""
import os
import shlex
import shutil
import socket

import numpy as np
import pytest
from PIL import Image

from pix2pix_tr.models.networks import define_G
from tests.trainer_helpers import load_module, load_weights

train = load_module("train")
test_entry = load_module("test")

# unet_256 at pix2pix's 256 px (the test commands name it), and loader workers as typed: ~40 s in all
pytestmark = pytest.mark.slow

SHRINK = "--ngf 8 --ndf 8 --n_epochs 1 --n_epochs_decay 0"

# Verbatim from pix2pix (scripts/*.sh; README "pix2pix train/test", "Apply a pre-trained model").
TRAIN_PIX2PIX_SH = ("python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix "
                    "--netG unet_256 --direction BtoA --lambda_L1 100 --dataset_mode aligned --norm batch "
                    "--pool_size 0")
TEST_PIX2PIX_SH = ("python test.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix "
                   "--netG unet_256 --direction BtoA --dataset_mode aligned --norm batch")
TEST_SINGLE_SH = ("python test.py --dataroot ./datasets/facades/testB/ --name facades_pix2pix --model test "
                  "--netG unet_256 --direction BtoA --dataset_mode single --norm batch")
README_TRAIN = ("python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix "
                "--direction BtoA --use_wandb")
README_TEST = ("python test.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix "
               "--direction BtoA")
README_PRETRAINED = ("python test.py --dataroot ./datasets/facades/ --direction BtoA --model pix2pix "
                     "--name facades_label2photo_pretrained")
CPU_TIP = "--gpu_ids -1"                       # docs/tips.md: "Please set --gpu_ids -1 to use CPU mode"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def argv(command, *extra):
    """The flags of `python train.py ...` / `python test.py ...`, with `extra` appended."""
    words = shlex.split(command)
    assert words[0] == "python" and words[1] in ("train.py", "test.py")
    return words[2:] + [w for e in extra for w in shlex.split(e)]


def make_facades(root):
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 1), ("test", 3)):
        os.makedirs(root / split)
        for i in range(1, n + 1):
            Image.fromarray(rng.integers(0, 256, (32, 64, 3), dtype=np.uint8)).save(root / split / f"{i}.jpg")
    os.makedirs(root / "testB")
    for i, (w, h) in enumerate([(50, 40), (37, 61)], start=1):           # label maps of any size
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / "testB" / f"{i}.png")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A pix2pix checkout's working folder: datasets/facades, and the run facades_pix2pix trained by
    scripts/train_pix2pix.sh (shrunk) with pix2pix's CPU tip."""
    folder = tmp_path_factory.mktemp("pix2pix_cwd")
    make_facades(folder / "datasets" / "facades")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        train.main(argv(TRAIN_PIX2PIX_SH, SHRINK, CPU_TIP, f"--display_port {free_port()}"))
    return folder


def test_train_pix2pix_sh_leaves_pix2pix_files(workdir):
    run = workdir / "checkpoints" / "facades_pix2pix"
    assert {"latest_net_G.pth", "latest_net_D.pth", "train_opt.json", "loss_log.txt"} <= set(os.listdir(run))
    weights = load_weights(run / "latest_net_G.pth")
    netG = define_G(3, 3, 8, "unet_256", norm="batch")                 # pix2pix's unet_256, batch norm
    netG.load_state_dict(weights)


@pytest.mark.parametrize("command", [TEST_PIX2PIX_SH, README_TEST])
def test_test_commands_write_test_latest_in_pix2pix_order(workdir, monkeypatch, command):
    monkeypatch.chdir(workdir)
    out = test_entry.main(argv(command, CPU_TIP) if command == README_TEST else argv(command))
    folder = workdir / "results" / "facades_pix2pix" / "test_latest"
    assert os.path.samefile(out, folder)
    assert sorted(os.listdir(folder / "images")) == sorted(
        f"{i}_{kind}.png" for i in (1, 2, 3) for kind in ("real_A", "fake_B", "real_B"))
    page = (folder / "index.html").read_text()
    columns = [page.index(f"images/1_{kind}.png") for kind in ("real_A", "fake_B", "real_B")]
    assert columns == sorted(columns)                                   # pix2pix's visual_names order

    # BtoA: real_A is the right half of test/1.jpg, resized to 256 (pix2pix's test: load_size = crop_size)
    pair = Image.open(workdir / "datasets" / "facades" / "test" / "1.jpg").convert("RGB")
    right = np.asarray(pair.crop((32, 0, 64, 32)).resize((256, 256), Image.BICUBIC))
    assert np.array_equal(np.asarray(Image.open(folder / "images" / "1_real_A.png")), right)


def test_test_single_sh_applies_the_generator_to_label_maps(workdir, monkeypatch):
    """Single label maps of any size in, <name>_real.png and <name>_fake.png out at the size the
    network takes (resized per --preprocess). G(real) itself is checked in test_single.py (with
    --eval: here, as pix2pix by default, dropout draws at random)."""
    monkeypatch.chdir(workdir)
    test_entry.main(argv(TEST_SINGLE_SH))
    images = workdir / "results" / "facades_pix2pix" / "test_latest" / "images"
    for name in ("1", "2"):
        real = np.asarray(Image.open(images / f"{name}_real.png"))
        fake = np.asarray(Image.open(images / f"{name}_fake.png"))
        assert real.shape == fake.shape == (256, 256, 3)
        source = Image.open(workdir / "datasets" / "facades" / "testB" / f"{name}.png").convert("RGB")
        assert np.array_equal(real, np.asarray(source.resize((256, 256), Image.BICUBIC)))
        assert not np.array_equal(real, fake)


def test_pretrained_model_command(workdir, monkeypatch):
    """README "Apply a pre-trained model (pix2pix)": a run folder holding only latest_net_G.pth."""
    monkeypatch.chdir(workdir)
    folder = workdir / "checkpoints" / "facades_label2photo_pretrained"
    folder.mkdir()
    shutil.copy(workdir / "checkpoints" / "facades_pix2pix" / "latest_net_G.pth", folder)
    out = test_entry.main(argv(README_PRETRAINED, "--ngf 8", CPU_TIP))
    assert len(os.listdir(os.path.join(out, "images"))) == 9 and out.endswith("test_latest")


def test_readme_train_command_with_wandb_offline(tmp_path, monkeypatch):
    """README's train command logs to W&B (--use_wandb); here in wandb's offline mode."""
    pytest.importorskip("wandb", reason="wandb is not installed (requirements-test.txt lists it)")
    make_facades(tmp_path / "datasets" / "facades")
    monkeypatch.chdir(tmp_path)
    for key, value in {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path), "WANDB_SILENT": "true"}.items():
        monkeypatch.setenv(key, value)
    train.main(argv(README_TRAIN, SHRINK, CPU_TIP, f"--display_port {free_port()}",
                    "--netG unet_128 --load_size 128 --crop_size 128 --display_freq 2 --print_freq 2"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    media = [p.name for p in (runs[0] / "files" / "media" / "images").iterdir()]
    assert {name.split("_")[0] + "_" + name.split("_")[1] for name in media} == {"real_A", "fake_B", "real_B"}
    assert list((runs[0] / "files" / "media" / "table").glob("Result_*.table.json"))
