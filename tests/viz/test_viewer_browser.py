"""The visdom live view in a real browser: our launcher starts visdom on a free loopback port, a
run sends its losses and images (the Visualizer's calls directly, then `python train.py` on a tiny
SynthCity), headless Chromium loads /env/<run>, and the rendered page must show the four loss names
in the plot's legend and the current images, pixel for pixel.

Needs Debian's `chromium` and visdom's web assets (python scripts/install_visdom_assets.py); CI
installs both. When either is missing the test FAILS and says what to install: a skip would hide a
viewer that renders for nobody.
"""
import base64
import html.parser
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_tr.viz.visualizer import Visualizer
from scripts.install_visdom_assets import missing_assets, visdom_static_dir
from tests.trainer_helpers import stop

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")
VISUALS = ("real_A", "fake_B", "real_B")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--hide-scrollbars", "--mute-audio")

pytestmark = pytest.mark.slow   # a visdom server, Chromium and a training run


def chromium_binary():
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is needed for the viewer test: apt-get install -y chromium "
                "(CI does: see .ci/run)")


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listens(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def visdom_port(tmp_path_factory):
    """A port where the launcher's visdom server will listen; the server starts on demand, once for
    the module (each test uses its own env)."""
    missing = missing_assets(visdom_static_dir())
    if missing:
        pytest.fail(f"visdom's web assets are missing ({missing[0]}, ...): run "
                    "python scripts/install_visdom_assets.py (npm; CI does)")
    port = unused_port()
    tmp_path = tmp_path_factory.mktemp("visdom")
    servers = []

    def start():
        if servers:
            return
        log = open(tmp_path / "visdom_server.log", "w")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "scripts", "visdom_server.py"), "--port", str(port),
             "--env_path", str(tmp_path / "visdom_envs")], stdout=log, stderr=subprocess.STDOUT,
            cwd=REPO)
        servers.append((proc, log))
        for _ in range(300):
            if _listens(port):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"the visdom launcher did not start: {(tmp_path / 'visdom_server.log').read_text()}")

    yield port, start
    for proc, log in servers:
        stop(proc, timeout=10)
        log.close()


def render(url, *, screenshot=None, window_size="1280,900"):
    """The DOM of `url` after Chromium has let it settle (virtual time) -> str."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        extra = ([f"--screenshot={screenshot}", f"--window-size={window_size}"] if screenshot
                 else ["--dump-dom"])
        result = subprocess.run(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             "--virtual-time-budget=15000", *extra, url],
            capture_output=True, text=True, timeout=120)
    return result.stdout


class ViewerPage(html.parser.HTMLParser):
    """What the rendered visdom page shows: plot legend entries, plot titles, image panes."""

    def __init__(self, dom):
        super().__init__()
        self.legend, self.titles, self.images = [], [], {}
        self.feed(dom)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "text" and "legendtext" in classes:
            self.legend.append(attrs.get("data-unformatted"))
        elif tag == "text" and "gtitle" in classes:
            self.titles.append(attrs.get("data-unformatted"))
        elif tag == "img" and "content-image" in classes:
            self.images[attrs.get("alt")] = attrs.get("src")


def load_viewer(port, env, want_images):
    """Render /env/<env> until the legend and the images are there (the page fills in over a
    websocket; a few tries absorb a slow machine)."""
    for _ in range(4):
        page = ViewerPage(render(f"http://127.0.0.1:{port}/env/{env}"))
        if set(LOSSES) <= set(page.legend) and len(page.images) >= want_images:
            return page
    return page


def decode_data_uri(uri):
    assert uri and uri.startswith("data:image/png;base64,"), (uri or "")[:60]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def test_pushed_run_renders_losses_and_current_images(visdom_port, tmp_path):
    port, start_server = visdom_port
    messages = []
    # Created before the server exists: one warning, then the display reconnects once it is up.
    vis = Visualizer("browser_run", checkpoints_dir=tmp_path, display_id=1, display_port=port,
                     display_winsize=64, log=messages.append, reconnect_interval=0.0)
    vis.plot_current_losses(1, 0.0, dict.fromkeys(LOSSES, 1.0))
    assert len([m for m in messages if m.startswith("warning")]) == 1
    start_server()

    g = torch.Generator().manual_seed(3)
    for i in range(1, 6):  # what train.py does every --print_freq / --display_freq
        losses = {"G_GAN": 0.7 + 0.01 * i, "G_L1": 30.0 - i, "D_real": 0.6 - 0.02 * i, "D_fake": 0.5}
        vis.plot_current_losses(1, i / 5, losses)
        vis.print_current_losses(1, i, losses, 0.1, 0.01)
    visuals = {k: torch.rand(1, 3, 32, 32, generator=g) * 2 - 1 for k in VISUALS}
    vis.display_current_results(visuals, 1, save_result=True)

    page = load_viewer(port, "browser_run", want_images=3)
    assert sorted(page.legend) == sorted(LOSSES), page.legend
    assert "browser_run loss over time" in page.titles
    assert sorted(page.images) == sorted(f"{k}, epoch 1" for k in VISUALS)
    for label, tensor in visuals.items():  # the very pixels pushed, restated independently
        expected = np.rint((tensor[0].permute(1, 2, 0).numpy().astype(np.float64) + 1) * 127.5)
        np.testing.assert_array_equal(decode_data_uri(page.images[f"{label}, epoch 1"]), expected)
    assert any(m.startswith("visdom: connected") for m in messages)


def test_tiny_synthcity_training_run_renders_in_the_viewer(visdom_port, tmp_path):
    """`python train.py --display_id 1 --display_port P` on a tiny SynthCity: the page shows the
    run's four losses and its current images."""
    from data.layout import PreparedLayout
    from data.synthcity import generate

    port, start_server = visdom_port
    start_server()
    dataroot = generate(str(tmp_path / "synthcity"), num_train=4, num_val=1, size=128, seed=0,
                        workers=1, log=lambda *a, **k: None)
    result = subprocess.run(
        [sys.executable, "train.py", "--dataroot", dataroot, "--name", "viewer_run",
         "--checkpoints_dir", str(tmp_path / "ck"), "--netG", "unet_128", "--ngf", "8", "--ndf", "8",
         "--preprocess", "none", "--no_flip", "--n_epochs", "1", "--n_epochs_decay", "1",
         "--print_freq", "1", "--display_freq", "2", "--update_html_freq", "2",
         "--display_id", "1", "--display_port", str(port), "--num_threads", "0", "--device", "cpu",
         "--save_epoch_freq", "100"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "warning" not in result.stdout + result.stderr  # the server answered throughout

    page = load_viewer(port, "viewer_run", want_images=3)
    assert sorted(page.legend) == sorted(LOSSES), page.legend
    assert "viewer_run loss over time" in page.titles
    assert sorted(page.images) == sorted(f"{k}, epoch 2" for k in VISUALS), sorted(page.images)
    shown = {k: decode_data_uri(page.images[f"{k}, epoch 2"]) for k in VISUALS}
    # real_A / real_B are the two halves (A = labels | B = photo) of one training pair file
    halves = []
    for path in PreparedLayout(dataroot).pair_files("train"):
        pair = np.asarray(Image.open(path).convert("RGB"))
        halves.append((pair[:, :128], pair[:, 128:]))
    assert any(np.array_equal(shown["real_A"], a) and np.array_equal(shown["real_B"], b)
               for a, b in halves)
    # the live fake_B is the one the run's HTML page saved at that display
    saved = Image.open(tmp_path / "ck" / "viewer_run" / "web" / "images" / "epoch002_fake_B.png")
    np.testing.assert_array_equal(shown["fake_B"], np.asarray(saved))
