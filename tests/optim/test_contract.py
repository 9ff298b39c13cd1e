"""The TR-specific contract: S = 1 is the base, λ = 0 is the sawtooth only, param groups, AdamW
anchors, params without grad, single pass == generic, bad values (torch's generic checks over all
classes: test_conformance.py). The single-pass kernels run eagerly here (same functions, no
compile: fast tests); test_compiled.py runs the real compile."""
import pytest
import torch

from pix2pix_tr.errors import UserError
from pix2pix_tr.optim import (OPTIMIZERS, TRAdam, TRSGD, TrajectoryRegularized, build_optimizer,
                              compiled_adam)


@pytest.fixture(autouse=True)
def eager_kernels(monkeypatch):
    monkeypatch.setattr(compiled_adam, "USE_COMPILE", False)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 2, 3))


def smooth_net(seed=0):
    """No bias in front of BatchNorm: such a bias has a gradient of pure rounding noise, which Adam
    amplifies to full steps, so two float orders of the same math would drift apart there."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, bias=False), torch.nn.BatchNorm2d(8),
                               torch.nn.ReLU(), torch.nn.Conv2d(8, 2, 3))


def assert_relclose(want, got, tol=1e-6):
    for x, y in zip(want, got):
        err = ((x - y).abs().max() / x.abs().max()).item()
        assert err <= tol, f"relative error {err:.2e}"


def batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 10, 10, generator=g) for _ in range(n)]


def train(net, opt, data, before_step=None):
    for n, x in enumerate(data):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        if before_step:
            before_step(n)
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


@pytest.mark.parametrize("fused", [None, True])
def test_s1_is_exactly_torch_adam(fused):
    """Generic path: over torch's default Adam (fused=None) or its fused kernel (fused=True)."""
    data = batches(6)
    a, b = tiny_net(), tiny_net()
    want = train(a, torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.5, 0.999), fused=fused), data)
    tr = TRAdam(b.parameters(), lr=1e-2, betas=(0.5, 0.999), tr_lambda=0.3, inner_steps=1,
                fused=fused)
    got = train(b, tr, data)
    assert not tr.compiled and all(torch.equal(x, y) for x, y in zip(want, got))


def test_s1_single_pass_is_torch_adam():
    data = batches(6)
    a, b = smooth_net(), smooth_net()
    want = train(a, torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.5, 0.999)), data)
    tr = TRAdam(b.parameters(), lr=1e-2, betas=(0.5, 0.999), tr_lambda=0.3, inner_steps=1,
                compiled=True)
    got = train(b, tr, data)
    assert tr.compiled
    assert_relclose(want, got)


def test_zero_lambda_leaves_only_the_sawtooth():
    data, S, lr = batches(9), 4, 1e-2
    a, b = tiny_net(), tiny_net()
    adam = torch.optim.Adam(a.parameters(), lr=lr)

    def sawtooth(n):
        adam.param_groups[0]["lr"] = lr / (n % S + 1)
    want = train(a, adam, data, sawtooth)
    got = train(b, TRAdam(b.parameters(), lr=lr, tr_lambda=0.0, inner_steps=S), data)
    assert all(torch.equal(x, y) for x, y in zip(want, got))


def test_param_groups_keep_their_own_lr_and_lambda():
    """A two-group TRAdam equals two single-group TRAdams (one per group) stepped together."""
    data = batches(7)
    a, b = tiny_net(), tiny_net()

    def split(net):
        return list(net[0].parameters()), [p for m in list(net)[1:] for p in m.parameters()]
    w, rest = split(a)
    grouped = TRAdam([{"params": w, "lr": 3e-2, "tr_lambda": 2.0},
                      {"params": rest, "tr_lambda_mode": "fixed"}],
                     lr=1e-2, tr_lambda=0.5, inner_steps=3, compiled=False)
    got = train(a, grouped, data)
    w, rest = split(b)
    only_w = TRAdam(w, lr=3e-2, tr_lambda=2.0, inner_steps=3, compiled=False)
    only_rest = TRAdam(rest, lr=1e-2, tr_lambda=0.5, inner_steps=3, tr_lambda_mode="fixed",
                       compiled=False)

    class Both:
        def zero_grad(self):
            b.zero_grad()

        def step(self):
            only_w.step()
            only_rest.step()
    want = train(b, Both(), data)
    assert all(torch.equal(x, y) for x, y in zip(got, want))
    assert grouped.param_groups[0]["tr_lr0"] == 3e-2 and grouped.param_groups[1]["tr_lr0"] == 1e-2
    # and the settings matter: one group with the defaults differs
    c = tiny_net()
    other = train(c, TRAdam(c.parameters(), lr=1e-2, tr_lambda=0.5, inner_steps=3, compiled=False), data)
    assert not torch.equal(other[0], got[0])


@pytest.mark.parametrize("base,compiled", [
    (torch.optim.AdamW, False),
    (torch.optim.AdamW, True),  # single pass, eager anchor copy (AdamW: weight decay)
    (torch.optim.Adam, True),   # single pass, anchor written by the k = 0 kernel
])
def test_adam_anchors_refresh_every_s_steps(base, compiled):
    net, S = tiny_net(), 3
    opt = TrajectoryRegularized(base(net.parameters(), lr=1e-2), tr_lambda=0.5, inner_steps=S,
                                compiled=compiled)
    assert opt.compiled == compiled and isinstance(opt, torch.optim.Optimizer)
    anchors = []
    for n, x in enumerate(batches(8)):
        opt.zero_grad()
        net(x).pow(2).mean().backward()
        start = [p.detach().clone() for p in net.parameters()]
        if n % S == 0:
            anchors = start
        opt.step()
        assert all(torch.equal(opt.state[p]["tr_anchor"], a)
                   for p, a in zip(net.parameters(), anchors))
    assert "exp_avg" in opt.state[next(net.parameters())]


SETTINGS = {  # the kernel variants of compiled_adam: plain/refresh, general, amsgrad
    "plain": dict(),
    "l2_amsgrad": dict(weight_decay=1e-3, amsgrad=True),
    "maximize": dict(maximize=True),
    "adamw": dict(adamw=True, weight_decay=1e-2),
}


def make_tr(params, compiled, adamw=False, **kw):
    if adamw:
        return TrajectoryRegularized(torch.optim.AdamW(params, lr=1e-2, betas=(0.5, 0.999), **kw),
                                     tr_lambda=1.0, inner_steps=4, compiled=compiled)
    return TRAdam(params, lr=1e-2, betas=(0.5, 0.999), tr_lambda=1.0, inner_steps=4, compiled=compiled,
                  **kw)


@pytest.mark.parametrize("setting", SETTINGS)
def test_single_pass_equals_generic_path_across_reload(setting):
    """Three cycles with an lr schedule and a state_dict round trip in the middle of a cycle."""
    data, kw = batches(12), SETTINGS[setting]
    results = []
    for compiled in (False, True):
        net = smooth_net()
        opt = make_tr(net.parameters(), compiled, **kw)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.8 ** e)
        loop = _Scheduled(opt, sched)
        train(net, loop, data[:6])
        opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
        opt = make_tr(net.parameters(), compiled, **kw)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.8 ** e)
        opt.load_state_dict(opt_sd)
        sched.load_state_dict(sched_sd)
        results.append((train(net, _Scheduled(opt, sched), data[6:]), opt))
    (want, generic), (got, single) = results
    assert not generic.compiled and single.compiled
    assert_relclose(want, got)
    same_format = [(k, v.dtype, v.device, v.shape) for k, v in generic.state_dict()["state"][0].items()]
    assert same_format == [(k, v.dtype, v.device, v.shape)
                           for k, v in single.state_dict()["state"][0].items()]
    assert single.state_dict()["state"][0]["step"].item() == 12


class _Scheduled:
    def __init__(self, opt, sched):
        self.opt, self.sched = opt, sched

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        self.opt.step()
        self.sched.step()


def test_the_compiled_pass_is_opt_in_and_auto_mode_picks_it_for_large_models(monkeypatch):
    params = list(tiny_net().parameters())
    assert not TRAdam(params, compiled=None).compiled  # tiny: no compile
    monkeypatch.setattr(compiled_adam, "COMPILE_MIN_NUMEL", 10)
    assert not TRAdam(params).compiled                 # the default: never, whatever the size
    opt = TRAdam(params, compiled=None)
    assert opt.compiled and not opt.base_optimizer.param_groups[0]["fused"]  # steps stay on the CPU
    trainer = build_optimizer("tradam", params, lr=2e-4, compiled=None)   # what train.py asks
    assert trainer.compiled and not trainer.base_optimizer.param_groups[0]["fused"]


def test_auto_mode_falls_back_when_compiling_fails(monkeypatch):
    monkeypatch.setattr(compiled_adam, "COMPILE_MIN_NUMEL", 10)
    monkeypatch.setattr(compiled_adam, "ensure_compiled", lambda *a: "no compiler")
    data = batches(6)
    a, b = smooth_net(), smooth_net()
    want = train(a, TRAdam(a.parameters(), lr=1e-2, compiled=False), data)
    auto = TRAdam(b.parameters(), lr=1e-2, compiled=None)
    with pytest.warns(RuntimeWarning, match="no compiler"):
        got = train(b, auto, data)
    assert not auto.compiled and all(torch.equal(x, y) for x, y in zip(want, got))
    forced = TRAdam(smooth_net().parameters(), lr=1e-2, compiled=True)
    with pytest.raises(RuntimeError, match="no compiler"):
        _one_step(forced)


def _one_step(opt):
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()


@pytest.mark.parametrize("compiled", [False, None, True])
def test_params_without_grad(compiled):
    torch.manual_seed(0)
    used, late, never = (torch.nn.Parameter(torch.randn(5)) for _ in range(3))
    opt = TRAdam([used, late, never], lr=1e-2, tr_lambda=0.5, inner_steps=4, compiled=compiled)
    never0 = never.detach().clone()
    for n in range(7):
        opt.zero_grad()
        loss = used.pow(2).sum() + (late.pow(2).sum() if n >= 2 else 0.0)
        loss.backward()
        start = late.detach().clone()
        opt.step()
        if n in (2, 4):  # first grad mid-cycle: anchored at its value then; refreshed at k = 0
            assert torch.equal(opt.state[late]["tr_anchor"], start)
        if n == 3:
            assert not torch.equal(late.detach(), start)
    assert torch.equal(never, never0) and never not in opt.state
    assert late.grad is not None and never.grad is None


def test_build_optimizer_names_and_defaults():
    assert OPTIMIZERS == ("adam", "tradam", "sgd", "trsgd")
    params = list(tiny_net().parameters())
    adam = build_optimizer("adam", params, lr=2e-4)
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.5, 0.999)
    tr = build_optimizer("tradam", params, lr=2e-4, tr_lambda=0.2, inner_steps=7,
                         tr_lambda_mode="released")
    g = tr.param_groups[0]
    assert isinstance(tr, TRAdam) and g["betas"] == (0.5, 0.999)
    assert (g["tr_lambda"], g["inner_steps"], g["tr_lambda_mode"]) == (0.2, 7, "released")
    sgd = build_optimizer("sgd", params, lr=1e-2)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.9
    trsgd = build_optimizer("trsgd", params, lr=1e-2)
    assert isinstance(trsgd, TRSGD) and trsgd.param_groups[0]["momentum"] == 0.9


@pytest.mark.parametrize("make", [  # the TR settings of every class: test_conformance.py
    lambda p: TRAdam(p, lr=0.0),
    lambda p: TRSGD(p, lr=-1.0),
    lambda p: TrajectoryRegularized(torch.optim.SGD(p, lr=0.1), compiled=True),
    lambda p: TRAdam([{"params": p, "inner_steps": 0}]),
    lambda p: build_optimizer("rmsprop", p, lr=1e-3),
    lambda p: build_optimizer("adam", p, lr=1e-3, beta1=1.0),
])
def test_bad_hyperparameters_raise_value_error(make):
    with pytest.raises(ValueError):
        make(list(tiny_net().parameters()))


def test_our_errors_are_user_errors_with_the_culprit():
    with pytest.raises(UserError, match="inner_steps"):
        TRAdam(tiny_net().parameters(), inner_steps=0)


def test_state_dict_restores_lr0_even_if_scheduler_changed_lr():
    net = tiny_net()
    opt = TRAdam(net.parameters(), lr=1e-2, inner_steps=4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5)
    train(net, opt, batches(3))
    sd = opt.state_dict()
    assert sd["param_groups"][0]["tr_step"] == 3 and sd["param_groups"][0]["tr_lr0"] == 1e-2
    assert "tr_anchor" in sd["state"][0]
    net2 = tiny_net()
    opt2 = TRAdam(net2.parameters(), lr=2e-2, inner_steps=4)
    torch.optim.lr_scheduler.LambdaLR(opt2, lambda e: 0.5)
    opt2.load_state_dict(sd)
    assert opt2.param_groups[0]["tr_lr0"] == 1e-2 and opt2.param_groups[0]["tr_step"] == 3
    assert opt2.state is opt2.base_optimizer.state
    del sched


def test_build_optimizer_gives_fused_adam_where_the_kernel_supports_it():
    """torch's own Adam default on CPU is the per-tensor loop; the trainer's adam must be compiled."""
    from pix2pix_tr.optim import build_optimizer
    params = [torch.nn.Parameter(torch.randn(3, 2))]
    assert build_optimizer("adam", params, lr=2e-4).param_groups[0]["fused"] is True
    assert build_optimizer("adam", params, lr=2e-4, fused=False).param_groups[0]["fused"] is None
