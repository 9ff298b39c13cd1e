"""A run's loss logs: checkpoints/<name>/loss_log.txt (pix2pix's lines, for people) and
loss_log.jsonl (one JSON record per print, for scripts, plots and a resumed run's loss plot).
`read_loss_records` is the one reader of the JSON log."""
import json
import math
import os
import time

LOSS_TEXT = "loss_log.txt"
LOSS_JSONL = "loss_log.jsonl"


def append_losses(run_dir, message, record):
    """Append one line to each log: one write per line, so a reader sees whole lines (at worst a
    missing last one)."""
    with open(os.path.join(run_dir, LOSS_TEXT), "a", encoding="utf-8") as f:
        f.write(message + "\n")
    with open(os.path.join(run_dir, LOSS_JSONL), "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(record, time=time.time()), allow_nan=False) + "\n")


def json_number(value):
    """A float for JSON; NaN and infinities (not JSON) become the strings "nan", "inf", "-inf"."""
    value = float(value)
    return value if math.isfinite(value) else str(value)


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
