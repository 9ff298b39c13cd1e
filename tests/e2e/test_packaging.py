"""`pip install .` ships the library pix2pix_tr, whose optim and models must import and train with torch
as the only third-party package: a subprocess checks it by refusing every other import. (A real
`pip install .` into a fresh venv is in the README's measurements, not here: it copies torch, gigabytes.)
"""
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_library_imports_with_torch_alone(tmp_path):
    """pix2pix_tr.optim and pix2pix_tr.models import, and take a pix2pix training step with TRAdam,
    with every other third-party package and the checkout's own top-level packages refused."""
    script = textwrap.dedent(f"""
        import sys
        REFUSED = {{"numpy", "PIL", "visdom", "dominate", "tqdm", "cv2", "scipy", "matplotlib",
                    "segmentation_models_pytorch", "torchvision", "data", "options", "evaluate", "scripts"}}

        for name in REFUSED:          # as if not installed: import raises ModuleNotFoundError
            sys.modules[name] = None
        sys.path.insert(0, {REPO!r})
        import torch
        from pix2pix_tr.optim import TRAdam
        from pix2pix_tr.models.networks import define_D, define_G
        from pix2pix_tr.models.pix2pix import Pix2PixModel
        G, D = define_G(3, 3, 4, "unet_128"), define_D(6, 4, "basic")
        model = Pix2PixModel(G, D, TRAdam(G.parameters(), lr=2e-4), TRAdam(D.parameters(), lr=2e-4))
        losses = model.train_step(dict(A=torch.rand(1, 3, 128, 128), B=torch.rand(1, 3, 128, 128)))
        assert sorted(losses) == ["D_fake", "D_real", "G_GAN", "G_L1"]
        bad = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in REFUSED)
        assert not bad, bad
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
