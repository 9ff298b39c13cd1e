"""Checkpoints and exact resume: one checkpoint is one consistent unit.

A run's folder holds pix2pix's weight files (`weights_path`) and ONE resume unit, latest_state.pth:
both networks' weights, optimizers (TR anchors included), schedulers, the position, every RNG and the
run's options, renamed into place at once (run/atomic.py) so a kill at any moment leaves the previous
whole checkpoint. The weight files follow it; a resume rewrites them when a kill left them from
another moment. docs/train.md "A checkpoint is one unit" has the guarantees.
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
LOCK_FILE = "train.lock"


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
    if "cuda" in state and torch.cuda.is_available():   # on another machine: the devices both have
        for index, rng in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(rng, index)


# --- weight files ------------------------------------------------------------------------------
class NonFiniteWeights(ArithmeticError):
    """Weights or statistics holding NaN or Inf: never saved, never used to make outputs."""


def check_finite(tensors, what):
    """Raise NonFiniteWeights naming how many of `tensors` ({name: tensor}) hold NaN or Inf, and one of them."""
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise NonFiniteWeights(f"{len(bad)} of {len(tensors)} tensors of {what} are not finite "
                               f"(NaN or Inf; e.g. {bad[0]})")


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


def _torch_load(path, fix, mmap=False):
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # zero-byte, truncated, garbage, or a pickle weights_only refuses
        reason = str(err).strip().splitlines()[0] if str(err).strip() else "empty file"
        raise UserError(f"{path} is not a readable checkpoint ({type(err).__name__}: {reason}); {fix}") from None


def read_weights(path):
    """A weights file's state dict; a missing, empty, truncated or foreign file is one UserError line."""
    if not os.path.isfile(path):
        raise UserError(f"no checkpoint {path}; check --name, --checkpoints_dir and --epoch")
    state = _torch_load(path, "restore it or pick another --epoch")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserError(f"{path} holds no state dict of tensors; is it a weights file (<label>_net_G.pth)?")
    _check_finite_file(state, path, "pick another --epoch")
    return state


def _check_finite_file(tensors, what, fix):
    try:
        check_finite(tensors, what)
    except NonFiniteWeights as err:
        raise UserError(f"{err}: its run had diverged; {fix}") from None


# --- save / load ------------------------------------------------------------------------------
def training_state(model, schedulers, position, options):
    """The resume state of `model` (a Pix2PixModel: its optimizers and networks) and `schedulers`;
    `position` (run/counter.py) is where training goes on."""
    return {
        "version": STATE_VERSION,
        "optimizers": {k: opt.state_dict() for k, opt in model.optimizers().items()},
        "schedulers": {k: sch.state_dict() for k, sch in schedulers.items()},
        "epoch": int(position.epoch), "epoch_iter": int(position.epoch_iter),
        "total_iters": int(position.total_iters),
        "rng": capture_rng_state(),
        "options": dict(options),
        "nets": {name: network_state(net) for name, net in model.networks().items()},
    }


def network_state(net):
    """A module's state dict as pix2pix saves it: CPU, contiguous, without DDP's `module.` prefix."""
    return {k: v.detach().cpu().contiguous() for k, v in unwrap(net).state_dict().items()}


def save_checkpoint(run_dir, labels, state):
    """The resume unit first (latest_state.pth, weights inside, one rename), then pix2pix's
    <label>_net_{G,D}.pth for each label, from the same weights. Weights or statistics that are not
    finite raise NonFiniteWeights before anything is written: the last checkpoint stays the last good one."""
    for name, weights in state["nets"].items():
        check_finite(weights, f"net{name}")
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
    state = _torch_load(path, "delete it to continue from the weights alone (fresh optimizer state)", mmap)
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise UserError(f"{path} has state version {version}, expected {STATE_VERSION}; "
                        "delete it to continue from the weights alone (fresh optimizer state)")
    if not mmap:
        for name, weights in state["nets"].items():
            _check_finite_file(weights, f"net{name} in {path}", "delete it to continue from an earlier epoch's weights")
    return state


def restore_training_state(state, model, schedulers):
    """Load the weights, optimizers and schedulers (after them, torch's order). The caller
    restores the RNGs (`restore_rng_state`) just before the first step, after all that draws while built."""
    for name, net in model.networks().items():
        unwrap(net).load_state_dict(state["nets"][name])
    for key, opt in model.optimizers().items():
        opt.load_state_dict(state["optimizers"][key])
    for key, sch in schedulers.items():
        sch.load_state_dict(state["schedulers"][key])


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


_HELD = set()                                            # run folders this process holds


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold the run folder for this process: a second trainer gets one UserError line naming the holder's
    pid. A POSIX record lock (lockf) dies with the trainer, even under kill -9, and unlike flock is not
    shared with forked loader workers that outlive it by a few seconds. It neither excludes its own
    process nor survives the process closing any descriptor of the file: a second hold from this
    process is refused before the file is opened again."""
    os.makedirs(run_dir, exist_ok=True)
    path = os.path.join(run_dir, LOCK_FILE)
    key = os.path.realpath(path)
    in_use = "{} is in use by another train.py (pid {}); wait for it to finish, stop it, or choose another --name"
    if key in _HELD:
        raise UserError(in_use.format(run_dir, os.getpid()))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise atomic.write_error(path, err) from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            raise UserError(in_use.format(run_dir, holder[0] if holder else "?")) from None
        _HELD.add(key)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        try:
            yield path
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)                                     # releases the lock
