"""Learning-rate policies, stepped once per epoch as pix2pix steps them (docs/train.md has each rule).

Each is a plain torch scheduler, so its state_dict goes into the training state and trajectory-
regularized optimizers see the decayed lr like any other. To add a policy, add a branch to
`build_scheduler` and its name to SCHEDULERS.
"""
from torch.optim import lr_scheduler

from pix2pix_tr.errors import UserError

SCHEDULERS = ("linear", "step", "cosine", "plateau")


class LinearDecay:
    """pix2pix's rule: factor 1 until epoch n_epochs, then down to 1/(n_epochs_decay+1) at the last.

    A class rather than a closure so the scheduler pickles; epoch is LambdaLR's count from 0."""

    def __init__(self, n_epochs, n_epochs_decay, epoch_count):
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count

    def __call__(self, epoch):
        return 1.0 - max(0, epoch + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1)


class Plateau(lr_scheduler.ReduceLROnPlateau):
    """torch's ReduceLROnPlateau whose `step()` without a metric steps with pix2pix's 0 (its models
    never set one), so every policy is stepped the same way by the training loop and on resume."""

    def step(self, metrics=0.0, epoch=None):
        super().step(metrics)


def build_scheduler(policy, optimizer, *, n_epochs=100, n_epochs_decay=100, epoch_count=1,
                    lr_decay_iters=50):
    """The torch LR scheduler of `policy` over `optimizer`; call its .step() at each epoch's end."""
    if policy == "linear":
        return lr_scheduler.LambdaLR(optimizer, LinearDecay(n_epochs, n_epochs_decay, epoch_count))
    if policy == "step":
        return lr_scheduler.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if policy == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    if policy == "plateau":
        return Plateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    raise ValueError(f"unknown lr policy {policy!r}; choose from {', '.join(SCHEDULERS)}")


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
