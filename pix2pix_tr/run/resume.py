"""--continue_train: load a run's checkpoint into the model just built and reconcile the flags typed now
with the checkpoint's: a change is refused (`fixed`), starts a new LR schedule from the current epoch
(`schedule`) or simply applies, each said in one line. Without a state file (a pix2pix run, --epoch N,
--load_iter N) only the weights load, with fresh optimizers at --epoch_count, as in pix2pix.
"""
import os
import warnings

from pix2pix_tr.optim.registry import apply_settings
from pix2pix_tr.run import checkpoint
from pix2pix_tr.run.counter import Position
from pix2pix_tr.errors import UserError


def resume(run_dir, label, *, options, fixed, schedule, ignored, model, schedulers, make_scheduler,
           settings, main_process=True, log=print):
    """Load checkpoint `label` of `run_dir` into `model` and `schedulers`; (Position, RNG state or None).
    `options`: the flags now (a dict); `fixed`, `schedule`, `ignored`: flag names by how a change is
    handled; `make_scheduler(optimizer)`: a scheduler from the flags now; `settings`: `build_optimizer`'s
    keywords now."""
    state = checkpoint.load_training_state(run_dir) if label == "latest" else None
    if state is None:
        return Position(options["epoch_count"]), _load_weights_alone(run_dir, label, model, options, log)
    changes = {k: (state["options"][k], v) for k, v in options.items()
               if k in state["options"] and k not in ignored and state["options"][k] != v}
    refused = {k: v for k, v in changes.items() if k in fixed}
    if refused:
        raise UserError(f"--continue_train: {describe(refused)}: the networks' shape, the optimizer and the "
                        "seed are fixed for a run; drop the flag, or start a new run under another --name")
    checkpoint.restore_training_state(state, model, schedulers)
    for optimizer in model.optimizers().values():
        apply_settings(optimizer, **settings, lr0=settings["lr"] if "lr" in changes else None)
    start = Position(state["epoch"], state["epoch_iter"], state["total_iters"])
    rescheduled = {k: v for k, v in changes.items() if k in schedule}
    if rescheduled and start.epoch <= options["n_epochs"] + options["n_epochs_decay"]:
        reschedule(model.optimizers(), schedulers, make_scheduler, lr=options["lr"],
                   epochs_done=start.epoch - options["epoch_count"])
        log(f"--continue_train: {describe(rescheduled)}: the learning rate follows the new schedule from epoch "
            f"{start.epoch} ({model.optimizer_G.param_groups[0]['lr']:.7f}); optimizer state kept")
    applied = {k: v for k, v in changes.items() if k not in rescheduled}
    if applied:
        log(f"--continue_train: applying {describe(applied)}")
    if main_process and not checkpoint.weight_files_match(run_dir, state):
        checkpoint.write_weight_files(run_dir, ["latest"], state["nets"])
        log(f"latest_net_G/D.pth in {run_dir} were from another moment (a save cut short): rewritten from the "
            "checkpoint")
    log(f"resuming {run_dir} exactly: {start.describe()}, {start.total_iters} iterations so far")
    return start, state["rng"]


def _load_weights_alone(run_dir, label, model, options, log):
    if not os.path.isfile(checkpoint.weights_path(run_dir, label, "G")):
        raise UserError(f"--continue_train: no {os.path.basename(checkpoint.weights_path(run_dir, label, 'G'))} "
                        f"in {run_dir}; check --name/--checkpoints_dir or train without --continue_train")
    for name, net in model.networks().items():
        checkpoint.load_network(net, checkpoint.weights_path(run_dir, label, name), name)
    log(f"continuing from {label}_net_G/D.pth at epoch {options['epoch_count']} with fresh optimizer state "
        f"(no {checkpoint.STATE_FILE}): not an exact resume")
    return None


def describe(changes):
    return ", ".join(f"--{k} {new} (checkpoint: {old})" for k, (old, new) in changes.items())


def reschedule(optimizers, schedulers, make_scheduler, *, lr, epochs_done):
    """New schedulers from the flags now, stepped through the epochs already trained: the rate a run
    started with these flags would have now."""
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = lr
        scheduler = make_scheduler(optimizer)
        with warnings.catch_warnings():                # replaying epochs: no optimizer.step() between
            warnings.simplefilter("ignore")
            for _ in range(epochs_done):
                scheduler.step()
        schedulers[name] = scheduler
