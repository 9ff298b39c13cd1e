"""Read what finished cells left on disk into plain records for the report.

Sources (see commands.py for where they live):
    fcn_scores.json   {segmenter: {pixel_acc, class_acc, mean_iou, per_class, absent}} from
                      evaluate/fcn_score.py, for the last epoch and each curve epoch
    loss_log.jsonl    one JSON object per train.py print: epoch, iteration counters, losses
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
    losses: list                   # flat dicts from loss_log.jsonl


def segmenter_scores(raw):
    """{segmenter: metrics} from a fcn_scores.json object: every entry holding a pixel_acc."""
    return {name: entry for name, entry in raw.items()
            if isinstance(entry, dict) and "pixel_acc" in entry}


def read_scores(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return segmenter_scores(json.load(f))


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


def collect(grid, paths, curve_epochs, final_epoch):
    """A CellResult per grid cell; the last epoch's scores also close its curve at final_epoch."""
    results = []
    for cell in grid.cells:
        curve = {}
        for epoch in curve_epochs:
            s = read_scores(paths.scores_path(cell, epoch))
            if s:
                curve[epoch] = s
        final = read_scores(paths.scores_path(cell))
        if final and curve:
            curve[final_epoch] = final
        results.append(CellResult(cell, grid.groups[cell.name], final, curve,
                                  read_losses(paths.loss_log(cell))))
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
