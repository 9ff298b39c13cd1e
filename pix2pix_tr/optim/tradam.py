"""TRAdam and TRSGD: the TR mechanism (trajectory.py) applied to torch.optim.Adam and to SGD.

They only build the base optimizer and hand it to `TrajectoryRegularized`; none of the TR math lives
here. Use `TrajectoryRegularized(torch.optim.AdamW(...))` for any other base.
"""
import torch

from pix2pix_tr.optim.trajectory import TrajectoryRegularized, check_positive, check_tr_settings


def _checked(lr, **tr_settings):
    """The TR settings, checked before the base is built (torch's own checks would speak first)."""
    check_tr_settings(**tr_settings)
    check_positive("lr", lr)
    return tr_settings


class TRAdam(TrajectoryRegularized):
    r"""Adam with trajectory regularization: ``TrajectoryRegularized(torch.optim.Adam(...))``.

    .. math::
       \begin{aligned}
            &\tilde g_n = \nabla f(\theta_n) + 2\lambda_n(\theta_n - w_t) \; (+\,\text{wd}\,\theta_n),
                \quad t \leftarrow t + 1 \text{ (global, never reset)} \\
            &m_t = \beta_1 m_{t-1} + (1-\beta_1)\tilde g_n, \quad
                v_t = \beta_2 v_{t-1} + (1-\beta_2)\tilde g_n^2 \\
            &\theta_{n+1} = \theta_n - \frac{\gamma_n}{k+1}\,
                \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}
       \end{aligned}

    ε sits where torch.optim.Adam puts it, so S = 1 is exactly torch's Adam (docs/optim.md compares
    the released code's ε). Args: torch.optim.Adam's (``fused`` is passed to the base; no ``foreach``,
    ``capturable``, ``decoupled_weight_decay``: wrap ``torch.optim.Adam``/``AdamW`` yourself) plus
    TrajectoryRegularized's.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, maximize=False, fused=None, compiled=False):
        tr_settings = _checked(lr, tr_lambda=tr_lambda, inner_steps=inner_steps,
                               tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay)
        base = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                amsgrad=amsgrad, maximize=maximize, fused=fused)
        super().__init__(base, **tr_settings, compiled=compiled)


class TRSGD(TrajectoryRegularized):
    """SGD (with momentum) and trajectory regularization: ``TrajectoryRegularized(torch.optim.SGD(...))``.

    Args: torch.optim.SGD's (no ``foreach``: wrap ``torch.optim.SGD`` yourself) plus
    TrajectoryRegularized's.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, maximize=False, fused=None):
        tr_settings = _checked(lr, tr_lambda=tr_lambda, inner_steps=inner_steps,
                               tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay)
        base = torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                               weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                               fused=fused)
        super().__init__(base, **tr_settings)
