"""The generic checks of torch's optimizer suite (test/optim/test_optim.py with OptimizerInfo in
torch/testing/_internal/common_optimizers.py) and of pytorch_optimizer's
(tests/test_general_optimizer_parameters.py, tests/test_optimizers.py), restated here, table-driven
over the three TR classes: TRAdam (generic path and single pass, its kernels run eagerly here),
TRSGD and TrajectoryRegularized around another base (AdamW). The GradScaler check for the TR
classes lives here; test_contract.py keeps the TR-specific contract."""
import copy
import io
import pickle

import pytest
import torch

from pix2pix_tr.optim import TRAdam, TRSGD, TrajectoryRegularized, compiled_adam

# name -> (class, its lr/base settings): TRAdam/TRSGD build their base; a torch class gets wrapped
INFOS = {"TRAdam": (TRAdam, dict(lr=1e-2)),
         "TRAdam(compiled)": (TRAdam, dict(lr=1e-2, compiled=True)),
         "TRSGD": (TRSGD, dict(lr=1e-2, momentum=0.9)),
         "TR(AdamW)": (torch.optim.AdamW, dict(lr=1e-2))}
TR = dict(tr_lambda=0.5, inner_steps=3)
by_info = pytest.mark.parametrize("name", INFOS)


@pytest.fixture(autouse=True)
def eager_kernels(monkeypatch):  # the single-pass kernels run eagerly (test_compiled.py compiles)
    monkeypatch.setattr(compiled_adam, "USE_COMPILE", False)


def make(name, params, tr=None, **base_kw):
    cls, kw = INFOS[name]
    kw, tr = {**kw, **base_kw}, {**TR, **(tr or {})}
    if issubclass(cls, TrajectoryRegularized):
        return cls(params, **kw, **tr)
    return TrajectoryRegularized(cls(params, **kw), **tr)


def new_params(dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(4, 3, generator=g).to(dtype).requires_grad_(),
            torch.randn(5, generator=g).to(dtype).requires_grad_()]


def run(opt, params, steps, sign=1.0):
    """`steps` steps on a fixed smooth loss (each step's gradient depends on the params only)."""
    for _ in range(steps):
        opt.zero_grad()
        (sign * sum((p - 1).abs().pow(3).sum() for p in params)).backward()
        opt.step()
    return [p.detach().clone() for p in params]


def equal(xs, ys):
    return all(torch.equal(x, y) for x, y in zip(xs, ys))


@by_info
def test_state_dict_round_trip_mid_cycle(name):
    """torch: test_state_dict_deterministic / test_load_nontensor_step, here in the middle of a cycle."""
    params = new_params()
    opt = make(name, params)
    run(opt, params, 4)                                   # S = 3: k = 1 next
    clones = [p.detach().clone().requires_grad_() for p in params]
    other = make(name, clones, tr=dict(tr_lambda=9.0), lr=1.0)  # settings the load must replace
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    assert other.state is other.base_optimizer.state
    assert other.param_groups is other.base_optimizer.param_groups
    assert equal(run(opt, params, 5), run(other, clones, 5))


@by_info
@pytest.mark.parametrize("how", ["deepcopy", "pickle", "torch.save"])
def test_copies_step_like_the_original(name, how):
    """Issue 26.1; torch: test_deepcopy_copies_all_public_attrs, multiprocessing pickling."""
    params = new_params()
    opt = make(name, params)
    run(opt, params, 2)
    if how == "deepcopy":
        params2, opt2 = copy.deepcopy((params, opt))
    elif how == "pickle":
        params2, opt2 = pickle.loads(pickle.dumps((params, opt)))
    else:
        buf = io.BytesIO()
        torch.save((params, opt), buf)
        buf.seek(0)
        params2, opt2 = torch.load(buf, weights_only=False)
    assert type(opt2) is type(opt) and opt2.state is opt2.base_optimizer.state
    assert opt2.param_groups is opt2.base_optimizer.param_groups
    assert opt2.param_groups[0]["params"][0] is params2[0]
    assert equal(run(opt, params, 4), run(opt2, params2, 4))


@by_info
def test_step_hooks_fire_once_in_torch_order(name):
    """Issue 26.2; torch: test_step_all_hooks (global pre 0, pre 1, post 2, global post 5)."""
    from torch.optim.optimizer import (register_optimizer_step_post_hook,
                                       register_optimizer_step_pre_hook)
    params = new_params()
    opt = make(name, params)
    calls = []

    def hook(tag):
        return lambda optimizer, args, kwargs: calls.append((tag, optimizer))
    handles = [register_optimizer_step_pre_hook(hook(0)), opt.register_step_pre_hook(hook(1)),
               opt.register_step_post_hook(hook(2)), register_optimizer_step_post_hook(hook(5))]
    try:
        run(opt, params, 2)
    finally:
        for h in handles:
            h.remove()
    assert [tag for tag, _ in calls] == [0, 1, 2, 5] * 2
    assert all(o is opt for _, o in calls)


@by_info
def test_state_dict_hooks_fire_once(name):
    """torch: test_state_dict_pre_hook / post hook / load_state_dict pre and post hooks."""
    params = new_params()
    opt = make(name, params)
    run(opt, params, 1)
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append(("pre", o)))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append(("post", o)))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append(("load_pre", o)))
    opt.register_load_state_dict_post_hook(lambda o: calls.append(("load_post", o)))
    opt.load_state_dict(opt.state_dict())
    assert calls == [("pre", opt), ("post", opt), ("load_pre", opt), ("load_post", opt)]


@by_info
def test_grad_scaler_skips_a_step_whole(name):
    """torch: test_grad_scaler (an inf gradient skips the step: no move, k not advanced)."""
    params = new_params()
    opt = make(name, params)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 8)
    for n in range(4):
        opt.zero_grad()
        scaler.scale(sum((p - 1).pow(2).sum() for p in params) * (float("inf") if n == 1 else 1)).backward()
        before = [p.detach().clone() for p in params]
        scaler.step(opt)
        scaler.update()
        assert equal(before, params) == (n == 1)
    assert opt.param_groups[0]["tr_step"] == 3


@by_info
def test_maximize_is_minimizing_the_negated_loss(name):
    """torch: test_maximize (the pull stays towards the anchor either way)."""
    a, b = new_params(), new_params()
    assert equal(run(make(name, a, maximize=True), a, 5, sign=-1.0), run(make(name, b), b, 5))


@by_info
def test_complex_params_step_as_their_real_view(name):
    """torch: test_complex (a complex parameter steps as torch.view_as_real of it would)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, dtype=torch.complex64, generator=g).requires_grad_()
    r = torch.view_as_real(z.detach()).clone().requires_grad_()
    opt_z, opt_r = make(name, [z]), make(name, [r])
    for n in range(5):
        grad = torch.randn(4, 3, 2, generator=g)
        z.grad, r.grad = torch.view_as_complex(grad.clone()), grad.clone()
        opt_z.step()
        opt_r.step()
    torch.testing.assert_close(torch.view_as_real(z.detach()), r.detach())


@by_info
def test_bfloat16_params_keep_their_dtype(name):
    """torch: test_mixed_device_dtype / pytorch_optimizer's bf16 runs: state in the param's dtype."""
    params = new_params(torch.bfloat16)
    start = [p.detach().clone() for p in params]
    opt = make(name, params)
    end = run(opt, params, 4)
    assert all(opt.state[p]["tr_anchor"].dtype == torch.bfloat16 for p in params)
    assert all(torch.isfinite(x.float()).all() and not torch.equal(x, s) for x, s in zip(end, start))


@by_info
def test_sparse_gradients_are_refused(name):
    """torch: test_errors (sparse gradients on an optimizer without sparse support)."""
    params = new_params()
    opt = make(name, params)
    params[1].grad = torch.ones(5).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()


@by_info
@pytest.mark.parametrize("tr", [dict(tr_lambda=-1), dict(tr_lambda=float("nan")),
                                dict(inner_steps=0), dict(inner_steps=2.5),
                                dict(tr_lambda_mode="bogus"), dict(inner_lr_decay=1)])
def test_invalid_settings_raise_value_error_before_the_base_is_built(name, tr):
    """Issue 26.5; pytorch_optimizer: optimizer(None, lr=-1) and friends raise ValueError."""
    with pytest.raises(ValueError):
        make(name, new_params(), tr=tr)
    with pytest.raises(ValueError):
        make(name, new_params(), tr=dict(tr_lambda_mode="bogus"), lr=0.0)
    if INFOS[name][0] in (TRAdam, TRSGD):  # the class builds the base: no params looked at
        with pytest.raises(ValueError):
            make(name, None, tr=tr)
        with pytest.raises(ValueError):
            make(name, None, lr=-1.0)


@by_info
def test_zero_grad(name):
    params = new_params()
    opt = make(name, params)
    run(opt, params, 1)
    opt.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@by_info
def test_add_param_group(name):
    """torch: test_add_param_group (its own settings; checked; the base sees it; duplicates refused)."""
    params = new_params()
    opt = make(name, params[:1])
    opt.add_param_group({"params": [params[1]], "tr_lambda": 2.0})
    assert opt.param_groups is opt.base_optimizer.param_groups and len(opt.param_groups) == 2
    assert opt.param_groups[1]["tr_lambda"] == 2.0 and opt.param_groups[1]["inner_steps"] == 3
    start = params[1].detach().clone()
    run(opt, params, 2)
    assert not torch.equal(params[1], start) and "tr_anchor" in opt.state[params[1]]
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [torch.zeros(2, requires_grad=True)], "inner_steps": 0})
    with pytest.raises(ValueError):
        opt.add_param_group({"params": [params[1]]})


@by_info
def test_step_with_closure_returns_its_loss(name):
    params = new_params()
    opt = make(name, params)

    def closure():
        opt.zero_grad()
        loss = sum(p.pow(2).sum() for p in params)
        loss.backward()
        return loss
    want = sum(p.pow(2).sum() for p in new_params()).item()
    assert opt.step(closure).item() == pytest.approx(want)


WRAPPABLE = {  # torch.optim bases TR can wrap (the docs list these)
    "SGD": dict(momentum=0.9), "Adam": {}, "AdamW": {}, "Adagrad": {}, "Adadelta": {},
    "Adamax": {}, "NAdam": {}, "RAdam": {}, "RMSprop": {}, "Rprop": {}, "ASGD": {},
    "Adafactor": {}, "Muon": {}}


@pytest.mark.parametrize("base", WRAPPABLE)
def test_each_wrappable_base_with_s1_is_the_base(base):
    """S = 1 is exactly the base; with S = 3 the pull changes the trajectory."""
    cls, kw = getattr(torch.optim, base), dict(lr=1e-2, **WRAPPABLE[base])
    a, b, c = ([new_params()[0]] for _ in range(3))  # one 2-D parameter (Muon takes only those)
    want = run(cls(a, **kw), a, 5)
    assert equal(run(TrajectoryRegularized(cls(b, **kw), tr_lambda=0.5, inner_steps=1), b, 5), want)
    tr = run(TrajectoryRegularized(cls(c, **kw), tr_lambda=50.0, inner_steps=3), c, 5)
    assert torch.isfinite(tr[0]).all() and not torch.equal(tr[0], want[0])


@pytest.mark.parametrize("make_base,culprit", [
    (lambda p: torch.optim.LBFGS(p), "closure"),              # issue 26.4
    (lambda p: torch.optim.SparseAdam(p), "dense"),            # issue 26.4
    (lambda p: torch.optim.Adam(p, differentiable=True), "differentiable"),  # issue 26.3
    (lambda p: TRAdam(p), "already"),
])
def test_bases_tr_cannot_drive_are_refused_in_one_line(make_base, culprit):
    with pytest.raises(ValueError, match=culprit):
        TrajectoryRegularized(make_base(new_params()))


def test_a_differentiable_group_added_later_is_refused():
    opt = make("TR(AdamW)", new_params()[:1])
    with pytest.raises(ValueError, match="differentiable"):
        opt.add_param_group({"params": new_params(seed=1)[:1], "differentiable": True})
