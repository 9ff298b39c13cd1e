"""The CUDA paths, run only where a GPU is: TRAdam's three step paths on the GPU against the float64
restatement of test_optim_trajectory.py, the training step on the GPU against the same step on the
CPU (fp32), the bf16 autocast + channels_last step, the confusion matrix built on the GPU, and
train.py end to end with --device cuda (fcn_score.py and test.py run on the GPU through their own
suites, whose default device becomes cuda: `scripts/gpu_check.sh tests` runs both). CI has no GPU:
there these tests are skipped (they cover hardware, not a missing feature).
"""
import copy
import json
import math

import numpy as np
import pytest
import torch

from evaluate.metrics import ConfusionMatrix
from pix2pix_tr.run import checkpoint
from pix2pix_tr.models.pix2pix import Pix2PixModel
from pix2pix_tr.optim import TRAdam, compiled_adam
from tests.models.test_pix2pix import batch, tiny_nets
from tests.optim.test_trajectory import STEPS, lr_factor, problem, reference
from tests.trainer_helpers import TINY_RUN, load_module, make_synthcity

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def strict_fp32():
    """fp32 means fp32: TF32 matmuls/convolutions would move results by ~1e-3."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


@pytest.mark.parametrize("compiled,fused", [(True, None), (False, None), (False, True)],
                         ids=["compiled", "generic-foreach", "generic-fused"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 2e-5)])
def test_tradam_on_cuda_follows_the_restatement(compiled, fused, dtype, tol):
    """compiled=True: the torch.compile'd (Triton) single pass; False: the generic path over torch's
    default (foreach) Adam, or with fused=True over torch's fused CUDA Adam kernel."""
    theta0, grad = problem(3)
    lr0, lam, S = 0.05, 0.5, 4
    ref = reference("adam", theta0, grad, lr0=lr0, lam=lam, S=S, mode="scaled")
    params = [torch.tensor(t, dtype=dtype, device=CUDA, requires_grad=True) for t in theta0]
    opt = TRAdam(params, lr=lr0, betas=(0.5, 0.999), tr_lambda=lam, inner_steps=S, compiled=compiled,
                 fused=fused)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    assert opt.compiled == bool(compiled)
    for n in range(STEPS):
        grads = grad([p.detach().cpu().double().numpy() for p in params], n)
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g, dtype=dtype, device=CUDA)
        opt.step()
        sched.step()
        for got, want in zip(params, ref[n]):
            err = np.max(np.abs(got.detach().cpu().double().numpy() - want)) / np.max(np.abs(want))
            assert err <= tol, f"step {n}: relative error {err:.2e}"
    if compiled:
        assert compiled_adam._READY[("cuda", dtype, "plain")] is None  # really compiled, no fallback


@pytest.mark.parametrize("combo_kernels", [True, False], ids=["combo-kernels", "separate-kernels"])
def test_bucketed_step_over_unet_256_parameters_equals_the_eager_step(monkeypatch, combo_kernels):
    """The GPU's one-call-per-bucket TR step over a whole channels_last unet_256 (43 tensors, 1-D
    and 4-D, an anchor refresh every 2 steps) against the same math run eagerly per parameter:
    every parameter must move, and by the same amount. Written to pin down why
    test_bf16_autocast_channels_last_step_on_cuda saw a parameter left unchanged on an H100."""
    monkeypatch.setattr(compiled_adam, "BUCKET_COMPILE_OPTIONS", {"combo_kernels": combo_kernels})
    monkeypatch.setattr(compiled_adam, "_COMPILED", {})
    torch.manual_seed(0)
    net = tiny_nets(netG="unet_256")[0].to(CUDA, memory_format=torch.channels_last)
    results = []
    for compiled in (True, False):
        monkeypatch.setattr(compiled_adam, "USE_COMPILE", compiled)
        copy_ = copy.deepcopy(net)
        before = [p.detach().clone() for p in copy_.parameters()]
        opt = TRAdam(copy_.parameters(), lr=2e-4, compiled=True, inner_steps=2)
        gen = torch.Generator().manual_seed(1)
        for _ in range(5):
            for p in copy_.parameters():
                p.grad = torch.randn(p.shape, generator=gen).to(CUDA, memory_format=(
                    torch.channels_last if p.dim() == 4 else torch.contiguous_format))
            opt.step()
        results.append([(name, b, p.detach()) for (name, p), b in zip(copy_.named_parameters(), before)])
    unchanged = [name for name, b, p in results[0] if torch.equal(b, p)]
    assert not unchanged, f"compiled bucket left unchanged: {unchanged}"
    off = [name for (name, _, a), (_, _, b) in zip(*results) if not torch.allclose(a, b, rtol=1e-5, atol=1e-7)]
    assert not off, f"compiled bucket differs from the eager step in: {off}"


def test_fp32_training_step_on_cuda_equals_the_cpu_step():
    netG, netD = tiny_nets()
    data = batch(n=2)
    steps = {}
    for device in ("cpu", "cuda"):
        G, D = copy.deepcopy(netG).to(device), copy.deepcopy(netD).to(device)
        torch.manual_seed(0)
        model = Pix2PixModel(G, D, TRAdam(G.parameters(), lr=2e-4, betas=(0.5, 0.999), inner_steps=3),
                             TRAdam(D.parameters(), lr=2e-4, betas=(0.5, 0.999), inner_steps=3),
                             device=torch.device(device))
        losses = [model.train_step(data) for _ in range(4)]
        steps[device] = losses, {k: v.detach().cpu() for k, v in G.state_dict().items()}
    (cpu_losses, cpu_G), (gpu_losses, gpu_G) = steps["cpu"], steps["cuda"]
    for a, b in zip(cpu_losses, gpu_losses):
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-4), key
    moved = [k for k in cpu_G if cpu_G[k].is_floating_point() and not torch.equal(cpu_G[k], netG.state_dict()[k])]
    assert moved                                                  # it trained
    for k in moved:
        scale = cpu_G[k].abs().max().clamp_min(1e-6)
        assert ((gpu_G[k] - cpu_G[k]).abs().max() / scale).item() <= 1e-3, k


def test_bf16_autocast_channels_last_step_on_cuda():
    netG, netD = tiny_nets(netG="unet_256")
    model = Pix2PixModel(netG.to(CUDA), netD.to(CUDA), TRAdam(netG.parameters(), lr=2e-4, compiled=True),
                         TRAdam(netD.parameters(), lr=2e-4, compiled=True), device=CUDA, amp=True,
                         channels_last=True)
    before = {name: p.detach().clone() for name, p in netG.named_parameters()}
    for _ in range(3):   # batch 2: at batch 1 unet_256's innermost batch norm sees one value
        losses = model.train_step(batch(size=256, n=2))
    assert all(math.isfinite(v) for v in losses.values())
    conv = next(m for m in netG.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.dtype == torch.float32 and conv.weight.is_contiguous(memory_format=torch.channels_last)
    unchanged = [name for name, p in netG.named_parameters() if torch.equal(before[name], p)]
    assert not unchanged, f"not trained: {unchanged}"
    assert all(v.dtype == torch.float32 and v.device.type == "cpu" for v in model.visuals().values())


def test_confusion_matrix_on_cuda_equals_the_cpu_one():
    g = torch.Generator().manual_seed(0)
    label = torch.randint(0, 20, (3, 64, 96), generator=g)
    label[label == 19] = 255                                       # ignored pixels
    pred = torch.randint(0, 21, (3, 64, 96), generator=g)          # 20 = no class: a miss
    cpu, gpu = ConfusionMatrix(19), ConfusionMatrix(19, device=CUDA)
    cpu.update(pred, label)
    gpu.update(pred.to(CUDA), label.to(CUDA))
    assert gpu.matrix.device.type == "cuda"
    assert torch.equal(cpu.matrix, gpu.matrix.cpu())


def test_train_py_on_cuda_with_amp(tmp_path):
    train = load_module("train")
    root = make_synthcity(tmp_path / "synthcity", num_train=3, num_val=1)
    flags = [a if a != "cpu" else "cuda" for a in TINY_RUN]
    train.main(["--dataroot", root, "--name", "gpu", "--checkpoints_dir", str(tmp_path / "ck"), *flags,
                "--optimizer", "tradam", "--amp", "--n_epochs", "1", "--n_epochs_decay", "1",
                "--save_epoch_freq", "1", "--max_dataset_size", "2", "--print_freq", "1"])
    run = tmp_path / "ck" / "gpu"
    state = checkpoint.load_training_state(str(run))
    assert (state["epoch"], state["total_iters"]) == (3, 4)        # 2 epochs x 2 frames
    options = json.loads((run / "train_opt.json").read_text())
    assert options["device"] == "cuda" and options["amp"] is True
    records = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert len(records) >= 2 and all(math.isfinite(v) for r in records for v in r["losses"].values())
