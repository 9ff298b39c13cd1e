"""Benchmark: one pix2pix training iteration of this project against a plain pix2pix step.

What is timed: one full iteration (G forward, D update, G update) at batch 1, 256x256, unet_256 with
dropout + basic PatchGAN D, ngf = ndf = 64, batch norm: the paper's Cityscapes setting. Side by side,
in one process, on the same initial weights and the same input, interleaved round by round (each
round runs every variant once, in rotating order) so that a busy machine slows all of them alike;
the figures are medians over rounds.

    plain adam     pix2pix's optimize_parameters restated below: torch.optim.Adam as pix2pix builds
                   it (no foreach/fused flag), fp32, NCHW, no tricks
    paper tradam   the same plain step with the paper's TRAdam: a per-parameter Python loop (below)
    ours adam      Pix2PixModel + build_optimizer("adam") with this project's speed settings
    ours tradam    Pix2PixModel + build_optimizer("tradam") (compiled TR step) with the same settings
    ours tradam onednn   (not run by default) ours tradam with oneDNN for every convolution: what the
                   per-layer kernel plan below gives, side by side

Ours also runs each CPU fp32 convolution on the kernels train.py would pick (`--cpu_conv_plan auto`:
oneDNN or ATen's native ones, per layer and pass, measured once here; pix2pix_tr/conv_backends.py);
`--cpu_conv_plan onednn` leaves torch's default.

The process's malloc is glibc's default unless `--malloc tuned`, which tunes it as train.py does
(freed memory kept for reuse: no page faults per step) for every variant alike; the plain step gains
more from it (its unfused Adam allocates per-parameter temporaries), so both settings are worth
reading.

It also reports the optimizer state (TRAdam adds exactly one copy of the parameters: the anchors),
the peak memory (CUDA allocator peak per variant; on CPU the process's peak RSS), and, with
--loader, the data loader's throughput against the measured iteration rate.

    python scripts/bench_train.py                          # CPU, all four variants
    python scripts/bench_train.py --device cuda --amp --channels_last --compile
    python scripts/bench_train.py --loader                 # add the loader throughput (with and without --preload)
"""
import os, sys; sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # noqa: E401,E702

import argparse
import copy
import math
import platform
import resource
import statistics
import tempfile
import time

import torch
from torch import nn
from tqdm import tqdm

from pix2pix_tr import allocator, conv_backends
from pix2pix_tr.atomic import write_json
from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.model import Pix2PixModel
from pix2pix_tr.networks import define_D, define_G
from pix2pix_tr.optim import build_optimizer

LR, BETAS = 0.0002, (0.5, 0.999)
VARIANTS = ("plain adam", "paper tradam", "ours adam", "ours tradam")
EXTRA_VARIANTS = ("ours adam onednn", "ours tradam onednn")


# ----------------------------------------------------------------------------- the paper's TRAdam
class PaperTRAdam(torch.optim.Optimizer):
    """TRAdam as the paper's released code writes it: one Python iteration per parameter tensor.

    Restated only as the speed reference. Anchor w_t refreshed every `inner_steps` steps; the
    gradient gets 2*lambda*(w - w_t); the step size is lr/(k+1); Adam's moments on the global count.
    """

    def __init__(self, params, lr=LR, betas=BETAS, eps=1e-8, tr_lambda=0.1, inner_steps=10):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, tr_lambda=tr_lambda, inner_steps=inner_steps))
        self.iteration = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            k = self.iteration % group["inner_steps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                    state["anchor"] = p.clone()
                if k == 0:
                    state["anchor"].copy_(p)
                grad = p.grad.add(p - state["anchor"], alpha=2 * group["tr_lambda"])
                state["step"] += 1
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                bias1, bias2 = 1 - beta1 ** state["step"], 1 - beta2 ** state["step"]
                step_size = group["lr"] / (k + 1) * math.sqrt(bias2) / bias1
                p.addcdiv_(state["exp_avg"], denom, value=-step_size)
        self.iteration += 1


# ----------------------------------------------------------------------------- the plain pix2pix step
class PlainPix2PixStep:
    """pix2pix's Pix2PixModel.optimize_parameters, restated: fp32, NCHW, D then G, vanilla GAN + 100*L1."""

    def __init__(self, netG, netD, optimizer_G, optimizer_D, device):
        self.netG, self.netD, self.optimizer_G, self.optimizer_D = netG, netD, optimizer_G, optimizer_D
        self.device = device
        self.criterionGAN, self.criterionL1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def gan_loss(self, prediction, target_is_real):
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return self.criterionGAN(prediction, target)

    def train_step(self, batch):
        real_A, real_B = batch["A"].to(self.device), batch["B"].to(self.device)
        fake_B = self.netG(real_A)
        self.netD.requires_grad_(True)
        self.optimizer_D.zero_grad()
        loss_D_fake = self.gan_loss(self.netD(torch.cat((real_A, fake_B), 1).detach()), False)
        loss_D_real = self.gan_loss(self.netD(torch.cat((real_A, real_B), 1)), True)
        ((loss_D_fake + loss_D_real) * 0.5).backward()
        self.optimizer_D.step()
        self.netD.requires_grad_(False)
        self.optimizer_G.zero_grad()
        loss_G_GAN = self.gan_loss(self.netD(torch.cat((real_A, fake_B), 1)), True)
        loss_G_L1 = self.criterionL1(fake_B, real_B) * 100.0
        (loss_G_GAN + loss_G_L1).backward()
        self.optimizer_G.step()


# ----------------------------------------------------------------------------- building the variants
def build_variants(args, device):
    torch.manual_seed(args.seed)
    G0 = define_G(3, 3, args.ngf, args.netG, norm="batch", use_dropout=True)
    D0 = define_D(6, args.ndf, args.netD, n_layers_D=3, norm="batch")
    variants = {}
    for name in args.variants:
        netG, netD = copy.deepcopy(G0).to(device), copy.deepcopy(D0).to(device)
        if name.startswith("plain") or name.startswith("paper"):
            make = (lambda ps: torch.optim.Adam(ps, lr=LR, betas=BETAS)) if name == "plain adam" else \
                   (lambda ps: PaperTRAdam(ps, lr=LR, betas=BETAS))
            variants[name] = PlainPix2PixStep(netG, netD, make(netG.parameters()), make(netD.parameters()), device)
            continue
        if args.channels_last:  # before the optimizers: their state takes the parameters' layout
            netG, netD = netG.to(memory_format=torch.channels_last), netD.to(memory_format=torch.channels_last)
        if args.compile:
            netG.compile(mode=args.compile_mode)
            netD.compile(mode=args.compile_mode)
        optimizer = name.split()[1]
        make = lambda ps: build_optimizer(optimizer, ps, lr=LR, beta1=BETAS[0], beta2=BETAS[1],  # noqa: E731
                                          compiled=args.compiled)
        model = Pix2PixModel(netG, netD, make(netG.parameters()), make(netD.parameters()),
                             gan_mode="vanilla", lambda_L1=100.0, device=device, amp=args.amp,
                             channels_last=args.channels_last)
        variants[name] = WithMkldnn(model, args.mkldnn == "on") if args.mkldnn != "default" else model
    planned = [n for n in variants if n.startswith("ours") and not n.endswith("onednn")]
    plans = conv_plans(args, device, G0, D0) if planned else None
    for name, step in variants.items():
        if plans and name in planned:
            conv_backends.apply_plan(step.netG, plans["G"])
            conv_backends.apply_plan(step.netD, plans["D"])
    return variants


def conv_plans(args, device, netG, netD):
    """The per-layer CPU convolution backends train.py would measure (None where it would not)."""
    if (args.cpu_conv_plan == "onednn" or args.mkldnn != "default"
            or not conv_backends.applies(device, amp=args.amp, compile=args.compile)):
        return None
    gen = torch.Generator().manual_seed(args.seed)
    start = time.perf_counter()
    plans = {"G": conv_backends.autotune(netG, torch.randn(1, 3, args.size, args.size, generator=gen)),
             "D": conv_backends.autotune(netD, torch.randn(1, 6, args.size, args.size, generator=gen))}
    print(f"ours' convolutions: {conv_backends.summary(plans)} (measured in {time.perf_counter() - start:.1f} s)")
    return plans


class WithMkldnn:
    """A step run with oneDNN (mkldnn) convolutions switched on or off (forward and backward)."""

    def __init__(self, model, enabled):
        self.model, self.enabled = model, enabled
        self.optimizer_G, self.optimizer_D = model.optimizer_G, model.optimizer_D

    def train_step(self, batch):
        with torch.backends.mkldnn.flags(enabled=self.enabled):
            return self.model.train_step(batch)


def optimizer_state_bytes(optimizer):
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
               if torch.is_tensor(t) and t.dim() > 0)


def parameter_bytes(optimizer):
    return sum(p.numel() * p.element_size() for g in optimizer.param_groups for p in g["params"])


def optimizers_of(step):
    return step.optimizer_G, step.optimizer_D


# ----------------------------------------------------------------------------- timing
def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(variants, batch, device, *, warmup, rounds):
    times = {name: [] for name in variants}
    peak = {}
    names = list(variants)
    for name in names:                                   # warm-up: allocations, oneDNN/cuDNN plans, compile
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(warmup):
            variants[name].train_step(batch)
        synchronize(device)
        if device.type == "cuda":
            peak[name] = torch.cuda.max_memory_allocated(device)
    for r in tqdm(range(rounds), desc="rounds", unit="round", leave=False):
        for name in names[r % len(names):] + names[:r % len(names)]:   # rotate who goes first
            synchronize(device)
            start = time.perf_counter()
            variants[name].train_step(batch)
            synchronize(device)
            times[name].append(time.perf_counter() - start)
    return times, peak


# ----------------------------------------------------------------------------- the loader
def loader_throughput(args, iteration_rate):
    """Samples/s of the trainer's DataLoader set-ups over a small SynthCity set, vs the iteration rate."""
    from data.aligned import AlignedDataset
    from data.layout import PreparedLayout
    from data.synthcity import generate

    root = args.loader_root or os.path.join(tempfile.gettempdir(), f"bench_train_synthcity_{args.loader_frames}")
    if not PreparedLayout(root).is_prepared():
        print(f"generating {args.loader_frames} SynthCity pairs in {root} ...")
        generate(root, num_train=args.loader_frames, num_val=2, size=256, seed=0)
    results = []
    pin = torch.cuda.is_available()                      # pinned host memory only serves copies to a GPU
    pinned = ", pinned" if pin else ""
    configs = [("workers 0", dict(num_workers=0), False)]
    configs += [(f"workers {args.workers}{pinned}, persistent, prefetch 4",
                 dict(num_workers=args.workers, pin_memory=pin, persistent_workers=True, prefetch_factor=4), False)]
    configs += [(f"--preload, workers {args.workers}{pinned}, persistent",
                 dict(num_workers=args.workers, persistent_workers=True, pin_memory=pin), True)]
    for label, kwargs, preload in configs:
        if args.workers == 0 and kwargs.get("num_workers", 0) == 0 and label != "workers 0":
            continue
        if kwargs.get("num_workers", 0) == 0:
            kwargs = {k: v for k, v in kwargs.items() if k not in ("persistent_workers", "prefetch_factor")}
        dataset = AlignedDataset(root, "train", preload=preload)
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=True, **kwargs)
        for _ in loader:                                   # first epoch: worker start-up, page cache
            pass
        start, count = time.perf_counter(), 0
        for epoch in range(args.loader_epochs):
            dataset.set_epoch(epoch + 1)
            for batch in loader:
                count += batch["A"].shape[0]
        rate = count / (time.perf_counter() - start)
        results.append(dict(config=label, samples_per_s=rate, x_iteration_rate=rate / iteration_rate))
        del loader
    return results


# ----------------------------------------------------------------------------- report
def describe_device(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (each runs every variant once)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated subset of: {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--netD", default="basic")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--amp", action="store_true", help="ours: bf16 autocast")
    parser.add_argument("--channels_last", action="store_true", help="ours: channels_last networks")
    parser.add_argument("--compile", action="store_true", help="ours: torch.compile G and D")
    parser.add_argument("--compile_mode", default=None,
                        help="torch.compile mode, e.g. max-autotune-no-cudagraphs or reduce-overhead (CUDA graphs)")
    parser.add_argument("--mkldnn", default="default", choices=("default", "on", "off"),
                        help="ours on CPU: oneDNN convolutions on/off (default: torch's, on)")
    parser.add_argument("--cpu_conv_plan", default="auto", choices=("auto", "onednn"),
                        help="ours on CPU fp32: per-layer oneDNN/native convolution kernels as train.py "
                             "measures them (auto), or oneDNN everywhere (torch's default)")
    parser.add_argument("--malloc", default="default", choices=("default", "tuned"),
                        help="glibc malloc for the whole process (every variant): its defaults, or "
                             "tuned as train.py tunes it (pix2pix_tr/allocator.py)")
    parser.add_argument("--compiled", default="on", choices=("auto", "on", "off"),
                        help="ours tradam: the compiled single-pass TR step (auto: from 2M parameters, as train.py)")
    parser.add_argument("--loader", action="store_true", help="also measure the data loader's throughput")
    parser.add_argument("--loader_frames", type=int, default=64)
    parser.add_argument("--loader_epochs", type=int, default=3)
    parser.add_argument("--loader_root", default=None, help="prepared dataset to read (default: a temporary SynthCity)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS + EXTRA_VARIANTS]
    if unknown:
        raise UserError(f"--variants: unknown {unknown}; choose from {', '.join(VARIANTS + EXTRA_VARIANTS)}")
    args.compiled = {"auto": None, "on": True, "off": False}[args.compiled]
    if args.malloc == "tuned" and not allocator.tune_malloc():
        raise UserError("--malloc tuned: no glibc malloc to tune here (Linux with glibc only)")
    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {args.device}: no CUDA GPU here; use --device cpu")
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False    # fp32 means fp32 for the plain step
        torch.backends.cudnn.allow_tf32 = False
    if args.threads:
        torch.set_num_threads(args.threads)

    variants = build_variants(args, device)
    gen = torch.Generator().manual_seed(args.seed)
    batch = {"A": torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1,
             "B": torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1,
             "frame_id": ["bench"], "A_paths": ["bench"], "B_paths": ["bench"]}
    settings = (f"amp={args.amp} channels_last={args.channels_last} mkldnn={args.mkldnn} "
                f"cpu_conv_plan={args.cpu_conv_plan} compile={args.compile}"
                f"{'(' + args.compile_mode + ')' if args.compile_mode else ''} compiled={args.compiled}; "
                f"every variant: malloc={args.malloc}")
    print(f"device: {describe_device(device)}; torch {torch.__version__}")
    print(f"iteration: {args.netG} + {args.netD} D, ngf {args.ngf} ndf {args.ndf}, batch 1, {args.size}x{args.size}; "
          f"ours: {settings}; {args.warmup} warm-up steps, {args.rounds} interleaved rounds")
    times, peak = time_steps(variants, batch, device, warmup=args.warmup, rounds=args.rounds)

    median = {n: statistics.median(t) for n, t in times.items()}
    reference = median.get("plain adam")
    print(f"\n{'variant':19s} {'median ms':>10s} {'min ms':>8s} {'x plain adam':>13s} {'optim state MB':>15s} "
          f"{'state/params':>13s}{' peak CUDA MB' if peak else ''}")
    report = {"device": describe_device(device), "torch": torch.__version__, "settings": settings,
              "rounds": args.rounds, "variants": {}}
    for name, step in variants.items():
        state = sum(optimizer_state_bytes(o) for o in optimizers_of(step))
        params = sum(parameter_bytes(o) for o in optimizers_of(step))
        ratio = median[name] / reference if reference else float("nan")
        line = (f"{name:19s} {median[name] * 1e3:10.0f} {min(times[name]) * 1e3:8.0f} {ratio:13.3f} "
                f"{state / 2**20:15.1f} {state / params:13.3f}")
        if peak:
            line += f" {peak[name] / 2**20:12.0f}"
        print(line)
        report["variants"][name] = dict(median_ms=median[name] * 1e3, min_ms=min(times[name]) * 1e3,
                                        all_ms=[t * 1e3 for t in times[name]], x_plain_adam=ratio,
                                        optimizer_state_bytes=state, parameter_bytes=params,
                                        peak_cuda_bytes=peak.get(name))
    if "ours adam" in median and "ours tradam" in median:
        print(f"\nours tradam / ours adam: {median['ours tradam'] / median['ours adam']:.3f}"
              f"   (target <= 1.03)")
        extra = (sum(optimizer_state_bytes(o) for o in optimizers_of(variants["ours tradam"]))
                 - sum(optimizer_state_bytes(o) for o in optimizers_of(variants["ours adam"])))
        params = sum(parameter_bytes(o) for o in optimizers_of(variants["ours tradam"]))
        print(f"TRAdam state beyond Adam's: {extra / 2**20:.1f} MB = {extra / params:.3f} x the parameters "
              f"(the anchors; expected 1.000)")
        report["tradam_extra_state_over_params"] = extra / params
    if reference and "ours tradam" in median:
        target = 0.5 if device.type == "cuda" else 0.85
        print(f"ours tradam / plain adam: {median['ours tradam'] / reference:.3f}   (target <= {target})")
    print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MB; "
          f"load average now {os.getloadavg()[0]:.1f}")

    if args.loader:
        name = "ours tradam" if "ours tradam" in median else next(iter(median))
        rate = 1.0 / median[name]
        print(f"\nloader throughput vs the iteration rate of {name} ({rate:.2f} it/s), batch 1:")
        report["loader"] = loader_throughput(args, rate)
        for row in report["loader"]:
            print(f"  {row['config']:45s} {row['samples_per_s']:8.1f} samples/s = {row['x_iteration_rate']:6.1f}x")
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    run_cli(main)
