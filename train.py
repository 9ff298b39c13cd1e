"""Train pix2pix (labels -> photos) with Adam or a trajectory-regularized optimizer.

    python train.py --optimizer tradam                       # SynthCity if no Cityscapes is prepared
    python train.py --dataroot datasets/cityscapes --name city_tradam --optimizer tradam
    python train.py --name city_tradam --continue_train      # resume exactly from latest

Top to bottom: options -> the run's lock -> data -> networks, optimizers, model -> (resume) -> the loop.
The machinery lives in pix2pix_tr/; docs/train.md has the flags, resume semantics and outputs.
"""
import contextlib
import functools
import os
import sys

import torch
from tqdm import tqdm

from data.aligned import AlignedDataset
from data.default import resolve_dataroot
from options import TrainOptions, resolve_device, save_options
from options.base_options import ARCHITECTURE, FIXED, INVOCATION, SCHEDULE, discriminator, generator, weights_label
from options.train_options import dataset_settings, optimizer_settings, schedule_settings, visualizer_settings
from pix2pix_tr.errors import UserError, out_of_memory, run_cli
from pix2pix_tr.models.networks import describe_networks
from pix2pix_tr.models.pix2pix import NonFiniteLossError, Pix2PixModel
from pix2pix_tr.optim import build_optimizer
from pix2pix_tr.optim.schedulers import build_scheduler, check_learning_rate, step_schedulers
from pix2pix_tr.run import atomic, checkpoint, distributed, stopping
from pix2pix_tr.run.counter import IterationCounter, Position
from pix2pix_tr.run.resume import resume
from pix2pix_tr.viz.visualizer import Visualizer


def main(argv=None):
    options = TrainOptions()
    opt = options.parse(argv)
    for note in options.notes:                         # flags that mean something else here
        print(note)
    device = distributed.init_distributed(resolve_device(opt.device))  # torchrun: one process per device
    main_process = distributed.is_main_process()       # rank 0 alone logs, saves and displays
    if not main_process:
        sys.stdout = open(os.devnull, "w")              # other ranks stay quiet (errors still reach stderr)
    run_dir = os.path.join(opt.checkpoints_dir, opt.name)
    with checkpoint.run_lock(run_dir) if main_process else contextlib.nullcontext():
        if main_process and atomic.remove_leftovers(run_dir):
            print(f"removed the temporary files of a save cut short in {run_dir}")
        return train(opt, options, device, run_dir, main_process)


def train(opt, options, device, run_dir, main_process):
    checkpoint.seed_everything(opt.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = opt.cudnn_benchmark   # timed kernel choice: opt-in

    # --- data: the order of every epoch depends on (seed, epoch) only ---
    dataroot = resolve_dataroot(opt.dataroot)
    dataset = AlignedDataset(dataroot, opt.phase, **dataset_settings(opt))
    sampler = distributed.ShardedSampler(len(dataset), seed=opt.seed, shuffle=not opt.serial_batches)
    worker_seeds = torch.Generator()                   # reseeded per epoch; the global RNG is never drawn
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=opt.batch_size, sampler=sampler, generator=worker_seeds,
        num_workers=min(opt.num_threads, os.cpu_count() or 1), pin_memory=device.type == "cuda",
        worker_init_fn=stopping.ignore_stop_signals)

    # --- networks, optimizers, schedulers, the model; then where to start ---
    netG, netD = generator(opt), discriminator(opt)
    if opt.verbose:
        print(describe_networks({"G": netG, "D": netD}))
    netG, netD = (distributed.prepare_network(net, device, compiled=opt.compile, compile_mode=opt.compile_mode,
                                              sync_bn=opt.sync_bn) for net in (netG, netD))
    optimizers = [build_optimizer(opt.optimizer, net.parameters(), compiled=None, **optimizer_settings(opt))
                  for net in (netG, netD)]
    model = Pix2PixModel(netG, netD, *optimizers, gan_mode=opt.gan_mode, lambda_L1=opt.lambda_L1, device=device,
                         amp=opt.amp, channels_last=opt.channels_last)
    make_scheduler = functools.partial(build_scheduler, opt.lr_policy, **schedule_settings(opt))
    schedulers = {name: make_scheduler(o) for name, o in model.optimizers().items()}
    start, rng_state = Position(opt.epoch_count), None
    if opt.continue_train:
        start, rng_state = resume(
            run_dir, weights_label(opt), options=vars(opt), fixed=options.keys_with_role(ARCHITECTURE, FIXED),
            schedule=options.keys_with_role(SCHEDULE), ignored=options.keys_with_role(INVOCATION), model=model,
            schedulers=schedulers, make_scheduler=make_scheduler, settings=optimizer_settings(opt),
            main_process=main_process)
    if main_process:
        save_options(opt, run_dir, defaults=options.defaults)   # what runs, typed changes included
    counter = IterationCounter(start, last_epoch=opt.n_epochs + opt.n_epochs_decay, dataset_size=len(dataset),
                               print_freq=opt.print_freq, display_freq=opt.display_freq,
                               update_html_freq=opt.update_html_freq, save_latest_freq=opt.save_latest_freq,
                               save_epoch_freq=opt.save_epoch_freq, resumed=opt.continue_train)
    if counter.done:
        print(f"{run_dir} is already trained through epoch {counter.last_epoch}; raise --n_epochs_decay "
              "(or --n_epochs) to train longer")
        return model
    print(f"training {opt.name}: {opt.optimizer} on {device}, {len(dataset)} pairs from {dataroot}, "
          f"epochs {start.epoch}..{counter.last_epoch}; checkpoints in {run_dir}")
    visualizer = Visualizer(opt.name, **visualizer_settings(opt), log=tqdm.write) if main_process else None
    if visualizer is not None and opt.continue_train:
        visualizer.restore_loss_plot(len(dataset), epoch=start.epoch, epoch_iter=start.epoch_iter)

    def diverged(where, err):
        return UserError(f"{where}: {err}: training diverged; the last good checkpoint is kept "
                         f"({counter.describe_last_saved()}); lower --lr or check the data")

    def save(labels, position):
        if main_process:
            try:                                         # weights or BN statistics gone to Inf: save nothing
                state = checkpoint.training_state(model, schedulers, position, vars(opt))
                checkpoint.save_checkpoint(run_dir, labels, state)
            except checkpoint.NonFiniteWeights as err:
                raise diverged(position.describe(), err) from None
        counter.last_saved = position

    # --- the loop ---
    if rng_state is not None:
        checkpoint.restore_rng_state(rng_state)         # last, after everything that draws while built
    with stopping.GracefulStop() as stop:
        for epoch in counter.epochs():
            check_learning_rate(model.optimizers(), epoch)   # a schedule gone below zero: one line
            sampler.set_epoch(epoch, skip=counter.epoch_iter)
            dataset.set_epoch(epoch)
            worker_seeds.manual_seed(distributed.epoch_seed(opt.seed, epoch))
            bar = tqdm(loader, desc=f"epoch {epoch}/{counter.last_epoch}", unit="it", dynamic_ncols=True,
                       disable=not main_process)
            for batch in bar:
                counter.record_step_start()
                try:
                    losses = model.train_step(batch)
                except NonFiniteLossError as err:       # the nets are spoiled: stop, save nothing
                    raise diverged(f"epoch {epoch}, sample {counter.epoch_iter + 1}", err) from None
                except (MemoryError, RuntimeError) as err:
                    if not out_of_memory(err):
                        raise
                    raise UserError(f"out of memory in a training step on {device.type} at --crop_size "
                                    f"{opt.crop_size}, --batch_size {opt.batch_size}: lower them (or --ngf/--ndf)"
                                    ) from None
                counter.record_step_end(len(batch["frame_id"]))
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)

                if visualizer is not None and counter.due("display"):
                    visualizer.display_current_results(model.visuals(), epoch, counter.due("update_html"))
                if counter.due("print"):
                    losses = distributed.mean_over_ranks(losses, device)   # all ranks join; rank 0 logs
                    if visualizer is not None:
                        visualizer.print_current_losses(epoch, counter.epoch_iter, losses, counter.step_time,
                                                        counter.data_time)
                        visualizer.plot_current_losses(epoch, counter.epoch_fraction, losses)   # visdom, wandb
                if distributed.any_rank(stop.requested, device):   # every rank stops at this step
                    bar.close()
                    save(["latest"], counter.position())
                    distributed.cleanup()
                    stop.exit(f"after {counter.total_iters} iterations; saved latest ({counter.position().describe()})"
                              f"; resume with: python train.py --name {opt.name} --checkpoints_dir "
                              f"{opt.checkpoints_dir} --continue_train")
                if counter.due("save_latest"):
                    labels = counter.latest_labels(opt.save_by_iter)
                    save(labels, counter.position())
                    tqdm.write(f"saved {'/'.join(labels)} ({counter.position().describe()}) at "
                               f"{counter.total_iters} iterations")
            bar.close()
            before, after = step_schedulers(schedulers, model.optimizer_G)
            print(f"learning rate {before:.7f} -> {after:.7f}")
            save(counter.epoch_labels(), counter.position(epoch_done=True))
            print(f"end of epoch {epoch} / {counter.last_epoch}; saved {'/'.join(counter.epoch_labels())}")
    if visualizer is not None:
        visualizer.close()
    distributed.cleanup()
    return model


if __name__ == "__main__":
    run_cli(main)
