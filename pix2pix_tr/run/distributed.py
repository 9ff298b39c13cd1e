"""torchrun / DistributedDataParallel helpers: one process per device, on one or many machines.

`init_distributed` turns torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT) into a
process group (nccl on CUDA, gloo on CPU) and a device per process; without torchrun every helper is the
single-process behaviour, so callers never branch on it. Plain DDP (no `find_unused_parameters`) serves
the pix2pix step: D's two forwards before one backward reduce each gradient once, and G's step through
the frozen D arms no hook. A deterministic optimizer on DDP-averaged gradients keeps parameters, TR
anchors and counters equal on every rank (tests/run/test_distributed.py checks both).
"""
import datetime
import itertools
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from pix2pix_tr.errors import UserError


# --- process group -----------------------------------------------------------------------------
def init_distributed(device="cpu"):
    """Join the process group torchrun describes and return this process's device: under torchrun
    with CUDA, GPU LOCAL_RANK (one GPU per process); without torchrun, `device` as is."""
    device = torch.device(device)
    rank, world_size = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if world_size <= 1 or is_distributed():
        if device.type == "cuda" and is_distributed():
            device = torch.device("cuda", local_rank)
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise UserError(f"local rank {local_rank} needs a CUDA device but {torch.cuda.device_count()} are "
                            "visible; lower --nproc_per_node or use --device cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(f"WORLD_SIZE={world_size} but {name} is not set; start the program with torchrun")
    init_kwargs = dict(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://", rank=rank,
                       world_size=world_size, timeout=datetime.timedelta(minutes=30))
    if device.type == "cuda":
        init_kwargs["device_id"] = device  # binds the communicator to this GPU (eager nccl init)
    dist.init_process_group(**init_kwargs)
    return device


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def get_rank():
    return dist.get_rank() if is_distributed() else 0


def get_world_size():
    return dist.get_world_size() if is_distributed() else 1


def is_main_process():
    """True on rank 0 (and without torchrun): the one process that logs, saves and displays."""
    return get_rank() == 0


def cleanup():
    """Leave the process group (once at the end of the program, on every rank)."""
    if is_distributed():
        dist.destroy_process_group()


# --- collectives: no-ops without torchrun ---------------------------------------------------------
def all_reduce_sum(tensor):
    """Sum `tensor` over ranks, in place; returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def mean_over_ranks(values, device="cpu"):
    """{name: float} averaged over ranks (for logging losses); one collective for the whole dict."""
    if not is_distributed() or not values:
        return dict(values)
    names = list(values)  # same order on every rank: the caller builds the dict the same way
    packed = all_reduce_sum(torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device))
    return dict(zip(names, packed.div_(get_world_size()).tolist()))


def any_rank(flag, device="cpu"):
    """True on every rank when `flag` is true on any (a stop signal may reach the ranks at different
    steps; all must stop at the same one)."""
    if not is_distributed():
        return bool(flag)
    return bool(all_reduce_sum(torch.tensor([float(bool(flag))], device=device)).item())


def epoch_seed(seed, epoch):
    """The one seed of an epoch's data order and loader workers: a function of (seed, epoch) only."""
    return int(seed) * 1_000_003 + int(epoch)


# --- models -----------------------------------------------------------------------------------
def prepare_network(net, device, *, compiled=False, compile_mode=None, sync_bn=False):
    """`net` as it trains: on the device before its optimizer is built (TR anchors made there), with
    `compiled` torch.compile'd in place (state_dict keys stay pix2pix's), and under torchrun wrapped in
    DDP, which starts every rank from rank 0's parameters. `sync_bn`: BatchNorm statistics over all
    ranks (CUDA only)."""
    net = net.to(device)
    if compiled:
        net.compile(mode=compile_mode)
    if not is_distributed():
        return net
    device = torch.device(device)
    if sync_bn:
        if device.type != "cuda":
            raise UserError("--sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernel); drop "
                            "--sync_bn on CPU")
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    if device.type != "cuda" and any(isinstance(m, nn.SyncBatchNorm) for m in net.modules()):
        raise UserError("--norm syncbatch across torchrun processes needs CUDA devices (torch's SyncBatchNorm "
                        "has no CPU kernel); use --norm batch on CPU")
    return DistributedDataParallel(net, device_ids=[device] if device.type == "cuda" else None)


def unwrap(module):
    """The plain module inside a DDP wrapper (what checkpoints save and load), or `module` itself."""
    return module.module if isinstance(module, DistributedDataParallel) else module


# --- data ---------------------------------------------------------------------------------------
def shard_range(num_items, *, rank=None, world_size=None):
    """This rank's share of `num_items` for evaluation: every item exactly once over all ranks (no
    padding, unlike the training sampler: a repeated frame would be counted twice)."""
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return range(rank, num_items, world_size)


class ShardedSampler(DistributedSampler):
    """torch's DistributedSampler (rank r of W reads every W-th index of a permutation, padded to a
    multiple of W), resumable mid-epoch: `set_epoch(epoch, skip)` drops the first `skip` indices of this
    rank's shard. The order depends on `epoch_seed(seed, epoch)` alone, not on the global RNG, workers
    or the run's history (DistributedSampler seeds with seed + epoch, so it gets epoch_seed(seed, 0))."""

    def __init__(self, num_samples, *, rank=None, world_size=None, seed=0, shuffle=True):
        super().__init__(range(int(num_samples)), num_replicas=get_world_size() if world_size is None else world_size,
                         rank=get_rank() if rank is None else rank, shuffle=shuffle, seed=epoch_seed(seed, 0))
        self.skip = 0

    def set_epoch(self, epoch, skip=0):
        super().set_epoch(int(epoch))
        self.skip = int(skip)

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self):
        return max(super().__len__() - self.skip, 0)
