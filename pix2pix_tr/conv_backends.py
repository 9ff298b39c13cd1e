"""Per-layer CPU convolution backends: oneDNN or ATen's native (im2col + GEMM) kernels, chosen
separately for each layer's forward and backward pass by timing both, as cudnn.benchmark does on
a GPU.

Why: on a CPU torch sends every fp32 convolution to oneDNN, which is fastest for the large,
activation-bound layers but not for pix2pix's inner ones. At batch 1 unet_256's inner layers see
1x1 to 8x8 maps with 4-8M weights each; there oneDNN reorders the weights on every call and ATen's
native GEMM path is up to 2x faster (docs/speed.md). Which backend wins depends on the CPU, the
thread count and the shape, so it is measured, not guessed; and since a timing decides the rounding,
train.py takes a plan only when asked (`--cpu_conv_plan auto`).

How: `autotune(net, example)` runs the net forward and backward a few times, its layers
alternating between oneDNN and the native kernels, times each layer's passes where they run
(inside the step's memory traffic, not on a hot cache), and returns a `plan` (layer name -> (forward backend,
backward backend)); `apply_plan(net, plan)` switches those layers' class to `PlannedConv2d` /
`PlannedConvTranspose2d`, whose forward is an autograd Function that runs `aten.convolution` and
`aten.convolution_backward` under the chosen backend. Parameters, buffers, state_dict keys and
`isinstance(m, nn.Conv2d)` are untouched; `remove_plan` restores the stock classes. The two
backends differ only in rounding; a plan is a JSON-able dict, so a run stores it and a resumed
run reuses it (same kernels, same bits).

Scope: CPU, fp32, no autocast (bf16 convolutions go to oneDNN, which is the fast path there).
Layers in a planned net fall back to the stock forward under autocast or off the CPU.
"""
import json
import os
import platform
import time

import torch
from torch import nn

from pix2pix_tr import atomic
from pix2pix_tr.distributed import unwrap
from pix2pix_tr.errors import UserError

ONEDNN, NATIVE = "onednn", "native"
BACKENDS = (ONEDNN, NATIVE)


class _backend:
    """Context: route convolutions to oneDNN (enabled) or to ATen's native kernels. The switch is
    torch's global one (what torch.backends.mkldnn.flags sets), without that helper's other flags."""

    def __init__(self, name):
        self.enabled = name == ONEDNN

    def __enter__(self):
        self.previous = torch._C._get_mkldnn_enabled()
        torch._C._set_mkldnn_enabled(self.enabled)

    def __exit__(self, *exc):
        torch._C._set_mkldnn_enabled(self.previous)


_RECORDER = None   # while autotune measures: {(layer module, pass): [seconds, ...]}


def _record(module, kind, start):
    if _RECORDER is not None:
        _RECORDER.setdefault((module, kind), []).append(time.perf_counter() - start)


class _PlannedConvolution(torch.autograd.Function):
    """aten.convolution with the forward and the backward each under a chosen backend."""

    @staticmethod
    def forward(ctx, x, weight, bias, geometry, forward_backend, backward_backend, module):
        stride, padding, dilation, transposed, output_padding, groups = geometry
        start = time.perf_counter()
        with _backend(forward_backend):
            out = torch.ops.aten.convolution(x, weight, bias, stride, padding, dilation, transposed,
                                             output_padding, groups)
        _record(module, "forward", start)
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.backward_backend, ctx.module = geometry, backward_backend, module
        ctx.bias_sizes = None if bias is None else list(bias.shape)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, transposed, output_padding, groups = ctx.geometry
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1],
                ctx.bias_sizes is not None and ctx.needs_input_grad[2]]
        start = time.perf_counter()
        with _backend(ctx.backward_backend):
            grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad_out, x, weight, ctx.bias_sizes, stride, padding, dilation, transposed,
                output_padding, groups, mask)
        _record(ctx.module, "backward", start)
        return grad_x, grad_w, grad_b, None, None, None, None


def _planned(module, x, weight, bias, transposed, output_padding):
    if x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_autocast_enabled("cpu"):
        return None
    geometry = (list(module.stride), list(module.padding), list(module.dilation), transposed,
                list(output_padding), module.groups)
    return _PlannedConvolution.apply(x, weight, bias, geometry, module.forward_backend,
                                     module.backward_backend, module)


class PlannedConv2d(nn.Conv2d):
    """nn.Conv2d whose CPU fp32 forward/backward run on the backends of its plan entry."""

    forward_backend = backward_backend = ONEDNN

    def _conv_forward(self, input, weight, bias):
        if self.padding_mode == "zeros":
            out = _planned(self, input, weight, bias, False, (0, 0))
            if out is not None:
                return out
        return super()._conv_forward(input, weight, bias)


class PlannedConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d whose CPU fp32 forward/backward run on the backends of its plan entry."""

    forward_backend = backward_backend = ONEDNN

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size, self.stride, self.padding,
                                              self.kernel_size, 2, self.dilation)
        out = _planned(self, input, self.weight, self.bias, True, output_padding)
        return out if out is not None else super().forward(input, output_size)


_PLANNED = {nn.Conv2d: PlannedConv2d, nn.ConvTranspose2d: PlannedConvTranspose2d}
_STOCK = {planned: stock for stock, planned in _PLANNED.items()}


def convolutions(net):
    """(name, module) of every 2-D convolution the plan can steer, in module order."""
    return [(name, m) for name, m in net.named_modules()
            if type(m) in _PLANNED or type(m) in _STOCK]


def check_plan(net, plan):
    """ValueError unless `plan` names only convolutions of `net`, each with two known backends."""
    unknown = sorted(set(plan) - set(dict(convolutions(unwrap(net)))))
    if unknown:
        raise ValueError(f"conv backend plan names layers this net does not have: {unknown[:3]}")
    for name, choice in plan.items():
        if len(choice) != 2 or not all(backend in BACKENDS for backend in choice):
            raise ValueError(f"conv backend plan: layer {name!r} has backends {tuple(choice)!r}; "
                             f"each of the two must be one of {BACKENDS}")


def apply_plan(net, plan):
    """Give each listed convolution of `net` its (forward, backward) backends, in place; returns net.
    Names not in `net` are an error (a plan made for another architecture)."""
    check_plan(net, plan)
    layers = dict(convolutions(unwrap(net)))
    for name, (forward_backend, backward_backend) in plan.items():
        module = layers[name]
        module.__class__ = _PLANNED.get(type(module), type(module))
        module.forward_backend, module.backward_backend = forward_backend, backward_backend
    return net


def remove_plan(net):
    """Stock classes again (oneDNN everywhere, torch's default)."""
    for _, module in convolutions(unwrap(net)):
        if type(module) in _STOCK:
            for attribute in ("forward_backend", "backward_backend"):
                module.__dict__.pop(attribute, None)
            module.__class__ = _STOCK[type(module)]
    return net


def autotune(net, example, *, repeats=4, margin=0.05):
    """Time every convolution of `net` in place and return the plan {name: (forward backend,
    backward backend)} that takes the native kernels wherever they were faster by more than
    `margin` (near-ties stay with torch's default).

    Timed inside the net, not layer by layer on a hot cache: a step streams all the weights from
    memory and allocates fresh activations, which isolated timings miss (by 2-4x for unet_256's
    inner deconvolutions). Parameters, their
    .grad, batch-norm statistics, the RNG (dropout) and each layer's current plan are left as
    they were."""
    timings = measure_in_net(net, example, repeats=repeats)
    return {name: tuple(NATIVE if t[kind, NATIVE] < (1 - margin) * t[kind, ONEDNN] else ONEDNN
                        for kind in ("forward", "backward"))
            for name, t in timings.items()}


def measure_in_net(net, example, *, repeats=4):
    """{layer name: {(pass, backend): median ms}}: the net run forward and backward on `example`
    twice per round, the layers alternating between the backends (even ones oneDNN and odd ones
    native, then the other way round), `repeats` rounds after a warm-up. Eval mode and
    torch.autograd.grad: nothing of the net's state moves. A pass a layer never ran (no gradient
    wanted) counts 0 ms."""
    global _RECORDER
    net = unwrap(net)
    layers = convolutions(net)
    kept = ("forward_backend", "backward_backend")
    before = [(m, type(m), {a: m.__dict__[a] for a in kept if a in m.__dict__}) for _, m in layers]
    params = [p for p in net.parameters() if p.requires_grad]
    was_training = net.training
    seconds = {}
    try:
        net.eval()
        for round_ in range(repeats + 1):              # round 0 warms up (oneDNN primitives, buffers)
            for shift in (0, 1):                       # layers alternate backends within a pass,
                backend_of = {m: BACKENDS[(i + shift) % 2] for i, (_, m) in enumerate(layers)}
                apply_plan(net, {name: (backend_of[m],) * 2 for name, m in layers})
                _RECORDER = {}                         # so a busy spell hits both alike
                out = net(example.detach())
                if params:
                    torch.autograd.grad(out.float().sum(), params)
                if round_:
                    for (module, kind), values in _RECORDER.items():
                        seconds.setdefault((module, kind, backend_of[module]), []).append(sum(values))
    finally:
        _RECORDER = None
        net.train(was_training)
        for module, cls, attributes in before:
            module.__class__ = cls
            for attribute in kept:
                module.__dict__.pop(attribute, None)
            module.__dict__.update(attributes)

    def median_ms(module, kind, backend):
        values = sorted(seconds.get((module, kind, backend), [0.0]))
        return values[len(values) // 2] * 1e3

    return {name: {(kind, backend): median_ms(m, kind, backend)
                   for kind in ("forward", "backward") for backend in BACKENDS}
            for name, m in layers}


# ------------------------------------------------------------------------- a training run's plan
PLAN_FILE = "cpu_conv_plan.json"


def applies(device, *, amp, compile):
    """Plans steer CPU fp32 convolutions of eager nets only (autocast and torch.compile take
    their own kernels, and a GPU has cudnn.benchmark)."""
    return torch.device(device).type == "cpu" and not amp and not compile and torch.backends.mkldnn.is_available()


def load_plan(path, nets):
    """The {net name: plan} stored at `path`, checked against `nets` ({name: module}); UserError
    naming the file when it is missing, unreadable or made for other networks."""
    try:
        with open(path, encoding="utf-8") as f:
            stored = json.load(f)["plans"]
        plans = {name: {layer: tuple(choice) for layer, choice in stored[name].items()} for name in nets}
        for name, net in nets.items():
            missing = sorted(set(dict(convolutions(unwrap(net)))) - set(plans[name]))
            if missing:
                raise ValueError(f"net {name} has layers the plan lacks: {missing[:3]}")
            check_plan(net, plans[name])
    except FileNotFoundError:
        raise UserError(f"--cpu_conv_plan {path}: no such file") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"--cpu_conv_plan {path}: not a plan for these networks ({err})") from None
    return plans


def plan_run(choice, run_dir, examples, *, resuming, typed=True):
    """(plans {net name: plan} or None, how they were obtained, the file they were read from or None)
    for a training run.

    choice: "onednn" (torch's default: no plan), "auto" (measured now), or a path to a stored plan
    (bit-identical fresh runs need the same kernels). A resumed run takes its own
    cpu_conv_plan.json, the kernels it ran so far, unless `choice` was typed anew (`typed`) and is
    not "auto". examples: {net name: (net, example input)}."""
    nets = {name: net for name, (net, _) in examples.items()}
    own = os.path.join(run_dir, PLAN_FILE)
    if resuming and os.path.isfile(own) and (choice == "auto" or not typed):
        return load_plan(own, nets), f"the run's own, read from {own}", own
    if choice == "onednn":
        return None, "oneDNN for every convolution (torch's default)", None
    if choice != "auto":
        return load_plan(choice, nets), f"read from {choice}", choice
    start = time.perf_counter()
    plans = {name: autotune(net, example) for name, (net, example) in examples.items()}
    return plans, f"measured in {time.perf_counter() - start:.1f} s", None


def save_plan(path, plans):
    """Write the plans with what they were measured on (a plan is specific to CPU and threads)."""
    native = sum(NATIVE in choice for plan in plans.values() for choice in plan.values())
    atomic.write_json(path, {
        "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__, "layers_with_native_kernels": native,
        "plans": {name: {layer: list(choice) for layer, choice in plan.items()} for name, plan in plans.items()}})


def summary(plans):
    """One line: how many convolutions run which backend, forward / backward."""
    if not plans:
        return "oneDNN everywhere"
    choices = [choice for plan in plans.values() for choice in plan.values()]
    return (f"native kernels in {sum(f == NATIVE for f, _ in choices)} forward and "
            f"{sum(b == NATIVE for _, b in choices)} backward passes of {len(choices)} convolutions")
