"""Read what finished cells left on disk into plain records for the report.

Sources (see commands.py for where they live):
    fcn_scores.json   evaluate/fcn_score.py's report, for the last epoch and each curve epoch:
                      {"segmenters": {name: {pixel_acc, class_acc, mean_iou, per_class, absent}},
                       "ground_truth": {name: {...}} (with --gt: the real photos), run, phase, ...}
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


def ground_truth(grid, paths):
    """The real photos' scores: from the first finished cell whose scoring included --gt."""
    for cell in grid.cells:
        gt = read_report(paths.scores_path(cell))[1]
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
