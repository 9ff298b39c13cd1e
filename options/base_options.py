"""Flags shared by train.py and test.py (data, networks, device), parsing, validation, saving.

`BaseOptions().parse(argv)` returns an argparse Namespace; a bad value ends in one UserError line
(argparse's own messages too). A run's options are saved in its checkpoint (what --continue_train and
test.py read) and, at its start, as train_opt.txt (pix2pix's table) and train_opt.json (for a run left
with weights alone).
"""
import argparse
import json
import os

import torch

from data.aligned import DIRECTIONS, PREPROCESS_MODES
from data.modes import DATASET_MODES
from pix2pix_tr.errors import UserError
from pix2pix_tr.models.networks import (DISCRIMINATORS, GENERATORS, INITIALIZERS, NORMS, define_D, define_G,
                                        input_multiple)
from pix2pix_tr.models.pix2pix import MODELS
from pix2pix_tr.run import atomic, checkpoint
from pix2pix_tr.viz.wandb_run import WANDB_PROJECT

OPTIONS_JSON = "train_opt.json"
OPTIONS_TEXT = "train_opt.txt"
# A flag that a saved run matters to carries its role where it is defined: add_argument(..., role=...).
# One without a role is read afresh by every run; on --continue_train an untyped one keeps the run's value.
ARCHITECTURE = "architecture"   # the networks' shape: test.py takes it from the run; fixed on --continue_train
DATA = "data"                   # how images are sized: test.py takes it from the run
FIXED = "fixed"                 # fixed for a run (optimizer kind, seed, first epoch): refused on --continue_train
SCHEDULE = "schedule"           # a new value on --continue_train starts a new LR schedule from the current epoch
INVOCATION = "invocation"       # says which run and which weights: never taken from the saved run


# pix2pix's other --model and --dataset_mode choices: what to use instead, in one line each.
OTHER_MODELS = {
    "cycle_gan": "is not carried over (CycleGAN is unpaired; this project trains pix2pix on aligned pairs): "
                 "use junyanz/pytorch-CycleGAN-and-pix2pix for it",
    "colorization": "is not carried over (pix2pix's Lab colorization): train gray -> color with --model pix2pix "
                    "--input_nc 1 on aligned gray|color pairs",
    "template": "is pix2pix's starting point for new models, not a model: use --model pix2pix",
}
OTHER_DATASET_MODES = {
    "unaligned": "is not carried over (CycleGAN's trainA/ trainB/): pix2pix trains on aligned pairs "
                 "(--dataset_mode aligned); single images: --dataset_mode single",
    "colorization": "is not carried over (pix2pix's Lab colorization): use --dataset_mode aligned with "
                    "gray|color pairs and --input_nc 1",
    "template": "is pix2pix's starting point for new datasets, not a dataset: use --dataset_mode aligned",
}
# The dataset a --model reads unless --dataset_mode says otherwise (pix2pix's model option setters).
MODEL_DATASET_MODES = {"pix2pix": "aligned", "test": "single"}


class OptionParser(argparse.ArgumentParser):
    """argparse whose errors are one-line UserErrors instead of usage + exit, and whose flags may
    carry a role (`add_argument(..., role=ARCHITECTURE)`)."""

    def add_argument(self, *args, role=None, **kwargs):
        action = super().add_argument(*args, **kwargs)
        action.role = role
        return action

    def roles(self):
        return {a.dest: a.role for a in self._actions if getattr(a, "role", None)}

    def error(self, message):
        raise UserError(message)


def _at_least(cast, low, strict=False):
    """An argparse type: `cast(text)`, at least `low` (above it if `strict`)."""
    def parse(text):
        value = cast(text)
        if not (value > low if strict else value >= low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low}, got {text}")
        return value
    parse.__name__ = cast.__name__                       # argparse's "invalid int value: 'x'"
    return parse


positive_int, non_negative_int = _at_least(int, 1), _at_least(int, 0)
positive_float, non_negative_float = _at_least(float, 0, strict=True), _at_least(float, 0)


def refusing(others):
    """An argparse type that refuses a name in `others` with its line (`choices` refuses other unknown names)."""
    def name(text):
        if text in others:
            raise argparse.ArgumentTypeError(f"{text} {others[text]}")
        return text
    return name


def generator(opt):
    """pix2pix's G as the flags describe it (train.py and test.py build it the same way)."""
    return define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, norm=opt.norm, use_dropout=not opt.no_dropout,
                    init_type=opt.init_type, init_gain=opt.init_gain)


def discriminator(opt):
    """pix2pix's D: it judges input and output concatenated on channels."""
    return define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, n_layers_D=opt.n_layers_D, norm=opt.norm,
                    init_type=opt.init_type, init_gain=opt.init_gain)


def weights_label(opt):
    """Which saved weights to load: iter_<N> with --load_iter N > 0 (pix2pix's --save_by_iter files),
    else --epoch (latest or an epoch number)."""
    return f"iter_{opt.load_iter}" if opt.load_iter > 0 else str(opt.epoch)


def resolve_device(name):
    """'auto' -> 'cuda' if a GPU is usable else 'cpu'; 'cuda[:N]' checked against the machine."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, colon, index = name.partition(":")
    if name != "cpu" and (kind != "cuda" or colon and not index.isdigit()):
        raise UserError(f"--device {name}: expected auto, cpu, cuda or cuda:N with N a GPU index")
    if kind == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is usable here; use --device cpu or auto")
    if index and int(index) >= torch.cuda.device_count():
        raise UserError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) here")
    return name


class BaseOptions:
    """Flags both entry points use. Subclasses add theirs in `initialize` and check in `validate`."""

    description = "pix2pix_tr"

    def initialize(self, parser):
        # --- pix2pix's model and dataset choice ---
        parser.add_argument("--model", default="pix2pix", choices=list(MODELS), type=refusing(OTHER_MODELS),
                            help="pix2pix = G and D (train.py; test.py: input, output, target); "
                                 "test = G alone on single images (test.py)")
        parser.add_argument("--dataset_mode", default=None, choices=list(DATASET_MODES),
                            type=refusing(OTHER_DATASET_MODES),
                            help="aligned = A|B pairs in <dataroot>/<phase>/; single = images of a folder or "
                                 "one file (test.py); default: --model pix2pix aligned, test single")
        # --- data ---
        parser.add_argument("--dataroot", default=None,
                            help="prepared dataset folder (train/ val/ of A|B pairs); default: "
                                 "datasets/cityscapes if prepared, else SynthCity generated under datasets/")
        parser.add_argument("--direction", role=ARCHITECTURE, default="AtoB", choices=DIRECTIONS,
                            help="AtoB = labels -> photos in the prepared layout")
        parser.add_argument("--preprocess", role=DATA, default="resize_and_crop", choices=PREPROCESS_MODES,
                            help="scaling and cropping of images at load time")
        parser.add_argument("--load_size", type=positive_int, default=286, help="scale images to this size")
        parser.add_argument("--crop_size", role=DATA, type=positive_int, default=256, help="then crop to this size")
        parser.add_argument("--no_flip", action="store_true", help="no random horizontal flip")
        parser.add_argument("--max_dataset_size", type=_at_least(float, 1), default=float("inf"),
                            help="use at most this many pairs")
        parser.add_argument("--batch_size", type=positive_int, default=1, help="input batch size")
        parser.add_argument("--serial_batches", action="store_true", help="take pairs in order instead of shuffling")
        parser.add_argument("--num_threads", type=non_negative_int, default=4, help="data loader worker processes")
        parser.add_argument("--preload", action="store_true",
                            help="decode every pair once into memory (when the dataset fits)")
        # --- run ---
        parser.add_argument("--name", role=INVOCATION, default=None,
                            help="run name: checkpoints/<name>/ (default: pix2pix_<optimizer>)")
        parser.add_argument("--checkpoints_dir", role=INVOCATION, default="./checkpoints", help="where runs are saved")
        parser.add_argument("--epoch", role=INVOCATION, default="latest",
                            help="which saved weights to load: latest or an epoch number")
        parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
        parser.add_argument("--gpu_ids", role=INVOCATION, default=None,
                            help="pix2pix's device flag: -1 = CPU (--device cpu), N = GPU N (--device cuda:N); "
                                 "several GPUs: torchrun --nproc_per_node N (one process per GPU)")
        parser.add_argument("--load_iter", role=INVOCATION, type=non_negative_int, default=0,
                            help="if > 0, load iter_<load_iter>_net_*.pth (saved with --save_by_iter) "
                                 "instead of --epoch's")
        parser.add_argument("--suffix", role=INVOCATION, default="",
                            help="appended to --name as _<suffix>, formatted with the options, "
                                 "e.g. {netG}_size{load_size}")
        parser.add_argument("--verbose", action="store_true", help="print the networks' architecture")
        parser.add_argument("--use_wandb", action="store_true",
                            help="log losses and images to Weights & Biases (pip install wandb; "
                                 "WANDB_MODE=offline keeps the run on disk)")
        parser.add_argument("--wandb_project_name", default=WANDB_PROJECT, help="the wandb project (pix2pix's)")
        parser.add_argument("--seed", role=FIXED, type=int, default=0, help="seed of every random number generator")
        # --- networks ---
        parser.add_argument("--input_nc", role=ARCHITECTURE, type=positive_int, default=3,
                            help="channels of input images")
        parser.add_argument("--output_nc", role=ARCHITECTURE, type=positive_int, default=3,
                            help="channels of output images")
        parser.add_argument("--ngf", role=ARCHITECTURE, type=positive_int, default=64,
                            help="generator filters in the last conv layer")
        parser.add_argument("--ndf", role=ARCHITECTURE, type=positive_int, default=64,
                            help="discriminator filters in the first conv layer")
        parser.add_argument("--netG", role=ARCHITECTURE, default="unet_256", choices=list(GENERATORS))
        parser.add_argument("--netD", role=ARCHITECTURE, default="basic", choices=list(DISCRIMINATORS),
                            help="basic = 70x70 PatchGAN")
        parser.add_argument("--n_layers_D", role=ARCHITECTURE, type=positive_int, default=3,
                            help="used if --netD n_layers")
        parser.add_argument("--norm", role=ARCHITECTURE, default="batch", choices=list(NORMS))
        parser.add_argument("--init_type", role=ARCHITECTURE, default="normal", choices=list(INITIALIZERS))
        parser.add_argument("--init_gain", role=ARCHITECTURE, type=positive_float, default=0.02,
                            help="scale of the initialisation")
        parser.add_argument("--no_dropout", role=ARCHITECTURE, action="store_true", help="no dropout in the generator")
        parser.add_argument("--display_winsize", type=positive_int, default=256,
                            help="display size of images in visdom and HTML")
        # --- speed ---
        parser.add_argument("--amp", action="store_true",
                            help="mixed precision: bf16 autocast (CUDA, and CPUs with bf16 kernels)")
        parser.add_argument("--channels_last", action="store_true", help="channels_last memory format")
        parser.add_argument("--compile", action="store_true", help="torch.compile the networks")
        parser.add_argument("--compile_mode", default=None,
                            choices=["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
                            help="torch.compile mode with --compile; reduce-overhead replays CUDA graphs "
                                 "(the fastest at batch 1 on a GPU)")
        return parser

    def build_parser(self):
        parser = OptionParser(description=self.description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        return self.initialize(parser)

    def keys_with_role(self, *roles):
        return [key for key, role in self.roles.items() if role in roles]

    def parse(self, argv=None):
        """Parse `argv` (None = sys.argv[1:]), validate, and return the Namespace. `self.explicit`: the
        flags the user typed (saved options fill in only the others)."""
        parser, typed = self.build_parser(), self.build_parser()
        opt = parser.parse_args(argv)
        for action in typed._actions:                    # parsed again without defaults: the typed flags
            action.default, action.required = argparse.SUPPRESS, False
        self.explicit = set(vars(typed.parse_args(argv)))
        self.defaults = vars(parser.parse_args([]))
        self.roles = parser.roles()
        self.notes = []                      # one-line remarks the entry point prints
        opt = self.complete(opt)
        if "gpu_ids" in self.explicit:
            self.apply_gpu_ids(opt)
        return self.validate(opt)

    default_name = "pix2pix_adam"             # --name when none is typed, formatted with the options

    def complete(self, opt):
        """Values that depend on others: the --model's dataset mode, and --name with --suffix appended
        (formatted with the options, as pix2pix does). Subclasses go on with the saved run's."""
        if opt.dataset_mode is None:
            opt.dataset_mode = MODEL_DATASET_MODES[opt.model]
        if opt.name is None:
            opt.name = self.default_name.format(**vars(opt))
        if opt.suffix:
            try:
                suffix = opt.suffix.format(**vars(opt))
            except (KeyError, IndexError, ValueError) as err:
                raise UserError(f"--suffix {opt.suffix!r}: {err!r} is not an option to format with; "
                                "name options in braces, e.g. {netG}_size{load_size}") from None
            opt.name = f"{opt.name}_{suffix}"
        return opt

    several_gpus = ("one process per GPU here: torchrun --nproc_per_node {n} with the same flags, "
                    "CUDA_VISIBLE_DEVICES={ids} choosing the GPUs (docs/speed.md)")

    def apply_gpu_ids(self, opt):
        """pix2pix's --gpu_ids, typed: -1 -> --device cpu, N -> cuda:N (a typed --device must agree);
        several GPUs are torchrun here, not pix2pix's DataParallel."""
        text = str(opt.gpu_ids)
        try:
            ids = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            ids = []
        if not ids:
            raise UserError(f"--gpu_ids {text}: expected -1 (CPU) or a GPU index such as 0")
        gpus = [i for i in ids if i >= 0]
        if len(gpus) > 1:
            raise UserError(f"--gpu_ids {text}: {self.several_gpus.format(n=len(gpus), ids=','.join(map(str, gpus)))}")
        device = f"cuda:{gpus[0]}" if gpus else "cpu"
        if device != "cpu" and not torch.cuda.is_available():
            raise UserError(f"--gpu_ids {opt.gpu_ids}: no CUDA GPU is usable here; --gpu_ids -1 runs on "
                            "the CPU (pix2pix's tip), as does --device cpu")
        if "device" in self.explicit and opt.device != device and not (opt.device == "cuda" and device == "cuda:0"):
            raise UserError(f"--gpu_ids {opt.gpu_ids} means --device {device}, but --device {opt.device} was "
                            "given too; keep one of them")
        opt.device = device

    def take_saved(self, opt, keys):
        """The run's saved options (None if it saved none), `keys` taken from them wherever the user did
        not type the flag."""
        saved = saved_options(os.path.join(opt.checkpoints_dir, opt.name))
        for key in keys if saved is not None else ():
            if key in saved and key not in self.explicit:
                setattr(opt, key, saved[key])
        return saved

    def validate(self, opt):
        """Checks across flags; each failure is one line naming the flag and the fix."""
        if opt.preprocess in ("resize_and_crop", "scale_width_and_crop") and opt.crop_size > opt.load_size:
            raise UserError(f"--crop_size {opt.crop_size} is larger than --load_size {opt.load_size}")
        step = input_multiple(opt.netG)
        if opt.crop_size % step:
            fitting = [g for g in GENERATORS if g[:4] == opt.netG[:4] and opt.crop_size % input_multiple(g) == 0]
            raise UserError(f"--netG {opt.netG} needs --crop_size a multiple of {step}, got {opt.crop_size}"
                            + (f"; use --netG {fitting[0]}" if fitting else ""))
        if opt.preprocess == "scale_width" and opt.load_size % step:   # no crop: the width stays load_size
            raise UserError(f"--preprocess scale_width --load_size {opt.load_size}: images are scaled to "
                            f"width {opt.load_size}, but --netG {opt.netG} needs a multiple of {step}; use "
                            f"--load_size {max(step, round(opt.load_size / step) * step)} or --preprocess "
                            "scale_width_and_crop")
        parts = opt.name.replace("\\", "/").split("/")     # a folder under --checkpoints_dir and --results_dir
        if not opt.name.strip() or os.path.isabs(opt.name) or ".." in parts or all(p in ("", ".") for p in parts):
            raise UserError(f"--name {opt.name!r}: a run name must be a folder name inside --checkpoints_dir "
                            "(letters, digits, -, _; no '..', no absolute path)")
        for flag in ("phase", "epoch", "model_suffix"):     # each becomes one file or folder name
            value = getattr(opt, flag, "")
            if value and (value in (".", "..") or "/" in value or "\\" in value or "\0" in value):
                raise UserError(f"--{flag} {value!r}: must be a plain name (no '/', '\\' or '..'), as it becomes "
                                "part of a file or folder name")
        if opt.compile_mode and not opt.compile:
            raise UserError(f"--compile_mode {opt.compile_mode} needs --compile")
        resolve_device(opt.device)
        return opt



def save_options(opt, folder, defaults=None):
    """Write train_opt.txt (pix2pix's table, defaults noted) and train_opt.json, atomically."""
    values = dict(sorted(vars(opt).items()))
    lines = ["----------------- Options ---------------"]
    for key, value in values.items():
        note = f"\t[default: {defaults[key]}]" if defaults and key in defaults and defaults[key] != value else ""
        lines.append(f"{key:>25}: {str(value):<30}{note}")
    lines.append("----------------- End -------------------")
    atomic.write_text(os.path.join(folder, OPTIONS_TEXT), "\n".join(lines) + "\n")
    atomic.write_json(os.path.join(folder, OPTIONS_JSON), values)


def saved_options(run_dir):
    """The options a run was saved with: its checkpoint's, or for a run with weights alone (its
    state deleted) its train_opt.json; None for a run that saved neither (pix2pix's)."""
    state = checkpoint.load_training_state(run_dir, mmap=True)
    if state is not None:
        return state["options"]
    path = os.path.join(run_dir, OPTIONS_JSON)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as err:
        raise UserError(f"{path} is not valid JSON ({err}); delete it or pass the options on the "
                        "command line") from None
