"""Checkpoints and exact resume.

A run's folder holds pix2pix's weight files, written by the model's `save_networks`:

    <epoch>_net_G.pth  <epoch>_net_D.pth     every --save_epoch_freq epochs
    latest_net_G.pth   latest_net_D.pth      at every save

and ONE training-state file, latest_state.pth, with everything else a resumed run needs to go on
bit for bit as if it had never stopped: both optimizers (their trajectory-regularization anchors
and counters included), both schedulers, the epoch, the samples already consumed in it, the total
iteration count, every random number generator (python, numpy, torch CPU, CUDA) and the options.
Every file is written atomically; the state is written last and carries a fingerprint of the
weights it belongs to, so weights and state from different moments (a save cut short between
files) are refused instead of resumed silently wrong. The state holds only tensors, dicts, lists,
numbers and strings: it loads with `torch.load(..., weights_only=True)`.

`ResumableSampler` is the data order that makes resuming mid-epoch exact: the permutation of an
epoch depends only on (seed, epoch), and a resumed epoch skips the samples already consumed.
"""
import os
import random

import numpy as np
import torch

from pix2pix_tr import atomic
from pix2pix_tr.errors import UserError

STATE_FILE = "latest_state.pth"
STATE_VERSION = 1


# --- random number generators ---------------------------------------------------------------
def capture_rng_state():
    """Every RNG's state as weights-only-loadable values (python's tuple as lists, numpy's key as a tensor)."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state(legacy=False)
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": {"bit_generator": np_state["bit_generator"],
                  "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                  "pos": int(np_state["state"]["pos"]),
                  "has_gauss": int(np_state["has_gauss"]), "gauss": float(np_state["gauss"])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    npst = state["numpy"]
    np.random.set_state({"bit_generator": npst["bit_generator"],
                         "state": {"key": npst["key"].numpy().astype(np.uint32), "pos": npst["pos"]},
                         "has_gauss": npst["has_gauss"], "gauss": npst["gauss"]})
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:                                   # resumed on another machine: what matches
            for index, rng in enumerate(cuda_states[: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(rng, index)


# --- weights fingerprint ----------------------------------------------------------------------
def weights_fingerprint(*modules):
    """A float64 sum per floating tensor of the modules' state: cheap, and any training step changes it."""
    sums = [t.detach().double().sum() for m in modules for t in m.state_dict().values()
            if torch.is_floating_point(t)]
    return torch.stack(sums).cpu() if sums else torch.zeros(0, dtype=torch.float64)


def fingerprints_match(a, b):
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-9, atol=1e-12)


# --- save / load ------------------------------------------------------------------------------
def training_state(*, optimizers, schedulers, epoch, epoch_iter, total_iters, options, nets,
                   scaler=None):
    """The resume state as a dict: `epoch` is the epoch to run (or go on with), `epoch_iter` the
    samples of it already consumed (0 at an epoch boundary)."""
    state = {
        "version": STATE_VERSION,
        "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
        "schedulers": {k: sch.state_dict() for k, sch in schedulers.items()},
        "epoch": int(epoch), "epoch_iter": int(epoch_iter), "total_iters": int(total_iters),
        "rng": capture_rng_state(),
        "options": dict(options),
        "weights_fingerprint": weights_fingerprint(*nets),
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return state


def save_checkpoint(run_dir, model, labels, state):
    """Weights under each label (pix2pix's <label>_net_{G,D}.pth via `model.save_networks`), then
    the training state last: a state file on disk always has its weights beside it."""
    os.makedirs(run_dir, exist_ok=True)
    for label in labels:
        model.save_networks(run_dir, label)
    atomic.torch_save(os.path.join(run_dir, STATE_FILE), state)


def load_training_state(run_dir):
    """The saved training state of `run_dir`, or None if it has none."""
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:                                   # truncated or foreign file
        raise UserError(f"cannot read {path} ({type(err).__name__}: {err}); "
                        "delete it to continue from the weights alone") from None
    if state.get("version") != STATE_VERSION:
        raise UserError(f"{path} has state version {state.get('version')}, expected {STATE_VERSION}")
    return state


def restore_training_state(state, *, optimizers, schedulers, nets, scaler=None, run_dir="."):
    """Load optimizers, schedulers (after them, torch's order) and the scaler, after checking the
    weights already loaded into `nets` are the ones the state was saved with. The RNGs are left to
    the caller: restore them (`restore_rng_state(state["rng"])`) just before the first step, after
    everything that draws random numbers while being built."""
    if not fingerprints_match(weights_fingerprint(*nets), state["weights_fingerprint"]):
        raise UserError(f"the latest weights in {run_dir} do not belong to its {STATE_FILE} "
                        "(a save was cut short); delete the state file to continue from the weights alone")
    for key, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][key])
    for key, sch in schedulers.items():
        sch.load_state_dict(state["schedulers"][key])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])


# --- data order -------------------------------------------------------------------------------
class ResumableSampler(torch.utils.data.Sampler):
    """Indices of one epoch: a permutation drawn from (seed, epoch) alone (or 0..n-1 when not
    shuffling), starting after the `skip` samples a resumed epoch already consumed.

    Call `set_epoch(epoch, skip=0)` before iterating each epoch. It never touches the global RNG.
    """

    def __init__(self, num_samples, *, seed=0, shuffle=True):
        self.num_samples, self.seed, self.shuffle = num_samples, seed, shuffle
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = epoch, skip

    def order(self, epoch):
        if not self.shuffle:
            return list(range(self.num_samples))
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.num_samples, generator=generator).tolist()

    def __iter__(self):
        return iter(self.order(self.epoch)[self.skip:])

    def __len__(self):
        return max(0, self.num_samples - self.skip)
