"""TRAdam − Adam of one scale's main grid (paired by seed), at the end and over training, and beside the
scales it compares with (read from their cells: work dir, else store).
"""
import dataclasses
import math
import os

from evaluate.digests import short_name
from evaluate.report import METRICS

from . import cells, collect, commands, stats
from .store import Store


@dataclasses.dataclass
class Budget:
    scale: object               # scales.Scale
    source: str                 # where the numbers come from, for the report
    final: dict                 # segmenter label -> metric key -> stats.Gap
    curve: dict                 # epoch -> segmenter label -> metric key -> Gap
    ground_truth: dict          # segmenter label -> metric key -> the real photos' score
    judges: dict                # segmenter label -> frozenset of the fingerprints of the weights
    #                             that scored its main grid (absent: unknown)

    @property
    def steps(self):
        return self.scale.steps()

    @property
    def name(self):
        return (f"{self.steps:,} steps ({self.scale.name})" if self.steps else
                f"{self.scale.total_epochs} epochs ({self.scale.name})")


def gap(results, segmenter, key, epoch=None):
    """TRAdam − Adam paired by seed over the main grid's cells, at the last epoch or at `epoch`."""
    return stats.paired(*(collect.by_seed(results, v, segmenter, key, epoch) for v in (cells.ADAM, cells.TRADAM)))


def judges_of(results):
    """{segmenter label: frozenset of fingerprints} from store records; partial knowledge drops a label."""
    finished = [r for r in results if r.scores]
    found = {}
    for r in finished:
        for label, fingerprint in ((r.record or {}).get("segmenters") or {}).items():
            found.setdefault(label, []).append(fingerprint)
    return {label: frozenset(fps) for label, fps in found.items() if len(fps) == len(finished)}


def same_judge(a, b, label):
    """(verdict, basis): same weights of `label`, by fingerprints, else by the real photos' scores."""
    ja, jb = a.judges.get(label), b.judges.get(label)
    if ja and jb:
        return (len(ja) == 1 and ja == jb), "weights"
    ga, gb = a.ground_truth.get(label) or {}, b.ground_truth.get(label) or {}
    shared = [k for k in ga if k in gb and not (math.isnan(ga[k]) or math.isnan(gb[k]))]
    if shared:
        return all(abs(ga[k] - gb[k]) < 1e-3 for k in shared), "real photos"
    return None, None


def of_results(scale, results, ground_truth, source):
    main = [r for r in results if r.cell.variant in (cells.ADAM, cells.TRADAM)]
    segmenters = collect.segmenters_of(main, ground_truth)

    def gaps(epoch=None):
        return {short_name(s): {k: gap(main, s, k, epoch) for k, _ in METRICS} for s in segmenters}
    gt = {short_name(s): {k: collect.metric(ground_truth, s, k) for k, _ in METRICS}
          for s in ground_truth or {}}
    return Budget(scale, source, gaps(), {e: gaps(e) for e in sorted({e for r in main for e in r.curve})},
                  gt, judges_of(main))


def of_other_scale(scale, work_dir):
    """Another scale's Budget from its main grid's cells, None unless all have finished."""
    paths = commands.RunPaths.of(scale, work_dir)
    grid = cells.expand(["main"], scale.seeds, scale.ablation_seeds)
    store = Store(os.path.join(commands.REPO, scale.results_store)) if scale.results_store else None
    results = collect.collect(grid, paths, scale.curve_epochs(), scale.total_epochs, store)
    if not all(r.scores for r in results):
        return None
    where = f"its cells ({os.path.relpath(paths.results_dir, paths.work_dir)} in the work dir" + (
        f", {scale.results_store} in the repository)" if store else ")")
    return of_results(scale, results, collect.ground_truth(grid, paths, store), where)
