"""The fast path of trajectory-regularized Adam/AdamW: one compiled pass per parameter that reads
(θ, g, anchor, m, v) once and writes (θ, m, v), where the generic path writes a full-size regularized
gradient and then runs Adam over it (docs/optim.md and docs/speed.md have the measurements).

Compiled once per process and never recompiled: tensors go in flattened and detached with dynamic
sizes, and every changing number (lr/(k+1), the prox coefficient, the bias corrections, computed in
double on the host as torch's Adam does) goes in as one tensor `s` on the parameter's device. On a GPU
the parameters that share those numbers form a bucket run by one compiled call. `USE_COMPILE = False`
runs the same functions eagerly (tests, debugging).
"""
import math
import time

import torch

COMPILE_MIN_NUMEL = 2_000_000
USE_COMPILE = True
GROUP_DEVICE_TYPES = {"cuda", "xpu", "mps"}  # one compiled call per bucket of parameters there
# combo kernels: inductor launches a bucket's pointwise kernels as a few horizontally fused ones;
# measured on an H100 (54M parameters, 43 tensors): 1.48x fused Adam without, 1.05x with
BUCKET_COMPILE_OPTIONS = {"combo_kernels": True}

# the per-step numbers, packed into one 1-D tensor `s` on the parameter's device (one guard, not ten)
_SCALARS = ("coef", "beta1", "one_minus_beta1", "beta2", "one_minus_beta2", "neg_step_size",
            "inv_bc2_sqrt", "eps", "sign", "l2", "decay")
COEF, BETA1, OMB1, BETA2, OMB2, NEG_STEP, INV_BC2_SQRT, EPS, SIGN, L2, DECAY = range(len(_SCALARS))


def _moments(g_tilde, m, v, s):
    m.mul_(s[BETA1]).add_(s[OMB1] * g_tilde)  # = torch's m.lerp_(g̃, 1 − β₁) up to rounding
    v.mul_(s[BETA2]).add_(g_tilde * g_tilde * s[OMB2])


def _new_param(p, m, v, s):
    # torch: sqrt(v) / sqrt(bc2) + eps; a multiply by the reciprocal (computed in double) is the
    # same to an ulp and ~6% of a step faster on CPU, where the kernel is partly compute-bound
    return p + s[NEG_STEP] * (m / (v.sqrt() * s[INV_BC2_SQRT] + s[EPS]))


def tr_adam_step(p, g, a, m, v, s):
    """Adam without weight decay / maximize / amsgrad (pix2pix's case) on g + c·(θ − anchor)."""
    _moments(g + s[COEF] * (p - a), m, v, s)
    p.copy_(_new_param(p, m, v, s))


def tr_adam_refresh_step(p, g, a, m, v, s):
    """The k = 0 step of tr_adam_step: the anchor becomes θ (written in the same pass, so no
    separate copy) and the prox term is zero."""
    a.copy_(p)
    _moments(g, m, v, s)
    p.copy_(_new_param(p, m, v, s))


def _general_g_tilde(p, g, a, s):
    """The gradient the base sees after its own maximize / L2 steps: ±(g + c·(θ − a)) + wd·θ."""
    return s[SIGN] * (g + s[COEF] * (p - a)) + s[L2] * p


def tr_adam_general_step(p, g, a, m, v, s):
    """Any Adam/AdamW group without amsgrad: maximize, L2 weight decay (l2) or AdamW's decoupled
    decay (θ·decay before the update). θ is read once: the prox term and the decay both use the
    value before the step, as on the generic path (prox first, then the base step)."""
    _moments(_general_g_tilde(p, g, a, s), m, v, s)
    p.copy_(_new_param(p * s[DECAY], m, v, s))


def tr_adam_amsgrad_step(p, g, a, m, v, v_max, s):
    """tr_adam_general_step with AMSGrad's running maximum of v in the denominator."""
    _moments(_general_g_tilde(p, g, a, s), m, v, s)
    v_max.copy_(torch.maximum(v_max, v))
    p.copy_(_new_param(p * s[DECAY], m, v_max, s))


def _over_bucket(kernel):
    """`kernel` over every parameter of a bucket, traced as one graph (on a GPU a call per parameter
    costs ~100 µs of host time). Each variant gets a code object of its own, so its graphs have their
    own dynamo cache and recompile budget."""
    def bucket_step(tensor_lists, s):
        for tensors in zip(*tensor_lists):
            kernel(*tensors, s)
    bucket_step.__code__ = bucket_step.__code__.replace(co_name=f"bucket_{kernel.__name__}")
    return bucket_step


_EAGER = {"plain": tr_adam_step, "refresh": tr_adam_refresh_step,
          "general": tr_adam_general_step, "amsgrad": tr_adam_amsgrad_step}
_BUCKET_EAGER = {variant: _over_bucket(_EAGER[variant]) for variant in ("plain", "general", "amsgrad")}
_COMPILED = {}          # (variant, bucket) -> torch.compile'd function
_READY = {}             # (device type, dtype, variant) -> None when compiled, else the error text
COMPILE_SECONDS = {}    # (device type, dtype, variant) -> seconds the first (compiling) call took


def variants(group):
    """The kernels an Adam param group needs: (regular step, k = 0 step or None for an eager copy)."""
    if group["amsgrad"]:
        return "amsgrad", None
    if group["weight_decay"] or group["maximize"]:
        return "general", None
    return "plain", "refresh"


def _kernel(variant, bucket=False):
    """The compiled function of `variant` (shared by every optimizer), over one parameter or a bucket."""
    eager = _BUCKET_EAGER[variant] if bucket else _EAGER[variant]
    if not USE_COMPILE:
        return eager
    if (variant, bucket) not in _COMPILED:
        if bucket:
            # static sizes at first (a model's parameter list is fixed); a second model with other
            # sizes makes dynamo's automatic-dynamic compile one size-generic graph
            compiled = torch.compile(eager, fullgraph=True, options=BUCKET_COMPILE_OPTIONS)
        else:
            # cpp.dynamic_threads: with dynamic sizes inductor's CPU code is serial unless told to
            # split the loop over the threads it finds at run time (docs/optim.md); not GPU code
            import torch._inductor.config as inductor_config
            options = {"cpp.dynamic_threads": True} if hasattr(inductor_config.cpp, "dynamic_threads") else {}
            compiled = torch.compile(eager, dynamic=True, fullgraph=True, options=options)
        _COMPILED[variant, bucket] = compiled
    return _COMPILED[variant, bucket]


def _scalar_dtype(dtype):
    return dtype if dtype in (torch.float32, torch.float64) else torch.float32


def ensure_compiled(device, dtype, variant):
    """Compile `variant` for (device, dtype) on dummy tensors, once per process; return None when it
    works, else the error text (no optimizer state is touched, so a caller can fall back)."""
    if not USE_COMPILE or variant is None:
        return None
    key = (torch.device(device).type, dtype, variant)
    if key not in _READY:
        start = time.perf_counter()
        try:
            ops = [torch.zeros(8, device=device, dtype=dtype)
                   for _ in range(6 if variant == "amsgrad" else 5)]
            scalars = torch.ones(len(_SCALARS), device=device, dtype=_scalar_dtype(dtype))
            if key[0] in GROUP_DEVICE_TYPES:   # buckets run the regular kernel only
                if variant != "refresh":
                    _kernel(variant, bucket=True)([[t] for t in ops], scalars)
            else:
                _kernel(variant)(*ops, scalars)
            _READY[key] = None
        except Exception as error:  # no C++ compiler / triton for this device: report, don't crash
            _READY[key] = f"{type(error).__name__}: {error}".splitlines()[0]
        COMPILE_SECONDS[key] = time.perf_counter() - start
    return _READY[key]


def _flat(tensor):
    """1-D detached alias of a dense tensor (any dim order), or None if it has gaps/overlaps."""
    if torch.is_complex(tensor):
        tensor = torch.view_as_real(tensor)
    if not tensor.is_contiguous():
        order = sorted(range(tensor.dim()), key=lambda d: (-tensor.stride(d), -tensor.size(d)))
        tensor = tensor.permute(order)
        if not tensor.is_contiguous():
            return None
    return tensor.view(-1).detach()


def _host_scalars(group, *, step, lr, coef, decoupled):
    """The per-step numbers, in double on the host like torch's Adam (lr is already lr/(k+1))."""
    beta1, beta2 = (float(beta) for beta in group["betas"])
    eps, weight_decay = float(group["eps"]), float(group["weight_decay"])
    bc1 = 1.0 - beta1 ** step
    bc2 = 1.0 - beta2 ** step
    return dict(coef=coef, beta1=beta1, one_minus_beta1=1.0 - beta1, beta2=beta2,
                one_minus_beta2=1.0 - beta2, neg_step_size=-lr / bc1, inv_bc2_sqrt=1.0 / math.sqrt(bc2),
                eps=eps, sign=-1.0 if group["maximize"] else 1.0, l2=0.0 if decoupled else weight_decay,
                decay=1.0 - lr * weight_decay if decoupled else 1.0)


def prox_adam_step(group, params, grads, anchors, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, *,
                   prox, refresh, lr, coef, decoupled):
    """One TR-Adam(W) step over Adam param group `group` (the lists: as torch's `Adam._init_group` makes
    them; `steps` are incremented here). Per parameter: `prox[i]` whether the prox term applies (False:
    zero this step), `refresh[i]` whether the anchor must become θ in this pass (k = 0; else the caller
    did it)."""
    torch._foreach_add_(steps, 1)
    regular, at_zero = variants(group)
    packed_cache, buckets = {}, {}
    for i, p in enumerate(params):
        step = float(steps[i])  # a CPU tensor for torch's default Adam: no device sync
        key = (p.device, _scalar_dtype(p.dtype), step, bool(prox[i]))
        if key not in packed_cache:
            values = _host_scalars(group, step=step, lr=lr, coef=coef if prox[i] else 0.0, decoupled=decoupled)
            packed = torch.tensor([values[name] for name in _SCALARS], dtype=key[1])
            if p.device.type == "cuda":
                # from pageable memory the copy would block the host until the GPU has caught up
                # with the whole backward pass: no more running ahead of it
                packed = packed.pin_memory()
            packed_cache[key] = packed.to(device=p.device, non_blocking=True)
        tensors = [p, grads[i], anchors[i], exp_avgs[i], exp_avg_sqs[i]]
        if regular == "amsgrad":
            tensors.append(max_exp_avg_sqs[i])
        if p.device.type in GROUP_DEVICE_TYPES and not p.is_complex():
            # static sizes and strides, each tensor its own: no flattening, no layout check
            buckets.setdefault(key, []).append((tensors, bool(refresh[i])))
            continue
        variant = at_zero if refresh[i] else regular
        flat = [_flat(t) for t in tensors]
        if (all(t.stride() == p.stride() for t in tensors) and p.numel() >= 2
                and all(f is not None for f in flat)):
            _kernel(variant)(*flat, packed_cache[key])
        else:  # sizes 0/1 would recompile; odd layouts: the same math, eagerly
            _EAGER[variant](*(torch.view_as_real(t) if torch.is_complex(t) else t
                              for t in tensors), packed_cache[key])
    for key, items in buckets.items():
        # the anchor refresh (k = 0) as one multi-tensor copy before the regular kernel (whose prox
        # term is then zero): one graph per model, and no copy-of-an-input-then-update-it graph
        # (torch 2.11's inductor wrote the updated θ into the anchor there)
        refreshed = [tensors for tensors, refresh_now in items if refresh_now]
        if refreshed:
            torch._foreach_copy_([t[2] for t in refreshed], [t[0] for t in refreshed])
        columns = [list(column) for column in zip(*(t for t, _ in items))]
        _kernel(regular, bucket=True)(columns, packed_cache[key])
