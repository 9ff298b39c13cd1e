"""The torch.optim contract of the TR optimizers: S = 1 is the base, λ = 0 is the sawtooth only,
GradScaler skips, param groups, AdamW anchors, params without grad, fused == generic, bad values."""
import pytest
import torch

from pix2pix_tr.errors import UserError
from pix2pix_tr.optim import (OPTIMIZERS, TRAdam, TRSGD, TrajectoryRegularized, build_optimizer)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 2, 3))


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


@pytest.mark.parametrize("fused", [False, True])
def test_s1_is_exactly_torch_adam(fused):
    data = batches(6)
    a, b = tiny_net(), tiny_net()
    want = train(a, torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.5, 0.999), fused=fused or None),
                 data)
    got = train(b, TRAdam(b.parameters(), lr=1e-2, betas=(0.5, 0.999), tr_lambda=0.3,
                          inner_steps=1, fused=fused), data)
    assert all(torch.equal(x, y) for x, y in zip(want, got))


def test_s1_is_exactly_torch_sgd():
    data = batches(6)
    a, b = tiny_net(), tiny_net()
    want = train(a, torch.optim.SGD(a.parameters(), lr=1e-2, momentum=0.9), data)
    got = train(b, TRSGD(b.parameters(), lr=1e-2, momentum=0.9, tr_lambda=0.3, inner_steps=1), data)
    assert all(torch.equal(x, y) for x, y in zip(want, got))


def test_zero_lambda_leaves_only_the_sawtooth():
    data, S, lr = batches(9), 4, 1e-2
    a, b = tiny_net(), tiny_net()
    adam = torch.optim.Adam(a.parameters(), lr=lr, fused=True)

    def sawtooth(n):
        adam.param_groups[0]["lr"] = lr / (n % S + 1)
    want = train(a, adam, data, sawtooth)
    got = train(b, TRAdam(b.parameters(), lr=lr, tr_lambda=0.0, inner_steps=S, fused=True), data)
    assert all(torch.equal(x, y) for x, y in zip(want, got))


@pytest.mark.parametrize("fused", [False, True])
def test_grad_scaler_skip_does_not_advance_k(fused):
    net = tiny_net()
    opt = TRAdam(net.parameters(), lr=1e-2, inner_steps=3, fused=fused)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    for n, x in enumerate(batches(5)):
        opt.zero_grad()
        loss = net(x).pow(2).mean()
        scaler.scale(loss * (float("inf") if n == 2 else 1.0)).backward()
        before = [p.detach().clone() for p in net.parameters()]
        scaler.step(opt)
        scaler.update()
        skipped = n == 2
        assert opt.param_groups[0]["tr_step"] == (n if skipped else n + 1) - (n > 2)
        assert all(torch.equal(b, p) for b, p in zip(before, net.parameters())) == skipped
    assert opt.param_groups[0]["tr_step"] == 4


def test_param_groups_keep_their_own_lr_and_lambda():
    """A two-group TRAdam equals two single-group TRAdams (one per group) stepped together."""
    data = batches(7)
    a, b = tiny_net(), tiny_net()

    def split(net):
        return list(net[0].parameters()), [p for m in list(net)[1:] for p in m.parameters()]
    w, rest = split(a)
    grouped = TRAdam([{"params": w, "lr": 3e-2, "tr_lambda": 2.0},
                      {"params": rest, "tr_lambda_mode": "fixed"}],
                     lr=1e-2, tr_lambda=0.5, inner_steps=3, fused=False)
    got = train(a, grouped, data)
    w, rest = split(b)
    only_w = TRAdam(w, lr=3e-2, tr_lambda=2.0, inner_steps=3, fused=False)
    only_rest = TRAdam(rest, lr=1e-2, tr_lambda=0.5, inner_steps=3, tr_lambda_mode="fixed",
                       fused=False)

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
    other = train(c, TRAdam(c.parameters(), lr=1e-2, tr_lambda=0.5, inner_steps=3, fused=False), data)
    assert not torch.equal(other[0], got[0])


@pytest.mark.parametrize("fused", [False, True])
def test_adamw_anchors_refresh_every_s_steps(fused):
    net, S = tiny_net(), 3
    opt = TrajectoryRegularized(torch.optim.AdamW(net.parameters(), lr=1e-2, fused=fused or None),
                                tr_lambda=0.5, inner_steps=S)
    assert opt.fused == fused and isinstance(opt, torch.optim.Optimizer)
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


def test_fused_equals_generic_path():
    data = batches(12)
    a, b = tiny_net(), tiny_net()
    plain = TRAdam(a.parameters(), lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3, amsgrad=True,
                   tr_lambda=1.0, inner_steps=5, fused=False)
    fused = TRAdam(b.parameters(), lr=1e-2, betas=(0.5, 0.999), weight_decay=1e-3, amsgrad=True,
                   tr_lambda=1.0, inner_steps=5, fused=True)
    want, got = train(a, plain, data), train(b, fused, data)
    for x, y in zip(want, got):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-6), (x - y).abs().max()
    assert not plain.fused and fused.fused


def test_fused_blocks_split_tensors_exactly():
    """Block size does not change the result (blocks cut tensors and pack several per call)."""
    from pix2pix_tr.optim import fused_adam
    data = batches(7)
    results = []
    for block in (None, 37):
        net = tiny_net()
        opt = TRAdam(net.parameters(), lr=1e-2, tr_lambda=1.0, inner_steps=4, fused=True)
        old = dict(fused_adam.CHUNK_NUMEL)
        if block:
            fused_adam.CHUNK_NUMEL["cpu"] = block
        try:
            results.append(train(net, opt, data))
        finally:
            fused_adam.CHUNK_NUMEL.clear()
            fused_adam.CHUNK_NUMEL.update(old)
    assert all(torch.allclose(x, y, rtol=1e-6, atol=1e-7) for x, y in zip(*results))


@pytest.mark.parametrize("fused", [False, True])
def test_params_without_grad(fused):
    torch.manual_seed(0)
    used, late, never = (torch.nn.Parameter(torch.randn(5)) for _ in range(3))
    opt = TRAdam([used, late, never], lr=1e-2, tr_lambda=0.5, inner_steps=4, fused=fused)
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


@pytest.mark.parametrize("make", [
    lambda p: TRAdam(p, tr_lambda=-0.1),
    lambda p: TRAdam(p, tr_lambda=float("nan")),
    lambda p: TRAdam(p, inner_steps=0),
    lambda p: TRAdam(p, inner_steps=2.5),
    lambda p: TRAdam(p, tr_lambda_mode="bogus"),
    lambda p: TRAdam(p, lr=0.0),
    lambda p: TRSGD(p, lr=-1.0),
    lambda p: TrajectoryRegularized(torch.optim.SGD(p, lr=0.1), fused=True),
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
    """torch's own Adam default on CPU is the per-tensor loop; the trainer's adam must be fused."""
    from pix2pix_tr.optim import build_optimizer
    params = [torch.nn.Parameter(torch.randn(3, 2))]
    assert build_optimizer("adam", params, lr=2e-4).param_groups[0]["fused"] is True
    assert build_optimizer("adam", params, lr=2e-4, fused=False).param_groups[0]["fused"] is None
