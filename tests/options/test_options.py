"""Options: pix2pix's names and defaults, each flag defined once, saved and reloaded, saved values
filling in untyped flags (test.py, --continue_train), bad values as one-line errors."""
import pytest
import torch

from options import TestOptions, TrainOptions, save_options, saved_options
from options.base_options import BaseOptions
from pix2pix_tr.errors import UserError

PIX2PIX_DEFAULTS = dict(netG="unet_256", netD="basic", ngf=64, ndf=64, norm="batch", batch_size=1,
                        load_size=286, crop_size=256, n_epochs=100, n_epochs_decay=100, lr=0.0002,
                        beta1=0.5, gan_mode="vanilla", lambda_L1=100.0, lr_policy="linear",
                        display_freq=400, print_freq=100, save_latest_freq=5000, save_epoch_freq=5,
                        direction="AtoB", preprocess="resize_and_crop", epoch_count=1, epoch="latest",
                        n_layers_D=3, init_type="normal", init_gain=0.02, input_nc=3, output_nc=3,
                        display_port=8097, display_id=1, display_winsize=256, lr_decay_iters=50,
                        checkpoints_dir="./checkpoints", phase="train", num_threads=4,
                        no_flip=False, no_dropout=False, continue_train=False, no_html=False)
OURS = dict(optimizer="adam", tr_lambda=0.1, tr_inner_steps=10, tr_lambda_mode="scaled",
            device="auto", seed=0, amp=False, channels_last=False, compile=False, preload=False)


def test_train_defaults_are_pix2pix_plus_ours():
    opt = TrainOptions().parse([])
    assert {k: getattr(opt, k) for k in PIX2PIX_DEFAULTS} == PIX2PIX_DEFAULTS
    assert {k: getattr(opt, k) for k in OURS} == OURS
    assert opt.max_dataset_size == float("inf") and opt.dataroot is None and opt.name == "pix2pix_adam"


def test_each_flag_is_defined_once_across_base_train_test():
    def flags(parser):
        return [s for a in parser._actions for s in a.option_strings if s.startswith("--") and s != "--help"]

    base, train, test = (set(flags(cls().build_parser())) for cls in (BaseOptions, TrainOptions, TestOptions))
    assert base <= train and base <= test
    assert not (train - base) & (test - base) - {"--phase"}   # --phase: train vs test defaults
    assert TestOptions().parse([]).phase == "test"            # pix2pix's


def test_options_saved_as_text_and_json_and_reloaded(tmp_path):
    options = TrainOptions()
    opt = options.parse(["--optimizer", "tradam", "--ngf", "8", "--name", "x"])
    save_options(opt, tmp_path, defaults=options.defaults)
    assert saved_options(tmp_path) == vars(opt)
    text = (tmp_path / "train_opt.txt").read_text()
    assert "optimizer: tradam" in text
    assert "[default: 64]" in text and "[default: adam]" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train_opt.json", "train_opt.txt"]   # no temp files left


def test_continue_train_takes_untyped_flags_from_the_saved_run(tmp_path):
    first = TrainOptions().parse(["--name", "run", "--checkpoints_dir", str(tmp_path), "--optimizer", "trsgd",
                                  "--lr", "0.01", "--ngf", "8", "--n_epochs", "3", "--device", "cpu"])
    save_options(first, tmp_path / "run")
    again = TrainOptions().parse(["--name", "run", "--checkpoints_dir", str(tmp_path), "--continue_train",
                                  "--n_epochs", "5"])
    assert (again.optimizer, again.lr, again.ngf, again.n_epochs) == ("trsgd", 0.01, 8, 5)
    assert again.continue_train and again.device == "cpu" and again.name == "run"


def test_test_options_take_architecture_from_the_run(tmp_path):
    trained = TrainOptions().parse(["--name", "run", "--netG", "unet_128", "--ngf", "8", "--crop_size", "128",
                                    "--load_size", "144", "--norm", "instance", "--no_dropout"])
    save_options(trained, tmp_path / "run")
    opt = TestOptions().parse(["--name", "run", "--checkpoints_dir", str(tmp_path)])
    assert (opt.netG, opt.ngf, opt.norm, opt.no_dropout, opt.crop_size) == ("unet_128", 8, "instance", True, 128)
    assert opt.load_size == 128 and opt.no_flip                # pix2pix's test: no random crop or flip
    typed = TestOptions().parse(["--name", "run", "--checkpoints_dir", str(tmp_path), "--ngf", "16"])
    assert typed.ngf == 16


@pytest.mark.parametrize("argv, culprit", [
    (["--optimizer", "lion"], "--optimizer"),
    (["--tr_lambda_mode", "auto"], "--tr_lambda_mode"),
    (["--lr", "-1"], "--lr"),
    (["--tr_lambda", "-0.1"], "--tr_lambda"),
    (["--batch_size", "0"], "--batch_size"),
    (["--crop_size", "300"], "--crop_size"),                  # > load_size 286
    (["--netG", "unet_128", "--crop_size", "96", "--load_size", "96"], "--crop_size"),
    (["--device", "tpu"], "--device"),
    (["--n_epochs", "0", "--n_epochs_decay", "0"], "--n_epochs"),
])
def test_bad_values_raise_one_line_user_errors(argv, culprit):
    with pytest.raises(UserError) as err:
        TrainOptions().parse(argv)
    assert culprit in str(err.value) and "\n" not in str(err.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_device_without_gpu_is_an_error():
    with pytest.raises(UserError, match="--device cuda"):
        TrainOptions().parse(["--device", "cuda"])


@pytest.mark.parametrize("options", [TrainOptions, TestOptions])
@pytest.mark.parametrize("flag, value", [("--phase", "../../outside"), ("--phase", "/abs"), ("--epoch", "../x"),
                                         ("--epoch", ".."), ("--phase", "a\\..\\b")])
def test_flags_that_become_file_names_cannot_lead_out_of_their_folder(options, flag, value):
    with pytest.raises(UserError, match=f"{flag} .*: must be a plain name"):
        options().parse([flag, value])


def test_model_suffix_is_a_plain_name_too():
    with pytest.raises(UserError, match="--model_suffix '/../x': must be a plain name"):
        TestOptions().parse(["--model_suffix", "/../x"])
    assert TestOptions().parse(["--model_suffix", "_A", "--epoch", "200"]).epoch == "200"
