"""Train pix2pix (labels -> photos) with Adam or a trajectory-regularized optimizer.

    python train.py --optimizer tradam                       # SynthCity if no Cityscapes is prepared
    python train.py --dataroot datasets/cityscapes --name city_tradam --optimizer tradam
    python train.py --name city_tradam --continue_train      # resume exactly from latest

The loop reads top to bottom: options -> the run's lock -> data -> networks and optimizers -> model
-> (resume) -> for each epoch, for each batch: one step, logs, display, a stop request (Ctrl-C,
SIGTERM: save and exit), checkpoints; then the LR schedulers. The machinery lives in the library
(pix2pix_tr/) and data/; see docs/train.md for flags, resume semantics and outputs.
"""
import contextlib
import os
import random
import signal
import sys
import time
import warnings

import numpy as np
import torch
from tqdm import tqdm

from data.aligned import AlignedDataset
from data.default import resolve_dataroot
from options import TrainOptions, resolve_device, save_options
from options.base_options import weights_label
from options.train_options import FIXED_ON_RESUME, PER_INVOCATION_KEYS, RESCHEDULE_KEYS
from pix2pix_tr import allocator, atomic, checkpoint, conv_backends, distributed, stopping
from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.model import NonFiniteLossError, Pix2PixModel
from pix2pix_tr.networks import define_D, define_G, describe_networks
from pix2pix_tr.optim import build_optimizer
from pix2pix_tr.schedulers import build_scheduler
from pix2pix_tr.visualizer import Visualizer


class TrainingDiverged(UserError):
    """A loss became NaN or Inf: training stops, the last good checkpoint stays as it was."""


def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    for note in options.notes:                         # pix2pix flags that mean something else here
        print(note)
    allocator.tune_malloc()                            # CPU steps reuse freed memory (docs/speed.md)
    device = distributed.init_distributed(resolve_device(opt.device))  # torchrun: one process per device
    main_process = distributed.is_main_process()       # rank 0 alone logs, saves and displays
    if not main_process:
        sys.stdout = open(os.devnull, "w")              # other ranks stay quiet (errors still reach stderr)
    run_dir = os.path.join(opt.checkpoints_dir, opt.name)
    with checkpoint.run_lock(run_dir) if main_process else contextlib.nullcontext():
        if main_process:
            leftovers = atomic.remove_leftovers(run_dir)
            if leftovers:
                print(f"removed {len(leftovers)} temporary file(s) of a save cut short in {run_dir}")
        return train(opt, options, device, run_dir, main_process)


def train(opt, options, device, run_dir, main_process):
    seed_everything(opt.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = opt.cudnn_benchmark   # timed kernel choice: opt-in

    # --- data: the order of every epoch depends on (seed, epoch) only ---
    dataroot = resolve_dataroot(opt.dataroot)
    dataset = AlignedDataset(dataroot, opt.phase, direction=opt.direction, preprocess=opt.preprocess,
                             load_size=opt.load_size, crop_size=opt.crop_size, no_flip=opt.no_flip,
                             max_dataset_size=opt.max_dataset_size, seed=opt.seed, preload=opt.preload,
                             input_nc=opt.input_nc, output_nc=opt.output_nc)
    sampler = distributed.ShardedSampler(len(dataset), seed=opt.seed, shuffle=not opt.serial_batches)
    worker_seeds = torch.Generator()                   # reseeded per epoch; the global RNG is never drawn
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=opt.batch_size, sampler=sampler, generator=worker_seeds,
        num_workers=min(opt.num_threads, os.cpu_count() or 1), pin_memory=device.type == "cuda",
        worker_init_fn=stopping.ignore_stop_signals)

    # --- networks, optimizers, schedulers, the model ---
    netG = define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, norm=opt.norm,
                    use_dropout=not opt.no_dropout, init_type=opt.init_type, init_gain=opt.init_gain)
    netD = define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, n_layers_D=opt.n_layers_D,
                    norm=opt.norm, init_type=opt.init_type, init_gain=opt.init_gain)
    if opt.verbose:
        print(describe_networks({"G": netG, "D": netD}, verbose=True))
    netG, netD = (prepare_network(net, device, opt) for net in (netG, netD))
    netG, netD = (distributed.wrap_ddp(net, device, sync_bn=opt.sync_bn) for net in (netG, netD))
    optimizers = {"G": make_optimizer(netG, opt), "D": make_optimizer(netD, opt)}
    schedulers = {k: make_scheduler(o, opt) for k, o in optimizers.items()}
    model = Pix2PixModel(netG, netD, optimizers["G"], optimizers["D"], gan_mode=opt.gan_mode,
                         lambda_L1=opt.lambda_L1, device=device, amp=opt.amp, channels_last=opt.channels_last)
    if conv_backends.applies(device, amp=opt.amp, compile=opt.compile):
        plan_convolutions(opt, run_dir, model, main_process, typed="cpu_conv_plan" in options.explicit)

    # --- where to start: epoch, samples of it already consumed, total samples ---
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    epoch, skip, total_iters, rng_state = opt.epoch_count, 0, 0, None
    if opt.continue_train:
        epoch, skip, total_iters, rng_state = resume(run_dir, opt, model, optimizers, schedulers,
                                                     len(dataset), main_process)
    if main_process:
        save_options(opt, run_dir, defaults=options.defaults)   # what runs, typed changes included
    if epoch > last_epoch:
        print(f"{run_dir} is already trained through epoch {last_epoch}; raise --n_epochs_decay "
              "(or --n_epochs) to train longer")
        return model
    print(f"training {opt.name}: {opt.optimizer} on {device}, {len(dataset)} pairs from {dataroot}, "
          f"epochs {epoch}..{last_epoch}; checkpoints in {run_dir}")
    visualizer = Visualizer(opt.name, checkpoints_dir=opt.checkpoints_dir, display_id=opt.display_id,
                            display_server=opt.display_server, display_port=opt.display_port,
                            display_env=opt.display_env, display_winsize=opt.display_winsize,
                            display_ncols=opt.display_ncols, use_html=not opt.no_html,
                            use_wandb=opt.use_wandb, wandb_project=opt.wandb_project_name,
                            wandb_config=vars(opt), log=tqdm.write) if main_process else None

    def save(labels, next_epoch, epoch_iter):
        if not main_process:
            return f"{'/'.join(labels)} (saved by rank 0)"
        state = checkpoint.training_state(
            optimizers=optimizers, schedulers=schedulers, epoch=next_epoch, epoch_iter=epoch_iter,
            total_iters=total_iters, options=vars(opt), nets={"G": netG, "D": netD},
            scaler=getattr(model, "scaler", None))
        checkpoint.save_checkpoint(run_dir, labels, state)
        return f"{'/'.join(labels)} (epoch {next_epoch}, {epoch_iter} samples in)" if epoch_iter else \
               f"{'/'.join(labels)} (end of epoch {next_epoch - 1})"

    if visualizer is not None and opt.continue_train:
        visualizer.restore_loss_plot(len(dataset), epoch=epoch, epoch_iter=skip)   # the line goes on
    last_good = "the latest one, resumed from" if opt.continue_train else "none: no checkpoint was saved yet"
    if rng_state is not None:
        checkpoint.restore_rng_state(rng_state)         # last, after everything that draws while built
    with stopping.GracefulStop() as stop:
        for epoch in range(epoch, last_epoch + 1):
            check_learning_rate(optimizers, epoch)
            sampler.set_epoch(epoch, skip=skip)
            dataset.set_epoch(epoch)
            worker_seeds.manual_seed(distributed.epoch_seed(opt.seed, epoch))
            epoch_iter, skip = skip, 0
            epoch_start = time.time()
            bar = tqdm(loader, desc=f"epoch {epoch}/{last_epoch}", unit="it", dynamic_ncols=True,
                       disable=not main_process)
            data_start = time.time()
            for batch in bar:
                step_start = time.time()
                try:
                    losses = model.train_step(batch)
                except NonFiniteLossError as err:              # nets spoiled: stop, save nothing
                    raise TrainingDiverged(f"epoch {epoch}, sample {epoch_iter + 1}: {err.losses}; training "
                                           f"stopped; last good checkpoint kept: {last_good}; lower --lr "
                                           "or check the data") from None
                total_iters += len(batch["frame_id"])
                epoch_iter += len(batch["frame_id"])
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)

                if total_iters % opt.print_freq == 0:
                    losses = distributed.mean_over_ranks(losses, device)   # all ranks join; rank 0 logs
                if visualizer is not None and total_iters % opt.display_freq == 0:
                    visualizer.display_current_results(model.visuals(), epoch,
                                                       total_iters % opt.update_html_freq == 0)
                if visualizer is not None and total_iters % opt.print_freq == 0:
                    t_comp = (time.time() - step_start) / opt.batch_size
                    visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, step_start - data_start)
                    visualizer.plot_current_losses(epoch, epoch_iter / len(dataset), losses)  # visdom, wandb
                if distributed.any_rank(stop.requested, device):   # every rank stops at this step
                    bar.close()
                    where = save(["latest"], epoch, epoch_iter)
                    print(f"stopped by {stop_name(stop.signum)} after {total_iters} iterations; saved {where}; "
                          f"resume with: python train.py --name {opt.name} --checkpoints_dir "
                          f"{opt.checkpoints_dir} --continue_train")
                    distributed.cleanup()
                    raise SystemExit(128 + (stop.signum or signal.SIGINT))
                if total_iters % opt.save_latest_freq == 0:
                    last_good = save(["latest"] + ([f"iter_{total_iters}"] if opt.save_by_iter else []),
                                     epoch, epoch_iter)
                    tqdm.write(f"saved {last_good} at {total_iters} iterations")
                data_start = time.time()
            bar.close()

            for name, scheduler in schedulers.items():
                before = optimizers[name].param_groups[0]["lr"]
                scheduler.step()
                if name == "G":
                    print(f"learning rate {before:.7f} -> {optimizers[name].param_groups[0]['lr']:.7f}")
            labels = ["latest"] + ([str(epoch)] if epoch % opt.save_epoch_freq == 0 else [])
            last_good = save(labels, epoch + 1, 0)
            print(f"end of epoch {epoch} / {last_epoch}, {time.time() - epoch_start:.0f} s; saved {last_good}")
    if visualizer is not None:
        visualizer.close()
    distributed.cleanup()
    return model


def stop_name(signum):
    return signal.Signals(signum).name if signum else "a signal"


def check_learning_rate(optimizers, epoch):
    """A schedule must never hand the optimizers a negative rate (Adam would ascend the loss)."""
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            if not group["lr"] >= 0:
                raise UserError(f"epoch {epoch}: net{name}'s learning rate is {group['lr']}; check "
                                "--lr_policy, --n_epochs, --n_epochs_decay and --epoch_count")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_network(net, device, opt):
    """On the device before its optimizer is built (TR anchors made there); torch.compile in place,
    so state_dict keys stay pix2pix's. The model applies channels_last to nets and inputs."""
    net = net.to(device)
    if opt.compile:
        net.compile(mode=opt.compile_mode)
    return net


def plan_convolutions(opt, run_dir, model, main_process, typed):
    """CPU fp32: each convolution's forward and backward on oneDNN or ATen's native kernels,
    whichever is faster here (docs/speed.md). Rank 0 decides for all ranks and keeps the plan
    in the run folder, so --continue_train runs the same kernels (an exact resume)."""
    shape = (opt.batch_size, opt.input_nc, opt.crop_size, opt.crop_size)
    gen = torch.Generator().manual_seed(0)
    example_A = torch.randn(shape, generator=gen).to(memory_format=model.memory_format)
    example_AB = torch.randn((opt.batch_size, opt.input_nc + opt.output_nc) + shape[2:],
                             generator=gen).to(memory_format=model.memory_format)
    plans, how, source, error = None, None, None, None
    if main_process:
        try:
            plans, how, source = conv_backends.plan_run(
                opt.cpu_conv_plan, run_dir, {"G": (model.netG, example_A), "D": (model.netD, example_AB)},
                resuming=opt.continue_train, typed=typed)
        except UserError as err:
            error = str(err)                            # every rank stops, none waits for the plan
    plans, how, source, error = distributed.broadcast_object((plans, how, source, error))
    if error:
        raise UserError(error)
    if plans is None:
        return
    for name, net in model.networks().items():
        conv_backends.apply_plan(net, plans[name])
    own = os.path.join(run_dir, conv_backends.PLAN_FILE)
    if main_process and not (source and os.path.abspath(source) == os.path.abspath(own)):
        os.makedirs(run_dir, exist_ok=True)
        conv_backends.save_plan(own, plans)
    print(f"convolutions: {conv_backends.summary(plans)} ({how})")


def make_optimizer(net, opt):
    return build_optimizer(opt.optimizer, net.parameters(), lr=opt.lr, beta1=opt.beta1,
                           tr_lambda=opt.tr_lambda, inner_steps=opt.tr_inner_steps,
                           tr_lambda_mode=opt.tr_lambda_mode, compiled=None,   # from 2M parameters
                           inner_lr_decay=not opt.tr_no_inner_lr_decay)


def make_scheduler(optimizer, opt):
    return build_scheduler(opt.lr_policy, optimizer, n_epochs=opt.n_epochs, n_epochs_decay=opt.n_epochs_decay,
                           epoch_count=opt.epoch_count, lr_decay_iters=opt.lr_decay_iters)


def resume(run_dir, opt, model, optimizers, schedulers, dataset_size, main_process):
    """Load the latest checkpoint; (epoch, samples consumed in it, total iterations, RNG state).

    Flags typed now whose values differ from the checkpoint's are applied (a new LR schedule from
    the current epoch, optimizer hyperparameters, anything read afresh each run) or refused (the
    networks' shape, the optimizer kind, the seed), each said in one line. With --epoch N (or a
    pix2pix run without a state file, or --load_iter N) only the weights are loaded and training
    starts at --epoch_count with fresh optimizers, as pix2pix's --continue_train does."""
    label = weights_label(opt)                         # --epoch, or iter_<N> with --load_iter N
    state = checkpoint.load_training_state(run_dir) if label == "latest" else None
    if state is None:
        if not os.path.isfile(os.path.join(run_dir, f"{label}_net_G.pth")):
            raise UserError(f"--continue_train: no {label}_net_G.pth in {run_dir}; "
                            "check --name/--checkpoints_dir or train without --continue_train")
        model.load_networks(run_dir, label)
        print(f"continuing from {label}_net_G/D.pth at epoch {opt.epoch_count} with fresh optimizer "
              "state (no latest_state.pth): not an exact resume")
        return opt.epoch_count, 0, 0, None
    changes = changed_flags(state["options"], opt)
    fixed = {k: v for k, v in changes.items() if k in FIXED_ON_RESUME}
    if fixed:
        raise UserError(f"--continue_train: {describe(fixed)}: the networks' shape, the optimizer and "
                        "the seed are fixed for a run; drop the flag, or start a new run under another --name")
    checkpoint.restore_training_state(state, optimizers=optimizers, schedulers=schedulers,
                                      nets=model.networks(), scaler=getattr(model, "scaler", None),
                                      run_dir=run_dir)
    epoch, epoch_iter, total_iters = state["epoch"], state["epoch_iter"], state["total_iters"]
    apply_optimizer_flags(opt, changes, optimizers)
    rescheduled = {k: v for k, v in changes.items() if k in RESCHEDULE_KEYS}
    if rescheduled and epoch <= opt.n_epochs + opt.n_epochs_decay:
        reschedule(opt, optimizers, schedulers, epoch, lr_changed="lr" in changes)
        print(f"--continue_train: {describe(rescheduled)}: the learning rate follows the new schedule from "
              f"epoch {epoch} ({optimizers['G'].param_groups[0]['lr']:.7f}); optimizer state kept")
    applied = {k: v for k, v in changes.items() if k not in rescheduled}
    if applied:
        print(f"--continue_train: applying {describe(applied)}")
    if main_process and "nets" in state and not checkpoint.weight_files_match(run_dir, state):
        checkpoint.write_weight_files(run_dir, ["latest"], state["nets"])
        print(f"latest_net_G/D.pth in {run_dir} were from another moment (a save cut short): rewritten "
              "from the checkpoint")
    print(f"resuming {run_dir} exactly: epoch {epoch}, {epoch_iter} samples in, {total_iters} iterations "
          f"so far{samples_run_again(run_dir, epoch, epoch_iter, dataset_size)}")
    return epoch, epoch_iter, total_iters, state["rng"]


def changed_flags(saved, opt):
    """{flag: (checkpoint's value, value now)} for the flags whose value differs from the checkpoint's."""
    return {k: (saved[k], v) for k, v in vars(opt).items()
            if k in saved and k not in PER_INVOCATION_KEYS and saved[k] != v}


def describe(changes):
    return ", ".join(f"--{k} {new} (checkpoint: {old})" for k, (old, new) in changes.items())


def apply_optimizer_flags(opt, changes, optimizers):
    """Put typed optimizer hyperparameters into the restored param groups (which hold the
    checkpoint's): TR's λ, S, λ mode and inner step-size decay, Adam's beta1."""
    tr_keys = {"tr_lambda": ("tr_lambda", opt.tr_lambda), "tr_inner_steps": ("inner_steps", opt.tr_inner_steps),
               "tr_lambda_mode": ("tr_lambda_mode", opt.tr_lambda_mode),
               "tr_no_inner_lr_decay": ("inner_lr_decay", not opt.tr_no_inner_lr_decay)}
    for optimizer in optimizers.values():
        for group in optimizer.param_groups:
            if "beta1" in changes and "betas" in group:
                group["betas"] = (opt.beta1, group["betas"][1])
            for flag, (key, value) in tr_keys.items():
                if flag in changes and key in group:
                    group[key] = value


def reschedule(opt, optimizers, schedulers, epoch, *, lr_changed):
    """New schedulers from the flags as they are now, at `epoch`: each is built fresh and stepped
    through the epochs already trained, so the rate is the one a run started with these flags
    would have now (with the flags of the checkpoint, the restored schedulers are kept instead)."""
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = opt.lr
            if lr_changed and "tr_lr0" in group:
                group["tr_lr0"] = opt.lr               # TR's scaled λ is relative to the run's lr
        scheduler = make_scheduler(optimizer, opt)
        with warnings.catch_warnings():                # replaying epochs: no optimizer.step() between
            warnings.simplefilter("ignore")
            for _ in range(epoch - opt.epoch_count):
                scheduler.step()
        schedulers[name] = scheduler


def samples_run_again(run_dir, epoch, epoch_iter, dataset_size):
    """'; the loss log reached ...' when the run had logged steps past its checkpoint (a kill)."""
    logged = Visualizer.last_logged_position(run_dir)
    if logged is None:
        return ""
    again = (logged[0] - epoch) * dataset_size + logged[1] - epoch_iter
    return (f"; the loss log had reached epoch {logged[0]}, sample {logged[1]}: at least {again} samples "
            "run again") if again > 0 else ""


if __name__ == "__main__":
    run_cli(main)
