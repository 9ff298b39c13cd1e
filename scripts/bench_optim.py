"""Benchmark: one TRAdam step vs one torch.optim.Adam(fused=True) step over pix2pix's unet_256
parameters (54,413,955 in 43 tensors), interleaved, median ratio printed.

Uses define_G's unet_256 when pix2pix_tr/networks.py exists, else tensors of the same shapes. Steps
run over whole TR cycles (k = 0 steps copy the anchor), so the ratio includes that cost. The machine
is shared and noisy: compare the medians, not single steps.

    python scripts/bench_optim.py [--steps 40] [--inner_steps 10] [--threads N]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from pix2pix_tr.optim import TRAdam  # noqa: E402


def unet_256_shapes():
    """Parameter shapes of pix2pix's UnetGenerator(3, 3, 8 downs, ngf 64, batch norm)."""
    shapes = [(64, 3, 4, 4), (128, 3, 4, 4), (3,)]  # outermost down, up (+ bias)
    for outer, inner in [(64, 128), (128, 256), (256, 512), (512, 512), (512, 512), (512, 512)]:
        shapes += [(inner, outer, 4, 4), (inner,), (inner,), (2 * inner, outer, 4, 4), (outer,), (outer,)]
    shapes += [(512, 512, 4, 4), (512, 512, 4, 4), (512,), (512,)]  # innermost
    return shapes


def generator_params():
    try:
        from pix2pix_tr.networks import define_G
        return [p.detach().clone().requires_grad_() for p in define_G(3, 3, 64, "unet_256").parameters()], "define_G"
    except ImportError:
        g = torch.Generator().manual_seed(0)
        return [(0.02 * torch.randn(s, generator=g)).requires_grad_() for s in unet_256_shapes()], "same shapes"


def timed(opt):
    t = time.perf_counter()
    opt.step()
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--inner_steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--generic", action="store_true", help="also time TRAdam(fused=False)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base, source = generator_params()
    n_params = sum(p.numel() for p in base)
    sets = {"adam": torch.optim.Adam, "tradam": TRAdam}
    if args.generic:
        sets["generic"] = TRAdam
    opts = {}
    for name in sets:
        params = [p.detach().clone().requires_grad_() for p in base]
        for p in params:
            p.grad = 1e-3 * torch.randn_like(p)
        if name == "adam":
            opts[name] = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999), fused=True)
        else:
            opts[name] = TRAdam(params, lr=2e-4, betas=(0.5, 0.999), tr_lambda=0.1,
                                inner_steps=args.inner_steps, fused=name == "tradam")
    for opt in opts.values():  # warm-up: state allocation, first anchors
        opt.step()
    times = {name: [] for name in opts}
    for _ in tqdm(range(args.steps), desc="interleaved steps", leave=False):
        for name, opt in opts.items():
            times[name].append(timed(opt))
    adam = times["adam"]
    print(f"params: {n_params:,} in {len(base)} tensors ({source}); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.steps} interleaved steps, S = {args.inner_steps}")
    print(f"torch Adam(fused=True): median {1e3 * statistics.median(adam):.1f} ms/step")
    for name in opts:
        if name == "adam":
            continue
        ratios = [t / a for t, a in zip(times[name], adam)]
        label = "TRAdam (fused)" if name == "tradam" else "TRAdam (fused=False, generic)"
        print(f"{label}: median {1e3 * statistics.median(times[name]):.1f} ms/step, "
              f"median ratio {statistics.median(ratios):.3f}, "
              f"ratio of summed times {sum(times[name]) / sum(adam):.3f}")
    anchor_mb = n_params * base[0].element_size() / 2 ** 20
    print(f"extra memory: one anchor copy = {anchor_mb:.1f} MiB (+ a block scratch buffer of "
          f"{(1 << 20) * 4 / 2 ** 20:.0f} MiB on CPU)")


if __name__ == "__main__":
    from pix2pix_tr.errors import run_cli
    run_cli(main)
