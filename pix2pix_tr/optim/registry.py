"""The one place that maps the trainer's `--optimizer` names to optimizers with pix2pix's defaults.

"adam" / "tradam": Adam with betas (beta1, beta2) (pix2pix uses beta1 = 0.5); "sgd" / "trsgd": SGD
with momentum (0.9). The "tr" names wrap the same base in TrajectoryRegularized.
"""
import torch

from pix2pix_tr.optim import compiled_adam
from pix2pix_tr.optim.tradam import TRAdam, TRSGD
from pix2pix_tr.optim.trajectory import TR_GROUP_KEYS, InvalidHyperparameter, check_positive


def fused_adam_available(params):
    """True when torch's fused Adam kernel supports every parameter (floating point, CPU/CUDA/...)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices
    devices = _get_fused_kernels_supported_devices()
    tensors = [t for item in params for t in (item["params"] if isinstance(item, dict) else [item])]
    return bool(tensors) and all(t.is_floating_point() and t.device.type in devices for t in tensors)


OPTIMIZERS = ("adam", "tradam", "sgd", "trsgd")


def build_optimizer(name, params, *, lr, beta1=0.5, beta2=0.999, momentum=0.9, tr_lambda=0.1,
                    inner_steps=10, fused=None, compiled=False, tr_lambda_mode="scaled",
                    inner_lr_decay=True):
    """Build optimizer `name` (one of OPTIMIZERS) over `params`. `fused` is torch's fused kernel of
    the base (None here: wherever it supports the parameters and serves the step); `compiled` is
    TRAdam's single compiled pass (None: from 2M parameters on, as train.py asks). Bad values raise
    InvalidHyperparameter (a ValueError and a pix2pix_tr UserError)."""
    if name not in OPTIMIZERS:
        raise InvalidHyperparameter(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    check_positive("lr", lr)
    for key, value in (("beta1", beta1), ("beta2", beta2), ("momentum", momentum)):
        if not 0.0 <= value < 1.0:
            raise InvalidHyperparameter(f"{key} must be in [0, 1), got {value!r}")
    params = list(params)
    tr_settings = dict(tr_lambda=tr_lambda, inner_steps=inner_steps, tr_lambda_mode=tr_lambda_mode,
                       inner_lr_decay=inner_lr_decay)
    if name in ("sgd", "trsgd"):
        sgd = dict(lr=lr, momentum=momentum, fused=fused)
        return torch.optim.SGD(params, **sgd) if name == "sgd" else TRSGD(params, **sgd, **tr_settings)
    single_pass = name == "tradam" and (compiled or (compiled is None and sum(
        p.numel() for p in params) >= compiled_adam.COMPILE_MIN_NUMEL))
    if fused is None:  # torch's default on CPU is the slower per-tensor loop; the single pass wants it
        fused = not single_pass and fused_adam_available(params)
    adam = dict(lr=lr, betas=(beta1, beta2), fused=fused or None)
    if name == "adam":
        return torch.optim.Adam(params, **adam)
    return TRAdam(params, **adam, **tr_settings, compiled=compiled)


def apply_settings(optimizer, *, beta1, lr0=None, **settings):
    """Put `build_optimizer`'s settings into an optimizer's param groups, where it has them: a run
    resumed with other values goes on with those (the learning rate follows its schedule instead;
    `lr0`, a new initial lr, is what TR's scaled λ is relative to)."""
    for group in optimizer.param_groups:
        if "betas" in group:
            group["betas"] = (beta1, group["betas"][1])
        group.update({key: settings[key] for key in TR_GROUP_KEYS if key in group})
        if lr0 is not None and "tr_lr0" in group:
            group["tr_lr0"] = lr0
