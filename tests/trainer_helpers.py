"""Shared by the tests: a tiny SynthCity dataset, the flags of a tiny, fast run, weight comparisons, and
stopping the servers a test starts."""
import importlib.util
import os
import subprocess

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# unet_128 with 8 filters on 128 px crops of 144 px images, CPU, no visdom, no loader workers.
TINY_RUN = ["--netG", "unet_128", "--ngf", "8", "--ndf", "8", "--load_size", "144", "--crop_size", "128",
            "--num_threads", "0", "--display_id", "0", "--device", "cpu"]


def stop(proc, timeout):
    """SIGTERM a server the test started; SIGKILL it if it has not exited after `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_synthcity(root, num_train, num_val, size=64):
    from data.synthcity import generate

    generate(str(root), num_train=num_train, num_val=num_val, size=size, seed=0, workers=1)
    return str(root)


def load_module(name):
    """Import the repository's train.py / test.py by path (`test` would find Python's own package)."""
    spec = importlib.util.spec_from_file_location(f"entry_{name}", os.path.join(REPO, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_latest_weights(run, other):
    """Two run folders' latest_net_G/D.pth hold the same tensors, bit for bit."""
    for net in ("G", "D"):
        assert_same_tensors(load_weights(os.path.join(run, f"latest_net_{net}.pth")),
                            load_weights(os.path.join(other, f"latest_net_{net}.pth")))


def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"
