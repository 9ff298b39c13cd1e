"""Issue #14: every bad input ends in one line naming the culprit (a file or a flag) and the fix.

Each case runs the real entry point (fcn_score.main, test.py's main, the launchers as commands) on
tiny data and checks the UserError (or exit status 2 with one line on stderr) names its culprit.
The data/ preparation cases live in test_prepare_cityscapes.py, the dataset's in test_data_aligned.py.
"""
import os
import resource
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from evaluate import fcn_score, train_segmenter
from options import TrainOptions
from pix2pix_tr.errors import UserError
from pix2pix_tr.models.networks import define_G
from tests.eval_helpers import make_dataset, tiny_segmenter, write_results
from tests.trainer_helpers import REPO, load_module, make_synthcity

test_entry = load_module("test")
ENV = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")


def one_line(err):
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text, text
    return text


def run_cli(args, timeout=120, preexec_fn=None):
    """A command from the repository root: (exit status, stderr); a user error is exit 2, one line."""
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=preexec_fn)
    return proc.returncode, proc.stderr


def assert_one_error_line(rc, stderr, *needles):
    """Exit 2 and one `error:` line, the last one (a progress bar may come before it)."""
    assert rc == 2, stderr
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if "error" in line.lower() or "Traceback" in line]
    assert errors == [lines[-1]] and lines[-1].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]


# --- evaluate/fcn_score.py -------------------------------------------------------------------

@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("seg") / "seg")
    tiny_segmenter(folder)
    return folder


@pytest.fixture
def world(tmp_path):
    """A fresh prepared dataset (3 val frames, 64 px: the tiny FPN's smallest) and a results folder."""
    layout = make_dataset(tmp_path / "data", n_val=3, size=64, label_size=(64, 64))
    rng = np.random.default_rng(0)
    results = write_results(str(tmp_path / "res" / "run" / "val_latest"),
                            {f: rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for f in layout.frame_ids("val")})
    return layout, results


def score(world, segmenter, *extra):
    layout, results = world
    return fcn_score.main(["--results_dir", results, "--dataroot", layout.root, "--segmenter", segmenter,
                           "--device", "cpu", "--num_workers", "0", *extra])


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def test_labels_of_two_sizes_in_one_batch_are_one_line(world, segmenter):
    layout, _ = world
    path = layout.label_path("val", "frame_002")
    Image.open(path).resize((128, 64), Image.NEAREST).save(path)
    with pytest.raises(UserError, match=r"labels are not all one size: 64x64 .*, 128x64 \(frame_002.png\); a batch "
                                        "holds one size: pass --batch_size 1"):
        score(world, segmenter, "--batch_size", "2")


def test_truncated_result_png_is_named(world, segmenter):
    path = os.path.join(world[1], "images", "frame_001_fake_B.png")
    truncate(path)
    with Image.open(path) as im:                   # the header still reads: only decoding fails
        assert im.size == (64, 64)
    with pytest.raises(UserError) as err:
        score(world, segmenter)
    assert one_line(err).startswith(f"{path} is not a readable image")


@pytest.mark.slow
def test_truncated_result_png_in_a_loader_worker_is_one_line_from_the_cli(world, segmenter):
    layout, results = world
    path = os.path.join(results, "images", "frame_002_fake_B.png")
    truncate(path)
    rc, stderr = run_cli(["evaluate/fcn_score.py", "--results_dir", results, "--dataroot", layout.root,
                          "--segmenter", segmenter, "--device", "cpu", "--num_workers", "1"])
    assert_one_error_line(rc, stderr, f"{path} is not a readable image")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_segmenter_weights_are_named(world, segmenter, tmp_path, damage):
    copy = str(tmp_path / "seg_copy")
    shutil.copytree(segmenter, copy)
    weights = os.path.join(copy, "model.safetensors")
    if damage == "truncated":
        truncate(weights, 0.7)
    else:
        with open(weights, "wb") as f:
            f.write(os.urandom(4096) if damage == "garbage" else b"")
    with pytest.raises(UserError) as err:
        score(world, copy)
    assert one_line(err).startswith(f"{weights} is not a readable weights file")
    assert "save_pretrained" in str(err.value)


@pytest.mark.parametrize("frame", ["frame_000", "frame_002"])   # the first label is read for its size
def test_zero_byte_evaluation_label_is_named(world, segmenter, frame):
    path = world[0].label_path("val", frame)
    open(path, "wb").close()
    with pytest.raises(UserError) as err:
        score(world, segmenter)
    assert one_line(err).startswith(f"{path} is not a readable")


def test_zero_byte_label_while_training_the_segmenter_is_named(world):
    layout = world[0]
    path = layout.label_path("val", "frame_001")
    open(path, "wb").close()
    with pytest.raises(UserError) as err:
        train_segmenter.load_split(layout.root, "val", (64, 64))
    assert one_line(err).startswith(f"{path} is not a readable image")


def test_labelids_instead_of_trainids_are_refused(world, segmenter):
    layout = world[0]
    path = layout.label_path("val", "frame_001")
    label = np.asarray(Image.open(path)).copy()
    label[4:8, :] = 26                             # car's labelId (trainId 13); 0..18 stay valid
    label[8:12, :] = 33
    Image.fromarray(label).save(path)
    with pytest.raises(UserError) as err:
        score(world, segmenter)
    msg = one_line(err)
    assert msg.startswith(f"{path} holds label values 26, 33 outside the trainIds 0..18 and 255")
    assert "looks like a labelIds image rather than trainIds" in msg


def test_trainids_with_ignore_are_accepted(world, segmenter):
    layout = world[0]
    path = layout.label_path("val", "frame_001")
    label = np.asarray(Image.open(path)).copy()
    label[:4], label[4:8] = 18, 255
    Image.fromarray(label).save(path)
    assert score(world, segmenter)["num_frames"] == 3


@pytest.mark.parametrize("size", [("0", "0"), ("64", "-8")])
def test_eval_size_must_be_positive(world, segmenter, size):
    with pytest.raises(UserError) as err:
        score(world, segmenter, "--eval_size", *size)
    assert one_line(err).startswith(f"--eval_size {size[0]} {size[1]}: height and width must be positive")


def test_unknown_device_name(world, segmenter):
    with pytest.raises(UserError) as err:
        score(world, segmenter, "--device", "gpu")
    assert one_line(err).startswith("--device gpu: expected auto, cpu, cuda or cuda:N")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_device_without_gpu(world, segmenter):
    with pytest.raises(UserError) as err:
        score(world, segmenter, "--device", "cuda")
    assert one_line(err).startswith("--device cuda: no CUDA GPU is usable here")


def test_unfinished_preparation_is_named_by_fcn_score(world, segmenter):
    layout = world[0]
    os.remove(layout.metadata_path)                # labels/ and val/ written, metadata.json not yet
    with pytest.raises(UserError) as err:
        score(world, segmenter)
    assert one_line(err).startswith(f"{layout.root} is an unfinished preparation")
    assert "rerun" in str(err.value)


# --- options: scale_width and the U-Net ------------------------------------------------------

def test_scale_width_to_a_width_the_unet_cannot_take():
    with pytest.raises(UserError) as err:
        TrainOptions().parse(["--preprocess", "scale_width", "--load_size", "100", "--device", "cpu"])
    msg = one_line(err)
    assert msg.startswith("--preprocess scale_width --load_size 100: images are scaled to width 100")
    assert "--netG unet_256 needs a multiple of 256" in msg
    opt = TrainOptions().parse(["--preprocess", "scale_width", "--load_size", "256", "--device", "cpu"])
    assert opt.load_size == 256
    opt = TrainOptions().parse(["--preprocess", "scale_width", "--load_size", "100", "--netG", "resnet_9blocks",
                                "--device", "cpu"])
    assert opt.load_size == 100


# --- train.py: sizes too large for memory ------------------------------------------------------

def _six_gib_of_address_space():
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))


@pytest.mark.parametrize("sizes, needles", [
    (["--load_size", "80000", "--crop_size", "256"], ["out of memory resizing", "--load_size 80000"]),
    (["--load_size", "3000", "--crop_size", "3000", "--netG", "resnet_6blocks"],
     ["out of memory in a training step", "--crop_size 3000", "--batch_size 1"]),
])
@pytest.mark.slow
def test_a_size_too_large_for_memory_is_one_line_naming_the_flag(tmp_path, sizes, needles):
    """A real allocation failure (an address-space limit, as a small machine or a job's memory limit gives),
    with loader workers on (the default), in the loader's resize and in the step."""
    data = make_synthcity(tmp_path / "data", num_train=2, num_val=1)
    rc, stderr = run_cli(["train.py", "--dataroot", data, "--name", "r", "--checkpoints_dir", str(tmp_path / "ck"),
                          "--display_id", "0", "--device", "cpu", "--n_epochs", "1", "--n_epochs_decay", "0", *sizes],
                         preexec_fn=_six_gib_of_address_space)
    assert_one_error_line(rc, stderr, *needles)


# --- test.py ----------------------------------------------------------------------------------

TEST_FLAGS = ["--netG", "unet_128", "--ngf", "8", "--crop_size", "128", "--norm", "instance",
              "--num_threads", "0", "--device", "cpu"]


@pytest.fixture
def run_dir(tmp_path):
    """A prepared dataset and checkpoints/run/latest_net_G.pth of a tiny unet_128 (no train_opt.json)."""
    layout = make_dataset(tmp_path / "data", n_val=2, size=64, label_size=(64, 64))
    folder = tmp_path / "ckpt" / "run"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(define_G(3, 3, 8, "unet_128", norm="instance").state_dict(), folder / "latest_net_G.pth")
    return layout, folder


def synthesize(tmp_path, layout, *extra):
    return test_entry.main(["--dataroot", layout.root, "--name", "run", "--checkpoints_dir",
                            str(tmp_path / "ckpt"), "--results_dir", str(tmp_path / "results"),
                            *TEST_FLAGS, *extra])


@pytest.mark.parametrize("value", ["-3", "0", "1.5"])
def test_num_test_must_be_a_positive_integer(tmp_path, run_dir, value):
    with pytest.raises(UserError) as err:
        synthesize(tmp_path, run_dir[0], "--num_test", value)
    assert one_line(err).startswith(f"--num_test {value}: must be a positive integer")
    assert not (tmp_path / "results").exists()


def test_checkpoint_of_another_architecture_is_one_line(tmp_path, run_dir):
    layout, folder = run_dir
    path = folder / "latest_net_G.pth"
    torch.save(define_G(3, 3, 16, "unet_128", norm="instance").state_dict(), path)   # ngf 16, not 8
    with pytest.raises(UserError) as err:
        synthesize(tmp_path, layout)
    msg = one_line(err)
    assert msg.startswith(f"{path} does not fit netG as configured") and "--ngf" in msg


def test_weights_that_are_not_finite_make_no_outputs(tmp_path, run_dir):
    layout, folder = run_dir
    path = folder / "latest_net_G.pth"
    weights = torch.load(path, weights_only=True)
    next(v for v in weights.values() if v.is_floating_point()).view(-1)[0] = float("inf")
    torch.save(weights, path)
    with pytest.raises(UserError) as err:
        synthesize(tmp_path, layout)
    assert one_line(err).startswith(f"1 of {len(weights)} tensors of {path} are not finite")
    assert not (tmp_path / "results").exists()
