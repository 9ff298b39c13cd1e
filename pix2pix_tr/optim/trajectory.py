"""The trajectory-regularization (TR) mechanism: a wrapper that turns a torch.optim.Optimizer into its
TR version. It owns the TR bookkeeping (counter, anchors, lr₀, λ_n, the 1/(k+1) step size) and lets the
base optimizer do its own arithmetic; `compiled_adam.py` is the one specialised (faster) Adam/AdamW step.
"""
import inspect
import math
import warnings

import torch
from torch.optim import Optimizer

from pix2pix_tr.errors import UserError
from pix2pix_tr.optim import compiled_adam

# λ_n, the proximal weight at step n, by mode (lr₀: the group's lr at construction; lr: its lr now)
TR_LAMBDA_MODES = {"scaled": "λ·lr₀/lr", "fixed": "λ", "released": "λ/lr"}
TR_GROUP_KEYS = ("tr_lambda", "inner_steps", "tr_lambda_mode", "inner_lr_decay")


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


def check_wrappable(optimizer):
    """Refuse the bases the TR step cannot drive: sparse-only ones (the pull is dense) and those
    whose step() requires a closure (LBFGS: it re-evaluates the loss inside its step)."""
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    if isinstance(optimizer, torch.optim.SparseAdam):
        raise InvalidHyperparameter("SparseAdam cannot be trajectory-regularized: the proximal "
                                    "pull is dense; use Adam or AdamW")
    if closure is not None and closure.default is inspect.Parameter.empty:
        raise InvalidHyperparameter(f"{type(optimizer).__name__} cannot be trajectory-regularized: "
                                    "its step() requires a closure; use a first-order optimizer")


def unhooked_step(optimizer):
    """The base's step without torch's hook wrapper: the wrapper's own step already ran the global
    step hooks, once, with the TR optimizer as argument."""
    step = type(optimizer).step
    return (step.__wrapped__ if getattr(step, "hooked", False) else step).__get__(optimizer)


class TrajectoryRegularized(Optimizer):
    r"""Trajectory regularization around a first-order optimizer (Zhang, Qu, Chen, Metaxas, "Taming
    the Noisy Gradient: Train Deep Neural Networks with Small Batch Sizes", IJCAI 2019).

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
    optimizer. "scaled" is what the paper's released code runs; docs/optim.md has the λ modes, the
    differences from the released code and the contract (what is supported, which bases are tested).

    Args:
        optimizer: the base optimizer, whose ``param_groups`` and ``state`` the wrapper shares, so
            ``state_dict()`` is torch's format plus group keys ``tr_lambda``, ``inner_steps``,
            ``tr_lambda_mode``, ``inner_lr_decay``, ``tr_lr0`` (γ₀), ``tr_step`` (n) and a per-parameter
            ``tr_anchor``. Param groups may carry their own TR settings.
        tr_lambda: λ ≥ 0. inner_steps: S ≥ 1. tr_lambda_mode: "scaled", "fixed" or "released".
        inner_lr_decay: False keeps γ_n instead of γ_n/(k+1) (an ablation).
        compiled: the single-pass step of compiled_adam.py for an Adam/AdamW base. False: the generic
            path. True: always (an error if compiling fails). None: from
            ``compiled_adam.COMPILE_MIN_NUMEL`` parameters on, falling back to the generic path with
            a warning if torch.compile fails. Same math to float rounding (tested).
    """

    def __init__(self, optimizer, *, tr_lambda=0.1, inner_steps=10, tr_lambda_mode="scaled",
                 inner_lr_decay=True, compiled=False):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"TrajectoryRegularized wraps a torch.optim.Optimizer, got {type(optimizer)}")
        if isinstance(optimizer, TrajectoryRegularized):
            raise InvalidHyperparameter("optimizer is already trajectory-regularized")
        check_tr_settings(tr_lambda, inner_steps, tr_lambda_mode, inner_lr_decay)
        check_wrappable(optimizer)
        if compiled and not isinstance(optimizer, torch.optim.Adam):  # AdamW subclasses Adam
            raise InvalidHyperparameter(
                "compiled=True needs a torch.optim.Adam/AdamW base; pass compiled=None or False")
        self.base_optimizer = optimizer
        self._compiled_request = compiled
        self._compile_failure = None  # auto mode: why the single pass fell back, once it did
        super().__init__(optimizer.param_groups, dict(optimizer.defaults, tr_lambda=tr_lambda, inner_steps=inner_steps,
                                                      tr_lambda_mode=tr_lambda_mode, inner_lr_decay=inner_lr_decay))
        self._share_base()

    def __getstate__(self):  # torch's keeps defaults, state, param_groups: add the base and TR's own
        keep = ("base_optimizer", "_compiled_request", "_compile_failure")
        return {**super().__getstate__(), **{key: self.__dict__[key] for key in keep}}

    def __setstate__(self, state):  # unpickling, and load_state_dict's new state and groups:
        super().__setstate__(state)  # hand them to the base (its own setstate fix-ups run) and share
        self.base_optimizer.__setstate__({"state": self.state, "param_groups": self.param_groups})
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
        for key in TR_GROUP_KEYS:  # the group's own TR settings, else the constructor's
            param_group.setdefault(key, self.defaults[key])
        check_tr_settings(*(param_group[key] for key in TR_GROUP_KEYS))
        check_positive("lr", param_group["lr"])
        if param_group.get("differentiable"):
            raise InvalidHyperparameter("differentiable=True is not supported: the regularized "
                                        "gradient is built outside autograd")
        param_group.setdefault("tr_lr0", float(param_group["lr"]))
        param_group.setdefault("tr_step", 0)

    def load_state_dict(self, state_dict):
        before = [{k: g[k] for k in (*TR_GROUP_KEYS, "tr_lr0")} for g in self.param_groups]
        super().load_state_dict(state_dict)  # shared with the base by __setstate__
        for group, old in zip(self.param_groups, before):  # a plain (non-TR) checkpoint: keep ours
            for key, value in old.items():
                group.setdefault(key, value)
            group.setdefault("tr_step", 0)

    @property
    def compiled(self):
        """Whether steps take the single-pass compiled Adam path (see the class docstring)."""
        if self._compiled_request is False or not isinstance(self.base_optimizer, torch.optim.Adam):
            return False
        if self._compiled_request:
            return True
        numel = sum(p.numel() for group in self.param_groups for p in group["params"])
        return self._compile_failure is None and numel >= compiled_adam.COMPILE_MIN_NUMEL

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

    def _anchor_group(self, group, k, pending, defer_refresh=False):
        """Refresh anchors at k = 0 (and anchor newcomers). Return (prox, deferred): the params that
        need the prox term this step (a fresh anchor equals the parameter, so its prox term is
        exactly zero) and, with `defer_refresh`, the params with a grad whose k = 0 anchor copy is
        left to the caller (the compiled step writes it in its own pass)."""
        prox, deferred = [], []
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
            elif k == 0 and defer_refresh:
                deferred.append(p)
            elif k == 0:
                anchor.copy_(p.detach())
            else:
                prox.append(p)
        return prox, deferred

    # ----------------------------------------------------------------------------- the step
    @torch.no_grad()
    def step(self, closure=None):
        """One TR step of every param group; `closure` (optional) re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.compiled and self._compile_ready():
            self._compiled_adam_step()
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
                prox, _ = self._anchor_group(group, k, pending)
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
            unhooked_step(self.base_optimizer)()
        finally:
            for group, lr in saved_lrs:
                group["lr"] = lr
            for p, g in saved_grads:
                p.grad = g
        for p, anchor in pending.items():
            self.state[p]["tr_anchor"] = anchor

    def _compile_ready(self):
        """Compile (once per process) every kernel this step needs, before any state changes; in
        auto mode a failure means a warning and the generic path from then on."""
        for group in self.param_groups:
            needed = {(p.device, torch.view_as_real(p).dtype if p.is_complex() else p.dtype)
                      for p in group["params"] if p.grad is not None}
            for device, dtype in needed:
                for variant in compiled_adam.variants(group):
                    failure = compiled_adam.ensure_compiled(device, dtype, variant)
                    if failure is None:
                        continue
                    if self._compiled_request:
                        raise RuntimeError(f"compiled=True: torch.compile failed on {device}: {failure}")
                    self._compile_failure = failure
                    warnings.warn(f"TRAdam: the compiled single-pass step is unavailable ({failure}); "
                                  "using the generic path", RuntimeWarning, stacklevel=3)
                    return False
        return True

    def _compiled_adam_step(self):
        """The same step for an Adam/AdamW base, one compiled pass per parameter (compiled_adam.py)."""
        base = self.base_optimizer
        for group in self.param_groups:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], [], [], []
            base._init_group(group, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps)
            k, lr_k, coef = self._cycle(group)
            fuse_refresh = compiled_adam.variants(group)[1] is not None
            prox, deferred = self._anchor_group(group, k, pending={},  # states exist: none pending
                                                defer_refresh=fuse_refresh)
            if not params:
                continue
            prox, deferred = set(prox), set(deferred)
            compiled_adam.prox_adam_step(
                group, params, grads, [self.state[p]["tr_anchor"] for p in params], exp_avgs, exp_avg_sqs,
                max_exp_avg_sqs, steps, prox=[p in prox for p in params], refresh=[p in deferred for p in params],
                lr=float(lr_k), coef=coef,
                decoupled=group.get("decoupled_weight_decay", False) or isinstance(base, torch.optim.AdamW))
