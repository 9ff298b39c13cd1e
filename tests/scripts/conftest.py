import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def synthcity_150(tmp_path_factory):
    """SynthCity 64×64 with 150 training frames: a smoke-scale cell trains ~6 s, time to signal or cancel it."""
    out = tmp_path_factory.mktemp("synthcity") / "ds"
    subprocess.run([sys.executable, os.path.join(REPO, "data", "synthcity.py"), "--output_dir", str(out),
                    "--num_train", "150", "--num_val", "3", "--size", "64", "--seed", "0"],
                   check=True, capture_output=True)
    return out
