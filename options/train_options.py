"""Training flags: optimizer (Adam, or the trajectory-regularized TRAdam/TRSGD), LR policy, losses,
display, checkpoints and resume. With --continue_train the run's saved options fill in every flag not
typed (roles: base_options.py), so `python train.py --name X --continue_train` goes on as it started.
"""
import argparse

from options.base_options import (FIXED, INVOCATION, SCHEDULE, BaseOptions, non_negative_float, non_negative_int,
                                  positive_float, positive_int)
from pix2pix_tr.models.losses import GAN_MODES
from pix2pix_tr.optim import OPTIMIZERS, TR_LAMBDA_MODES
from pix2pix_tr.optim.schedulers import SCHEDULERS
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.visdom_display import DEFAULT_PORT

# Flags that are gone, and what to use instead (a typed one is a note, and is not applied).
REMOVED_FLAGS = {
    "cpu_conv_plan": "--cpu_conv_plan is gone (a per-layer CPU kernel choice worth 4-10% of a step, which changed "
                     "the rounding); convolutions run torch's default kernels",
}


def optimizer_settings(opt):
    """The one mapping from the optimizer flags to `build_optimizer`'s keywords (and so to the
    param-group keys a resumed run updates: `optim.registry.apply_settings`)."""
    return dict(lr=opt.lr, beta1=opt.beta1, tr_lambda=opt.tr_lambda, inner_steps=opt.tr_inner_steps,
                tr_lambda_mode=opt.tr_lambda_mode, inner_lr_decay=not opt.tr_no_inner_lr_decay)


def dataset_settings(opt):
    return dict(direction=opt.direction, preprocess=opt.preprocess, load_size=opt.load_size, crop_size=opt.crop_size,
                no_flip=opt.no_flip, max_dataset_size=opt.max_dataset_size, seed=opt.seed, preload=opt.preload,
                input_nc=opt.input_nc, output_nc=opt.output_nc)


def schedule_settings(opt):
    return dict(n_epochs=opt.n_epochs, n_epochs_decay=opt.n_epochs_decay, epoch_count=opt.epoch_count,
                lr_decay_iters=opt.lr_decay_iters)


def visualizer_settings(opt):
    return dict(checkpoints_dir=opt.checkpoints_dir, display_id=opt.display_id, display_server=opt.display_server,
                display_port=opt.display_port, display_env=opt.display_env, display_winsize=opt.display_winsize,
                display_ncols=opt.display_ncols, use_html=not opt.no_html, use_wandb=opt.use_wandb,
                wandb_project=opt.wandb_project_name, wandb_config=vars(opt))


class TrainOptions(BaseOptions):
    description = "Train pix2pix (labels -> photos) with Adam or a trajectory-regularized optimizer."

    def initialize(self, parser):
        super().initialize(parser)
        # --- optimization ---
        parser.add_argument("--optimizer", role=FIXED, default="adam", choices=OPTIMIZERS,
                            help="adam = pix2pix's baseline; tradam/trsgd = trajectory-regularized")
        parser.add_argument("--lr", role=SCHEDULE, type=positive_float, default=0.0002, help="initial learning rate")
        parser.add_argument("--beta1", type=float, default=0.5, help="Adam's beta1 (momentum for sgd)")
        parser.add_argument("--tr_lambda", type=non_negative_float, default=0.1,
                            help="TR: weight of the proximal term lambda*||w - w_t||^2")
        parser.add_argument("--tr_inner_steps", type=positive_int, default=10,
                            help="TR: S, steps between anchor refreshes")
        parser.add_argument("--tr_lambda_mode", default="scaled", choices=list(TR_LAMBDA_MODES),
                            help="TR: the proximal weight at each step, " + ", ".join(
                                f"{mode}: {rule}" for mode, rule in TR_LAMBDA_MODES.items()) + " (docs/optim.md)")
        parser.add_argument("--tr_no_inner_lr_decay", action="store_true",
                            help="TR ablation: keep lr (not lr/(k+1)) inside a cycle: proximal term only")
        parser.add_argument("--lr_policy", role=SCHEDULE, default="linear", choices=list(SCHEDULERS),
                            help="linear = constant for --n_epochs, then to 0 over --n_epochs_decay")
        parser.add_argument("--lr_decay_iters", role=SCHEDULE, type=positive_int, default=50,
                            help="step policy: multiply by 0.1 every this many epochs")
        parser.add_argument("--n_epochs", role=SCHEDULE, type=int, default=100,
                            help="epochs at the initial learning rate")
        parser.add_argument("--n_epochs_decay", role=SCHEDULE, type=int, default=100,
                            help="epochs of linear decay to zero")
        parser.add_argument("--epoch_count", role=FIXED, type=positive_int, default=1,
                            help="first epoch number (a pix2pix run continued without a state file)")
        # --- losses ---
        parser.add_argument("--gan_mode", default="vanilla", choices=list(GAN_MODES))
        parser.add_argument("--lambda_L1", type=non_negative_float, default=100.0, help="weight of the L1 loss")
        parser.add_argument("--pool_size", type=non_negative_int, default=0,
                            help="pix2pix's image pool; its pix2pix model keeps none (0), and neither does this one")
        # --- display and logs ---
        parser.add_argument("--display_freq", type=positive_int, default=400, help="show images every N iterations")
        parser.add_argument("--update_html_freq", type=positive_int, default=1000,
                            help="save images to the HTML page every N iterations")
        parser.add_argument("--print_freq", type=positive_int, default=100,
                            help="log and plot losses every N iterations")
        parser.add_argument("--display_id", type=int, default=1, help="visdom window id; 0 = no visdom")
        parser.add_argument("--display_ncols", type=int, default=0,
                            help="visdom: N > 0 shows all images in one pane, N a row (pix2pix's default 4); "
                                 "0 = one captioned pane per image")
        parser.add_argument("--display_server", default="http://localhost", help="visdom server")
        parser.add_argument("--display_port", type=int, default=DEFAULT_PORT, help="visdom port")
        parser.add_argument("--display_env", default=None, help="visdom environment (default: the run's name)")
        parser.add_argument("--no_html", action="store_true", help="no checkpoints/<name>/web/ pages")
        # --- checkpoints ---
        parser.add_argument("--save_latest_freq", type=positive_int, default=5000,
                            help="save latest (weights + training state) every N iterations")
        parser.add_argument("--save_epoch_freq", type=positive_int, default=5, help="save <epoch>_net_* every N epochs")
        parser.add_argument("--save_by_iter", action="store_true",
                            help="every --save_latest_freq iterations also keep iter_<N>_net_G/D.pth "
                                 "(load them with --load_iter N)")
        parser.add_argument("--continue_train", role=INVOCATION, action="store_true",
                            help="resume checkpoints/<name>/ from latest, exactly")
        parser.add_argument("--phase", default="train", help="split to train on")
        parser.add_argument("--sync_bn", action="store_true",
                            help="under torchrun on GPUs: BatchNorm statistics over all ranks (SyncBatchNorm)")
        # --- speed ---
        for flag in REMOVED_FLAGS:
            parser.add_argument(f"--{flag}", help=argparse.SUPPRESS)
        parser.add_argument("--cudnn_benchmark", action="store_true",
                            help="CUDA: let cuDNN time its convolution algorithms and take the fastest "
                                 "(faster; timings decide the arithmetic, so runs may differ)")
        return parser

    default_name = "pix2pix_{optimizer}"

    def complete(self, opt):
        super().complete(opt)                          # --suffix: before the run's folder is read
        if opt.continue_train:
            self.take_saved(opt, [key for key in vars(opt) if self.roles.get(key) != INVOCATION])
        for flag, note in REMOVED_FLAGS.items():
            if getattr(opt, flag) is not None:
                self.notes.append(note)
            delattr(opt, flag)
        return opt

    def validate(self, opt):
        super().validate(opt)
        if opt.model != "pix2pix":
            raise UserError(f"--model {opt.model} is test.py's (a trained generator alone, nothing to train); "
                            "train with --model pix2pix")
        if opt.dataset_mode != "aligned":
            raise UserError(f"--dataset_mode {opt.dataset_mode}: single images have no target to learn; "
                            "train on aligned A|B pairs (--dataset_mode aligned)")
        if opt.pool_size:
            self.notes.append(f"--pool_size {opt.pool_size}: pix2pix's pix2pix model keeps no image pool (its "
                              "pool serves CycleGAN; pix2pix sets 0 and ignores the flag), so D judges each "
                              "step's own fake, as there")
        if opt.n_epochs < 0 or opt.n_epochs_decay < 0 or opt.n_epochs + opt.n_epochs_decay < 1:
            raise UserError(f"--n_epochs {opt.n_epochs} --n_epochs_decay {opt.n_epochs_decay}: "
                            "both must be >= 0 and train at least one epoch")
        if opt.epoch_count > opt.n_epochs + opt.n_epochs_decay:
            raise UserError(f"--epoch_count {opt.epoch_count} is past the last epoch "
                            f"{opt.n_epochs + opt.n_epochs_decay} (= --n_epochs + --n_epochs_decay)")
        if opt.optimizer in ("adam", "tradam") and not 0 <= opt.beta1 < 1:
            raise UserError(f"--beta1 {opt.beta1}: must be in [0, 1)")
        return opt
