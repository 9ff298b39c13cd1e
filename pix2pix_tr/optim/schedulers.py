"""Learning-rate policies, stepped once per epoch as pix2pix steps them.

    linear  lr constant for n_epochs, then linearly to zero over n_epochs_decay (pix2pix's rule,
            shifted by epoch_count, the number of the first epoch)
    step    lr x 0.1 every lr_decay_iters epochs
    cosine  cosine annealing from lr to 0 over n_epochs
    plateau pix2pix's ReduceLROnPlateau(mode="min", factor=0.2, threshold=0.01, patience=5), stepped
            with the metric 0 each epoch, as pix2pix steps it: pix2pix's models never set the
            `self.metric` that BaseModel.__init__ sets to 0, so 0 never improves on the best 0 and
            the rate is multiplied by 0.2 after every 6 epochs past the first (here, where the
            schedulers step at each epoch's end: epochs 1-7 at lr, 8-13 at 0.2 lr, 14-19 at 0.04 lr,
            ...). A caller with a real metric passes it: `scheduler.step(metric)`.

Each is a plain torch scheduler (LambdaLR, StepLR, CosineAnnealingLR, ReduceLROnPlateau), so its state_dict goes into
the training state and trajectory-regularized optimizers see the decayed lr like any other. To add
a policy, write a function (optimizer, settings) -> scheduler and register it in SCHEDULERS.
"""
import torch

from pix2pix_tr.errors import UserError


class LinearDecay:
    """pix2pix's rule: factor 1 until epoch n_epochs, then down to 1/(n_epochs_decay+1) at the last.

    A class rather than a closure so the scheduler pickles; epoch is LambdaLR's count from 0."""

    def __init__(self, n_epochs, n_epochs_decay, epoch_count):
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count

    def __call__(self, epoch):
        return 1.0 - max(0, epoch + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1)


def linear(optimizer, *, n_epochs, n_epochs_decay, epoch_count, **_):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LinearDecay(n_epochs, n_epochs_decay, epoch_count))


def step(optimizer, *, lr_decay_iters, **_):
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)


def cosine(optimizer, *, n_epochs, **_):
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)


class Plateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    """torch's ReduceLROnPlateau whose `step()` without a metric steps with pix2pix's 0, so every
    policy is stepped the same way (`scheduler.step()`) by the training loop and on resume."""

    def step(self, metrics=0.0, epoch=None):
        super().step(metrics)


def plateau(optimizer, **_):
    return Plateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)


SCHEDULERS = {"linear": linear, "step": step, "cosine": cosine, "plateau": plateau}


def build_scheduler(policy, optimizer, *, n_epochs=100, n_epochs_decay=100, epoch_count=1,
                    lr_decay_iters=50):
    """The torch LR scheduler of `policy` over `optimizer`; call its .step() at each epoch's end."""
    if policy not in SCHEDULERS:
        raise ValueError(f"unknown lr policy {policy!r}; choose from {', '.join(SCHEDULERS)}")
    return SCHEDULERS[policy](optimizer, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                              epoch_count=epoch_count, lr_decay_iters=lr_decay_iters)


def check_learning_rate(optimizers, epoch):
    """A schedule must never hand the optimizers a negative rate (Adam would ascend the loss):
    {name: optimizer} at the start of `epoch`, or one UserError line naming the flags to check."""
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            if not group["lr"] >= 0:
                raise UserError(f"epoch {epoch}: net{name}'s learning rate is {group['lr']}; check "
                                "--lr_policy, --n_epochs, --n_epochs_decay and --epoch_count")


def step_schedulers(schedulers, watched):
    """Step every scheduler at an epoch's end; (lr before, lr after) of the optimizer `watched`."""
    before = watched.param_groups[0]["lr"]
    for scheduler in schedulers.values():
        scheduler.step()
    return before, watched.param_groups[0]["lr"]
