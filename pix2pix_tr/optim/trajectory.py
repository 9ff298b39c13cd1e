"""The trajectory-regularization (TR) mechanism: one wrapper that turns any torch.optim.Optimizer into
its TR version.

TRAdam and TRSGD (tradam.py) are this wrapper around torch.optim.Adam and torch.optim.SGD; the
wrapper owns all TR bookkeeping (inner counter, anchors, lr₀, λ_n, the 1/(k+1) step size) and lets the
base optimizer do its own arithmetic, so any base (AdamW, RMSprop, ...) gets the same method. The only
specialised arithmetic is `fused_adam.py`, a faster equivalent of the same step for Adam/AdamW.
"""
import math

import torch
from torch.optim import Optimizer

from pix2pix_tr.errors import UserError
from pix2pix_tr.optim.fused_adam import fused_prox_adam_step

TR_LAMBDA_MODES = ("scaled", "fixed", "released")
_TR_GROUP_KEYS = ("tr_lambda", "inner_steps", "tr_lambda_mode", "inner_lr_decay")


class InvalidHyperparameter(UserError, ValueError):
    """A bad optimizer setting: a ValueError (torch's convention) that entry points print as one line."""


def check_positive(name, value):
    if not (isinstance(value, (int, float)) or torch.is_tensor(value)) or not float(value) > 0:
        raise InvalidHyperparameter(f"{name} must be > 0, got {value!r}")


def check_tr_settings(tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay=True):
    """Raise InvalidHyperparameter unless λ ≥ 0 (finite), S a positive int, the mode known and
    inner_lr_decay a bool."""
    if not isinstance(inner_lr_decay, bool):
        raise InvalidHyperparameter(f"inner_lr_decay must be True or False, got {inner_lr_decay!r}")
    if not isinstance(tr_lambda, (int, float)) or not math.isfinite(tr_lambda) or tr_lambda < 0:
        raise InvalidHyperparameter(f"tr_lambda must be a finite number >= 0, got {tr_lambda!r}")
    if isinstance(inner_steps, bool) or not isinstance(inner_steps, int) or inner_steps < 1:
        raise InvalidHyperparameter(f"inner_steps must be an integer >= 1, got {inner_steps!r}")
    if tr_lambda_mode not in TR_LAMBDA_MODES:
        raise InvalidHyperparameter(
            f"tr_lambda_mode must be one of {', '.join(TR_LAMBDA_MODES)}, got {tr_lambda_mode!r}")


def is_fusable_adam(optimizer):
    """True when `optimizer` is torch's Adam/AdamW with its fused kernel on in every group."""
    return isinstance(optimizer, torch.optim.Adam) and all(
        g.get("fused") and not g.get("capturable") and not g.get("differentiable")
        for g in optimizer.param_groups)


class TrajectoryRegularized(Optimizer):
    r"""Trajectory regularization around any optimizer (Zhang, Qu, Chen, Metaxas, "Taming the Noisy
    Gradient: Train Deep Neural Networks with Small Batch Sizes", IJCAI 2019).

    .. math::
       \begin{aligned}
            &\textbf{input}: \text{base optimizer } \mathcal{B}, \lambda \text{ (tr\_lambda)},
                S \text{ (inner\_steps)}, \gamma_0 \text{ (group lr at construction)} \\
            &\textbf{for} \: n = 0, 1, 2, \ldots \: \textbf{do} \\
            &\hspace{5mm} k \leftarrow n \bmod S, \quad \gamma_n \leftarrow \text{group lr now
                (schedulers may change it)} \\
            &\hspace{5mm} \textbf{if} \: k = 0: \: w_t \leftarrow \theta_{n}
                \quad \text{(anchor = copy of the parameters)} \\
            &\hspace{5mm} \lambda_n \leftarrow \begin{cases}
                \lambda \gamma_0 / \gamma_n & \text{mode "scaled" (default)} \\
                \lambda & \text{mode "fixed"} \\
                \lambda / \gamma_n & \text{mode "released"} \end{cases} \\
            &\hspace{5mm} \tilde g_n \leftarrow \nabla f(\theta_n) + 2 \lambda_n (\theta_n - w_t) \\
            &\hspace{5mm} \theta_{n+1} \leftarrow \mathcal{B}\text{.step}(\tilde g_n,
                \text{lr} = \gamma_n / (k + 1)) \quad \text{(base state, e.g. Adam's moments and
                step count, is never reset)}
       \end{aligned}

    Every S steps the parameters become the anchor w_t; in between, the base optimizer minimises
    f(w) + λ_n‖w − w_t‖² with a step size that decays as 1/(k+1). S = 1 is exactly the base
    optimizer; λ = 0 leaves only the 1/(k+1) sawtooth of the step size.

    **λ modes.** The issue's formula is "scaled", λ_n = λ·γ₀/γ_n (λ itself while the lr is unchanged,
    growing when a schedule decays the lr). The paper's released code (huiqu18/TRAlgorithm) uses
    λ/γ_n, which is mode "released": ``tr_lambda=0.1, tr_lambda_mode="released"`` is the released
    code's coefficient exactly (equivalently "scaled" with tr_lambda = 0.1/γ₀). "fixed" keeps λ.

    **Differences from the released code, on purpose.** The optimizer counts k itself (``step()``
    takes no iteration); ``p.grad`` is left untouched (the regularized gradient is a temporary);
    a parameter that first gets a gradient in the middle of a cycle is anchored at its current
    value (the released code anchored it at zeros). With ``maximize=True`` the proximal term still
    pulls towards the anchor. Adam's epsilon: see TRAdam.

    Args:
        optimizer: the base optimizer; the wrapper shares its ``param_groups`` and ``state``, so
            ``state_dict()`` is torch's usual format with extra group keys ``tr_lambda``,
            ``inner_steps``, ``tr_lambda_mode``, ``tr_lr0`` (γ₀), ``tr_step`` (n) and a per-parameter
            ``tr_anchor``. Param groups may carry their own ``tr_lambda`` / ``inner_steps`` /
            ``tr_lambda_mode``.
        tr_lambda: λ ≥ 0 (default 0.1). inner_steps: S ≥ 1 (default 10).
        tr_lambda_mode: "scaled" (default), "fixed" or "released", see above. A schedule that
            brings the lr to 0 makes λ_n 0 in "scaled"/"released" (the step moves nothing anyway).
        inner_lr_decay: True (the paper) steps with γ_n/(k+1); False keeps γ_n, leaving only the
            proximal term (an ablation: where does a gain come from?).
        fused: when the base is torch's Adam/AdamW built with ``fused=True``, compute the
            regularized gradient in cache-sized blocks that torch's fused kernel consumes at once
            (fused_adam.py) instead of a whole-size temporary. None: on whenever the base allows it;
            True: require it (ValueError otherwise); False: the generic path.

    Works with torch LR schedulers, ``torch.amp.GradScaler`` (a skipped step does not advance k:
    the wrapper does not advertise in-kernel AMP support, so the scaler unscales and skips the whole
    ``step()``), parameters without gradients, DDP (every quantity is a function of the gradients
    and the step count, the same on every rank), CPU and CUDA. Each ``step()`` advances every
    group's counter. Extra memory: one anchor copy of the parameters (plus, on the generic path, a
    temporary regularized gradient during ``step()``).
    """

    def __init__(self, optimizer, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, fused=None):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"TrajectoryRegularized wraps a torch.optim.Optimizer, got {type(optimizer)}")
        if isinstance(optimizer, TrajectoryRegularized):
            raise InvalidHyperparameter("optimizer is already trajectory-regularized")
        check_tr_settings(tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay)
        if fused and not is_fusable_adam(optimizer):
            raise InvalidHyperparameter(
                "fused=True needs a torch.optim.Adam/AdamW base built with fused=True "
                "(and capturable=False, differentiable=False); pass fused=None or False")
        self.base_optimizer = optimizer
        self._tr_defaults = dict(tr_lambda=tr_lambda, inner_steps=inner_steps,
                                 tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay)
        self._fused_request = fused
        self._scratch = {}
        super().__init__(optimizer.param_groups, {**optimizer.defaults, **self._tr_defaults})
        self._share_base()

    # ----------------------------------------------------------------------------- bookkeeping
    def _share_base(self):
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    def add_param_group(self, param_group):
        base = self.base_optimizer
        if not any(param_group is g for g in base.param_groups):
            base.add_param_group(param_group)
            param_group = base.param_groups[-1]
        self._init_tr_group(param_group)

    def _init_tr_group(self, group):
        for key in _TR_GROUP_KEYS:
            group.setdefault(key, self._tr_defaults[key])
        check_tr_settings(group["tr_lambda"], group["inner_steps"], group["tr_lambda_mode"],
                          group["inner_lr_decay"])
        check_positive("lr", group["lr"])
        group.setdefault("tr_lr0", float(group["lr"]))
        group.setdefault("tr_step", 0)

    def load_state_dict(self, state_dict):
        before = [{k: g[k] for k in (*_TR_GROUP_KEYS, "tr_lr0")} for g in self.param_groups]
        super().load_state_dict(state_dict)  # replaces self.state / self.param_groups ...
        self.base_optimizer.__setstate__({"state": self.state, "param_groups": self.param_groups})
        self._share_base()  # ... so hand them to the base (its own setstate fix-ups run) and share
        for group, old in zip(self.param_groups, before):  # a plain (non-TR) checkpoint: keep ours
            for key, value in old.items():
                group.setdefault(key, value)
            group.setdefault("tr_step", 0)

    @property
    def fused(self):
        """Whether the next step takes the fused Adam path (see the class docstring)."""
        return self._fused_request is not False and is_fusable_adam(self.base_optimizer)

    @staticmethod
    def _cycle(group):
        """(k, step-size lr for the base, signed prox coefficient 2·λ_n) for this group now."""
        k = group["tr_step"] % group["inner_steps"]
        lr_now = float(group["lr"])
        if not lr_now >= 0:
            raise InvalidHyperparameter(f"lr must be >= 0 during training, got {group['lr']!r}")
        mode, lam = group["tr_lambda_mode"], group["tr_lambda"]
        if lr_now == 0 or lam == 0:  # lr 0 (end of a schedule) moves nothing: no 1/lr blow-up
            lam_n = 0.0 if mode != "fixed" else lam
        else:
            lam_n = {"scaled": lam * group["tr_lr0"] / lr_now,
                     "fixed": lam,
                     "released": lam / lr_now}[mode]
        coef = 2.0 * lam_n
        if group.get("maximize", False):  # the base negates the gradient; keep the pull inward
            coef = -coef
        lr_k = group["lr"] / (k + 1) if group["inner_lr_decay"] else group["lr"]
        return k, lr_k, coef

    def _anchor_group(self, group, k, pending):
        """Refresh anchors at k = 0 (and anchor newcomers); return the params that need the prox
        term this step (a fresh anchor equals the parameter, so its prox term is exactly zero)."""
        prox = []
        for p in group["params"]:
            state = self.state.get(p)
            anchor = state.get("tr_anchor") if state else None
            if p.grad is None:
                if anchor is not None and k == 0:
                    anchor.copy_(p.detach())
                continue
            if p.grad.is_sparse:
                raise RuntimeError("trajectory regularization does not support sparse gradients")
            if anchor is None:
                copy = p.detach().clone(memory_format=torch.preserve_format)
                if state:
                    state["tr_anchor"] = copy
                else:  # empty state: bases initialise lazily on len(state) == 0, insert after step
                    pending[p] = copy
            elif k == 0:
                anchor.copy_(p.detach())
            else:
                prox.append(p)
        return prox

    # ----------------------------------------------------------------------------- the step
    @torch.no_grad()
    def step(self, closure=None):
        """One TR step of every param group; `closure` (optional) re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.fused:
            self._fused_adam_step()
        else:
            self._generic_step()
        for group in self.param_groups:
            group["tr_step"] += 1
        return loss

    def _generic_step(self):
        """Swap in the regularized gradient and the 1/(k+1) lr, let the base step, restore both."""
        saved_lrs, saved_grads, pending = [], [], {}
        try:
            for group in self.param_groups:
                k, lr_k, coef = self._cycle(group)
                prox = self._anchor_group(group, k, pending)
                if prox and coef != 0.0:
                    regularized = torch._foreach_sub([p.detach() for p in prox],
                                                     [self.state[p]["tr_anchor"] for p in prox])
                    torch._foreach_mul_(regularized, coef)
                    torch._foreach_add_(regularized, [p.grad for p in prox])
                    for p, g in zip(prox, regularized):
                        saved_grads.append((p, p.grad))
                        p.grad = g
                saved_lrs.append((group, group["lr"]))
                group["lr"] = lr_k
            self.base_optimizer.step()
        finally:
            for group, lr in saved_lrs:
                group["lr"] = lr
            for p, g in saved_grads:
                p.grad = g
        for p, anchor in pending.items():
            self.state[p]["tr_anchor"] = anchor

    def _fused_adam_step(self):
        """The same step for a fused Adam/AdamW base, in one pass through torch's fused kernel."""
        base = self.base_optimizer
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
            base._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
            k, lr_k, coef = self._cycle(group)
            prox = set(self._anchor_group(group, k, pending={}))  # states exist: nothing pending
            if not params:
                continue
            torch._foreach_add_(steps, 1)
            anchors = [self.state[p]["tr_anchor"] if p in prox and coef != 0.0 else None
                       for p in params]
            beta1, beta2 = group["betas"]
            fused_prox_adam_step(
                params, grads, anchors, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps,
                coef=coef, lr=lr_k, beta1=float(beta1), beta2=float(beta2),
                weight_decay=group["weight_decay"], eps=group["eps"], amsgrad=group["amsgrad"],
                maximize=group["maximize"],
                decoupled=group.get("decoupled_weight_decay", False) or isinstance(
                    base, torch.optim.AdamW),
                scratch=self._scratch)
