"""torchrun / DistributedDataParallel helpers: one process per device, on one or many machines.

`torchrun --nproc_per_node N train.py ...` starts N copies of the program and tells each its place
through the environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT). This module turns
that into a process group (nccl on CUDA, gloo on CPU), a device per process, and the few collective
operations the trainer and the evaluator need. Without torchrun every helper degrades to the
single-process behaviour, so callers never branch on "am I distributed?" themselves.

The pix2pix step and DDP. pix2pix updates D, then freezes D (requires_grad False) and backpropagates
G's loss through it. Plain DDP handles both halves without `find_unused_parameters` (and its graph
walk per step): two D forwards (fake and real) before one backward accumulate each parameter's
gradient once, so DDP's hook fires once per parameter; and the frozen forward of the G step arms no
hook at all, so no reduction is left pending (tests/run/test_distributed.py runs exactly this step;
torch 2.14 also accepts it with `find_unused_parameters=True`, which only adds a graph walk per step).

Identical optimizer state on every rank. DDP averages gradients across ranks and starts every rank
from rank 0's parameters; a deterministic optimizer (Adam, TRAdam, ...) then computes the same update
everywhere, so parameters, TR anchors and step counters stay equal without extra communication
(tests/run/test_distributed.py checks it across an anchor refresh).

Data. `ShardedSampler` gives each rank a disjoint shard of one permutation that derives from
(seed, epoch) only, so a resumed run sees exactly the order it would have seen, and it can skip the
samples already consumed in a mid-epoch resume.
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


# ----------------------------------------------------------------------------- process group
def env_ranks():
    """(rank, world_size, local_rank) from torchrun's environment; (0, 1, 0) without torchrun."""
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    return rank, world_size, local_rank


def backend_for(device):
    """nccl for CUDA devices, gloo for everything else (CPU)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_distributed(device="cpu", *, timeout_minutes=30):
    """Join the process group torchrun describes and return this process's device.

    `device` is what the user asked for ("cpu", "cuda", "cuda:N" or a torch.device). Under torchrun
    with CUDA each process takes GPU LOCAL_RANK (an explicit index is overridden: one GPU per process).
    Without torchrun (WORLD_SIZE unset or 1) nothing is initialised and `device` comes back as is.
    """
    device = torch.device(device)
    rank, world_size, local_rank = env_ranks()
    if world_size <= 1 or is_distributed():
        if device.type == "cuda" and is_distributed():
            device = torch.device("cuda", local_rank)
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available() or local_rank >= torch.cuda.device_count():
            raise UserError(
                f"local rank {local_rank} needs a CUDA device but {torch.cuda.device_count()} are visible;"
                " lower --nproc_per_node or use --device cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UserError(f"WORLD_SIZE={world_size} but {name} is not set; start the program with torchrun")
    init_kwargs = dict(backend=backend_for(device), init_method="env://", rank=rank, world_size=world_size,
                       timeout=datetime.timedelta(minutes=timeout_minutes))
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


def barrier():
    if is_distributed():
        dist.barrier()


def cleanup():
    """Leave the process group (call once at the end of the program, on every rank)."""
    if is_distributed():
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- collectives
def all_reduce_sum(tensor):
    """Sum `tensor` over ranks, in place; returns it. A no-op without torchrun."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_reduce_mean(tensor):
    """Average `tensor` over ranks, in place (floating point); returns it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        tensor.div_(get_world_size())
    return tensor


def mean_over_ranks(values, device="cpu"):
    """{name: float} averaged over ranks (for logging losses); one collective for the whole dict."""
    if not is_distributed() or not values:
        return dict(values)
    names = list(values)  # same order on every rank: the caller builds the dict the same way
    packed = torch.tensor([float(values[n]) for n in names], dtype=torch.float64, device=device)
    all_reduce_mean(packed)
    return dict(zip(names, packed.tolist()))


def any_rank(flag, device="cpu"):
    """True on every rank when `flag` is true on any (a stop signal may reach the ranks at
    different steps; all must stop at the same one). A no-op without torchrun."""
    if not is_distributed():
        return bool(flag)
    return bool(all_reduce_sum(torch.tensor([float(bool(flag))], device=device)).item())


def epoch_seed(seed, epoch):
    """The one seed of an epoch's data order and loader workers: a function of (seed, epoch) only."""
    return int(seed) * 1_000_003 + int(epoch)


def broadcast_object(obj, src=0):
    """Rank `src`'s Python object on every rank (e.g. a run name or a resume decision)."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


# ----------------------------------------------------------------------------- models
def convert_sync_bn(module, device):
    """BatchNorm layers -> SyncBatchNorm (batch statistics over all ranks). CUDA only in torch."""
    if torch.device(device).type != "cuda":
        raise UserError("--sync_bn needs CUDA devices (torch's SyncBatchNorm has no CPU kernel); drop --sync_bn on CPU")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def wrap_ddp(module, device, *, sync_bn=False, find_unused_parameters=False):
    """Wrap `module` (already on `device`) for data-parallel training; returned as is without torchrun.

    Rank 0's parameters and buffers are broadcast at construction, so all ranks start equal.
    """
    if not is_distributed():
        return module
    if sync_bn:
        module = convert_sync_bn(module, device)
    device = torch.device(device)
    if device.type != "cuda" and any(isinstance(m, nn.SyncBatchNorm) for m in module.modules()):
        raise UserError("--norm syncbatch across torchrun processes needs CUDA devices (torch's SyncBatchNorm "
                        "has no CPU kernel); use --norm batch on CPU")
    device_ids = [device] if device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def unwrap(module):
    """The plain module inside a DDP wrapper (what checkpoints save and load), or `module` itself."""
    return module.module if isinstance(module, DistributedDataParallel) else module


# ----------------------------------------------------------------------------- data
def shard_range(num_items, *, rank=None, world_size=None):
    """This rank's share of `num_items` for evaluation: every item exactly once over all ranks.

    Unlike the training sampler there is no padding (a repeated frame would be counted twice in a
    summed confusion matrix); shard sizes differ by at most one, which is fine for one final reduce.
    """
    rank = get_rank() if rank is None else rank
    world_size = get_world_size() if world_size is None else world_size
    return range(rank, num_items, world_size)


class ShardedSampler(DistributedSampler):
    """torch's DistributedSampler, resumable mid-epoch: rank r of W reads every W-th index of a
    (seed, epoch) permutation, padded by wrapping around (or cut, with drop_last) to a multiple of W.

    `set_epoch(epoch, skip=0)` chooses the epoch's permutation and drops the first `skip` indices of
    this rank's shard (the ones a mid-epoch checkpoint already consumed, counted in samples per rank).
    The order depends on nothing but `epoch_seed(seed, epoch)`: not on the global RNG, the number of
    workers, or the history of the run. (DistributedSampler seeds with seed + epoch; given
    epoch_seed(seed, 0) it seeds with epoch_seed(seed, epoch), so seeds 0 and 1 never share orders.)
    """

    def __init__(self, num_samples, *, rank=None, world_size=None, seed=0, shuffle=True, drop_last=False):
        super().__init__(range(int(num_samples)), num_replicas=get_world_size() if world_size is None else world_size,
                         rank=get_rank() if rank is None else rank, shuffle=shuffle,
                         seed=epoch_seed(seed, 0), drop_last=drop_last)
        self.skip = 0

    def set_epoch(self, epoch, skip=0):
        super().set_epoch(int(epoch))
        self.skip = int(skip)

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self):
        return max(super().__len__() - self.skip, 0)
