"""TRAdam − Adam across training budgets and over training.

One `Budget` per scale: the paired gap TRAdam − Adam of the main grid (batch 1, paired by seed, 95%
Student-t interval) per segmenter and metric, at the last epoch and at each scored epoch, with the
real photos' scores (the same judge gives the same row) and where the numbers came from:

    from_results(scale, results, ground_truth, source)
        from collected cells: this scale's, or another scale's work dir or store
    from_report(scale, path)
        from a committed report.md (its main paired table, its ground-truth row), for a scale whose
        cells were not kept (the synthcity report predates the store); per-seed gaps as printed
        there (4 decimals)
    load(scale, paths_of, store_of)
        another scale's Budget: from its cells where this machine or the repository has its whole
        main grid, else from its committed report, else None

`change(short, long)` is how much the gap moved between two budgets: mean(long gaps) − mean(short
gaps) with Welch's 95% interval (independent runs: the seeds are the same numbers but the runs
are not paired across budgets).
"""
import dataclasses
import math
import os
import re

from . import cells, collect, stats

METRIC_KEYS = {label: key for key, label in collect.METRICS}


@dataclasses.dataclass(frozen=True)
class Gap:
    mean: float
    ci_low: float
    ci_high: float
    n: int
    per_seed: dict          # seed -> TRAdam − Adam

    @property
    def excludes_zero(self):
        return self.n >= 2 and (self.ci_low > 0 or self.ci_high < 0)


@dataclasses.dataclass
class Budget:
    scale: str
    steps: int | None           # generator steps of a run at batch 1 (None: unknown frame count)
    epochs: int
    n_epochs: int               # epochs at the initial lr (the decay starts after)
    source: str                 # where the numbers come from, for the report
    final: dict                 # segmenter label -> metric key -> Gap
    curve: dict                 # epoch -> segmenter label -> metric key -> Gap
    ground_truth: dict          # segmenter label -> metric key -> the real photos' score
    steps_per_epoch: int | None = None
    judges: dict = dataclasses.field(default_factory=dict)   # segmenter label -> frozenset of the
    #                             SHA-256s of the weights that scored its main grid (absent: unknown)

    def steps_at(self, epoch):
        return None if self.steps_per_epoch is None else epoch * self.steps_per_epoch

    @property
    def name(self):
        return (f"{self.steps:,} steps ({self.scale})" if self.steps else
                f"{self.epochs} epochs ({self.scale})")


def seg_label(name):
    return os.path.basename(os.path.normpath(name)) or name


def gap(results, segmenter, key, epoch=None):
    """TRAdam − Adam paired by seed over the main grid's cells (batch 1), at the last epoch or at
    a scored `epoch`."""
    def by_seed(variant):
        out = {}
        for r in results:
            if r.cell.variant != variant:
                continue
            scores = r.scores if epoch is None else r.curve.get(epoch)
            value = collect.metric(scores, segmenter, key)
            if not math.isnan(value):
                out[r.cell.seed] = value
        return out
    a, b = by_seed(cells.ADAM), by_seed(cells.TRADAM)
    d = stats.paired_difference(a, b)
    return Gap(d.mean, d.ci_low, d.ci_high, d.n, {s: b[s] - a[s] for s in d.seeds})


def _budget(scale, source, final, curve, ground_truth, judges=None):
    return Budget(scale=scale.name, steps=scale.steps(), epochs=scale.total_epochs,
                  n_epochs=scale.n_epochs, source=source, final=final, curve=curve,
                  ground_truth=ground_truth or {}, steps_per_epoch=scale.steps(1), judges=judges or {})


def judges_of(results):
    """{segmenter label: frozenset of weight fingerprints} over the finished cells, from their store
    records; a label is left out when any finished cell has no record of it (read from a work dir)."""
    finished = [r for r in results if r.scores]
    found = {}
    for r in finished:
        for label, fingerprint in ((r.record or {}).get("segmenters") or {}).items():
            found.setdefault(label, []).append(fingerprint)
    return {label: frozenset(fps) for label, fps in found.items() if len(fps) == len(finished)}


def same_judge(a, b, label):
    """(verdict, basis): were both budgets scored by the same weights of segmenter `label`?
    From the stored fingerprints where both are known (basis "weights"), else from the real photos'
    scores, which the same weights reproduce (basis "real photos"; 1e-3: a report prints 3
    decimals); verdict None when neither is known."""
    ja, jb = a.judges.get(label), b.judges.get(label)
    if ja and jb:
        return (len(ja) == 1 and ja == jb), "weights"
    ga, gb = a.ground_truth.get(label) or {}, b.ground_truth.get(label) or {}
    shared = [k for k in ga if k in gb and not (math.isnan(ga[k]) or math.isnan(gb[k]))]
    if shared:
        return all(abs(ga[k] - gb[k]) < 1e-3 for k in shared), "real photos"
    return None, None


def from_results(scale, results, ground_truth, source):
    main = [r for r in results if r.cell.variant in (cells.ADAM, cells.TRADAM)]
    segs = collect.segmenters_of(main, ground_truth)
    final = {seg_label(s): {k: gap(main, s, k) for k, _ in collect.METRICS} for s in segs}
    epochs = sorted({e for r in main for e in r.curve})
    curve = {}
    for e in epochs:
        curve[e] = {seg_label(s): {k: gap(main, s, k, e) for k, _ in collect.METRICS} for s in segs}
    gt = {seg_label(s): {k: collect.metric(ground_truth, s, k) for k, _ in collect.METRICS}
          for s in (ground_truth or {})}
    return _budget(scale, source, final, curve, gt, judges_of(main))


_CAPTION = re.compile(r"^\*Paired difference with (.+) \((.+) vs (.+)\)\*$")
_TABLE_CAPTION = re.compile(r"^\*FCN-scores with (.+) \(")
_NUMBER = r"([+-]?\d+(?:\.\d+)?|nan)"


def _cells_of(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse_report(text):
    """(final gaps {seg: {key: Gap}}, ground truth {seg: {key: value}}) from a report.md that
    report.py wrote: its main paired table per segmenter and the ground-truth rows."""
    final, gt, caption = {}, {}, None
    for line in text.splitlines():
        line = line.strip()
        m = _CAPTION.match(line) or _TABLE_CAPTION.match(line)
        if m:
            caption = (line, m)
            continue
        if not line.startswith("|") or caption is None:
            continue
        row = _cells_of(line)
        cap_line, m = caption
        if _CAPTION.match(cap_line):
            seg, a_label, b_label = m.groups()
            if (a_label, b_label) != (cells.ADAM.label, cells.TRADAM.label) or row[0] not in METRIC_KEYS:
                continue
            ci = re.match(rf"^\[{_NUMBER}, {_NUMBER}\]$", row[2])
            per_seed = {int(s): float(v) for s, v in re.findall(r"(\d+): ([+-]?\d+(?:\.\d+)?)", row[6])}
            final.setdefault(seg, {})[METRIC_KEYS[row[0]]] = Gap(
                float(row[1]) if row[1] != "–" else math.nan,
                float(ci.group(1)) if ci else math.nan, float(ci.group(2)) if ci else math.nan,
                int(row[3]) if row[3].isdigit() else 0, per_seed)
        elif row[0].startswith("Ground truth"):
            seg = m.group(1)
            gt[seg] = {key: float(v) for (key, _), v in zip(collect.METRICS, row[1:]) if v != "–"}
    return final, gt


def from_report(scale, path):
    with open(path, encoding="utf-8") as f:
        final, gt = parse_report(f.read())
    if not final:
        return None
    from .commands import REPO
    rel = os.path.relpath(path, REPO) if path.startswith(REPO + os.sep) else path
    return _budget(scale, f"its committed report, {rel} (the main paired table; its cells are not "
                          "in the repository)", final, {}, gt)


def load(scale, results_of, report_path):
    """Another scale's Budget: from its cells when `results_of(scale)` (collect.CellResult list,
    from a work dir or store, and the ground truth) has its whole main grid finished, else from
    its committed report at `report_path`, else None."""
    results, ground_truth, where = results_of(scale)
    main = [r for r in results if r.cell.variant in (cells.ADAM, cells.TRADAM)]
    if main and all(r.scores for r in main):
        return from_results(scale, results, ground_truth, where)
    if report_path and os.path.exists(report_path):
        return from_report(scale, report_path)
    return None


def change(short, long):
    """mean(long's per-seed gaps) − mean(short's), Welch 95% interval (stats.TwoSampleDifference)."""
    return stats.welch_difference(list(short.per_seed.values()), list(long.per_seed.values()))


def _state(g):
    if g.n < 2:
        return "without an interval"
    return "below Adam at 95%" if g.ci_high < 0 else "above Adam at 95%" if g.ci_low > 0 else \
        "not distinguishable from Adam"


def describe(metric_label, short_name, short, long_name, long, moved):
    """One plain sentence: the gap at each budget, where TRAdam stood, and whether the gap moved."""
    def g(x):
        if x.n == 0:
            return "no paired runs"
        if x.n < 2:
            return f"{x.mean:+.4f} (1 seed, no interval)"
        return f"{x.mean:+.4f} (95% CI [{x.ci_low:+.4f}, {x.ci_high:+.4f}], n={x.n})"
    text = f"{metric_label}: TRAdam − Adam was {g(short)} at {short_name} and {g(long)} at {long_name}"
    if short.n == 0 or long.n == 0:
        return text + "."
    text += f": TRAdam {_state(short)} at the short budget, {_state(long)} at the long one"
    if math.isnan(moved.ci_low):
        return text + f"; the gap moved by {moved.mean:+.4f} (too few seeds for an interval)."
    return (text + f"; the gap moved by {moved.mean:+.4f} (Welch 95% CI [{moved.ci_low:+.4f}, "
            f"{moved.ci_high:+.4f}]), " + ("beyond the noise." if moved.excludes_zero else "within the noise."))
