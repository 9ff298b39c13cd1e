"""TRAdam and TRSGD: the TR mechanism (trajectory.py) applied to torch.optim.Adam and to SGD.

They only build the base optimizer and hand it to `TrajectoryRegularized`; none of the TR math lives
here. Use `TrajectoryRegularized(torch.optim.AdamW(...))` for any other base.
"""
import torch

from pix2pix_tr.optim.trajectory import TrajectoryRegularized, check_positive, check_tr_settings


class TRAdam(TrajectoryRegularized):
    r"""Adam with trajectory regularization: ``TrajectoryRegularized(torch.optim.Adam(...))``.

    The step is the TrajectoryRegularized math block with torch.optim.Adam as the base:

    .. math::
       \begin{aligned}
            &\tilde g_n = \nabla f(\theta_n) + 2\lambda_n(\theta_n - w_t) \; (+\,\text{wd}\,\theta_n),
                \quad t \leftarrow t + 1 \text{ (global, never reset)} \\
            &m_t = \beta_1 m_{t-1} + (1-\beta_1)\tilde g_n, \quad
                v_t = \beta_2 v_{t-1} + (1-\beta_2)\tilde g_n^2 \\
            &\theta_{n+1} = \theta_n - \frac{\gamma_n}{k+1}\,
                \frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}
       \end{aligned}

    **Where ε sits:** where torch.optim.Adam puts it today (after the bias-corrected √v̂), so
    S = 1 is exactly torch's Adam. The released code used √v + ε with the bias correction folded
    into the step size, i.e. torch's form with ε/√(1−β₂ᵗ) in place of ε; with ε = 0 the two are
    identical, otherwise they differ only where √v̂ is of the order of ε.

    Args: torch.optim.Adam's lr, betas, eps, weight_decay, amsgrad, maximize, fused (passed to
    torch's Adam: its fused kernel runs the base's step on the generic path) plus tr_lambda,
    inner_steps, tr_lambda_mode, inner_lr_decay and compiled (see TrajectoryRegularized: True or
    None takes the single-pass compiled step, which wants torch's default ``fused=None``).
    The base keeps torch's state format: ``step`` (a 0-dim tensor), ``exp_avg``, ``exp_avg_sq``
    (``max_exp_avg_sq``), plus ``tr_anchor``. Not taken: ``foreach``, ``capturable``,
    ``decoupled_weight_decay`` (use ``TrajectoryRegularized(torch.optim.Adam(..., foreach=True))``
    or ``torch.optim.AdamW``), ``differentiable`` (refused, see TrajectoryRegularized).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, maximize=False, fused=None, compiled=False):
        check_tr_settings(tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay)  # before the base
        check_positive("lr", lr)
        base = torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                amsgrad=amsgrad, maximize=maximize, fused=fused)
        super().__init__(base, tr_lambda=tr_lambda, inner_steps=inner_steps,
                         tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay,
                         compiled=compiled)


class TRSGD(TrajectoryRegularized):
    r"""SGD (with momentum) and trajectory regularization: ``TrajectoryRegularized(torch.optim.SGD(...))``.

    .. math::
       \begin{aligned}
            &\tilde g_n = \nabla f(\theta_n) + 2\lambda_n(\theta_n - w_t) \; (+\,\text{wd}\,\theta_n) \\
            &b_n = \mu b_{n-1} + (1-\tau)\tilde g_n \;\; (b_0 = \tilde g_0), \quad
                \theta_{n+1} = \theta_n - \frac{\gamma_n}{k+1} b_n
                \;\; (\text{nesterov: } \tilde g_n + \mu b_n)
       \end{aligned}

    Args: torch.optim.SGD's lr, momentum, dampening, weight_decay, nesterov, maximize, fused
    (passed to torch's SGD) plus tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay (see
    TrajectoryRegularized). Not taken: ``foreach`` (use
    ``TrajectoryRegularized(torch.optim.SGD(..., foreach=True))``), ``differentiable`` (refused).
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, maximize=False, fused=None):
        check_tr_settings(tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay)  # before the base
        check_positive("lr", lr)
        base = torch.optim.SGD(params, lr=lr, momentum=momentum, dampening=dampening,
                               weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                               fused=fused)
        super().__init__(base, tr_lambda=tr_lambda, inner_steps=inner_steps,
                         tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay)
