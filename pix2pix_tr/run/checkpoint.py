"""Checkpoints and exact resume: one checkpoint is one consistent unit.

A run's folder holds pix2pix's weight files (`weights_path` names them)

    <epoch>_net_G.pth  <epoch>_net_D.pth     every --save_epoch_freq epochs
    latest_net_G.pth   latest_net_D.pth      at every save

and ONE training-state file, latest_state.pth: the resume unit. It holds both networks' weights
and everything else a resumed run needs to go on bit for bit as if it had never stopped: both
optimizers (their trajectory-regularization anchors and counters included), both schedulers, the
epoch, the samples already consumed in it, the total iteration count, every random number
generator (python, numpy, torch CPU, CUDA) and the run's options, the one record of them that
--continue_train reads. One file is renamed into place at once (run/atomic.py), so the weights and
the state of one moment are there together or not at all, and the previous checkpoint stays whole
until the next is complete: a kill at any moment leaves a checkpoint that resumes. The pix2pix
weight files are written after it, for test.py and pix2pix; a resume rewrites them from the state
when a kill left them from another moment. The state holds only tensors, dicts, lists, numbers and
strings: it loads with `torch.load(..., weights_only=True)`.
"""
import contextlib
import fcntl
import os
import random
import socket

import numpy as np
import torch

from pix2pix_tr.run import atomic
from pix2pix_tr.run.distributed import unwrap
from pix2pix_tr.errors import UserError
from pix2pix_tr.models.networks import StateDictMismatch, load_pix2pix_state_dict

STATE_FILE = "latest_state.pth"
STATE_VERSION = 2


# --- random number generators ---------------------------------------------------------------
def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


# --- weight files ------------------------------------------------------------------------------
def weights_path(run_dir, label, name, suffix=""):
    """pix2pix's weight file of net `name` ("G"/"D") at `label` ("latest", an epoch, iter_<N>)."""
    return os.path.join(run_dir, f"{label}_net_{name}{suffix}.pth")


def load_network(net, path, name="G"):
    """Load one pix2pix weights file into `net` (pix2pix's own files too), or one UserError line."""
    try:
        load_pix2pix_state_dict(unwrap(net), read_weights(path))
    except StateDictMismatch as err:
        raise UserError(f"{path} does not fit net{name} as configured ({err}); check --netG/"
                        "--netD, --ngf/--ndf, --norm, --n_layers_D, --input_nc/--output_nc") from None


def read_weights(path):
    """A weights file's state dict; a missing, empty, truncated or foreign file is one UserError line."""
    if not os.path.isfile(path):
        raise UserError(f"no checkpoint {path}; check --name, --checkpoints_dir and --epoch")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zero-byte, truncated, garbage, or a pickle weights_only refuses
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else 'empty'}); restore it or pick "
                        "another --epoch") from None
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors; is it a weights file (<label>_net_G.pth)?")
    return state


# --- save / load ------------------------------------------------------------------------------
def training_state(*, optimizers, schedulers, position, options, nets, scaler=None):
    """The resume state as a dict: `position` (run/counter.py) is where training goes on: the epoch
    to run, the samples of it already consumed, the samples in all; `nets` maps "G"/"D" to modules."""
    state = {
        "version": STATE_VERSION,
        "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
        "schedulers": {k: sch.state_dict() for k, sch in schedulers.items()},
        "epoch": int(position.epoch), "epoch_iter": int(position.epoch_iter),
        "total_iters": int(position.total_iters),
        "rng": capture_rng_state(),
        "options": dict(options),
        "nets": {name: network_state(net) for name, net in nets.items()},
    }
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    return state


def network_state(net):
    """A module's state dict as pix2pix saves it: CPU, contiguous, without DDP's `module.` prefix."""
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(net).state_dict().items()}


def save_checkpoint(run_dir, labels, state):
    """The resume unit first (latest_state.pth, weights inside, one rename), then pix2pix's
    <label>_net_{G,D}.pth for each label, from the same weights."""
    os.makedirs(run_dir, exist_ok=True)
    atomic.torch_save(os.path.join(run_dir, STATE_FILE), state)
    write_weight_files(run_dir, labels, state["nets"])


def write_weight_files(run_dir, labels, nets_state):
    for label in labels:
        for name, weights in nets_state.items():
            atomic.torch_save(weights_path(run_dir, label, name), weights)


def load_training_state(run_dir, *, mmap=False):
    """The saved training state of `run_dir`, or None if it has none. `mmap=True` maps the tensors
    instead of reading them: cheap when only the options or counters are wanted."""
    path = os.path.join(run_dir, STATE_FILE)
    if not os.path.isfile(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:                                   # zero-byte, truncated or foreign file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "empty file"
        raise UserError(f"cannot read {path} ({type(err).__name__}: {reason}); delete it to continue "
                        "from the weights alone (fresh optimizer state)") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise UserError(f"{path} has state version {version}, expected {STATE_VERSION}; "
                        "delete it to continue from the weights alone (fresh optimizer state)")
    return state


def restore_training_state(state, *, optimizers, schedulers, nets, scaler=None):
    """Load the weights, then optimizers, schedulers (after them, torch's order) and the scaler.
    `nets` maps "G"/"D" to the modules. The RNGs are left to the caller: restore them
    (`restore_rng_state(state["rng"])`) just before the first step, after everything that draws
    random numbers while being built."""
    for name, net in nets.items():
        unwrap(net).load_state_dict(state["nets"][name])
    for key, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][key])
    for key, sch in schedulers.items():
        sch.load_state_dict(state["schedulers"][key])
    if scaler is not None and "scaler" in state:
        scaler.load_state_dict(state["scaler"])


def weight_files_match(run_dir, state):
    """Whether latest_net_{G,D}.pth hold exactly the state's weights (a kill between the state and
    the weight files leaves them from the moment before)."""
    for name, expected in state["nets"].items():
        try:
            found = read_weights(weights_path(run_dir, "latest", name))
        except UserError:
            return False
        if found.keys() != expected.keys() or not all(torch.equal(found[k], v) for k, v in expected.items()):
            return False
    return True


# --- one trainer per run folder ---------------------------------------------------------------------
LOCK_FILE = "train.lock"


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the run folder for this process: a second trainer on it gets one UserError line naming
    the holder's pid. The lock is the kernel's (flock), so it dies with its process: a run killed
    with -9 leaves a lock file that the next trainer simply takes over."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise atomic.write_error(path, err) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            raise UserError(f"{run_dir} is in use by another train.py (pid {holder[0] if holder else '?'}); "
                            "wait for it to finish, stop it, or choose another --name") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        yield path
    finally:
        os.close(fd)                                     # releases the flock
