"""pix2pix's LR policies (pix2pix_tr/optim/schedulers.py), each against pix2pix's rule restated by hand:
the rate of each epoch, as the training loop steps the scheduler once per epoch with no metric."""
import pytest
import torch

from options import TrainOptions
from pix2pix_tr.optim.schedulers import build_scheduler


def lrs(policy, epochs, **settings):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(policy, optimizer, **settings)
    seen = []
    for _ in range(epochs):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()                              # the training loop's call: no metric
    return seen


def test_linear_policy_is_pix2pix_rule():
    # pix2pix: lr factor for epoch e (from epoch_count) = 1 - max(0, e - n_epochs) / (n_epochs_decay + 1)
    got = lrs("linear", 5, n_epochs=2, n_epochs_decay=3, epoch_count=1)
    assert got == pytest.approx([1, 1, 0.75, 0.5, 0.25])
    shifted = lrs("linear", 2, n_epochs=2, n_epochs_decay=3, epoch_count=3)   # a run continued at epoch 3
    assert shifted == pytest.approx([0.75, 0.5])


def test_step_and_cosine_policies():
    assert lrs("step", 5, lr_decay_iters=2) == pytest.approx([1, 1, 0.1, 0.1, 0.01])
    assert lrs("cosine", 3, n_epochs=2) == pytest.approx([1, 0.5, 0])


def test_plateau_is_pix2pix_reduce_on_plateau_stepped_with_zero():
    """pix2pix: ReduceLROnPlateau(mode=min, factor=0.2, threshold=0.01, patience=5) stepped with its
    never-updated metric 0: 0 is the best at once and never improves on, so x0.2 every 6 epochs."""
    assert lrs("plateau", 20) == pytest.approx([1] * 7 + [0.2] * 6 + [0.04] * 6 + [0.008])
    assert TrainOptions().parse(["--lr_policy", "plateau"]).lr_policy == "plateau"
