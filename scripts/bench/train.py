"""Benchmark: one pix2pix training iteration (G forward, D update, G update; batch 1, 256x256, unet_256 +
basic D, the paper's Cityscapes setting) four ways, side by side in one process on the same weights and
input, interleaved round by round in rotating order (medians over rounds): plain pix2pix with
torch.optim.Adam ("plain adam") or the paper's per-parameter TRAdam loop ("paper tradam"), both restated
below, and this project's Pix2PixModel with build_optimizer("adam" / "tradam") as train.py builds them.
Also the optimizer state, peak CUDA memory and, with --loader, the loader's samples/s. docs/speed.md has
the commands and figures.
"""
import os, sys; sys.path.insert(0, os.path.abspath(os.path.join(__file__, "../../..")))  # noqa: E401,E702 (the repo root)

import argparse
import copy
import math
import platform
import statistics
import tempfile
import time

import torch
from torch import nn
from tqdm import tqdm

from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.models.networks import define_D, define_G
from pix2pix_tr.models.pix2pix import Pix2PixModel
from pix2pix_tr.optim import build_optimizer
from pix2pix_tr.run.atomic import write_json
from scripts.bench.common import device_of, sync

LR, BETAS = 0.0002, (0.5, 0.999)
VARIANTS = ("plain adam", "paper tradam", "ours adam", "ours tradam")


class PaperTRAdam(torch.optim.Optimizer):
    """TRAdam as the paper's released code writes it, one Python iteration per parameter tensor; only
    the speed reference. Anchor refreshed every `inner_steps` steps, gradient + 2*lambda*(w - anchor),
    step size lr/(k+1), Adam's moments on the global count."""

    def __init__(self, params, tr_lambda=0.1, inner_steps=10, eps=1e-8):
        super().__init__(params, dict(lr=LR, betas=BETAS, eps=eps, tr_lambda=tr_lambda, inner_steps=inner_steps))
        self.iteration = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            k = self.iteration % group["inner_steps"]
            for p in group["params"]:
                state = self.state[p]
                if not state:
                    state.update(step=0, exp_avg=torch.zeros_like(p), exp_avg_sq=torch.zeros_like(p),
                                 anchor=p.clone())
                if k == 0:
                    state["anchor"].copy_(p)
                grad = p.grad.add(p - state["anchor"], alpha=2 * group["tr_lambda"])
                state["step"] += 1
                state["exp_avg"].mul_(beta1).add_(grad, alpha=1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = state["exp_avg_sq"].sqrt().add_(group["eps"])
                step_size = group["lr"] / (k + 1) * math.sqrt(1 - beta2 ** state["step"]) / (1 - beta1 ** state["step"])
                p.addcdiv_(state["exp_avg"], denom, value=-step_size)
        self.iteration += 1


class PlainPix2PixStep:
    """pix2pix's Pix2PixModel.optimize_parameters, restated: fp32, NCHW, D then G, vanilla GAN + 100*L1."""

    def __init__(self, netG, netD, make_optimizer, device):
        self.netG, self.netD, self.device = netG, netD, device
        self.optimizer_G, self.optimizer_D = make_optimizer(netG.parameters()), make_optimizer(netD.parameters())
        self.bce, self.l1 = nn.BCEWithLogitsLoss(), nn.L1Loss()

    def gan_loss(self, prediction, real):
        return self.bce(prediction, torch.full_like(prediction, float(real)))

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
        loss_G = self.gan_loss(self.netD(torch.cat((real_A, fake_B), 1)), True) + self.l1(fake_B, real_B) * 100.0
        loss_G.backward()
        self.optimizer_G.step()


def build_variants(args, device):
    torch.manual_seed(0)
    G0 = define_G(3, 3, args.ngf, args.netG, norm="batch", use_dropout=True)
    D0 = define_D(6, args.ndf, "basic", n_layers_D=3, norm="batch")
    variants = {}
    for name in args.variants:
        netG, netD = copy.deepcopy(G0).to(device), copy.deepcopy(D0).to(device)
        if name == "plain adam":
            variants[name] = PlainPix2PixStep(netG, netD, lambda ps: torch.optim.Adam(ps, lr=LR, betas=BETAS), device)
        elif name == "paper tradam":
            variants[name] = PlainPix2PixStep(netG, netD, PaperTRAdam, device)
        else:
            if args.channels_last:  # before the optimizers: their state takes the parameters' layout
                netG, netD = netG.to(memory_format=torch.channels_last), netD.to(memory_format=torch.channels_last)
            if args.compile:
                netG.compile(mode=args.compile_mode)
                netD.compile(mode=args.compile_mode)
            make = lambda ps: build_optimizer(name.split()[1], ps, lr=LR, beta1=BETAS[0], beta2=BETAS[1],  # noqa: E731
                                              compiled=None)  # as train.py
            variants[name] = Pix2PixModel(netG, netD, make(netG.parameters()), make(netD.parameters()),
                                          device=device, amp=args.amp, channels_last=args.channels_last)
    return variants


def memory(step):
    """(optimizer state bytes, parameter bytes) of a step's two optimizers."""
    optimizers = (step.optimizer_G, step.optimizer_D)
    state = sum(t.numel() * t.element_size() for o in optimizers for s in o.state.values() for t in s.values()
                if torch.is_tensor(t) and t.dim() > 0)
    return state, sum(p.numel() * p.element_size() for o in optimizers for g in o.param_groups for p in g["params"])


def time_steps(variants, batch, device, *, warmup, rounds):
    times, peak, names = {name: [] for name in variants}, {}, list(variants)
    for name in names:                                   # warm-up: allocations, oneDNN/cuDNN plans, compile
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        for _ in range(warmup):
            variants[name].train_step(batch)
        sync(device)
        if device.type == "cuda":
            peak[name] = torch.cuda.max_memory_allocated(device)
    for r in tqdm(range(rounds), desc="rounds", unit="round", leave=False):
        for name in names[r % len(names):] + names[:r % len(names)]:   # rotate who goes first
            sync(device)
            start = time.perf_counter()
            variants[name].train_step(batch)
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times, peak


def loader_throughput(args, iteration_rate):
    """Samples/s of the trainer's DataLoader set-ups (SynthCity unless --loader_root), vs the iteration rate."""
    from data.aligned import AlignedDataset
    from data.layout import PreparedLayout
    from data.synthcity import generate

    root = args.loader_root or os.path.join(tempfile.gettempdir(), f"bench_train_synthcity_{args.loader_frames}")
    if not PreparedLayout(root).is_prepared():
        print(f"generating {args.loader_frames} SynthCity pairs in {root} ...")
        generate(root, num_train=args.loader_frames, num_val=2, size=256, seed=0)
    pin = torch.cuda.is_available()                      # pinned host memory only serves copies to a GPU
    configs = [("workers 0", {}, False)]
    if args.workers:
        kwargs, w = dict(num_workers=args.workers, pin_memory=pin, persistent_workers=True), args.workers
        configs += [(f"workers {w}{', pinned' * pin}, persistent, prefetch 4", dict(kwargs, prefetch_factor=4), False),
                    (f"--preload, workers {w}{', pinned' * pin}, persistent", kwargs, True)]
    results = []
    for label, kwargs, preload in configs:
        dataset = AlignedDataset(root, "train", preload=preload)
        loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=True, **kwargs)
        for _ in loader:                                   # first epoch: worker start-up, page cache
            pass
        start, count = time.perf_counter(), 0
        for epoch in range(args.loader_epochs):
            dataset.set_epoch(epoch + 1)
            count += sum(batch["A"].shape[0] for batch in loader)
        rate = count / (time.perf_counter() - start)
        results.append(dict(config=label, samples_per_s=rate, x_iteration_rate=rate / iteration_rate))
        del loader
    return results


def describe_device(device):
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    return (f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (each runs every variant once)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per variant first")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of the four")
    parser.add_argument("--netG", default="unet_256")
    parser.add_argument("--ngf", type=int, default=64)
    parser.add_argument("--ndf", type=int, default=64)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--amp", action="store_true", help="ours: bf16 autocast")
    parser.add_argument("--channels_last", action="store_true", help="ours: channels_last networks")
    parser.add_argument("--compile", action="store_true", help="ours: torch.compile G and D")
    parser.add_argument("--compile_mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    parser.add_argument("--loader", action="store_true", help="also measure the data loader's throughput")
    parser.add_argument("--loader_frames", type=int, default=64)
    parser.add_argument("--loader_epochs", type=int, default=3)
    parser.add_argument("--loader_root", default=None, help="prepared dataset to read (default: a temporary SynthCity)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if set(args.variants) - set(VARIANTS):
        raise UserError(f"--variants: unknown {sorted(set(args.variants) - set(VARIANTS))}; "
                        f"choose from {', '.join(VARIANTS)}")
    device = device_of(args.device, args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False  # fp32 means fp32

    variants = build_variants(args, device)
    gen = torch.Generator().manual_seed(0)
    batch = {"A": torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1,
             "B": torch.rand(1, 3, args.size, args.size, generator=gen) * 2 - 1,
             "frame_id": ["bench"], "A_paths": ["bench"], "B_paths": ["bench"]}
    settings = (f"amp={args.amp} channels_last={args.channels_last} compile={args.compile}"
                f"{'(' + args.compile_mode + ')' if args.compile_mode else ''}")
    print(f"device: {describe_device(device)}; torch {torch.__version__}")
    print(f"iteration: {args.netG} + basic D, ngf {args.ngf} ndf {args.ndf}, batch 1, {args.size}x{args.size}; "
          f"ours: {settings}; {args.warmup} warm-up steps, {args.rounds} interleaved rounds")
    times, peak = time_steps(variants, batch, device, warmup=args.warmup, rounds=args.rounds)

    median = {n: statistics.median(t) for n, t in times.items()}
    plain = median.get("plain adam", math.nan)
    print(f"\n{'variant':13s} {'median ms':>10s} {'min ms':>8s} {'x plain adam':>13s} {'optim state MB':>15s} "
          f"{'state/params':>13s}{' peak CUDA MB' if peak else ''}")
    report = {"device": describe_device(device), "torch": torch.__version__, "settings": settings,
              "rounds": args.rounds, "variants": {}}
    for name, step in variants.items():
        state, params = memory(step)
        print(f"{name:13s} {median[name] * 1e3:10.0f} {min(times[name]) * 1e3:8.0f} {median[name] / plain:13.3f} "
              f"{state / 2**20:15.1f} {state / params:13.3f}" + (f" {peak[name] / 2**20:12.0f}" if peak else ""))
        report["variants"][name] = dict(median_ms=median[name] * 1e3, min_ms=min(times[name]) * 1e3,
                                        all_ms=[t * 1e3 for t in times[name]], x_plain_adam=median[name] / plain,
                                        optimizer_state_bytes=state, parameter_bytes=params,
                                        peak_cuda_bytes=peak.get(name))
    if "ours adam" in median and "ours tradam" in median:
        print(f"\nours tradam / ours adam: {median['ours tradam'] / median['ours adam']:.3f}   (target <= 1.03)")
        (tradam, params), (adam, _) = memory(variants["ours tradam"]), memory(variants["ours adam"])
        report["tradam_extra_state_over_params"] = (tradam - adam) / params
        print(f"TRAdam state beyond Adam's: {(tradam - adam) / 2**20:.1f} MB = {(tradam - adam) / params:.3f} x "
              f"the parameters (the anchors; expected 1.000)")
    if "plain adam" in median and "ours tradam" in median:
        print(f"ours tradam / plain adam: {median['ours tradam'] / plain:.3f}   "
              f"(target <= {0.5 if device.type == 'cuda' else 0.85})")
    if args.loader:
        name = "ours tradam" if "ours tradam" in median else next(iter(median))
        print(f"\nloader throughput vs the iteration rate of {name} ({1 / median[name]:.2f} it/s), batch 1:")
        report["loader"] = loader_throughput(args, 1 / median[name])
        for row in report["loader"]:
            print(f"  {row['config']:45s} {row['samples_per_s']:8.1f} samples/s = {row['x_iteration_rate']:6.1f}x")
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    run_cli(main)
