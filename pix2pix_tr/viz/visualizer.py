"""What a training run shows: the visdom live view, Weights & Biases, the epoch HTML page, the loss logs.

As pix2pix's util/visualizer.py, with the same three calls from the training loop:

    vis.display_current_results(model.visuals(), epoch, save_result)   # every --display_freq
    vis.plot_current_losses(epoch, counter_ratio, losses)               # every --print_freq
    vis.print_current_losses(epoch, iters, losses, t_comp, t_data)      # every --print_freq

docs/viewer.md has the panes, the flags and what happens without visdom or a server.
"""
import math
import os
import re
import time

import numpy as np

from pix2pix_tr.viz import html as html_page
from pix2pix_tr.viz.images import save_image, tensor2im
from pix2pix_tr.viz.loss_log import LOSS_JSONL, LOSS_TEXT, append_losses, read_loss_records
from pix2pix_tr.viz.visdom_display import DEFAULT_PORT, VisdomDisplay
from pix2pix_tr.viz.wandb_run import WANDB_PROJECT, WandbRun

IMAGE_NAME = "epoch{epoch:03d}_{label}.png"
_IMAGE_NAME_RE = re.compile(r"^epoch(\d+)_(.+)\.png$")


class Visualizer:
    """Live view, HTML page and loss logs of one run, `checkpoints_dir/name/`."""

    def __init__(self, name, *, checkpoints_dir, display_id=1, display_server="http://localhost",
                 display_port=DEFAULT_PORT, display_env=None, display_winsize=256, display_ncols=0, use_html=True,
                 use_wandb=False, wandb_project=WANDB_PROJECT, wandb_config=None,
                 log=print, reconnect_interval=60.0):
        self.name, self.use_html, self.log = name, use_html, log
        self.display_id, self.display_ncols = int(display_id), int(display_ncols)
        self.display_winsize = int(display_winsize)
        self.run_dir = os.path.join(os.fspath(checkpoints_dir), name)
        self.web_dir = os.path.join(self.run_dir, "web")
        self.img_dir = os.path.join(self.web_dir, "images")
        os.makedirs(self.img_dir if use_html else self.run_dir, exist_ok=True)
        self._last_saved_epoch = None
        self._plot = {"X": [], "Y": [], "legend": None}
        self.display = VisdomDisplay(display_server, display_port, display_env or name, log=log,
                                     reconnect_interval=reconnect_interval) if self.display_id > 0 else None
        self.wandb = WandbRun(wandb_project, name, wandb_config) if use_wandb else None
        with open(os.path.join(self.run_dir, LOSS_TEXT), "a", encoding="utf-8") as f:
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
        blanks = -len(planes) % ncols
        planes += [np.full(planes[0].shape, 255, dtype=np.uint8)] * blanks
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
        """End the wandb run (pix2pix leaves it to the process's exit), so it is complete on disk now."""
        if self.wandb is not None:
            self.wandb.finish()
            self.wandb = None

    # -- losses -----------------------------------------------------------------------------
    def plot_current_losses(self, epoch, counter_ratio, losses):
        """Add one point per loss at x = epoch + counter_ratio and redraw the lines; log them to wandb."""
        if self.wandb is not None:
            self.wandb.log({k: float(v) for k, v in losses.items()})
        if self.display is None:
            return
        plot = self._plot
        if plot["legend"] is None:
            plot["legend"] = list(losses)
        plot["X"].append(epoch + counter_ratio)
        plot["Y"].append([_plot_value(losses.get(k)) for k in plot["legend"]])
        self._send_plot()

    def _send_plot(self):
        plot = self._plot
        x, y = np.array(plot["X"], dtype=np.float64), np.array(plot["Y"], dtype=np.float64)
        self.display.send("line", X=np.stack([x] * len(plot["legend"]), axis=1), Y=y, win=str(self.display_id),
                          opts=dict(title=f"{self.name} loss over time", legend=plot["legend"], xlabel="epoch",
                                    ylabel="loss"))

    def restore_loss_plot(self, dataset_size, *, epoch, epoch_iter):
        """After --continue_train: put this run's points up to its resume point back on the plot (from
        loss_log.jsonl). Points after the checkpoint (steps run again; said in one line), lost points of
        earlier resumes and an earlier run's under the same name are left out. Returns their number."""
        logged = read_loss_records(os.path.join(self.run_dir, LOSS_JSONL))
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
        append_losses(self.run_dir, message, epoch=epoch, iters=iters, t_comp=t_comp, t_data=t_data, losses=losses)


def _plot_value(value):
    """A loss as a plotted float: NaN (a gap) for a missing or non-finite one (visdom's JSON has no Infinity)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan
