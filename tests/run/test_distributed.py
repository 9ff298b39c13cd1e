"""Distributed training on CPU: 2 gloo processes, and the resumable sharded sampler.

- Two ranks training pix2pix (DDP-wrapped G and D, D frozen during the G step, TRAdam with an
  anchor refresh every 3 steps) end with identical parameters, TR anchors and step counters.
- Two ranks at batch 1 equal one process at batch 2 on the concatenated batch (float64, no
  normalization and no dropout, so that per-sample computations do not depend on the rank split): the
  gradient averaging is right and nothing in the step differs between the two set-ups.
- train.py itself under two torchrun-like gloo processes: rank 0 alone saves, and both ranks end
  with the weights rank 0 saved.
- ShardedSampler: disjoint shards that cover the dataset, an order fixed by (seed, epoch), and a
  mid-epoch resume that continues with exactly the samples the uninterrupted epoch would have seen.
"""
import os
import sys
import socket

import pytest
import torch
import torch.multiprocessing as mp

from pix2pix_tr.run import distributed
from pix2pix_tr.run.distributed import ShardedSampler
from pix2pix_tr.models.pix2pix import Pix2PixModel
from pix2pix_tr.models.networks import define_D, define_G
from pix2pix_tr.optim import build_optimizer

STEPS, INNER_STEPS, SIZE, NUM_SAMPLES = 7, 3, 64, 8   # refreshes at steps 0, 3, 6: two within the run


# ----------------------------------------------------------------------------- shared by ranks and reference
def dataset(dtype):
    gen = torch.Generator().manual_seed(123)
    images = torch.rand(NUM_SAMPLES, 2, 3, SIZE, SIZE, generator=gen, dtype=torch.float64) * 2 - 1
    return [{"A": pair[0].to(dtype), "B": pair[1].to(dtype)} for pair in images]


def build_model(norm, dtype):
    """Tiny pix2pix nets, dropout off (its masks would differ between the rank split and batch 2)."""
    torch.manual_seed(7)
    netG = define_G(3, 3, 8, "resnet_6blocks", norm=norm, use_dropout=False)
    netD = define_D(6, 8, "basic", norm=norm)
    netG, netD = netG.to(dtype), netD.to(dtype)
    return netG, netD


def make_optimizer(net):
    return build_optimizer("tradam", net.parameters(), lr=0.002, tr_lambda=0.1, inner_steps=INNER_STEPS)


def snapshot(netG, netD, opt_G, opt_D):
    return {"params": [p.detach().clone() for net in (netG, netD) for p in net.parameters()],
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict()}


RUNS = {"batch-norm": ("batch", "float32"), "exact": ("none", "float64")}


def rank_worker(rank, world_size, port, out_dir, dataroot):
    """One torchrun-like process: environment -> process group -> DDP -> sharded loader -> steps; then
    train.py's main() in the same process group (it leaves the group at its end)."""
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    device = distributed.init_distributed("cpu")
    try:
        for run, (norm, dtype_name) in RUNS.items():
            train_on_rank(rank, device, os.path.join(out_dir, f"{run}_rank{rank}.pt"), norm, getattr(torch, dtype_name))
        train_py_on_rank(rank, dataroot, out_dir)
    finally:
        distributed.cleanup()


def train_on_rank(rank, device, out_path, norm, dtype):
    netG, netD = build_model(norm, dtype)
    torch.manual_seed(1000 + rank)   # ranks differ in RNG: DDP must still start them equal
    for p in list(netG.parameters())[:2]:
        p.data.add_(torch.randn_like(p) * (rank > 0))  # perturb rank 1: DDP broadcasts rank 0's weights
    netG, netD = distributed.prepare_network(netG, device), distributed.prepare_network(netD, device)
    opt_G, opt_D = make_optimizer(netG), make_optimizer(netD)
    model = Pix2PixModel(netG, netD, opt_G, opt_D, device=device)
    sampler = ShardedSampler(NUM_SAMPLES, seed=5)
    loader = torch.utils.data.DataLoader(dataset(dtype), batch_size=1, sampler=sampler)
    steps = 0
    for epoch in range(10):
        sampler.set_epoch(epoch)
        for batch in loader:
            model.train_step(batch)
            steps += 1
            if steps == STEPS:
                break
        if steps == STEPS:
            break
    losses = distributed.mean_over_ranks({"x": float(rank)})
    plain = [distributed.unwrap(n) for n in (netG, netD)]
    torch.save({**snapshot(*plain, opt_G, opt_D), "mean_rank": losses["x"],
                "main": distributed.is_main_process()}, out_path)
    torch.distributed.barrier()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks_dir(tmp_path_factory):
    """Both runs of RUNS and a train.py run, by 2 spawned gloo processes (one start-up for the module)."""
    from tests.trainer_helpers import make_synthcity
    out_dir = tmp_path_factory.mktemp("ranks")
    dataroot = make_synthcity(out_dir / "synthcity", num_train=4, num_val=1)
    mp.spawn(rank_worker, args=(2, free_port(), str(out_dir), dataroot), nprocs=2, join=True)
    return out_dir


@pytest.fixture(scope="module")
def two_rank_runs(ranks_dir):
    return {run: [torch.load(ranks_dir / f"{run}_rank{r}.pt", weights_only=True) for r in range(2)]
            for run in RUNS}


def flat_optimizer_tensors(state_dict):
    """(name, tensor or number) of everything in an optimizer state dict, in a fixed order."""
    items = []
    for index in sorted(state_dict["state"]):
        for key in sorted(state_dict["state"][index]):
            items.append((f"{index}.{key}", state_dict["state"][index][key]))
    return items


def assert_same(a, b, *, exact, what):
    if torch.is_tensor(a):
        if exact:
            assert torch.equal(a, b), what
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=what)
    else:
        assert a == b, what


def train_py_on_rank(rank, dataroot, out_dir):
    """train.py's main() as torchrun would start it, one process per rank."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # spawned
    from tests.trainer_helpers import TINY_RUN, load_module
    model = load_module("train").main(
        ["--dataroot", dataroot, "--name", "ddp", "--checkpoints_dir", out_dir, *TINY_RUN,
         "--optimizer", "tradam", "--tr_inner_steps", "2", "--n_epochs", "1", "--n_epochs_decay", "0"])
    weights = {k: v.detach().clone() for k, v in distributed.unwrap(model.netG).named_parameters()}
    torch.save({"G": weights}, os.path.join(out_dir, f"rank{rank}.pt"))


@pytest.mark.slow
def test_train_py_on_two_gloo_ranks_ends_with_rank_0s_saved_weights(ranks_dir):
    ranks = [torch.load(ranks_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]
    saved = torch.load(ranks_dir / "ddp" / "latest_net_G.pth", weights_only=True)
    assert ranks[0]["G"] and set(ranks[0]["G"]) <= set(saved)     # parameters (BN statistics are per rank)
    for key, value in ranks[0]["G"].items():
        assert torch.equal(value, saved[key]) and torch.equal(ranks[1]["G"][key], value), key


# ----------------------------------------------------------------------------- the tests
@pytest.mark.slow
def test_two_gloo_ranks_keep_parameters_tr_anchors_and_counters_identical(two_rank_runs):
    rank0, rank1 = two_rank_runs["batch-norm"]
    assert rank0["main"] and not rank1["main"]
    assert rank0["mean_rank"] == rank1["mean_rank"] == 0.5
    for a, b in zip(rank0["params"], rank1["params"]):
        assert torch.equal(a, b)
    for opt in ("opt_G", "opt_D"):
        items0, items1 = flat_optimizer_tensors(rank0[opt]), flat_optimizer_tensors(rank1[opt])
        assert [k for k, _ in items0] == [k for k, _ in items1]
        assert any("anchor" in k for k, _ in items0), "TRAdam's state should carry the anchors"
        for (key, a), (_, b) in zip(items0, items1):
            assert_same(a, b, exact=True, what=f"{opt} {key} differs across ranks")
    # the run crossed anchor refreshes: the anchors are the weights of step 6, not the initial ones
    netG, _ = build_model("batch", torch.float32)
    anchors = [v for k, v in flat_optimizer_tensors(rank0["opt_G"]) if "anchor" in k]
    assert not torch.equal(anchors[0], next(netG.parameters()).detach())


@pytest.mark.slow
def test_two_ranks_at_batch_1_equal_one_process_at_batch_2(two_rank_runs):
    """norm "none": a bias before InstanceNorm has a zero gradient made of rounding noise, which Adam
    would scale up to full steps of arbitrary sign; without normalization every gradient is real."""
    ranks = two_rank_runs["exact"]
    netG, netD = build_model("none", torch.float64)
    opt_G, opt_D = make_optimizer(netG), make_optimizer(netD)
    model = Pix2PixModel(netG, netD, opt_G, opt_D)
    data = dataset(torch.float64)
    steps = 0
    for epoch in range(10):
        shards = [ShardedSampler(NUM_SAMPLES, rank=r, world_size=2, seed=5) for r in range(2)]
        for s in shards:
            s.set_epoch(epoch)
        for pair in zip(*(list(s) for s in shards)):
            model.train_step({k: torch.stack([data[i][k] for i in pair]) for k in ("A", "B")})
            steps += 1
            if steps == STEPS:
                break
        if steps == STEPS:
            break
    reference = snapshot(netG, netD, opt_G, opt_D)
    for a, b in zip(reference["params"], ranks[0]["params"]):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-11)
    for opt in ("opt_G", "opt_D"):
        for (key, a), (_, b) in zip(flat_optimizer_tensors(reference[opt]), flat_optimizer_tensors(ranks[0][opt])):
            assert_same(b, a, exact=False, what=f"{opt} {key}: 2 ranks vs batch 2")


@pytest.mark.parametrize("num_samples,world_size", [(12, 3), (10, 4), (7, 2), (5, 1)])
def test_shards_are_disjoint_cover_the_dataset_and_have_equal_length(num_samples, world_size):
    shards = [list(ShardedSampler(num_samples, rank=r, world_size=world_size, seed=3)) for r in range(world_size)]
    assert len({len(s) for s in shards}) == 1
    assert all(len(s) == len(ShardedSampler(num_samples, rank=r, world_size=world_size))
               for r, s in enumerate(shards))
    flat = [i for s in shards for i in s]
    assert set(flat) == set(range(num_samples))                   # covers everything
    padding = len(flat) - num_samples
    assert padding == (-num_samples) % world_size                 # only the padding repeats
    assert len(set(flat)) == num_samples


@pytest.mark.parametrize("num_items,world_size", [(10, 3), (2, 4), (0, 2), (9, 1)])
def test_evaluation_shards_count_every_item_exactly_once(num_items, world_size):
    shards = [list(distributed.shard_range(num_items, rank=r, world_size=world_size)) for r in range(world_size)]
    assert sorted(i for s in shards for i in s) == list(range(num_items))


def test_order_depends_on_seed_and_epoch_only():
    def order(seed, epoch, noise):
        torch.manual_seed(noise)                                  # the global RNG must not matter
        sampler = ShardedSampler(50, rank=1, world_size=2, seed=seed)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert order(4, 2, noise=0) == order(4, 2, noise=99)
    assert order(4, 2, noise=0) != order(4, 3, noise=0)
    assert order(4, 2, noise=0) != order(5, 2, noise=0)
    unshuffled = ShardedSampler(6, rank=0, world_size=2, shuffle=False)
    assert list(unshuffled) == [0, 2, 4]


def test_mid_epoch_resume_continues_with_the_same_samples():
    """A loader stopped after k batches, rebuilt and told to skip k, yields the rest of the epoch."""
    data = list(range(23))
    for rank in range(2):
        straight = ShardedSampler(len(data), rank=rank, world_size=2, seed=9)
        straight.set_epoch(4)
        full = [int(x) for x in torch.utils.data.DataLoader(data, sampler=straight, batch_size=1)]
        consumed = full[:5]
        resumed = ShardedSampler(len(data), rank=rank, world_size=2, seed=9)
        resumed.set_epoch(4, skip=len(consumed))
        rest = [int(x) for x in torch.utils.data.DataLoader(data, sampler=resumed, batch_size=1,
                                                             num_workers=1)]
        assert consumed + rest == full
        assert len(resumed) == len(rest)
        resumed.set_epoch(5)                                          # the next epoch starts whole again
        assert len(list(resumed)) == len(full)


def test_single_process_helpers_degrade_gracefully():
    assert not distributed.is_distributed()
    assert distributed.get_rank() == 0 and distributed.get_world_size() == 1 and distributed.is_main_process()
    assert distributed.init_distributed("cpu") == torch.device("cpu")   # no torchrun environment: nothing to join
    module = torch.nn.Linear(2, 2)
    assert distributed.prepare_network(module, "cpu") is module and distributed.unwrap(module) is module
    t = torch.tensor([1.0, 2.0])
    assert torch.equal(distributed.all_reduce_sum(t), torch.tensor([1.0, 2.0]))
    assert distributed.mean_over_ranks({"a": 1.5}) == {"a": 1.5}
