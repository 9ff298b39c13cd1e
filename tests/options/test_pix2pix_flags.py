"""pix2pix's train and test flags that this project had not carried over (issue 15), one by one:
--model, --dataset_mode, --gpu_ids, --pool_size, --save_by_iter/--load_iter, --suffix, --verbose,
--display_ncols, --aspect_ratio, --lr_policy plateau, --norm syncbatch, --use_wandb and
--wandb_project_name; and test.py's pix2pix defaults (--phase test, --num_test 50), with a prepared
dataset's fallback to all of val. Tiny nets (resnet_6blocks with 4 filters on 32 px) on a
pix2pix-format folder."""
import functools
import os
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from data.layout import PreparedLayout
from options import TestOptions, TrainOptions, save_options
from options.train_options import schedule_settings
from pix2pix_tr.run import distributed
from pix2pix_tr.run.resume import reschedule
from pix2pix_tr.optim import schedulers
from pix2pix_tr.viz import visualizer as visualizer_module
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.images import tensor2im
from pix2pix_tr.models.networks import define_G, load_pix2pix_state_dict
from pix2pix_tr.viz.visualizer import Visualizer
from tests.eval_helpers import make_dataset
from tests.trainer_helpers import load_module, load_weights

train = load_module("train")
test_entry = load_module("test")

TINY = ["--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--load_size", "32", "--crop_size", "32",
        "--num_threads", "0", "--display_id", "0", "--device", "cpu"]


def tiny_G(norm="batch", use_dropout=True):          # pix2pix's default: dropout (no --no_dropout)
    return define_G(3, 3, 4, "resnet_6blocks", norm=norm, use_dropout=use_dropout)


def pix2pix_folder(root, splits=(("train", 4), ("test", 3)), size=(16, 32)):
    """datasets/<x>/<split>/<i>.jpg: pix2pix's layout of A|B pairs."""
    rng = np.random.default_rng(0)
    for split, n in splits:
        os.makedirs(os.path.join(root, split), exist_ok=True)
        for i in range(1, n + 1):
            pair = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pair).save(os.path.join(root, split, f"{i}.jpg"))
    return str(root)


def saved_run(ckpt, name="run", norm="batch"):
    """checkpoints/<name>/ with train_opt.json and an untrained latest_net_G.pth (no training needed)."""
    opt = TrainOptions().parse(["--name", name, "--checkpoints_dir", str(ckpt), "--norm", norm, *TINY])
    folder = os.path.join(ckpt, name)
    os.makedirs(folder)
    save_options(opt, folder)
    torch.manual_seed(0)
    netG = tiny_G(norm)
    torch.save(netG.state_dict(), os.path.join(folder, "latest_net_G.pth"))
    return netG


def one_line(err):
    text = str(err.value)
    assert "\n" not in text
    return text


# --- --model, --dataset_mode -------------------------------------------------------------------
def test_model_and_dataset_mode():
    opt = TrainOptions().parse(["--model", "pix2pix", "--dataset_mode", "aligned"])
    assert (opt.model, opt.dataset_mode) == ("pix2pix", "aligned")
    assert TrainOptions().parse([]).dataset_mode == "aligned"
    assert TestOptions().parse(["--model", "test"]).dataset_mode == "single"     # as pix2pix's TestModel sets
    assert TestOptions().parse(["--model", "test", "--dataset_mode", "aligned"]).dataset_mode == "aligned"


@pytest.mark.parametrize("options, argv, says", [
    (TrainOptions, ["--model", "cycle_gan"], "cycle_gan is not carried over"),
    (TrainOptions, ["--model", "colorization"], "--model pix2pix --input_nc 1"),
    (TrainOptions, ["--model", "test"], "--model test is test.py's"),
    (TrainOptions, ["--dataset_mode", "single"], "train on aligned A|B pairs"),
    (TrainOptions, ["--dataset_mode", "unaligned"], "unaligned is not carried over"),
    (TestOptions, ["--model", "template"], "use --model pix2pix"),
    (TestOptions, ["--dataset_mode", "colorization"], "--dataset_mode aligned"),
    (TestOptions, ["--model", "pix2pixHD"], "invalid choice: 'pix2pixHD'"),
])
def test_other_models_and_modes_say_what_to_use(options, argv, says):
    with pytest.raises(UserError) as err:
        options().parse(argv)
    assert says in one_line(err)


# --- --gpu_ids --------------------------------------------------------------------------------
def test_gpu_ids_minus_one_is_the_cpu():
    assert TrainOptions().parse(["--gpu_ids", "-1"]).device == "cpu"
    assert TestOptions().parse(["--gpu_ids", "-1"]).device == "cpu"
    assert TrainOptions().parse(["--gpu_ids", "-1", "--device", "cpu"]).device == "cpu"


def test_gpu_ids_one_gpu_is_that_device():
    if torch.cuda.is_available():
        assert TrainOptions().parse(["--gpu_ids", "0"]).device == "cuda:0"
    else:
        with pytest.raises(UserError) as err:
            TrainOptions().parse(["--gpu_ids", "0"])
        assert "no CUDA GPU is usable here; --gpu_ids -1 runs on the CPU" in one_line(err)


@pytest.mark.parametrize("argv, says", [
    (["--gpu_ids", "0,1,2"], "torchrun --nproc_per_node 3 with the same flags, CUDA_VISIBLE_DEVICES=0,1,2"),
    (["--gpu_ids", "gpu0"], "expected -1 (CPU) or a GPU index"),
    (["--gpu_ids", "-1", "--device", "cuda"], "means --device cpu, but --device cuda was given too"),
])
def test_gpu_ids_lines(argv, says):
    with pytest.raises(UserError) as err:
        TrainOptions().parse(argv)
    assert says in one_line(err)


def test_test_py_gpu_ids_several_is_one_device_line():
    with pytest.raises(UserError) as err:
        TestOptions().parse(["--gpu_ids", "0,1"])
    assert "test.py runs on one device" in one_line(err)


# --- --suffix ----------------------------------------------------------------------------------
def test_suffix_extends_the_name_as_pix2pix(tmp_path):
    assert TrainOptions().parse(["--name", "x", "--suffix", "{netG}_size{load_size}"]).name == "x_unet_256_size286"
    assert TrainOptions().parse(["--suffix", "s{seed}"]).name == "pix2pix_adam_s0"
    saved_run(tmp_path, name="x_resnet_6blocks_size32")
    opt = TestOptions().parse(["--name", "x", "--checkpoints_dir", str(tmp_path), "--suffix",
                               "{netG}_size{load_size}", "--netG", "resnet_6blocks", "--load_size", "32"])
    assert opt.name == "x_resnet_6blocks_size32" and opt.saved_options_found
    with pytest.raises(UserError) as err:
        TrainOptions().parse(["--suffix", "{generator}"])
    assert "--suffix '{generator}'" in one_line(err)


# --- --pool_size, --verbose, --save_by_iter, --load_iter (one short run) ----------------------------
@pytest.fixture(scope="module")
def by_iter(tmp_path_factory):
    root = pix2pix_folder(tmp_path_factory.mktemp("facades") / "facades")
    ckpt = tmp_path_factory.mktemp("ckpt")
    options = TrainOptions()
    options.parse(["--pool_size", "50"])
    with pytest.MonkeyPatch.context() as mp:
        printed = []
        mp.setattr("builtins.print", lambda *a, **k: printed.append(" ".join(map(str, a))))
        train.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY, "--n_epochs", "1",
                    "--n_epochs_decay", "0", "--save_by_iter", "--save_latest_freq", "2", "--pool_size", "50",
                    "--verbose", "--serial_batches"])
    return root, ckpt, printed, options.notes


def test_pool_size_note_and_verbose_networks(by_iter):
    _, _, printed, notes = by_iter
    assert TrainOptions().parse([]).pool_size == 0                        # pix2pix's default for pix2pix
    assert notes and notes[0].startswith("--pool_size 50: pix2pix's pix2pix model keeps no image pool")
    assert notes[0] in printed
    text = "\n".join(printed)
    assert "ResnetGenerator(" in text and "NLayerDiscriminator(" in text
    assert "[Network G] Total number of parameters" in text and "[Network D] Total number of parameters" in text


def test_save_by_iter_keeps_iter_files(by_iter):
    _, ckpt, _, _ = by_iter
    files = set(os.listdir(ckpt / "run"))
    assert {"iter_2_net_G.pth", "iter_2_net_D.pth", "iter_4_net_G.pth", "iter_4_net_D.pth",
            "latest_net_G.pth", "latest_state.pth"} <= files
    assert not torch.equal(*(load_weights(ckpt / "run" / f"iter_{n}_net_G.pth")["model.1.weight"] for n in (2, 4)))


def test_load_iter_in_test_py_and_continue_train(by_iter, tmp_path, capsys):
    root, ckpt, _, _ = by_iter
    out = test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), "--results_dir",
                           str(tmp_path), "--load_iter", "2", "--eval", "--num_threads", "0", "--device", "cpu"])
    assert out == os.path.join(str(tmp_path), "run", "test_latest_iter2")           # pix2pix's folder name
    netG = tiny_G()
    netG.load_state_dict(load_weights(ckpt / "run" / "iter_2_net_G.pth"))
    netG.eval()
    real = np.array(Image.open(os.path.join(out, "images", "1_real_A.png")))   # a writable copy
    with torch.no_grad():
        want = tensor2im(netG(torch.from_numpy(real).permute(2, 0, 1)[None].float() / 127.5 - 1))
    assert np.array_equal(np.asarray(Image.open(os.path.join(out, "images", "1_fake_B.png"))), want)

    train.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY, "--continue_train",
                "--load_iter", "4", "--n_epochs", "1", "--n_epochs_decay", "0", "--max_dataset_size", "1"])
    assert "continuing from iter_4_net_G/D.pth at epoch 1 with fresh optimizer state" in capsys.readouterr().out


# --- --display_ncols -------------------------------------------------------------------------------
class RecordingDisplay:
    def __init__(self, *args, **kwargs):
        self.calls = []
        RecordingDisplay.last = self

    def send(self, method, *args, **kwargs):
        self.calls.append((method, args, kwargs))
        return True


@pytest.mark.parametrize("ncols", [0, 2])
def test_display_ncols(tmp_path, monkeypatch, ncols):
    monkeypatch.setattr(visualizer_module, "VisdomDisplay", RecordingDisplay)
    vis = Visualizer("run", checkpoints_dir=tmp_path, display_id=3, display_ncols=ncols, log=lambda m: None)
    visuals = {k: torch.full((1, 3, 4, 4), v) for k, v in (("real_A", -1.0), ("fake_B", 0.0), ("real_B", 1.0))}
    vis.display_current_results(visuals, 1, save_result=False)
    calls = RecordingDisplay.last.calls
    if ncols == 0:                                   # one captioned pane per image, windows 4, 5, 6
        assert [(m, kw["win"], kw["opts"]["title"]) for m, _, kw in calls] == [
            ("image", "4", "real_A"), ("image", "5", "fake_B"), ("image", "6", "real_B")]
        return
    (m1, args1, kw1), (m2, args2, kw2) = calls       # pix2pix: one grid pane, then a label table
    assert (m1, kw1["win"], kw1["nrow"], m2, kw2["win"]) == ("images", "4", 2, "text", "5")
    grid = args1[0]
    assert grid.shape == (4, 3, 4, 4)                # three images and one white filler, 2 a row
    assert [int(g[0, 0, 0]) for g in grid] == [0, 128, 255, 255]
    assert args2[0] == ("<table><tr><td>real_A</td><td>fake_B</td></tr>"
                        "<tr><td>real_B</td><td></td></tr></table>")


# --- --aspect_ratio ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ratio, size", [(2.0, (64, 32)), (0.5, (32, 64)), (1.0, (32, 32))])
def test_aspect_ratio_stretches_the_saved_results(tmp_path, ratio, size):
    root = pix2pix_folder(tmp_path / "facades", splits=(("test", 1),))
    saved_run(tmp_path / "ckpt")
    out = test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                           "--results_dir", str(tmp_path / "results"), "--aspect_ratio", str(ratio),
                           "--num_threads", "0", "--device", "cpu"])
    for kind in ("real_A", "fake_B", "real_B"):
        assert Image.open(os.path.join(out, "images", f"1_{kind}.png")).size == size     # (width, height)


# --- --lr_policy plateau (the policy itself: tests/optim/test_schedulers.py) ----------------------------
def test_continue_train_switching_to_plateau_takes_its_rate_at_that_epoch():
    """--continue_train --lr_policy plateau: the rate a plateau run would have at epoch 9 (0.2 lr)."""
    opt = TrainOptions().parse(["--lr_policy", "plateau", "--lr", "0.5"])
    optimizers = {"G": torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=0.1)}
    schedulers_ = {}
    make = functools.partial(schedulers.build_scheduler, opt.lr_policy, **schedule_settings(opt))
    reschedule(optimizers, schedulers_, make, lr=opt.lr, epochs_done=8)
    assert optimizers["G"].param_groups[0]["lr"] == pytest.approx(0.1)
    assert isinstance(schedulers_["G"], schedulers.Plateau)


# --- --norm syncbatch -----------------------------------------------------------------------------------
def test_syncbatch_checkpoints_are_batch_norm_checkpoints(tmp_path):
    sync, batch = tiny_G("syncbatch", use_dropout=False), tiny_G("batch", use_dropout=False)
    assert {k: v.shape for k, v in sync.state_dict().items()} == {k: v.shape for k, v in batch.state_dict().items()}
    load_pix2pix_state_dict(batch, sync.state_dict())
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(sync(x), batch(x))                         # one process: BatchNorm itself


def test_syncbatch_trains_on_one_cpu_process(tmp_path):
    root = pix2pix_folder(tmp_path / "facades", splits=(("train", 2),))
    train.main(["--dataroot", root, "--name", "sync", "--checkpoints_dir", str(tmp_path), *TINY, "--norm",
                "syncbatch", "--n_epochs", "1", "--n_epochs_decay", "0"])
    load_pix2pix_state_dict(tiny_G(), load_weights(tmp_path / "sync" / "latest_net_G.pth"))


def test_syncbatch_across_cpu_processes_is_one_line(monkeypatch):
    monkeypatch.setattr(distributed, "is_distributed", lambda: True)
    with pytest.raises(UserError) as err:
        distributed.prepare_network(tiny_G("syncbatch"), "cpu")
    assert "--norm syncbatch across torchrun processes needs CUDA devices" in one_line(err)


# --- --use_wandb, --wandb_project_name ---------------------------------------------------------------------
class FakeWandb(types.ModuleType):
    """What pix2pix's calls reach: init(project, name, config), run.log, Image, Table, finish."""

    def __init__(self):
        super().__init__("wandb")
        self.run, self.inits, self.logged, self.finished = None, [], [], 0
        fake = self

        class Run:
            def log(self, values):
                fake.logged.append(values)

            def finish(self):
                fake.finished += 1
                fake.run = None

        class Table:
            def __init__(self, columns):
                self.columns, self.rows = columns, []

            def add_data(self, *row):
                self.rows.append(row)

        self.Run, self.Table, self.Image = Run, Table, lambda array: ("image", array.shape)

    def init(self, project, name, config):
        self.inits.append((project, name, config))
        self.run = self.Run()
        return self.run


def test_use_wandb_logs_losses_images_and_a_result_table(tmp_path, monkeypatch):
    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    root = pix2pix_folder(tmp_path / "facades", splits=(("train", 2), ("test", 2)))
    train.main(["--dataroot", root, "--name", "wb", "--checkpoints_dir", str(tmp_path), *TINY, "--use_wandb",
                "--wandb_project_name", "mine", "--n_epochs", "2", "--n_epochs_decay", "0", "--print_freq", "1",
                "--display_freq", "1"])
    (project, name, config), = fake.inits
    assert (project, name, config["lr_policy"], config["max_dataset_size"]) == ("mine", "wb", "linear", "inf")
    losses = [r for r in fake.logged if "G_GAN" in r]
    images = [r for r in fake.logged if "fake_B" in r]
    tables = [r["Result"] for r in fake.logged if "Result" in r]
    assert len(losses) == 4 and set(losses[0]) == {"G_GAN", "G_L1", "D_real", "D_fake"}   # display_id 0 too
    assert len(images) == 4 and list(images[0]) == ["real_A", "fake_B", "real_B"]
    assert [t.rows[0][0] for t in tables] == [1, 2] and tables[0].columns == ["epoch", "real_A", "fake_B", "real_B"]
    assert fake.finished == 1

    test_entry.main(["--dataroot", root, "--name", "wb", "--checkpoints_dir", str(tmp_path), "--results_dir",
                     str(tmp_path / "results"), "--use_wandb", "--num_threads", "0", "--device", "cpu"])
    assert fake.inits[-1][:2] == ("CycleGAN-and-pix2pix", "wb")           # pix2pix's default project
    assert [list(r) for r in fake.logged[-2:]] == [["real_A", "fake_B", "real_B"]] * 2


def test_use_wandb_without_wandb_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)                        # import wandb -> ImportError
    with pytest.raises(UserError) as err:
        Visualizer("x", checkpoints_dir=tmp_path, display_id=0, use_wandb=True)
    assert one_line(err) == "--use_wandb needs the wandb package: pip install wandb (or leave --use_wandb out)"


@pytest.mark.slow
def test_wandb_is_imported_only_when_asked():
    code = ("import sys; sys.argv = ['train.py']; from options import TrainOptions; import train, test; "
            "TrainOptions().parse([]); assert 'wandb' not in sys.modules")
    import subprocess

    from tests.trainer_helpers import REPO
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# --- test.py: pix2pix's defaults, a prepared dataset's fallback ----------------------------------------------
def test_test_py_defaults_are_pix2pix(tmp_path, capsys):
    opt = TestOptions().parse([])
    assert (opt.phase, opt.num_test, opt.aspect_ratio, opt.model, opt.results_dir) == ("test", 50, 1.0, "pix2pix",
                                                                                        "./results")
    root = pix2pix_folder(tmp_path / "facades", splits=(("test", 51),), size=(8, 16))
    saved_run(tmp_path / "ckpt")
    out = test_entry.main(["--dataroot", root, "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                           "--results_dir", str(tmp_path / "results"), "--num_threads", "0", "--device", "cpu"])
    assert out == os.path.join(str(tmp_path / "results"), "run", "test_latest")
    assert len(os.listdir(os.path.join(out, "images"))) == 3 * 50          # --num_test 50


def test_prepared_dataset_without_test_split_uses_all_of_val(tmp_path, capsys):
    layout = make_dataset(tmp_path / "prepared", n_val=3, size=64)
    saved_run(tmp_path / "ckpt")
    out = test_entry.main(["--dataroot", layout.root, "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                           "--results_dir", str(tmp_path / "results"), "--num_threads", "0", "--device", "cpu"])
    assert out.endswith(os.path.join("run", "val_latest"))
    assert len(os.listdir(os.path.join(out, "images"))) == 3 * 3
    said = [line for line in capsys.readouterr().out.splitlines() if "prepared dataset" in line]
    assert said == [f"{layout.root} is a prepared dataset without a labelled test split: synthesizing all frames "
                    "of val, as FCN-score needs (--phase and --num_test choose otherwise)"]
    with pytest.raises(UserError) as err:                                   # typed: taken as typed
        test_entry.main(["--dataroot", layout.root, "--name", "run", "--checkpoints_dir", str(tmp_path / "ckpt"),
                         "--phase", "test", "--num_threads", "0", "--device", "cpu"])
    assert "no 'test' folder in" in one_line(err) and "has val" in one_line(err)
    assert PreparedLayout(layout.root).is_prepared()


def test_fcn_score_reads_the_phase_from_the_results_folder():
    from evaluate import fcn_score

    assert fcn_score.phase_of("results/run/test_latest") == "test"
    assert fcn_score.phase_of("results/run/val_latest/images") == "val"
    assert fcn_score.phase_of("results/run/test_200_iter1000") == "test"
    assert fcn_score.phase_of("results/adam_seed0") == "val"                  # not a <phase>_<epoch> folder
    assert fcn_score.parse_args(["--results_dir", "r", "--dataroot", "d"]).phase is None
