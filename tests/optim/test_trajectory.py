"""TRAdam / TRSGD trajectories against an independent float64 (numpy) restatement of the update.

The reference below is written from the formulas (issue 2 / the class docstrings), not from the
code: anchor at k = n mod S == 0, gradient + 2·λ_n·(θ − anchor), base step with lr_n/(k+1), Adam's
moments and bias corrections on the global step. The optimizers run in float64, so agreement is
at rounding level and the 1e-6 relative bound has room. compiled=True is the single-pass path, its
kernels run eagerly here (the same functions; test_optim_compiled.py covers the real compile).
"""
import numpy as np
import pytest
import torch

from pix2pix_tr.optim import TRAdam, TRSGD, compiled_adam


@pytest.fixture(autouse=True, params=["per-parameter", "bucketed"])
def eager_kernels(monkeypatch, request):
    """The single-pass kernels run eagerly, laid out as on a CPU (a call per parameter) and as on
    a GPU (a call per bucket, the anchor refresh a separate multi-tensor copy)."""
    monkeypatch.setattr(compiled_adam, "USE_COMPILE", False)
    monkeypatch.setattr(compiled_adam, "GROUP_DEVICE_TYPES",
                        {"cpu"} if request.param == "bucketed" else set())

SHAPES = [(4, 3), (5,)]
STEPS = 14


def lr_factor(n):
    """LambdaLR factor for step n (already 0.5 at construction, so lr₀ ≠ lr_0 matters)."""
    return 0.5 * 0.7 ** (n // 4)


def problem(seed=0):
    rng = np.random.RandomState(seed)
    theta0 = [rng.randn(*s) for s in SHAPES]
    target = [rng.randn(*s) for s in SHAPES]
    curv = [rng.uniform(0.5, 3.0, size=s) for s in SHAPES]
    noise = [[rng.randn(*s) for s in SHAPES] for _ in range(STEPS)]

    def grad(theta, n):  # ∇ of Σ c·(θ − target)² plus a fixed noise draw per step
        return [2 * c * (x - t_) + e for t_, x, c, e in zip(target, theta, curv, noise[n])]
    return theta0, grad


def lam_of(mode, lam, lr0, lr_n):
    return {"scaled": lam * lr0 / lr_n, "fixed": lam, "released": lam / lr_n}[mode]


def reference(kind, theta0, grad, *, lr0, lam, S, mode, betas=(0.5, 0.999), eps=1e-8,
              momentum=0.9, released_eps=False, inner_lr_decay=True):
    theta = [t.copy() for t in theta0]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    buf = None
    traj = []
    for n in range(STEPS):
        k = n % S
        lr_n = lr0 * lr_factor(n)
        if k == 0:
            anchor = [t.copy() for t in theta]
        lam_n = lam_of(mode, lam, lr0, lr_n)
        g = [gi + 2 * lam_n * (t - a) for gi, t, a in zip(grad(theta, n), theta, anchor)]
        step = lr_n / (k + 1) if inner_lr_decay else lr_n
        if kind == "adam":
            b1, b2 = betas
            t_ = n + 1
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
            if released_eps:  # the released code: sqrt(v) + eps, bias correction in the step size
                size = step * np.sqrt(1 - b2 ** t_) / (1 - b1 ** t_)
                theta = [t - size * mi / (np.sqrt(vi) + eps) for t, mi, vi in zip(theta, m, v)]
            else:
                theta = [t - step * (mi / (1 - b1 ** t_)) / (np.sqrt(vi / (1 - b2 ** t_)) + eps)
                         for t, mi, vi in zip(theta, m, v)]
        else:
            buf = [gi.copy() for gi in g] if buf is None else [
                momentum * b + gi for b, gi in zip(buf, g)]
            theta = [t - step * b for t, b in zip(theta, buf)]
        traj.append([t.copy() for t in theta])
    return traj


def build(kind, params, *, lr0, lam, S, mode, compiled, eps=1e-8, inner_lr_decay=True):
    if kind == "adam":
        return TRAdam(params, lr=lr0, betas=(0.5, 0.999), eps=eps, tr_lambda=lam, inner_steps=S,
                      tr_lambda_mode=mode, inner_lr_decay=inner_lr_decay, compiled=compiled)
    return TRSGD(params, lr=lr0, momentum=0.9, tr_lambda=lam, inner_steps=S, tr_lambda_mode=mode,
                 inner_lr_decay=inner_lr_decay)


def run(kind, theta0, grad, *, lr0, lam, S, mode, compiled, reload_at=None, eps=1e-8,
        inner_lr_decay=True):
    """Drive the optimizer with a LambdaLR; at `reload_at` rebuild everything from state dicts."""
    def fresh(values):
        params = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in values]
        opt = build(kind, params, lr0=lr0, lam=lam, S=S, mode=mode, compiled=compiled, eps=eps,
                    inner_lr_decay=inner_lr_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        return params, opt, sched

    params, opt, sched = fresh(theta0)
    traj = []
    for n in range(STEPS):
        if n == reload_at:
            opt_sd, sched_sd = opt.state_dict(), sched.state_dict()
            params, opt, sched = fresh([p.detach().numpy() for p in params])
            opt.load_state_dict(opt_sd)
            sched.load_state_dict(sched_sd)
        grads = grad([p.detach().numpy() for p in params], n)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        before = [p.grad.clone() for p in params]
        opt.step()
        sched.step()
        assert all(torch.equal(b, p.grad) for b, p in zip(before, params)), "p.grad was modified"
        traj.append([p.detach().numpy().copy() for p in params])
    return traj


def assert_close(traj, ref, tol=1e-6):
    for n, (got, want) in enumerate(zip(traj, ref)):
        for g, w in zip(got, want):
            err = np.max(np.abs(g - w)) / np.max(np.abs(w))
            assert err <= tol, f"step {n}: relative error {err:.2e}"


CASES = [  # (kind, mode, S, lam, compiled)
    ("adam", "scaled", 3, 0.1, False),
    ("adam", "scaled", 5, 1.0, True),
    ("adam", "fixed", 4, 0.5, False),
    ("adam", "fixed", 3, 2.0, True),
    ("adam", "released", 3, 1e-3, False),
    ("adam", "released", 4, 1e-2, True),
    ("sgd", "scaled", 3, 0.1, None),
    ("sgd", "fixed", 5, 1.0, None),
    ("sgd", "released", 4, 1e-3, None),
]


@pytest.mark.parametrize("kind,mode,S,lam,compiled", CASES)
def test_trajectory_matches_reference_across_reload(kind, mode, S, lam, compiled):
    theta0, grad = problem()
    lr0 = 0.05 if kind == "adam" else 0.02
    ref = reference(kind, theta0, grad, lr0=lr0, lam=lam, S=S, mode=mode)
    reload_at = S + 2  # in the middle of the second cycle
    traj = run(kind, theta0, grad, lr0=lr0, lam=lam, S=S, mode=mode, compiled=compiled,
               reload_at=reload_at)
    assert_close(traj, ref)
    # the prox term and the schedule matter: plain Adam/SGD would be far off
    plain = reference(kind, theta0, grad, lr0=lr0, lam=0.0, S=1, mode="fixed")
    assert np.max(np.abs(plain[-1][0] - ref[-1][0])) > 1e-3


@pytest.mark.parametrize("compiled", [False, True])
def test_released_mode_with_zero_eps_is_the_released_step(compiled):
    """With ε = 0 the released code's form (√v + ε, bias correction in the step size) coincides."""
    theta0, grad = problem(1)
    ref = reference("adam", theta0, grad, lr0=0.05, lam=1e-3, S=4, mode="released", eps=0.0,
                    released_eps=True)
    traj = run("adam", theta0, grad, lr0=0.05, lam=1e-3, S=4, mode="released", compiled=compiled, eps=0.0)
    assert_close(traj, ref)


@pytest.mark.parametrize("kind,compiled", [("adam", False), ("adam", True), ("sgd", None)])
def test_without_inner_lr_decay_only_the_proximal_term_remains(kind, compiled):
    """inner_lr_decay=False (the 'no sawtooth' ablation): base step size lr_n throughout."""
    theta0, grad = problem(2)
    lr0 = 0.05 if kind == "adam" else 0.02
    ref = reference(kind, theta0, grad, lr0=lr0, lam=0.5, S=4, mode="fixed", inner_lr_decay=False)
    traj = run(kind, theta0, grad, lr0=lr0, lam=0.5, S=4, mode="fixed", compiled=compiled,
               reload_at=6, inner_lr_decay=False)
    assert_close(traj, ref)
    sawtooth = reference(kind, theta0, grad, lr0=lr0, lam=0.5, S=4, mode="fixed")
    assert np.max(np.abs(sawtooth[-1][0] - ref[-1][0])) > 1e-3


@pytest.mark.parametrize("mode", ["scaled", "released"])
@pytest.mark.parametrize("compiled", [False, True])
def test_a_schedule_at_lr_zero_moves_nothing_and_keeps_the_state_finite(mode, compiled):
    """The linear policy ends at lr 0; λ_n = λ·lr₀/lr_n would be infinite there. The step must move
    no parameter, leave every state tensor finite, and training must go on once lr is back up."""
    params = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True)]
    opt = TRAdam(params, lr=0.01, tr_lambda=0.1, inner_steps=3, tr_lambda_mode=mode, compiled=compiled)
    for n in range(5):
        params[0].grad = torch.randn(4, 3, dtype=torch.float64)
        if n == 2:
            opt.param_groups[0]["lr"] = 0.0
            before = params[0].detach().clone()
        opt.step()
        if n == 2:
            assert torch.equal(params[0].detach(), before)
            opt.param_groups[0]["lr"] = 0.01
        state = opt.state[params[0]]
        assert all(torch.isfinite(t).all() for t in (state["exp_avg"], state["exp_avg_sq"], params[0]))
