"""Benchmark: one TRAdam step vs one torch.optim.Adam(fused=True) step over pix2pix's unet_256
parameters (54,413,955 in 43 tensors), interleaved, median ratio printed; plus the one-off compile
time of the single-pass path and the peak extra memory of a step.

Steps run over whole TR cycles (k = 0 steps copy the anchor), so the ratio includes that cost. The machine
may be shared and noisy: compare the medians of many interleaved steps, not single steps; the load
average is printed with the figures.

    python scripts/bench_optim.py [--steps 60] [--inner_steps 10] [--threads N] [--generic]
    python scripts/bench_optim.py --device cuda       # on a GPU: device-synchronized timings
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pix2pix_tr.errors import UserError  # noqa: E402
from pix2pix_tr.networks import define_G  # noqa: E402
from pix2pix_tr.optim import TRAdam, compiled_adam  # noqa: E402

LABELS = {"adam": "torch Adam(fused=True)", "tradam": "TRAdam (compiled=True: single pass)",
          "generic": "TRAdam (compiled=False: generic path)"}


def generator_params():
    """pix2pix's unet_256 generator parameters, detached copies."""
    return [p.detach().clone().requires_grad_() for p in define_G(3, 3, 64, "unet_256").parameters()]


def timed(opt, device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t


def _status_kb(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def peak_extra_mib(opt, device):
    """Peak memory during one step above the memory before it: the CUDA allocator's on a GPU; on
    the CPU the resident memory (Linux: resets the high-water mark through /proc/self/clear_refs);
    None where that is not available."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        opt.step()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        before = _status_kb("VmRSS")
        opt.step()
        return (_status_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def load_average():
    try:
        return "load average %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--inner_steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--generic", action="store_true", help="also time TRAdam(compiled=False)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {args.device}: no CUDA GPU here; use --device cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    base = generator_params()
    n_params = sum(p.numel() for p in base)
    names = ["adam", "tradam"] + (["generic"] if args.generic else [])
    opts = {}
    for name in names:
        params = [p.detach().to(device, copy=True).requires_grad_() for p in base]
        for p in params:
            p.grad = 1e-3 * torch.randn_like(p)
        if name == "adam":
            opts[name] = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), fused=True)
        else:
            opts[name] = TRAdam(params, lr=2e-4, betas=(0.5, 0.999), tr_lambda=0.1,
                                inner_steps=args.inner_steps, compiled=name == "tradam")
    print(f"{load_average()} before; compiling ...", flush=True)
    first = {name: timed(opt, device) for name, opt in opts.items()}  # state, first anchors, the compile
    compile_s = {variant: round(seconds, 1)
                 for (_, _, variant), seconds in compiled_adam.COMPILE_SECONDS.items()}
    scheds = {name: torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.999 ** e)
              for name, opt in opts.items()}  # lr changes every step: must not recompile
    from torch._dynamo.utils import counters
    graphs_before = counters["stats"]["unique_graphs"]
    times = {name: [] for name in opts}
    for _ in tqdm(range(args.steps), desc="interleaved steps", leave=False):
        for name, opt in opts.items():
            times[name].append(timed(opt, device))
            scheds[name].step()
    recompiles = counters["stats"]["unique_graphs"] - graphs_before
    peaks = {name: peak_extra_mib(opt, device) for name, opt in opts.items()}
    adam = times["adam"]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"params: {n_params:,} in {len(base)} tensors (unet_256); torch {torch.__version__}, {where}, "
          f"{torch.get_num_threads()} threads, {args.steps} interleaved steps, S = {args.inner_steps}, "
          f"{load_average()} after")
    print(f"compile (first single-pass call, once per process), seconds: {compile_s} "
          f"(first step in all {first['tradam']:.1f} s); graphs compiled during the timed steps "
          f"with a changing lr: {recompiles}")
    for name in opts:
        line = f"{LABELS[name]}: median {1e3 * statistics.median(times[name]):.1f} ms/step"
        if name != "adam":
            ratios = [t / a for t, a in zip(times[name], adam)]
            line += (f", median ratio {statistics.median(ratios):.3f}, "
                     f"ratio of summed times {sum(times[name]) / sum(adam):.3f}")
        if peaks[name] is not None:
            line += f", peak extra memory during a step {peaks[name]:.1f} MiB"
        print(line)
    anchor_mb = n_params * base[0].element_size() / 2 ** 20
    print(f"persistent extra memory of TR: one anchor copy = {anchor_mb:.1f} MiB")


if __name__ == "__main__":
    from pix2pix_tr.errors import run_cli
    run_cli(main)
