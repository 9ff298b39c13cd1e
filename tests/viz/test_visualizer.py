"""The viewer without a browser: tensor2im, the HTML page, the loss logs, the no-server path, and
the visdom asset installer's bookkeeping. Expected values are restated by hand, not by the code."""
import html.parser
import json
import os
import re
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_tr.viz import visdom_display
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.html import HTML
from pix2pix_tr.viz.images import tensor2im
from pix2pix_tr.viz.visualizer import Visualizer
from scripts import install_visdom_assets as assets

LOSSES = ("G_GAN", "G_L1", "D_real", "D_fake")


def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _PageParser(html.parser.HTMLParser):
    """Headers, image sources and link targets of a page, in document order."""

    def __init__(self):
        super().__init__()
        self.headers, self.imgs, self.links, self._in_h3 = [], [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h3":
            self._in_h3 = True
        elif tag == "img":
            self.imgs.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        self._in_h3 = self._in_h3 and tag != "h3"

    def handle_data(self, data):
        if self._in_h3:
            self.headers.append(data.strip())


def parse_page(path):
    parser = _PageParser()
    with open(path, encoding="utf-8") as f:
        parser.feed(f.read())
    return parser


def test_tensor2im_maps_minus_one_to_one_onto_0_to_255_first_of_batch_hwc():
    # channel c, row h, column w; values chosen so every mapping is computed by hand:
    # -1 -> 0, 0 -> 127.5 -> 128 (rounded), 0.5 -> 191.25 -> 191, 1 -> 255, 2 (clipped) -> 255.
    first = torch.tensor([[[-1.0, 0.0], [0.5, 1.0]],
                          [[2.0, -1.0], [0.0, 0.0]],
                          [[0.0, 0.5], [-1.0, -3.0]]])
    batch = torch.stack([first, torch.zeros(3, 2, 2)])
    out = tensor2im(batch)
    assert out.dtype == np.uint8 and out.shape == (2, 2, 3)
    expected = np.array([[[0, 255, 128], [128, 0, 191]],
                         [[191, 128, 0], [255, 128, 0]]], dtype=np.uint8)
    np.testing.assert_array_equal(out, expected)
    gray = tensor2im(torch.tensor([[[1.0, -1.0]]]))  # [1,H=1,W=2] -> RGB
    np.testing.assert_array_equal(gray, [[[255, 255, 255], [0, 0, 0]]])


def test_html_page_lists_rows_in_order_with_links_into_images_folder(tmp_path):
    page = HTML(tmp_path / "web", "Experiment name = demo")
    page.add_header("epoch [2]")
    page.add_images(["epoch002_real_A.png", "epoch002_fake_B.png"], ["real_A", "fake_B"],
                    ["epoch002_real_A.png", "epoch002_fake_B.png"], width=64)
    page.add_header("epoch [1] <b>")
    page.add_images(["a b.png"], ["x"], ["a b.png"])
    path = page.save()
    assert path == os.path.join(tmp_path, "web", "index.html")
    assert os.path.isdir(tmp_path / "web" / "images")
    parsed = parse_page(path)
    assert parsed.headers == ["epoch [2]", "epoch [1] <b>"]  # text is escaped, not markup
    assert parsed.imgs == ["images/epoch002_real_A.png", "images/epoch002_fake_B.png", "images/a%20b.png"]
    assert parsed.links == parsed.imgs
    assert not [n for n in os.listdir(tmp_path / "web") if n.endswith(".tmp.html")]


def _visuals(seed):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(1, 3, 8, 8, generator=g) * 2 - 1 for k in ("real_A", "fake_B", "real_B")}


def _restated_png_pixels(tensor):
    """Independent of tensor2im: first image, CHW->HWC, [-1,1] -> round((x+1)*127.5)."""
    array = tensor[0].permute(1, 2, 0).numpy().astype(np.float64)
    return np.rint((array + 1.0) * 127.5).astype(np.uint8)


def test_without_server_warns_once_and_keeps_logs_and_html(tmp_path):
    port = unused_port()
    messages = []
    vis = Visualizer("norun", checkpoints_dir=tmp_path, display_id=1, display_port=port,
                     display_winsize=64, log=messages.append, reconnect_interval=0.0)
    pushed = []
    for epoch in (1, 2):
        for i in range(3):
            losses = {"G_GAN": 0.5 + epoch + i, "G_L1": 10.0 * i, "D_real": 0.25, "D_fake": -1.5}
            vis.plot_current_losses(epoch, i / 3, losses)
            vis.print_current_losses(epoch, 4 * i, losses, t_comp=0.125, t_data=0.5)
            pushed.append((epoch, 4 * i, losses))
            vis.display_current_results(_visuals(10 * epoch + i), epoch, save_result=False)

    warnings = [m for m in messages if "warning" in m]
    assert len(warnings) == 1, messages
    assert f"python scripts/visdom_server.py --port {port}" in warnings[0]
    assert f":{port}" in warnings[0] and "training goes on" in warnings[0]

    run = tmp_path / "norun"
    text = (run / "loss_log.txt").read_text().splitlines()
    assert text[0].startswith("================ Training Loss (")
    line_re = re.compile(r"^\(epoch: (\d+), iters: (\d+), time: ([\d.]+), data: ([\d.]+)\) "
                         r"G_GAN: ([-\d.]+) G_L1: ([-\d.]+) D_real: ([-\d.]+) D_fake: ([-\d.]+) $")
    parsed = [line_re.match(line).groups() for line in text[1:]]
    assert parsed == [(str(e), str(it), "0.125", "0.500", f"{losses['G_GAN']:.3f}",
                       f"{losses['G_L1']:.3f}", "0.250", "-1.500") for e, it, losses in pushed]
    records = [json.loads(line) for line in (run / "loss_log.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["iters"], r["losses"]) for r in records] == pushed
    assert all(r["t_comp"] == 0.125 and r["t_data"] == 0.5 for r in records)
    assert [m for m in messages if m.startswith("(epoch:")] == text[1:]

    # the first display of each epoch is kept (save_result False afterwards), newest epoch first
    page = parse_page(run / "web" / "index.html")
    assert page.headers == ["epoch [2]", "epoch [1]"]
    assert page.imgs == [f"images/epoch{e:03d}_{k}.png"
                         for e in (2, 1) for k in ("real_A", "fake_B", "real_B")]
    for epoch, seed in ((1, 10), (2, 20)):
        for label, tensor in _visuals(seed).items():
            saved = np.asarray(Image.open(run / "web" / "images" / f"epoch{epoch:03d}_{label}.png"))
            np.testing.assert_array_equal(saved, _restated_png_pixels(tensor))


def test_save_result_overwrites_this_epochs_images(tmp_path):
    vis = Visualizer("save", checkpoints_dir=tmp_path, display_id=0, log=lambda m: None)
    vis.display_current_results(_visuals(1), 3, save_result=False)
    vis.display_current_results(_visuals(2), 3, save_result=True)
    saved = np.asarray(Image.open(tmp_path / "save" / "web" / "images" / "epoch003_fake_B.png"))
    np.testing.assert_array_equal(saved, _restated_png_pixels(_visuals(2)["fake_B"]))


def test_display_off_or_visdom_missing(tmp_path, monkeypatch):
    quiet = []
    Visualizer("off", checkpoints_dir=tmp_path, display_id=0, log=quiet.append)
    assert quiet == []
    monkeypatch.setattr(visdom_display, "visdom", None)
    messages = []
    vis = Visualizer("novisdom", checkpoints_dir=tmp_path, display_id=1, log=messages.append)
    vis.plot_current_losses(1, 0.5, dict.fromkeys(LOSSES, 1.0))
    vis.display_current_results(_visuals(0), 1, True)
    vis.print_current_losses(1, 1, {"G_GAN": float("nan"), "G_L1": float("inf")}, 0.0, 0.0)
    assert len(messages) == 2 and "visdom is not installed" in messages[0]
    record = json.loads((tmp_path / "novisdom" / "loss_log.jsonl").read_text())
    assert record["losses"] == {"G_GAN": "nan", "G_L1": "inf"}
    assert (tmp_path / "novisdom" / "web" / "images" / "epoch001_real_B.png").is_file()


def _fill_static(static_dir):
    for _, _, dest in assets.ASSETS:
        path = os.path.join(static_dir, dest)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("x")


def test_asset_installer_is_idempotent_and_names_npm_when_missing(tmp_path, monkeypatch):
    static = tmp_path / "static"
    static.mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # no npm
    everything = assets.missing_assets(static)
    assert len(everything) == len(assets.ASSETS) + 1 and everything[-1] == "version.built"
    assert "js/mathjax/2.7.5/MathJax.js" in everything and "js/plotly-plotly.min.js" in everything
    with pytest.raises(UserError, match="npm is not on PATH"):
        assets.install(static)
    assert not (static / "version.built").exists()  # an interrupted install is not "built"
    _fill_static(static)
    assert assets.missing_assets(static) == ["version.built"]
    assert assets.install(static) == 0  # nothing to fetch: npm is not needed
    assert (static / "version.built").read_text() == assets.visdom_version()
    assert assets.missing_assets(static) == []


def test_launcher_reports_a_busy_port_in_one_line(tmp_path):
    import subprocess
    import sys

    if assets.missing_assets(assets.visdom_static_dir()):
        pytest.fail("visdom's web assets are missing: run python scripts/install_visdom_assets.py "
                    "(the launcher refuses to start without them; CI installs them)")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "scripts/visdom_server.py", "--port", str(port),
                                 "--env_path", str(tmp_path)], capture_output=True, text=True,
                                timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in result.stderr


def test_a_server_that_is_not_visdom_is_treated_as_no_server(tmp_path):
    import http.server
    import threading

    class NotVisdom(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b"nothing here")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotVisdom)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        messages = []
        vis = Visualizer("other", checkpoints_dir=tmp_path, display_port=server.server_address[1],
                         log=messages.append)
        vis.plot_current_losses(1, 0.5, dict.fromkeys(LOSSES, 1.0))
        vis.display_current_results(_visuals(0), 1, True)
    finally:
        server.shutdown()
        server.server_close()
    assert len(messages) == 1 and "does not answer as visdom does" in messages[0]
    assert vis.display.client is None


class RecordingDisplay:
    def __init__(self):
        self.sent = []

    def send(self, method, *args, **kwargs):
        self.sent.append((method, kwargs))


def test_a_resumed_run_continues_its_loss_plot(tmp_path):
    """restore_loss_plot puts back this run's points up to the resume point: not the abandoned run
    logged earlier under the same name, not the points a crash lost (logged after the checkpoint
    and redone), not a torn last line; then new points are added to the same line."""
    run = tmp_path / "again"
    run.mkdir()
    lines = [(1, 2, 9.0), (1, 4, 9.5), (2, 2, 9.9),          # an earlier run under this name, abandoned
             (1, 2, 1.0), (1, 4, 2.0), (2, 2, 3.0),          # this run ...
             (2, 4, 99.0),                                    # ... lost: after the (2, 2) checkpoint
             (2, 4, 4.0), (3, 2, "nan"),                      # redone after an earlier resume
             (3, 4, 77.0)]                                    # lost again: the resume point is (3, 2)
    text = "".join(json.dumps({"epoch": e, "iters": i, "losses": {"G_GAN": v, "D_real": 0.5}}) + "\n"
                   for e, i, v in lines) + '{"epoch": 3, "ite'
    (run / "loss_log.jsonl").write_text(text)
    vis = Visualizer("again", checkpoints_dir=tmp_path, display_id=0, log=lambda m: None)
    assert vis.restore_loss_plot(4, epoch=3, epoch_iter=2) == 0        # no display: nothing to do
    vis.display = RecordingDisplay()
    assert vis.restore_loss_plot(4, epoch=3, epoch_iter=2) == 5
    method, sent = vis.display.sent[-1]
    assert method == "line" and sent["opts"]["legend"] == ["G_GAN", "D_real"]
    np.testing.assert_array_equal(sent["X"][:, 0], [1.5, 2.0, 2.5, 3.0, 3.5])
    np.testing.assert_array_equal(sent["Y"], [[1.0, 0.5], [2.0, 0.5], [3.0, 0.5], [4.0, 0.5], [np.nan, 0.5]])
    vis.plot_current_losses(3, 0.75, {"G_GAN": 5.0, "D_real": 0.25})
    _, sent = vis.display.sent[-1]
    np.testing.assert_array_equal(sent["X"][:, 1], [1.5, 2.0, 2.5, 3.0, 3.5, 3.75])
    np.testing.assert_array_equal(sent["Y"][-1], [5.0, 0.25])
