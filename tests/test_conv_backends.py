"""Per-layer CPU convolution backends (pix2pix_tr/conv_backends.py): a planned layer computes the
same convolution as torch's stock module -- checked against a float64 restatement, forward and
every gradient, for each (forward, backward) backend pair --, a plan leaves the net's parameters,
state_dict, RNG and batch-norm statistics alone, autotune picks by the timings, and train.py
measures, stores, reuses and refuses plans as documented."""
import copy
import io
import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from pix2pix_tr import conv_backends as cb
from pix2pix_tr.errors import UserError
from pix2pix_tr.losses import gradient_penalty
from pix2pix_tr.model import Pix2PixModel
from pix2pix_tr.networks import define_D, define_G
from tests.test_model import batch, tiny_nets
from tests.trainer_helpers import TINY_RUN, load_module, make_synthcity

PAIRS = [(f, b) for f in cb.BACKENDS for b in cb.BACKENDS]


def reference(layer, x, grad_out):
    """The convolution and its gradients in float64 with torch's functional ops (stock kernels)."""
    x64 = x.detach().double().requires_grad_()
    w64 = layer.weight.detach().double().requires_grad_()
    b64 = None if layer.bias is None else layer.bias.detach().double().requires_grad_()
    if isinstance(layer, nn.ConvTranspose2d):
        out = F.conv_transpose2d(x64, w64, b64, layer.stride, layer.padding, layer.output_padding,
                                 layer.groups, layer.dilation)
    else:
        out = F.conv2d(x64, w64, b64, layer.stride, layer.padding, layer.dilation, layer.groups)
    out.backward(grad_out.double())
    return out, x64.grad, w64.grad, None if b64 is None else b64.grad


LAYERS = {
    "conv 4x4/2, no bias": lambda: nn.Conv2d(6, 16, 4, stride=2, padding=1, bias=False),
    "conv 3x3 with bias": lambda: nn.Conv2d(5, 7, 3, padding=1),
    "deconv 4x4/2 with bias": lambda: nn.ConvTranspose2d(16, 8, 4, stride=2, padding=1),
    "deconv 4x4/2, no bias, 1x1 input": lambda: nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1, bias=False),
    "deconv with output_padding": lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
}


@pytest.mark.parametrize("forward_backend,backward_backend", PAIRS)
@pytest.mark.parametrize("kind", list(LAYERS))
def test_planned_layer_equals_the_float64_convolution(kind, forward_backend, backward_backend):
    torch.manual_seed(0)
    layer = LAYERS[kind]()
    size = 1 if "1x1" in kind else 9
    x = torch.randn(2, layer.in_channels, size, size, requires_grad=True)
    planned = cb.apply_plan(copy.deepcopy(layer), {"": (forward_backend, backward_backend)})
    assert type(planned) in (cb.PlannedConv2d, cb.PlannedConvTranspose2d)
    out = planned(x)
    grad_out = torch.randn_like(out)
    out.backward(grad_out)
    ref_out, ref_x, ref_w, ref_b = reference(layer, x, grad_out)
    torch.testing.assert_close(out.double(), ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), ref_x, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(planned.weight.grad.double(), ref_w, rtol=1e-5, atol=1e-5)
    if layer.bias is not None:
        torch.testing.assert_close(planned.bias.grad.double(), ref_b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("backward_backend", cb.BACKENDS)
def test_input_without_grad_and_frozen_weights(backward_backend):
    """A net's first layer (input needs no gradient) and D frozen during G's update (weights need
    none): the backward computes only what is asked, and agrees with the stock layer."""
    torch.manual_seed(1)
    stock = nn.Conv2d(3, 8, 4, stride=2, padding=1)
    planned = cb.apply_plan(copy.deepcopy(stock), {"": (cb.NATIVE, backward_backend)})
    x = torch.randn(1, 3, 16, 16)
    planned(x).square().sum().backward()
    stock(x).square().sum().backward()
    torch.testing.assert_close(planned.weight.grad, stock.weight.grad, rtol=1e-4, atol=1e-5)
    planned.requires_grad_(False)
    x.requires_grad_()
    planned(x).square().sum().backward()
    x_grad = x.grad.clone()
    x.grad = None
    stock.requires_grad_(False)
    stock(x).square().sum().backward()
    torch.testing.assert_close(x_grad, x.grad, rtol=1e-4, atol=1e-5)


def test_a_plan_keeps_parameters_state_dict_and_pickling():
    netG = define_G(3, 3, 8, "unet_128")
    before = {k: v.clone() for k, v in netG.state_dict().items()}
    plan = {name: (cb.NATIVE, cb.NATIVE) for name, _ in cb.convolutions(netG)}
    cb.apply_plan(netG, plan)
    assert list(netG.state_dict()) == list(before)
    assert all(torch.equal(v, before[k]) for k, v in netG.state_dict().items())
    convs = [m for m in netG.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == len(plan) and all(type(m).__name__.startswith("Planned") for m in convs)
    buffer = io.BytesIO()
    torch.save(netG, buffer)                             # the planned classes pickle
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert next(m for m in loaded.modules() if isinstance(m, nn.Conv2d)).forward_backend == cb.NATIVE
    copied = copy.deepcopy(netG)
    assert all(type(a) is type(b) for a, b in zip(copied.modules(), netG.modules()))
    cb.remove_plan(netG)
    assert all(type(m) in (nn.Conv2d, nn.ConvTranspose2d) for m in netG.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_under_bf16_autocast_a_planned_layer_is_the_stock_layer():
    torch.manual_seed(2)
    stock = nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1)
    planned = cb.apply_plan(copy.deepcopy(stock), {"": (cb.NATIVE, cb.NATIVE)})
    x = torch.randn(1, 8, 5, 5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        a, b = planned(x), stock(x)
    assert a.dtype == b.dtype == torch.bfloat16 and torch.equal(a, b)


def test_plans_for_other_layers_or_backends_are_refused():
    net = define_D(6, 8, "basic")
    with pytest.raises(ValueError, match="does not have"):
        cb.apply_plan(net, {"model.99": (cb.NATIVE, cb.NATIVE)})
    with pytest.raises(ValueError, match="must be one of"):
        cb.apply_plan(net, {"model.0": ("mkl", cb.NATIVE)})


def test_one_training_step_with_native_kernels_matches_onednn():
    """The whole pix2pix step (G, D, both updates) with every convolution on native kernels
    agrees with the stock step to float32 rounding (SGD: Adam would blow up the rounding of
    near-zero gradients into whole steps)."""
    nets = [tiny_nets(), tiny_nets()]
    for netG, netD in nets[1:]:
        for net in (netG, netD):
            cb.apply_plan(net, {name: (cb.NATIVE, cb.NATIVE) for name, _ in cb.convolutions(net)})
    results = []
    for netG, netD in nets:
        model = Pix2PixModel(netG, netD, torch.optim.SGD(netG.parameters(), lr=0.01),
                             torch.optim.SGD(netD.parameters(), lr=0.01))
        torch.manual_seed(5)                             # the same dropout masks
        losses = [model.train_step(batch(seed=s)) for s in range(2)]
        results.append((losses, netG.state_dict()))
    (stock_losses, stock_G), (native_losses, native_G) = results
    for a, b in zip(stock_losses, native_losses):
        assert a == pytest.approx(b, rel=1e-4, abs=1e-5)
    for key, value in stock_G.items():
        torch.testing.assert_close(native_G[key], value, rtol=1e-3, atol=1e-5)


def test_gradient_penalty_differentiates_through_planned_layers():
    """wgangp backpropagates D's input gradient (create_graph): the planned backward must itself
    be differentiable, with the stock layers' result."""
    torch.manual_seed(0)
    stock = define_D(6, 8, "basic", norm="none")
    planned = cb.apply_plan(copy.deepcopy(stock), {n: (cb.NATIVE, cb.NATIVE) for n, _ in cb.convolutions(stock)})
    real, fake = torch.randn(1, 6, 64, 64), torch.randn(1, 6, 64, 64)
    grads = []
    for net in (stock, planned):
        torch.manual_seed(1)                                # the same interpolation point
        penalty, _ = gradient_penalty(net, real, fake)
        penalty.backward()
        grads.append({n: p.grad for n, p in net.named_parameters() if p.grad is not None})
    assert set(grads[0]) == set(grads[1]) and len(grads[0]) >= 5
    for name, grad in grads[0].items():
        assert grad.abs().max() > 0 or name.endswith("bias"), name   # biases: zero a.e. (piecewise-linear D)
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-4, atol=1e-7)


def fake_timings(native_forward_ms, native_backward_ms):
    def measure(net, example, repeats):
        return {name: {("forward", cb.ONEDNN): 10.0, ("backward", cb.ONEDNN): 10.0,
                       ("forward", cb.NATIVE): native_forward_ms, ("backward", cb.NATIVE): native_backward_ms}
                for name, _ in cb.convolutions(net)}
    return measure


@pytest.mark.parametrize("native_ms,expected", [((5.0, 12.0), (cb.NATIVE, cb.ONEDNN)),
                                                ((9.7, 9.0), (cb.ONEDNN, cb.NATIVE)),
                                                ((10.0, 11.0), (cb.ONEDNN, cb.ONEDNN))])
def test_autotune_takes_native_kernels_only_when_clearly_faster(monkeypatch, native_ms, expected):
    monkeypatch.setattr(cb, "measure_in_net", fake_timings(*native_ms))
    net = define_D(6, 8, "basic")
    plan = cb.autotune(net, torch.zeros(1, 6, 64, 64), margin=0.05)
    assert plan == {name: expected for name, _ in cb.convolutions(net)}


def test_measuring_times_every_pass_and_disturbs_nothing():
    torch.manual_seed(0)
    netG = define_G(3, 3, 8, "unet_128", use_dropout=True)
    first = next(m for m in netG.modules() if isinstance(m, nn.Conv2d))
    cb.apply_plan(netG, {"model.model.0": (cb.NATIVE, cb.ONEDNN)})     # a plan already in place
    for p in netG.parameters():
        p.grad = torch.full_like(p, 7.0)
    state = {k: v.clone() for k, v in netG.state_dict().items()}      # incl. batch-norm running stats
    example = torch.randn(1, 3, 128, 128)
    rng = torch.get_rng_state()
    timings = cb.measure_in_net(netG, example, repeats=1)
    assert set(timings) == {name for name, _ in cb.convolutions(netG)}
    assert all(ms > 0 for t in timings.values() for ms in t.values())   # every pass ran, both ways
    assert all(torch.equal(v, state[k]) for k, v in netG.state_dict().items())
    assert all(torch.equal(p.grad, torch.full_like(p, 7.0)) for p in netG.parameters())
    assert torch.equal(torch.get_rng_state(), rng) and netG.training
    assert type(first) is cb.PlannedConv2d and (first.forward_backend, first.backward_backend) == (cb.NATIVE, cb.ONEDNN)
    others = [m for name, m in cb.convolutions(netG) if name != "model.model.0"]
    assert all(type(m) in (nn.Conv2d, nn.ConvTranspose2d) for m in others)


# ----------------------------------------------------------------------------- train.py
train = load_module("train")


@pytest.fixture(scope="module")
def dataroot(tmp_path_factory):
    return make_synthcity(tmp_path_factory.mktemp("synth") / "synthcity", num_train=2, num_val=1)


def run(dataroot, ckpt, *extra):
    return train.main(["--dataroot", dataroot, "--name", "run", "--checkpoints_dir", str(ckpt), *TINY_RUN,
                       "--n_epochs", "1", "--n_epochs_decay", "0", *extra])


def planned_backends(net):
    return {name: (m.forward_backend, m.backward_backend) if hasattr(m, "forward_backend") else None
            for name, m in cb.convolutions(net)}


def test_train_py_measures_stores_and_applies_a_plan(tmp_path, dataroot):
    model = run(dataroot, tmp_path, "--cpu_conv_plan", "auto")
    stored = json.loads((tmp_path / "run" / cb.PLAN_FILE).read_text())
    assert stored["threads"] == torch.get_num_threads() and set(stored["plans"]) == {"G", "D"}
    for name, net in model.networks().items():
        assert planned_backends(net) == {k: tuple(v) for k, v in stored["plans"][name].items()}


def test_train_py_by_default_leaves_the_stock_layers(tmp_path, dataroot):
    model = run(dataroot, tmp_path)                           # onednn: nothing timed, deterministic
    assert not (tmp_path / "run" / cb.PLAN_FILE).exists()
    assert all(v is None for net in model.networks().values() for v in planned_backends(net).values())


def test_train_py_takes_a_given_plan_file(tmp_path, dataroot):
    run(dataroot, tmp_path / "a", "--cpu_conv_plan", "auto")
    path = tmp_path / "a" / "run" / cb.PLAN_FILE
    plans = json.loads(path.read_text())
    plans["plans"]["G"] = {k: [cb.NATIVE, cb.ONEDNN] for k in plans["plans"]["G"]}
    path.write_text(json.dumps(plans))
    second = run(dataroot, tmp_path / "b", "--cpu_conv_plan", str(path))
    assert set(planned_backends(second.netG).values()) == {(cb.NATIVE, cb.ONEDNN)}


def test_train_py_refuses_a_missing_or_foreign_plan(tmp_path, dataroot):
    with pytest.raises(UserError, match="no such file"):
        run(dataroot, tmp_path, "--cpu_conv_plan", str(tmp_path / "nothing.json"))
    foreign = tmp_path / "foreign.json"
    cb.save_plan(str(foreign), {"G": {"model.model.0": (cb.NATIVE, cb.NATIVE)}, "D": {}})
    with pytest.raises(UserError, match="foreign.json: not a plan for these networks"):
        run(dataroot, tmp_path, "--cpu_conv_plan", str(foreign))
