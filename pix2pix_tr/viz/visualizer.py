"""What a training run shows while it runs: visdom live view, the epoch HTML page, the loss logs.

As pix2pix's util/visualizer.py, with the same three calls from the training loop:

    vis = Visualizer(name, checkpoints_dir="checkpoints", display_id=1, display_port=8097)
    vis.display_current_results(model.visuals(), epoch, save_result)   # every --display_freq
    vis.plot_current_losses(epoch, counter_ratio, losses)               # every --print_freq
    vis.print_current_losses(epoch, iters, losses, t_comp, t_data)      # every --print_freq

- visdom (display_id > 0): one line plot of the losses (named legend, x = epoch + counter_ratio)
  in window `display_id`, and one image pane per visual (real_A, fake_B, real_B) in windows
  `display_id + 1, + 2, ...`, all in env `display_env` (default: the run's name); with
  `display_ncols` N > 0, as pix2pix's default 4, all images in one pane instead (N a row, blank
  images filling the last row, window `display_id + 1`) and their labels in a table beside it
  (window `display_id + 2`).
- Weights & Biases (`use_wandb`, pix2pix's --use_wandb): the losses at every print, the images
  at every display, and a "Result" table with a row per epoch, in project `wandb_project`; wandb
  is imported only then, and honours its own settings (WANDB_MODE=offline writes the run under
  ./wandb/ for a later `wandb sync`).
  Start a server with `python scripts/visdom_server.py` (loopback only, no CDN download).
- If visdom is not importable or no server answers, ONE warning names the command that starts a
  server and training goes on: logs and HTML are still written, and the server is looked for
  again now and then (every `reconnect_interval` seconds), so starting it later works. No call
  waits long: a socket check with a short timeout precedes the visdom client, whose requests
  have a timeout too.
- `checkpoints/<name>/web/index.html`: the images saved at each epoch, newest first (the first
  display of every epoch, and every display with save_result).
- `checkpoints/<name>/loss_log.txt` (pix2pix's lines) and `loss_log.jsonl` (one JSON record per
  print, for scripts and plots).
"""
import contextlib
import json
import logging
import math
import os
import re
import socket
import time
import urllib.parse

import numpy as np

try:  # optional: without visdom, the logs and the HTML page still work
    import visdom
except ImportError:
    visdom = None

from pix2pix_tr.viz import html as html_page
from pix2pix_tr.errors import UserError
from pix2pix_tr.viz.images import save_image, tensor2im

SERVER_COMMAND = "python scripts/visdom_server.py --port {port}"
IMAGE_NAME = "epoch{epoch:03d}_{label}.png"
_IMAGE_NAME_RE = re.compile(r"^epoch(\d+)_(.+)\.png$")

LOSS_JSONL = "loss_log.jsonl"


class Visualizer:
    """Live view, HTML page and loss logs of one run, `checkpoints_dir/name/`."""

    def __init__(self, name, *, checkpoints_dir, display_id=1, display_server="http://localhost",
                 display_port=8097, display_env=None, display_winsize=256, display_ncols=0, use_html=True,
                 use_wandb=False, wandb_project="CycleGAN-and-pix2pix", wandb_config=None,
                 log=print, reconnect_interval=60.0):
        self.name = name
        self.display_id = int(display_id)
        self.display_ncols = int(display_ncols)
        self.display_winsize = int(display_winsize)
        self.use_html = use_html
        self.log = log
        self.run_dir = os.path.join(os.fspath(checkpoints_dir), name)
        self.web_dir = os.path.join(self.run_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        self.loss_log_path = os.path.join(self.run_dir, "loss_log.txt")
        self.loss_jsonl_path = os.path.join(self.run_dir, LOSS_JSONL)
        os.makedirs(self.img_dir if use_html else self.run_dir, exist_ok=True)
        self._last_saved_epoch = None
        self._plot = {"X": [], "Y": [], "legend": None}
        self.display = None
        if self.display_id > 0:
            self.display = VisdomDisplay(display_server, display_port, display_env or name,
                                         log=log, reconnect_interval=reconnect_interval)
        self.wandb = WandbRun(wandb_project, name, wandb_config) if use_wandb else None
        with open(self.loss_log_path, "a", encoding="utf-8") as f:
            f.write(f"================ Training Loss ({time.strftime('%c')}) ================\n")

    # -- images -----------------------------------------------------------------------------
    def display_current_results(self, visuals, epoch, save_result):
        """Show `visuals` ({label: tensor in [-1,1]}) in visdom; save them to the HTML page when
        save_result is true or this epoch has no saved images yet."""
        images = {label: tensor2im(tensor) for label, tensor in visuals.items()}
        if self.display is not None and self.display_ncols > 0:
            self._display_grid(images, epoch)
        elif self.display is not None:
            for index, (label, image) in enumerate(images.items(), start=1):
                self.display.send(
                    "image", image.transpose(2, 0, 1), win=str(self.display_id + index),
                    opts=dict(title=label, caption=f"{label}, epoch {epoch}",
                              width=self.display_winsize + 30, height=self.display_winsize + 70))
        if self.wandb is not None:
            self.wandb.log_images(images, epoch)
        if self.use_html and (save_result or epoch != self._last_saved_epoch):
            self._last_saved_epoch = epoch
            for label, image in images.items():
                save_image(image, os.path.join(self.img_dir, IMAGE_NAME.format(epoch=epoch, label=label)))
            self._write_web_page(list(images))

    def _display_grid(self, images, epoch):
        """pix2pix's --display_ncols N: every image in one pane, N a row (the last row filled with
        white images), and a table of their labels in the next window."""
        ncols = min(self.display_ncols, len(images))
        labels, planes = list(images), [image.transpose(2, 0, 1) for image in images.values()]
        shape = planes[0].shape
        if any(p.shape != shape for p in planes):        # visdom's grid needs one size
            planes = [_fit(p, shape) for p in planes]
        blanks = -len(planes) % ncols
        planes += [np.full(shape, 255, dtype=np.uint8)] * blanks
        cells = labels + [""] * blanks
        rows = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in cells[i:i + ncols]) + "</tr>"
                       for i in range(0, len(cells), ncols))
        self.display.send("images", np.stack(planes), nrow=ncols, win=str(self.display_id + 1), padding=2,
                          opts=dict(title=f"{self.name} images", caption=f"epoch {epoch}"))
        self.display.send("text", f"<table>{rows}</table>", win=str(self.display_id + 2),
                          opts=dict(title=f"{self.name} labels"))

    def _write_web_page(self, labels):
        """index.html with every epoch whose images are on disk, newest first."""
        saved = {}
        for file_name in os.listdir(self.img_dir):
            match = _IMAGE_NAME_RE.match(file_name)
            if match:
                saved.setdefault(int(match.group(1)), {})[match.group(2)] = file_name
        page = html_page.HTML(self.web_dir, f"Experiment name = {self.name}")
        for epoch in sorted(saved, reverse=True):
            order = [label for label in labels if label in saved[epoch]] + sorted(set(saved[epoch]) - set(labels))
            files = [saved[epoch][label] for label in order]
            page.add_header(f"epoch [{epoch}]")
            page.add_images(files, order, files, width=self.display_winsize)
        page.save()

    def close(self):
        """End the wandb run (pix2pix leaves it to the process's exit; a run ended here is complete
        on disk at once, and a next Visualizer in this process starts its own)."""
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None

    # -- losses -----------------------------------------------------------------------------
    def plot_current_losses(self, epoch, counter_ratio, losses):
        """Add one point per loss at x = epoch + counter_ratio and redraw the named lines (and log
        the losses to wandb, with or without visdom)."""
        if self.wandb is not None:
            self.wandb.log({k: float(v) for k, v in losses.items()})
        if self.display is None:
            return
        plot = self._plot
        if plot["legend"] is None:
            plot["legend"] = list(losses)
        plot["X"].append(epoch + counter_ratio)
        values = (losses.get(k) for k in plot["legend"])
        plot["Y"].append([_plot_value(v) for v in values])
        self._send_plot()

    def _send_plot(self):
        plot = self._plot
        x = np.array(plot["X"], dtype=np.float64)
        self.display.send(
            "line", X=np.stack([x] * len(plot["legend"]), axis=1), Y=np.array(plot["Y"], dtype=np.float64),
            win=str(self.display_id),
            opts=dict(title=f"{self.name} loss over time", legend=plot["legend"],
                      xlabel="epoch", ylabel="loss"))

    def restore_loss_plot(self, dataset_size, *, epoch, epoch_iter):
        """After --continue_train: put the points this run logged up to its resume point back on
        the plot, so the line goes on where it stopped instead of starting over. They come from
        loss_log.jsonl (x = epoch + iters / dataset_size, as plotted). Left out: points logged
        after the checkpoint (steps a crash lost, which run again), the lost points of earlier
        resumes, and those of an earlier run under the same name (the log only appends), i.e.
        every point not below the next one kept. Says how many samples run again when the log went
        past the checkpoint (a kill). Returns the number of points."""
        logged = read_loss_records(self.loss_jsonl_path)
        again = (logged[-1][0][0] - epoch) * dataset_size + logged[-1][0][1] - epoch_iter if logged else 0
        if again > 0:
            self.log(f"the loss log had reached epoch {logged[-1][0][0]}, sample {logged[-1][0][1]}: at least "
                     f"{again} samples run again")
        if self.display is None:
            return 0
        records = [(position, losses) for position, losses in logged if position <= (epoch, epoch_iter)]
        run = records[-1:]        # walking back from the resume point, positions must fall:
        for position, losses in reversed(records[:-1]):   # others were redone or another run's
            if position < run[0][0]:
                run.insert(0, (position, losses))
        if not run:
            return 0
        legend = list(run[-1][1])
        self._plot = {"X": [e + i / dataset_size for (e, i), _ in run],
                      "Y": [[_plot_value(losses.get(k)) for k in legend] for _, losses in run],
                      "legend": legend}
        self._send_plot()
        return len(run)

    def print_current_losses(self, epoch, iters, losses, t_comp, t_data):
        """Log one pix2pix-style line; append it to loss_log.txt and a record to loss_log.jsonl."""
        message = f"(epoch: {epoch}, iters: {iters}, time: {t_comp:.3f}, data: {t_data:.3f}) "
        message += "".join(f"{k}: {float(v):.3f} " for k, v in losses.items())
        self.log(message)
        record = dict(epoch=epoch, iters=iters, t_comp=float(t_comp), t_data=float(t_data),
                      losses={k: _json_number(v) for k, v in losses.items()}, time=time.time())
        # One write per line: a reader sees whole lines (at worst a missing last one).
        with open(self.loss_log_path, "a", encoding="utf-8") as f:
            f.write(message + "\n")
        with open(self.loss_jsonl_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, allow_nan=False) + "\n")


def _fit(plane, shape):
    """A CHW uint8 image padded with white / cut to `shape` (visdom's grid takes one size)."""
    out = np.full(shape, 255, dtype=np.uint8)
    c, h, w = (min(a, b) for a, b in zip(plane.shape, shape))
    out[:c, :h, :w] = plane[:c, :h, :w]
    return out


class WandbRun:
    """pix2pix's --use_wandb: one Weights & Biases run (`wandb.init(project, name, config)`, or the
    run already open in this process). wandb is an optional dependency, imported only here."""

    def __init__(self, project, name, config=None):
        try:
            import wandb
        except ImportError:
            raise UserError("--use_wandb needs the wandb package: pip install wandb (or leave --use_wandb "
                            "out)") from None
        self.wandb = wandb
        self.run = wandb.run or wandb.init(project=project, name=name, config=_plain_config(config or {}))
        self._table_epoch = None

    def log(self, values):
        self.run.log(dict(values))

    def log_images(self, images, epoch=None):
        """Log {label: HxWx3 uint8} as images; with `epoch`, also a row of pix2pix's "Result" table
        (epoch, then the images) the first time each epoch shows images."""
        pictures = {label: self.wandb.Image(image) for label, image in images.items()}
        self.run.log(pictures)
        if epoch is not None and epoch != self._table_epoch:
            self._table_epoch = epoch
            table = self.wandb.Table(columns=["epoch", *pictures])
            table.add_data(epoch, *pictures.values())
            self.run.log({"Result": table})

    def finish(self):
        self.run.finish()


def _plain_config(config):
    """Options as wandb config values: non-finite floats as strings (JSON has no inf)."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v) for k, v in config.items()}


def _plot_value(value):
    """A loss as a plotted float: NaN (a gap) for a missing, non-finite or "nan"/"inf" value, since
    visdom's JSON has no Infinity."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def _json_number(value):
    """A float for JSON; NaN and infinities (not JSON) become the strings "nan", "inf", "-inf"."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


class VisdomDisplay:
    """A visdom client that never stops training: warn once, skip while no server, retry later."""

    def __init__(self, server, port, env, *, log=print, reconnect_interval=60.0,
                 connect_timeout=1.0, request_timeout=10.0):
        parsed = urllib.parse.urlparse(server if "://" in server else f"http://{server}")
        self.server = f"{parsed.scheme}://{parsed.hostname}"
        self.host = parsed.hostname
        self.port = int(port)
        self.env = env
        self.log = log
        self.reconnect_interval = reconnect_interval
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.client = None
        self._warned = False
        self._last_attempt = None
        self._visdom_missing = visdom is None
        if self._visdom_missing:
            self._warn("visdom is not installed (pip install visdom==0.2.4)")
            return
        self._connect()

    @property
    def url(self):
        return f"{self.server}:{self.port}/env/{urllib.parse.quote(self.env)}"

    def _warn(self, reason):
        if not self._warned:
            self._warned = True
            self.log(f"warning: {reason}; the live view is off, training goes on (loss logs and "
                     f"HTML are still written). Start a server with: "
                     f"{SERVER_COMMAND.format(port=self.port)}")

    def _server_listens(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=self.connect_timeout):
                return True
        except OSError:
            return False

    def _connect(self):
        self._last_attempt = time.monotonic()
        if not self._server_listens():
            self._warn(f"no visdom server answers at {self.server}:{self.port}")
            return False
        try:
            with _quiet_visdom_logger():  # "Setting up a new session...", "Without the incoming socket..."
                self.client = _TimeoutVisdom(self.request_timeout, server=self.server, port=self.port,
                                             env=self.env, raise_exceptions=True,
                                             use_incoming_socket=False)
            is_visdom = self.client.win_exists("") is not None  # "true"/"false" from visdom only
        except Exception as err:  # the server went away meanwhile
            self.client, is_visdom = None, False
            self._warn(f"the visdom server at {self.server}:{self.port} did not answer ({err})")
            return False
        if not is_visdom:
            self.client = None
            self._warn(f"the server at {self.server}:{self.port} does not answer as visdom does")
            return False
        if self._warned:
            self.log(f"visdom: connected to {self.url}")
        return True

    def send(self, method, *args, **kwargs):
        """Call `client.<method>(...)`; on any failure drop the client and retry later."""
        if self._visdom_missing:
            return False
        if self.client is None:
            if time.monotonic() - self._last_attempt < self.reconnect_interval or not self._connect():
                return False
        try:
            getattr(self.client, method)(*args, **kwargs)
            return True
        except Exception as err:
            self.client = None
            self._warn(f"the visdom server at {self.server}:{self.port} stopped answering ({err})")
            return False


@contextlib.contextmanager
def _quiet_visdom_logger():
    """Hide visdom's chatter at client setup (warnings about features we do not use)."""
    visdom_logger = logging.getLogger("visdom")
    level = visdom_logger.level
    visdom_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        visdom_logger.setLevel(level)


if visdom is not None:
    class _TimeoutVisdom(visdom.Visdom):
        """visdom.Visdom whose HTTP requests time out instead of hanging on a stuck server."""

        def __init__(self, timeout, **kwargs):
            self._request_timeout = timeout
            super().__init__(**kwargs)

        def _handle_post(self, url, data=None):  # visdom's documented override point
            response = self.session.post(url, data={} if data is None else data,
                                         timeout=self._request_timeout)
            return response.text


def read_loss_records(path):
    """[((epoch, iters), {loss: value})] of loss_log.jsonl in file order; torn or foreign lines skipped."""
    if not os.path.isfile(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
                records.append(((int(record["epoch"]), int(record["iters"])), dict(record["losses"])))
            except (ValueError, KeyError, TypeError):
                continue                            # a torn last line, or not a record
    return records
