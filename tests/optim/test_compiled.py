"""The real torch.compile of the single-pass TRAdam step (compiled_adam.py), once, on a tiny model:
it equals the generic path to 1e-6 relative over three cycles with an lr that changes every step,
across a state_dict round trip, and it never recompiles (one graph per kernel, whatever the tensor
shapes, lr, prox coefficient or step count). The model has a channels_last weight and a
one-element parameter, so the layout and size special cases run too. Other tests run the same
kernels eagerly (test_contract.py, test_trajectory.py).
"""
import pytest
import torch
from torch._dynamo.utils import counters

from pix2pix_tr.optim import TRAdam, compiled_adam


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, bias=False).to(memory_format=torch.channels_last)
        self.head = torch.nn.Conv2d(6, 2, 1)
        self.gain = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.gain * self.head(torch.tanh(self.conv(x)))


def run(compiled, data, reload_at):
    net = Tiny()

    def build():
        opt = TRAdam(net.parameters(), lr=1e-2, betas=(0.5, 0.999), tr_lambda=1.0, inner_steps=3,
                     compiled=compiled)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.9 ** e)
    opt, sched = build()
    for n, x in enumerate(data):
        if n == reload_at:
            opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
            opt, sched = build()
            opt.load_state_dict(opt_sd)
            sched.load_state_dict(sched_sd)
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        opt.step()
        sched.step()
    return [p.detach().clone() for p in net.parameters()], opt


def fresh_compiles_and_data(seed):
    """No compiled kernel, compile check or dynamo counter left from other tests; 9 inputs."""
    torch._dynamo.reset()
    compiled_adam._COMPILED.clear()
    compiled_adam._READY.clear()
    counters.clear()
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 8, 8, generator=g) for _ in range(9)]


def assert_same_trained_weights(want, got):
    for x, y in zip(want, got):
        assert ((x - y).abs().max() / x.abs().max()).item() <= 1e-6
    assert all(not torch.equal(p, q) for p, q in zip(Tiny().parameters(), got))  # it trained


@pytest.mark.slow                 # inductor compiles C++ kernels: ~17 s with a cold cache
def test_compiled_step_equals_generic_and_compiles_once():
    data = fresh_compiles_and_data(1)
    want, generic = run(False, data, reload_at=4)
    with torch._dynamo.config.patch(error_on_recompile=True):
        got, single = run(True, data, reload_at=4)
    assert single.compiled and not generic.compiled
    assert set(compiled_adam._READY.values()) == {None}
    assert counters["stats"]["unique_graphs"] == 2  # the regular and the k = 0 kernel, once each
    assert_same_trained_weights(want, got)
    a, b = generic.state_dict()["state"], single.state_dict()["state"]
    assert all(a[i].keys() == b[i].keys() and torch.equal(a[i]["step"], b[i]["step"]) for i in a)


@pytest.mark.slow
def test_bucketed_gpu_path_equals_generic_and_compiles_once_per_variant(monkeypatch):
    """The GPU layout of the same step (one compiled call per bucket of parameters, see
    compiled_adam.GROUP_DEVICE_TYPES), run here on the CPU: same trajectory as the generic path;
    one graph for the compile check and one for the real parameter list (the k = 0 anchor copy is
    a separate multi-tensor copy), and no recompile as lr, the prox coefficient and the step count
    change or the optimizer is rebuilt."""
    monkeypatch.setattr(compiled_adam, "GROUP_DEVICE_TYPES", {"cpu"})
    monkeypatch.setattr(compiled_adam, "_COMPILED", {})
    data = fresh_compiles_and_data(2)
    want, generic = run(False, data, reload_at=4)
    got, bucketed = run(True, data, reload_at=4)
    assert bucketed.compiled and set(compiled_adam._READY.values()) == {None}
    assert counters["stats"]["unique_graphs"] == 2   # the check's and the real list's
    assert_same_trained_weights(want, got)
