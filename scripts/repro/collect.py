"""Read finished cells (from the store if stored, else the work dir) into plain records for the report."""
import dataclasses
import json
import math
import os

from pix2pix_tr.viz.loss_log import read_loss_records

LOSS_KEYS = ("G_GAN", "G_L1", "D_real", "D_fake")
LOSS_POINTS = 120             # points per run kept for the loss plot (and in the store)


@dataclasses.dataclass
class CellResult:
    cell: object                   # cells.Cell
    groups: list
    scores: dict | None            # segmenter -> metrics, None if the cell has not finished
    curve: dict                    # epoch (int) -> segmenter -> metrics
    losses: list                   # loss_summary records
    source: str = "work dir"       # "work dir" | "store": where its results were read
    record: dict | None = None     # the store's cell.json (None when read from the work dir)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def read_scores(path):
    """(synthesized photos' scores, real photos' or None) of one fcn_scores.json; (None, None) if absent."""
    if not os.path.exists(path):
        return None, None
    raw = read_json(path)

    def metrics(block):
        return {name: m for name, m in (block or {}).items() if isinstance(m, dict) and "pixel_acc" in m}
    return metrics(raw.get("segmenters")), metrics(raw.get("ground_truth")) or None


def scores_path(cell, epoch, paths, store=None):
    return store.scores_path(cell.name, epoch) if store and store.has(cell.name) else paths.scores_path(cell, epoch)


def is_done(cell, paths, store=None):
    return bool(store and store.has(cell.name)) or os.path.exists(paths.scores_path(cell))


def ground_truth(grid, paths, store=None):
    """The real photos' scores: from the first finished cell whose scoring included --gt."""
    for cell in grid.cells:
        gt = read_scores(scores_path(cell, "latest", paths, store))[1]
        if gt:
            return gt
    return None


def loss_summary(log_path, points=LOSS_POINTS):
    """The loss log binned into at most `points` equal spans of the run (x: `epoch_pos`)."""
    records = [(position, {k: float(v) for k, v in losses.items()
                           if k in LOSS_KEYS and isinstance(v, (int, float))})
               for position, losses in read_loss_records(log_path)]
    records = [(position, losses) for position, losses in records if losses]
    if not records:
        return []
    length = {}
    for (epoch, iters), _ in records:
        length[epoch] = max(length.get(epoch, 1.0), iters)
    first = min(length)
    xs = [epoch - first + iters / length[epoch] for (epoch, iters), _ in records]
    lo, hi = min(xs), max(xs)
    width = (hi - lo) / points if hi > lo else 1.0
    bins = {}
    for x, (_, losses) in zip(xs, records):
        bins.setdefault(min(points - 1, int((x - lo) / width)), []).append((x, losses))
    out = []
    for members in (bins[b] for b in sorted(bins)):
        entry = {"epoch_pos": sum(x for x, _ in members) / len(members), "n": len(members)}
        for k in LOSS_KEYS:
            values = [losses[k] for _, losses in members if k in losses]
            if values:
                entry[k] = sum(values) / len(values)
        out.append(entry)
    return out


def collect(grid, paths, curve_epochs, final_epoch, store=None):
    results = []
    for cell in grid.cells:
        curve = {}
        for epoch in curve_epochs:
            scores = read_scores(scores_path(cell, epoch, paths, store))[0]
            if scores:
                curve[epoch] = scores
        final = read_scores(scores_path(cell, "latest", paths, store))[0]
        if final and curve:
            curve[final_epoch] = final
        if store and store.has(cell.name):
            results.append(CellResult(cell, grid.groups[cell.name], final, curve, store.losses(cell.name),
                                      "store", store.record(cell.name)))
        else:
            results.append(CellResult(cell, grid.groups[cell.name], final, curve, loss_summary(paths.loss_log(cell))))
    return results


def metric(scores, segmenter, key):
    try:
        return float(scores[segmenter][key])
    except (KeyError, TypeError, ValueError):
        return math.nan


def by_seed(results, variant, segmenter, key, epoch=None, seeds=None):
    """{seed: metric} of `variant`'s scored cells, at the last epoch or at `epoch`."""
    values = {r.cell.seed: metric(r.scores if epoch is None else r.curve.get(epoch), segmenter, key)
              for r in results if r.cell.variant == variant and (seeds is None or r.cell.seed in seeds)}
    return {seed: v for seed, v in values.items() if not math.isnan(v)}


def segmenters_of(results, ground_truth=None):
    return list(dict.fromkeys(name for scores in [ground_truth] + [r.scores for r in results] for name in scores or {}))
