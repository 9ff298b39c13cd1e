"""Benchmark: one TRAdam step against one torch.optim.Adam(fused=True) step over pix2pix's unet_256
parameters, interleaved over whole TR cycles with an lr that changes every step (it must not recompile);
the median ratio, the one-off compile time and the peak extra memory of a step. Figures: docs/optim.md.

    python scripts/bench/optim.py [--steps 60] [--threads N] [--generic]
    python scripts/bench/optim.py --device cuda       # device-synchronized timings
"""
import os, sys; sys.path.insert(0, os.path.abspath(os.path.join(__file__, "../../..")))  # noqa: E401,E702 (the repo root)

import argparse
import statistics
import time

import torch
from torch._dynamo.utils import counters
from tqdm import tqdm

from pix2pix_tr.errors import run_cli
from pix2pix_tr.models.networks import define_G
from pix2pix_tr.optim import TRAdam, compiled_adam
from scripts.bench.common import device_of, sync

LABELS = {"adam": "torch Adam(fused=True)", "tradam": "TRAdam (compiled=True: single pass)",
          "generic": "TRAdam (compiled=False: generic path)"}


def timed(opt, device):
    sync(device)
    start = time.perf_counter()
    opt.step()
    sync(device)
    return time.perf_counter() - start


def peak_extra_mib(opt, device):
    """Peak memory during one step above the memory before it: the CUDA allocator's, or on Linux the
    resident set (its high-water mark reset through /proc/self/clear_refs); None elsewhere."""
    if device.type == "cuda":
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        timed(opt, device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20

    def status_kib(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = status_kib("VmRSS")
        opt.step()
        return (status_kib("VmHWM") - before) / 1024
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--generic", action="store_true", help="also time TRAdam(compiled=False)")
    ap.add_argument("--ngf", type=int, default=64, help="unet_256's width (the tests shrink it)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    args = ap.parse_args(argv)
    device = device_of(args.device, args.threads)
    base = [p.detach() for p in define_G(3, 3, args.ngf, "unet_256").parameters()]
    n_params = sum(p.numel() for p in base)
    opts = {}
    for name in ["adam", "tradam"] + ["generic"] * args.generic:
        params = [p.to(device, copy=True).requires_grad_() for p in base]
        for p in params:
            p.grad = 1e-3 * torch.randn_like(p)
        opts[name] = (torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), fused=True) if name == "adam" else
                      TRAdam(params, lr=2e-4, betas=(0.5, 0.999), tr_lambda=0.1, inner_steps=10,
                             compiled=name == "tradam"))
    print("load average %.2f %.2f %.2f before; compiling ..." % os.getloadavg(), flush=True)
    first = {name: timed(opt, device) for name, opt in opts.items()}  # state, first anchors, the compile
    scheds = [torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.999 ** e) for opt in opts.values()]
    graphs_before = counters["stats"]["unique_graphs"]
    times = {name: [] for name in opts}
    for _ in tqdm(range(args.steps), desc="interleaved steps", leave=False):
        for (name, opt), sched in zip(opts.items(), scheds):
            times[name].append(timed(opt, device))
            sched.step()
    recompiles = counters["stats"]["unique_graphs"] - graphs_before
    compile_s = {variant: round(s, 1) for (_, _, variant), s in compiled_adam.COMPILE_SECONDS.items()}
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    load = "%.2f %.2f %.2f" % os.getloadavg()
    print(f"params: {n_params:,} in {len(base)} tensors (unet_256, ngf {args.ngf}); torch {torch.__version__}, "
          f"{where}, {torch.get_num_threads()} threads, {args.steps} interleaved steps, S = 10, load average "
          f"{load} after")
    print(f"compile (first single-pass call, once per process), seconds: {compile_s} (first step in all "
          f"{first['tradam']:.1f} s); graphs compiled during the timed steps with a changing lr: {recompiles}")
    for name, opt in opts.items():
        line = f"{LABELS[name]}: median {1e3 * statistics.median(times[name]):.1f} ms/step"
        if name != "adam":
            ratios = [t / a for t, a in zip(times[name], times["adam"])]
            line += (f", median ratio {statistics.median(ratios):.3f}, "
                     f"ratio of summed times {sum(times[name]) / sum(times['adam']):.3f}")
        peak = peak_extra_mib(opt, device)
        print(line + (f", peak extra memory during a step {peak:.1f} MiB" if peak is not None else ""))
    print(f"persistent extra memory of TR: one anchor copy = {n_params * base[0].element_size() / 2 ** 20:.1f} MiB")


if __name__ == "__main__":
    run_cli(main)
