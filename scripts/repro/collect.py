"""Read what finished cells left on disk into plain records for the report.

Sources (see commands.py for where they live in the work dir, store.py for the committed copy):
    fcn_scores.json   evaluate/fcn_score.py's report, for the last epoch and each curve epoch:
                      {"segmenters": {name: {pixel_acc, class_acc, mean_iou, per_class, absent}},
                       "ground_truth": {name: {...}} (with --gt: the real photos), run, phase, ...}
    loss_log.jsonl    one JSON object per train.py print: epoch, iteration counters, losses;
                      the report uses it binned (loss_summary), as the store keeps it
A cell in the store is read from there, any other from the work dir.
"""
import dataclasses
import json
import math
import os

METRICS = (("pixel_acc", "Per-pixel acc."), ("class_acc", "Per-class acc."), ("mean_iou", "Class IOU"))


@dataclasses.dataclass
class CellResult:
    cell: object                   # cells.Cell
    groups: list
    scores: dict | None            # segmenter -> metrics, None if the cell has not finished
    curve: dict                    # epoch (int) -> segmenter -> metrics
    losses: list                   # loss_summary records (flat dicts with epoch_pos)
    source: str = "work dir"       # "work dir" | "store": where its results were read
    record: dict | None = None     # the store's cell.json (None when read from the work dir)


def _metrics_by_segmenter(block):
    return {name: entry for name, entry in (block or {}).items()
            if isinstance(entry, dict) and "pixel_acc" in entry}


def read_report(path):
    """(scores of the synthesized photos, scores of the real photos or None) from one
    fcn_scores.json, each {segmenter: metrics}; (None, None) if the file does not exist."""
    if not os.path.exists(path):
        return None, None
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    return _metrics_by_segmenter(raw.get("segmenters")), _metrics_by_segmenter(raw.get("ground_truth")) or None


def read_scores(path):
    return read_report(path)[0]


def _stored(store, cell):
    return store is not None and store.has(cell.name)


def scores_path(cell, epoch, paths, store=None):
    """The cell's fcn_scores of `epoch`: the store's copy when the store has the cell."""
    return store.scores_path(cell.name, epoch) if _stored(store, cell) else paths.scores_path(cell, epoch)


def is_done(cell, paths, store=None):
    return _stored(store, cell) or os.path.exists(paths.scores_path(cell))


def ground_truth(grid, paths, store=None):
    """The real photos' scores: from the first finished cell whose scoring included --gt."""
    for cell in grid.cells:
        gt = read_report(scores_path(cell, "latest", paths, store))[1]
        if gt:
            return gt
    return None


def _flatten(record, prefix=""):
    flat = {}
    for key, value in record.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, prefix))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[prefix + key] = float(value)
    return flat


def read_losses(path):
    """Loss records, flattened (nested {"losses": {...}} lifted up); unreadable lines dropped."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                records.append(_flatten(json.loads(line)))
            except (ValueError, AttributeError):
                continue
    return records


def epoch_positions(records, total_epochs):
    """x of each loss record in epochs from the run's start: its `epoch_pos` when binned, else from
    its epoch and in-epoch counter (the epoch's largest counter as its length), else spread evenly."""
    if records and all("epoch_pos" in r for r in records):
        return [r["epoch_pos"] for r in records]
    counter = next((k for k in ("epoch_iter", "iters", "iter") if all(k in r for r in records)), None)
    if counter and all("epoch" in r for r in records):
        per_epoch = {}
        for r in records:
            per_epoch[r["epoch"]] = max(per_epoch.get(r["epoch"], 1.0), r[counter])
        first = min(per_epoch)
        return [r["epoch"] - first + r[counter] / per_epoch[r["epoch"]] for r in records]
    n = len(records)
    return [total_epochs * (i + 1) / n for i in range(n)]


LOSS_KEYS = ("G_GAN", "G_L1", "D_real", "D_fake")
LOSS_POINTS = 120             # points per run kept for the loss plot (and in the store)


def loss_summary(records, points, total_epochs=1, keys=LOSS_KEYS):
    """The loss records binned into at most `points` equal spans of the run: per bin the mean
    position (`epoch_pos`), the record count `n` and the mean of each loss in `keys` it has."""
    records = [r for r in records if any(k in r for k in keys)]
    if not records:
        return []
    xs = epoch_positions(records, total_epochs)
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / points if hi > lo else 1.0
    bins = {}
    for x, r in zip(xs, records):
        bins.setdefault(min(points - 1, int((x - lo) / width)), []).append((x, r))
    out = []
    for b in sorted(bins):
        members = bins[b]
        entry = {"epoch_pos": sum(x for x, _ in members) / len(members), "n": len(members)}
        for k in keys:
            vals = [r[k] for _, r in members if k in r]
            if vals:
                entry[k] = sum(vals) / len(vals)
        out.append(entry)
    return out


def collect(grid, paths, curve_epochs, final_epoch, store=None, loss_points=None):
    """A CellResult per grid cell; the last epoch's scores also close its curve at final_epoch.
    Stored cells come from `store`, the others from the work dir (losses binned as stored)."""
    results = []
    for cell in grid.cells:
        curve = {}
        for epoch in curve_epochs:
            s = read_scores(scores_path(cell, epoch, paths, store))
            if s:
                curve[epoch] = s
        final = read_scores(scores_path(cell, "latest", paths, store))
        if final and curve:
            curve[final_epoch] = final
        if _stored(store, cell):
            results.append(CellResult(cell, grid.groups[cell.name], final, curve, store.losses(cell.name),
                                      "store", store.record(cell.name)))
        else:
            losses = loss_summary(read_losses(paths.loss_log(cell)), loss_points or LOSS_POINTS, final_epoch)
            results.append(CellResult(cell, grid.groups[cell.name], final, curve, losses))
    return results


def metric(scores, segmenter, key):
    try:
        return float(scores[segmenter][key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def segmenters_of(results, ground_truth=None):
    """Segmenter names in first-seen order across the finished cells (and the GT scores)."""
    names = []
    for scores in [ground_truth] + [r.scores for r in results]:
        for name in scores or {}:
            if name not in names:
                names.append(name)
    return names
