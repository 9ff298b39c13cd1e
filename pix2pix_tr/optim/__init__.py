"""Optimizers: the trajectory-regularization mechanism, TRAdam/TRSGD, and the trainer's registry.

    from pix2pix_tr.optim import TRAdam, TrajectoryRegularized, build_optimizer
    opt = TRAdam(model.parameters(), lr=2e-4, betas=(0.5, 0.999), tr_lambda=0.1, inner_steps=10)
    opt = TrajectoryRegularized(torch.optim.AdamW(model.parameters(), lr=1e-3), tr_lambda=0.1)
"""
from pix2pix_tr.optim.registry import OPTIMIZERS, build_optimizer
from pix2pix_tr.optim.tradam import TRAdam, TRSGD
from pix2pix_tr.optim.trajectory import (TR_LAMBDA_MODES, InvalidHyperparameter,
                                         TrajectoryRegularized)

__all__ = ["TRAdam", "TRSGD", "TrajectoryRegularized", "build_optimizer", "OPTIMIZERS",
           "TR_LAMBDA_MODES", "InvalidHyperparameter"]
