"""pix2pix_tr.allocator: with glibc's malloc tuned, the blocks of a step (1-16 MB, allocated,
touched and freed again and again) are reused with few page faults; with glibc's defaults the same
loop faults many times more. Each case runs in a fresh interpreter (the setting is process-wide)."""
import os
import platform
import subprocess
import sys

import pytest

from tests.trainer_helpers import REPO

LOOP = """
import resource, sys, torch
sys.path.insert(0, {repo!r})
from pix2pix_tr.allocator import tune_malloc
tuned = tune_malloc() if sys.argv[1] == "tuned" else None
sizes = [2**k for k in (18, 19, 20, 21, 22)] * 4    # 1-16 MB blocks, 124 MB: a small training step
def step():
    blocks = [torch.empty(n) for n in sizes]
    for block in blocks:
        block.fill_(1.0)                             # touch every page
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode):
    out = subprocess.run([sys.executable, "-c", LOOP.format(repo=REPO), mode], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"}).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc; elsewhere a no-op")
@pytest.mark.slow
def test_tuned_malloc_reuses_freed_blocks_without_page_faults():
    _, default_faults = faults("default")
    tuned, tuned_faults = faults("tuned")
    assert tuned == "True"
    # one step touches 31,744 pages. Measured over 10 steps: glibc's defaults 34,816 to 317,152
    # faults (how much it trims back to the kernel varies from run to run), tuned 2,048 to 10,240
    # (the first steps' heap growth; the kernel's reclaim now and then)
    assert default_faults > 10 * 1000            # glibc hands blocks back: pages faulted anew
    assert tuned_faults < 16 * 1000              # tuned: under half a step's pages in 10 steps
    assert tuned_faults * 2 < default_faults
