"""A run's loss logs: checkpoints/<name>/loss_log.txt (pix2pix's lines, for people) and loss_log.jsonl
(a record per print, for scripts, plots and a resumed run's loss plot; `read_loss_records` reads it)."""
import json
import math
import os
import time

LOSS_TEXT = "loss_log.txt"
LOSS_JSONL = "loss_log.jsonl"


def append_losses(run_dir, message, *, epoch, iters, t_comp, t_data, losses):
    """Append one line to each log, in one write each (a reader sees whole lines). Non-finite losses
    go into the JSON as the strings "nan", "inf", "-inf"."""
    with open(os.path.join(run_dir, LOSS_TEXT), "a", encoding="utf-8") as f:
        f.write(message + "\n")
    losses = {k: float(v) if math.isfinite(float(v)) else str(float(v)) for k, v in losses.items()}
    record = dict(epoch=epoch, iters=iters, t_comp=float(t_comp), t_data=float(t_data), losses=losses, time=time.time())
    with open(os.path.join(run_dir, LOSS_JSONL), "a", encoding="utf-8") as f:
        f.write(json.dumps(record, allow_nan=False) + "\n")


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
