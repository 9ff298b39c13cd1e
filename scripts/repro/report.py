"""report.md for people, results.json (every number report.md prints) for programs, commands.sh and the PNGs;
built from finished cells only, so a partial grid gives a partial report naming its missing cells.
"""
import dataclasses
import math
import os

from evaluate.digests import short_name as label
from evaluate.report import METRICS, table_row
from pix2pix_tr.optim.schedulers import LinearDecay
from pix2pix_tr.run import atomic

from . import budgets, cells, collect, plots, stats
from .commands import PHASE, REPO

REPORT_MD, RESULTS_JSON, COMMANDS_SH = "report.md", "results.json", "commands.sh"
METRIC_NAMES = [name for _, name in METRICS]


@dataclasses.dataclass
class ReportInputs:
    scale: object                     # scales.Scale
    grid: object                      # cells.Grid (the cells this report covers)
    results: list                     # collect.CellResult per grid cell
    ground_truth: dict | None         # segmenter -> metrics of the real photos
    status: dict                      # cell name -> "done" | "failed: ..." | "not run yet"
    invocation: str                   # the reproduce.py command that makes this report
    code_version: str                 # git commit of the code that ran
    prepare_commands: list            # shell lines run once before the cells
    cell_commands: dict               # cell name -> [shell lines]
    paths: object                     # commands.RunPaths
    store_dir: str | None = None      # the committed cell results (store.py), if any
    other_budgets: list = dataclasses.field(default_factory=list)   # [(scale name, budgets.Budget | None)]


def _para(text):
    return [text, ""]


def _bullets(items):
    return [f"- {item}" for item in items] + [""]


def _table(caption, header, rows):
    rule = "|" + "|".join("---" for _ in header) + "|"
    return [f"*{caption}*", "", table_row(header), rule, *map(table_row, rows), ""]


def _image(src, alt):
    return [f"![{alt}]({src})", ""]


def _code(text):
    return ["```bash", text.rstrip("\n"), "```", ""]


def fmt(x, digits=3):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_summary(s):
    return "–" if s.n == 0 else f"{fmt(s.mean)} (1 seed)" if s.n == 1 else f"{fmt(s.mean)} ± {fmt(s.std)} (n={s.n})"


def _ci(g):
    return f"[{g.ci_low:+.4f}, {g.ci_high:+.4f}]"


def _mde(g):
    """', MDE x' beside an interval that includes zero: effects under x cannot be excluded."""
    return "" if g.n < 2 or g.excludes_zero or math.isnan(g.detectable) else f", MDE {g.detectable:.3f}"


def fmt_gap(g):
    if g is None or g.n == 0:
        return "–"
    return f"{g.mean:+.4f} (1 seed)" if g.n == 1 else f"{g.mean:+.4f} {_ci(g)} (n={g.n}{_mde(g)})"


MDE_TEXT = ("MDE: the minimum detectable effect, the true difference that n paired seeds would find with 80% power "
            "at the measured paired SD (two-sided paired t, α = 0.05); effects smaller than it cannot be excluded.")


def family_note(named_gaps):
    """How many of a table's intervals exclude zero, how many would by chance, and which survive Holm."""
    tested = [(name, g) for name, g in named_gaps if g is not None and g.n >= 2 and not math.isnan(g.p)]
    if not tested:
        return []
    excluding = sum(g.excludes_zero for _, g in tested)
    holm = stats.holm([g.p for _, g in tested])
    kept = [name for (name, _), p in zip(tested, holm) if p < 0.05]
    verb = "excludes" if excluding == 1 else "exclude"
    return _para(f"Family-wise: {excluding} of these {len(tested)} intervals {verb} zero, where about "
                 f"{0.05 * len(tested):.1f} would by chance if there were no effect at all; after Holm's correction "
                 f"over the {len(tested)}, {len(kept)} remain" + (f" ({'; '.join(kept)})." if kept else "."))


def _plain(x):
    """results.json's form of a value: dataclasses as dicts, keys as strings, NaN as null."""
    if dataclasses.is_dataclass(x):
        x = dataclasses.asdict(x)
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, frozenset)):
        return [_plain(v) for v in x]
    return None if isinstance(x, float) and not math.isfinite(x) else x


def _metrics(scores):
    return {label(s): {k: collect.metric(scores, s, k) for k, _ in METRICS} for s in scores or {}}


def adam_vs_tradam(results, segmenters, adam, tradam):
    """{segmenter: {metric: Summary of each optimizer and the paired Gap}}."""
    out = {}
    for seg in segmenters:
        for key, _ in METRICS:
            a, b = collect.by_seed(results, adam, seg, key), collect.by_seed(results, tradam, seg, key)
            out.setdefault(label(seg), {})[key] = {"adam": stats.summarize(a.values()),
                                                   "tradam": stats.summarize(b.values()),
                                                   "tradam_minus_adam": stats.paired(a, b)}
    return out


def verdict(numbers, metric):
    """One plain sentence: did TRAdam beat Adam on `metric`, by how much, against the seeds' spread."""
    diff = numbers["tradam_minus_adam"]
    if diff.n == 0:
        return f"{metric}: no paired runs yet."
    if diff.n < 2:
        return f"{metric}: TRAdam − Adam = {diff.mean:+.4f} on a single seed; no interval, so no conclusion."
    spread = max(s for s in (numbers["adam"].std, numbers["tradam"].std, 0.0) if not math.isnan(s))
    head = ("TRAdam beat Adam" if diff.ci_low > 0 else "TRAdam was worse than Adam" if diff.ci_high < 0
            else f"no difference detectable with {diff.n} seeds (effects under ~{diff.detectable:.3f} cannot be "
                 "excluded)")
    compare = f"the std over seeds is up to {spread:.4f}" if spread > 0 else "the seeds did not vary"
    return f"{metric}: {head}: {diff.mean:+.4f} (95% CI {_ci(diff)}, n={diff.n} seeds); {compare}."


def answer_section(segmenters, main, data):
    """A one-line verdict (how many metrics TRAdam won or lost at 95%), then one line per metric."""
    items, won, lost, seeds, named = [], 0, 0, 0, []
    for seg in segmenters:
        for key, name in METRICS:
            diff = main[label(seg)][key]["tradam_minus_adam"]
            seeds = max(seeds, diff.n)
            won += diff.excludes_zero and diff.mean > 0
            lost += diff.excludes_zero and diff.mean < 0
            items.append(verdict(main[label(seg)][key], f"{label(seg)}, {name}"))
            named.append((f"{label(seg)}, {name}", diff))
    data["verdict"] = {"metrics": len(items), "won": won, "lost": lost, "paired_seeds": seeds}
    if seeds < 2:
        head = f"Not enough paired seeds yet ({seeds}) for an interval; the differences so far:"
    else:
        head = (f"Verdict (main grid, batch size 1, {seeds} seeds paired): TRAdam beat Adam on {won} of "
                f"{len(items)} FCN-score metrics and lost on {lost} at 95% confidence; on the other "
                f"{len(items) - won - lost} no difference was detectable with {seeds} seeds. Per metric "
                "(TRAdam − Adam):")
    return _para(head) + _bullets(items) + family_note(named) + _para(MDE_TEXT)


def judge_section(ground_truth, segmenters):
    """What the judge can resolve: its ceiling on the real photos and the classes absent from the labels."""
    lines = []
    for seg in segmenters:
        gt = (ground_truth or {}).get(seg)
        if not gt:
            continue
        absent = gt.get("absent")
        ceiling = " / ".join(fmt(gt.get(k)) for k, _ in METRICS)
        lines += _para(f"What the judge can resolve: {label(seg)} scores the real photos themselves at {ceiling} "
                       f"({', '.join(METRIC_NAMES)}): the ceiling any synthesized photo is measured against. "
                       + (f"{len(absent)} of the 19 classes are absent from the val labels ({', '.join(absent)}), "
                          f"so the class means average {19 - len(absent)} classes. " if absent else "") +
                       "The intervals above count seed noise only: a segmenter "
                       "trained again from the same recipe, or float-level changes of the run, move the scores "
                       "too, by amounts these cells do not measure; a gap smaller than those is not a ranking.")
    return lines


JUDGE_TEXT = {
    (None, None): "Whether both budgets were judged by the same weights of {lab} is not known.",
    (True, "weights"): "Both budgets were judged by the same weights of {lab} (SHA-256 {a}).",
    (False, "weights"): "The budgets were judged by different weights of {lab} (SHA-256 {a} at {short}; {b} at "
                        "{long}): compare the gaps, not the absolute scores.",
    (True, "real photos"): "The real photos score the same under both budgets' {lab}, as one set of weights would.",
    (False, "real photos"): "The real photos score differently under the two budgets' {lab}: the segmenter was "
                            "trained again between them; compare the gaps, not the absolute scores.",
}


def judge_sentence(short, long, lab):
    same, basis = budgets.same_judge(short, long, lab)
    def shas(b):
        return ", ".join(f[:12] + "…" for f in sorted(b.judges.get(lab, ())))
    return JUDGE_TEXT[same, basis].format(lab=lab, a=shas(short), b=shas(long), short=short.name, long=long.name)


def moved_sentence(metric, short, gs, long, gl, moved):
    """The gap at each budget and whether it moved beyond the noise."""
    text = f"{metric}: TRAdam − Adam was {fmt_gap(gs)} at {short.name} and {fmt_gap(gl)} at {long.name}"
    if gs.n == 0 or gl.n == 0:
        return text + "."
    if math.isnan(moved.ci_low):
        return text + f"; the gap moved by {moved.mean:+.4f} (too few seeds for an interval)."
    text += f"; the gap moved by {moved.mean:+.4f} (paired 95% CI {_ci(moved)}), " + (
        "an interval that excludes zero" if moved.excludes_zero else
        f"not detectable with {moved.n} seeds (MDE {moved.detectable:.3f})")
    if gs.excludes_zero:     # how much of the short budget's gap the intervals say was recovered
        text += (f"; of the {abs(gs.mean):.4f} short-budget gap, the change's interval recovers "
                 f"{moved.ci_low / -gs.mean:.0%} to {moved.ci_high / -gs.mean:.0%}, and the long budget's interval "
                 f"still allows {gl.ci_low / gs.mean:.0%} of it")
    return text + "."


def last_lr_factor(scale):
    """lr/lr₀ in the last epoch under pix2pix's linear decay (TRAdam's scaled λ_eff is λ divided by it)."""
    return LinearDecay(scale.n_epochs, scale.n_epochs_decay, 1)(scale.total_epochs - 1)


def budgets_section(inp, this, segmenters, data):
    lines = []
    for name, other in inp.other_budgets:
        data[name] = None
        if other is None:
            lines += _para(f"No results of the {name} scale to compare with: its main grid has not finished "
                           "in the work dir or its store.")
            continue
        short, long = sorted((other, this), key=lambda b: (b.steps or 0, b.scale.total_epochs))
        data[name] = {"short": short.name, "long": long.name, "source": other.source, "segmenters": {}}
        lam = cells.TRADAM.tr_lambda
        ls, ll = (lam / last_lr_factor(b.scale) for b in (short, long))
        lines += _para(f"TRAdam − Adam of the main grid (paired by seed, 95% t interval) at {short.name} and "
                       f"{long.name}. {other.name} from {other.source}. 'Change' is long − short paired by seed "
                       f"(t interval of the per-seed change): the budgets' runs of one seed share initial weights "
                       f"and data order, and their first {short.scale.steps(short.scale.n_epochs):,} steps (the "
                       f"short budget's constant-lr epochs) are the same steps. What else differs is the schedule: "
                       f"pix2pix's linear decay ends at lr₀/{ls / lam:.0f} vs "
                       f"lr₀/{ll / lam:.0f} in the last epoch, not at 0, so under the scaled λ (λ·lr₀/lr) TRAdam's "
                       f"λ_eff ends at {ls:.2g} vs {ll:.2g}.")
        for lab in map(label, segmenters):
            same, basis = budgets.same_judge(short, long, lab)
            numbers = data[name]["segmenters"][lab] = {
                "same_judge": same, "judged_by": basis, "metrics": {},
                "ground_truth": {"short": short.ground_truth.get(lab), "long": long.ground_truth.get(lab)}}
            lines += _para(judge_sentence(short, long, lab))
            rows, sentences, named = [], [], []
            for key, metric in METRICS:
                gs, gl = short.final.get(lab, {}).get(key), long.final.get(lab, {}).get(key)
                moved = stats.paired(gs.per_seed, gl.per_seed) if gs and gl else None
                numbers["metrics"][key] = {"short": gs, "long": gl, "change": moved}
                rows.append([metric, fmt_gap(gs), fmt_gap(gl), fmt_gap(moved)])
                named += [(f"{metric} {b}", g) for b, g in ((f"at {short.name}", gs), (f"at {long.name}", gl),
                                                            ("change", moved))]
                if moved:
                    sentences.append(moved_sentence(metric, short, gs, long, gl, moved))
            if short.ground_truth.get(lab) or long.ground_truth.get(lab):
                def gt(b):
                    vals = b.ground_truth.get(lab)
                    return " / ".join(fmt(vals.get(k)) for k, _ in METRICS) if vals else "–"
                rows.append(["Real photos, under each budget's judge", gt(short), gt(long), "–"])
            lines += _table(f"TRAdam − Adam across budgets, {lab}",
                            ["Metric", short.name, long.name, "Change (long − short), paired [95% CI]"], rows)
            if sentences:
                lines += _bullets(sentences)
            lines += family_note(named)
    return lines


def over_training_section(inp, this, report_dir, segmenters, data):
    """TRAdam − Adam at each scored epoch: a table per segmenter and a plot."""
    scale, epochs = inp.scale, sorted(this.curve)
    lines = _para(f"TRAdam − Adam at each saved epoch, paired by seed, 95% t interval; lr constant for epochs "
                  f"1–{scale.n_epochs}, then linear decay to lr₀/{1 / last_lr_factor(scale):.0f} in epoch "
                  f"{scale.total_epochs}.")
    for lab in map(label, segmenters):
        data[lab] = {e: this.curve[e].get(lab, {}) for e in epochs}
        rows = [[str(e), f"{scale.steps(e):,}" if scale.steps(e) else "–",
                 "constant" if e <= scale.n_epochs else "decay"] + [fmt_gap(data[lab][e].get(k)) for k, _ in METRICS]
                for e in epochs]
        mean_row, negative, named = [], 0, []
        for key, name in METRICS:     # each seed's gap averaged over the checkpoints, then paired over seeds
            gaps = [data[lab][e][key] for e in epochs if data[lab][e].get(key)]
            negative += sum(g.mean < 0 for g in gaps)
            named += [(f"{name} at epoch {e}", data[lab][e].get(key)) for e in epochs]
            seeds = set.intersection(*(set(g.per_seed) for g in gaps)) if gaps else set()
            avg = {s: sum(g.per_seed[s] for g in gaps) / len(gaps) for s in sorted(seeds)}
            data[lab].setdefault("mean_of_epochs", {})[key] = mean = stats.paired(dict.fromkeys(avg, 0.0), avg)
            mean_row.append(fmt_gap(mean))
        rows.append([f"mean of the {len(epochs)}", "–", "–"] + mean_row)
        lines += _table(f"TRAdam − Adam over training, {lab}", ["Epoch", "Steps", "lr"] +
                        [f"{name}: TRAdam − Adam [95% CI]" for name in METRIC_NAMES], rows)
        lines += _para(f"{negative} of the {len(named)} point estimates above are negative. The last row averages "
                       "each seed's gap over the checkpoints and pairs those averages.") + family_note(named)
    by_steps = scale.train_frames is not None
    for i, lab in enumerate(map(label, segmenters)):
        series = [(this.name, "tab:red", [(scale.steps(e) or e, this.curve[e].get(lab, {})) for e in epochs])]
        for color, (_, other) in zip(("tab:green", "tab:purple", "tab:brown"), inp.other_budgets):
            if other is not None and (other.scale.train_frames is not None) == by_steps:
                series.append((other.name, color, [(other.scale.steps(e) or e, other.curve[e].get(lab, {}))
                                                   for e in sorted(other.curve)]))
        name = f"gap_over_training_{i}.png"
        if plots.gap_plot(series, os.path.join(report_dir, name), METRICS,
                          f"TRAdam − Adam over training ({lab}; 95% CI)",
                          decay_start=scale.steps(scale.n_epochs) if by_steps else scale.n_epochs,
                          xlabel="generator steps" if by_steps else "epoch"):
            lines += _image(name, f"TRAdam − Adam over training, {lab}")
    return lines


def setup_section(inp, data):
    sc, results = inp.scale, inp.results
    others = [f"{c.name}: {inp.status.get(c.name, 'not run')}" for c in inp.grid.cells
              if inp.status.get(c.name) != "done"]
    groups = ", ".join(f"{g} (seeds {', '.join(map(str, s))})" for g, s in inp.grid.seeds.items())
    lines = _para(f"Scale `{sc.name}`: dataset `{os.path.relpath(inp.paths.dataroot, inp.paths.work_dir)}`, "
                  f"shared train.py flags `{' '.join(sc.train_flags)}`, {sc.n_epochs} epochs + "
                  f"{sc.n_epochs_decay} of linear decay, lr {sc.lr:g} (beta1 0.5), TRAdam λ=0.1, S=10 "
                  f"unless varied. Groups: {groups}. Cells finished: {data['cells_finished']} of "
                  f"{len(inp.grid.cells)}.")
    done = [r for r in results if r.scores]
    stored = [r for r in done if r.source == "store"]
    parts = []
    if inp.store_dir and done:
        where = os.path.relpath(inp.store_dir, REPO) if inp.store_dir.startswith(REPO + os.sep) else inp.store_dir
        parts.append(f"Finished cells keep their scores, loss summary and commands in `{where}` (committed with "
                     f"the report): {len(stored)} of the {len(done)} finished cells were read from there.")
    timed = [r.record for r in stored if r.record and r.record.get("wall_seconds")]
    if timed:
        walls = [t["wall_seconds"] for t in timed]
        jobs = sorted({t.get("jobs") for t in timed} - {None})
        data["wall_time"] = {"cells": len(walls), "mean_seconds": sum(walls) / len(walls),
                             "min_seconds": min(walls), "max_seconds": max(walls), "jobs": jobs}
        parts.append(f"Wall time of the {len(walls)} cell{'s' * (len(walls) != 1)} timed in one go: mean "
                     f"{sum(walls) / len(walls) / 60:.1f} min per cell (min {min(walls) / 60:.1f}, max "
                     f"{max(walls) / 60:.1f}), {' or '.join(map(str, jobs)) or '?'} cells at a time.")
    if parts:
        lines += _para(" ".join(parts))
    if others:
        lines += _para("Cells of the grid without results:") + _bullets(others)
    return lines


def paper_tables(inp, seg, numbers, main_cells):
    """The paper's table form with the real photos' row, the paired difference and every run."""
    lab = label(seg)
    rows = [[variant.label] + [fmt_summary(numbers[k][who]) for k, _ in METRICS]
            for variant, who in ((cells.ADAM, "adam"), (cells.TRADAM, "tradam"))]
    if inp.ground_truth and seg in inp.ground_truth:
        rows.append(["Ground truth (real photos)"] + [fmt(collect.metric(inp.ground_truth, seg, k))
                                                      for k, _ in METRICS])
    by_name = {r.cell.name: r for r in inp.results}
    runs = [[c.variant.label, str(c.seed)] + [fmt(collect.metric(by_name[c.name].scores, seg, k)) for k, _ in METRICS]
            for c in main_cells if inp.status.get(c.name) == "done"]
    return (_table(f"FCN-scores with {lab} ({PHASE}, mean ± std over seeds)", ["Optimizer"] + METRIC_NAMES, rows)
            + paired_table(lab, numbers, cells.ADAM, cells.TRADAM)
            + _table(f"Every run, {lab}", ["Optimizer", "seed"] + METRIC_NAMES, runs))


def paired_table(lab, numbers, adam, tradam):
    rows = []
    for key, name in METRICS:
        a, b, d = numbers[key]["adam"], numbers[key]["tradam"], numbers[key]["tradam_minus_adam"]
        per_seed = ", ".join(f"{s}: {v:+.4f}" for s, v in d.per_seed.items())
        rows.append([name, f"{d.mean:+.4f}" if d.n else "–", _ci(d) + _mde(d) if d.n >= 2 else "–", str(d.n),
                     fmt(a.std, 4), fmt(b.std, 4), per_seed or "–"])
    return _table(f"Paired difference with {lab} ({adam.label} vs {tradam.label})",
                  ["Metric", "TRAdam − Adam", "95% CI (t)", "seeds", "Adam std", "TRAdam std", "per seed"], rows)


ABLATION_TEXT = {
    "decomposition": "Where a gain comes from: λ=0 keeps only the lr/(k+1) sawtooth, 'no sawtooth' only the proximal "
                     "term; 'lr × H_S/S' is Adam at TRAdam's mean step size (H_S/S = 0.293 for S = 10), "
                     "'lr × S/H_S' TRAdam at Adam's.",
    "lambda_mode": "How λ follows the LR: 'scaled' (default, as the released CIFAR code runs) uses λ·lr0/lr; 'fixed "
                   "λ' keeps λ; 'λ/lr' passes λ = 0.1 to the released class, which divides it by lr.",
    "inner_steps": "Inner steps S between anchor refreshes; S = 1 is Adam by construction, a yardstick for noise.",
    "tr_lambda": "Strength λ of the proximal term (λ = 0 leaves only the step-size sawtooth).",
    "batch_size": "Batch size: the paper's point is that TR helps most at small batches. Here every batch size "
                  "runs the same epochs, so batch 4 and 8 take 1/4 and 1/8 of the updates: batch size is "
                  "confounded with the number of updates, and these cells cannot say which of the two matters.",
}


def ablation_section(inp, group, segmenters, data):
    """Each variant on the group's seeds, Δ paired by seed against the first."""
    seeds = inp.grid.seeds[group]
    variants = cells.VARIANTS[group]
    ref = variants[0]
    numbers = data[group] = {"seeds": seeds, "reference": ref.name, "variants": {}}
    lines = ["### " + group, ""] + _para(ABLATION_TEXT[group] + " Seeds: " + ", ".join(map(str, seeds)) + ".")
    for seg in segmenters:
        rows, named = [], []
        for v in variants:
            row = [v.label]
            for key, _ in METRICS:
                mine = collect.by_seed(inp.results, v, seg, key, seeds=seeds)
                summary = stats.summarize(mine.values())
                diff = (stats.paired(collect.by_seed(inp.results, ref, seg, key, seeds=seeds), mine)
                        if v != ref and mine else None)
                numbers["variants"].setdefault(v.name, {"label": v.label}).setdefault(label(seg), {})[key] = {
                    "summary": summary, "vs_reference": diff}
                text = fmt_summary(summary)
                if diff and diff.n:
                    text += f" (Δ {diff.mean:+.4f}" + (f", CI {_ci(diff)}{_mde(diff)})" if diff.n >= 2 else ")")
                    named.append((f"{v.label}, {dict(METRICS)[key]}", diff))
                row.append(text)
            rows.append(row)
        lines += _table(f"{group} with {label(seg)}; Δ paired by seed against {ref.label}",
                        ["Variant"] + METRIC_NAMES, rows) + family_note(named)
    if group == "decomposition":      # the contrasts that say where TRAdam's own gap comes from
        tr = variants[1]
        for seg in segmenters:
            rows, named = [], []
            for v in variants[2:]:
                diffs = numbers.setdefault("vs_" + tr.name, {}).setdefault(v.name, {})[label(seg)] = {
                    k: stats.paired(*(collect.by_seed(inp.results, x, seg, k, seeds=seeds) for x in (tr, v)))
                    for k, _ in METRICS}
                rows.append([v.label] + [fmt_gap(diffs[k]) for k, _ in METRICS])
                named += [(f"{v.label}, {name}", diffs[k]) for k, name in METRICS]
            lines += _table(f"{group} with {label(seg)}; Δ paired by seed against {tr.label}",
                            ["Variant"] + METRIC_NAMES, rows) + family_note(named)
    if group == "batch_size":
        numbers["tradam_minus_adam_by_batch"] = {}
        for b in cells.BATCH_GRID[1:]:
            adam, tradam = (dataclasses.replace(v, batch_size=b) for v in (cells.ADAM, cells.TRADAM))
            pairs = numbers["tradam_minus_adam_by_batch"][b] = adam_vs_tradam(inp.results, segmenters, adam, tradam)
            for seg in segmenters:
                lines += paired_table(label(seg), pairs[label(seg)], adam, tradam)
    return lines


def images_section(inp, report_dir, segmenters, main_cells, data):
    """Loss curves, FCN-score over epochs, and the sample grid of the first seed's Adam and TRAdam."""
    main_results = [r for r in inp.results if r.cell in main_cells]
    lines = []
    if plots.loss_plot(main_results, os.path.join(report_dir, "losses.png"), "Training losses (main grid)"):
        lines += _image("losses.png", "training losses")
    for i, seg in enumerate(segmenters):
        name = f"fcn_over_epochs_{i}.png"
        if plots.curve_plot(main_results, os.path.join(report_dir, name), seg, METRICS,
                            f"FCN-score over epochs ({label(seg)})"):
            lines += _image(name, f"FCN-score over epochs, {label(seg)}")
    seed = min((c.seed for c in main_cells), default=None)
    pair = [c for c in main_cells if c.seed == seed]
    done = {r.cell.name: r for r in inp.results if r.scores}
    if not pair or not all(c.name in done for c in pair):
        return lines
    identity = {c.name: (done[c.name].record or {}).get("stored") for c in pair}
    names = ", ".join(c.name for c in pair)
    drawn = plots.samples(pair, inp.paths, report_dir, identity)
    data["samples"] = drawn and {"seed": seed, "frames": drawn[1], "drawn": drawn[0]}
    if drawn:
        when = ":" if drawn[0] == "drawn" else f" (drawn when {names} ran; their images are not in this work dir):"
        return lines + _para(f"Validation frames {', '.join(drawn[1])}, seed {seed}, last epoch{when}") + \
            _image(plots.SAMPLES_PNG, "sample images")
    return lines + _para(f"Sample images omitted: the synthesized images of {names} are not in this work dir.")


def write(inp, report_dir):
    os.makedirs(report_dir, exist_ok=True)
    segmenters = collect.segmenters_of(inp.results, inp.ground_truth)
    main_cells = inp.grid.cells_of("main")
    main = adam_vs_tradam(inp.results, segmenters, cells.ADAM, cells.TRADAM)
    sc = inp.scale
    data = {"scale": sc.name, "invocation": inp.invocation, "code_version": inp.code_version,
            "epochs": {"constant_lr": sc.n_epochs, "decay": sc.n_epochs_decay}, "lr": sc.lr,
            "steps_per_epoch": sc.steps(1), "seeds": inp.grid.seeds,
            "cells_finished": sum(inp.status.get(c.name) == "done" for c in inp.grid.cells),
            "cells_total": len(inp.grid.cells),
            "ground_truth": _metrics(inp.ground_truth),
            "cells": {r.cell.name: {"label": r.cell.variant.label, "seed": r.cell.seed, "groups": r.groups,
                                    "status": inp.status.get(r.cell.name), "read_from": r.source if r.scores else None,
                                    "scores": _metrics(r.scores), "curve": {e: _metrics(c) for e, c in r.curve.items()}}
                      for r in inp.results},
            "main": main, "groups": {}}
    md = [f"# pix2pix labels → photos: Adam vs TRAdam ({sc.name} scale)", "", "## Answer", ""]
    md += answer_section(segmenters, main, data) + judge_section(inp.ground_truth, segmenters) if segmenters \
        else _para("No cell has finished yet.")
    this = budgets.of_results(sc, [r for r in inp.results if r.cell in main_cells], inp.ground_truth,
                              "this report's cells")
    if sc.compare_with:       # before any cell finishes: the other budgets' numbers alone
        segs = segmenters or list(dict.fromkeys(s for _, b in inp.other_budgets if b for s in b.final))
        md += ["## Across budgets", ""] + budgets_section(inp, this, segs, data.setdefault("across_budgets", {}))
    if this.curve and segmenters:
        md += ["## TRAdam − Adam over training", ""] + over_training_section(
            inp, this, report_dir, segmenters, data.setdefault("over_training", {}))
    md += ["## Setup", ""] + setup_section(inp, data)
    md += ["## FCN-scores (the paper's table form)", ""]
    for seg in segmenters:
        md += paper_tables(inp, seg, main[label(seg)], main_cells)
    ablations = [g for g in inp.grid.seeds if g != "main"]
    if ablations:
        md += ["## Ablations", ""]
        for group in ablations:
            md += ablation_section(inp, group, segmenters, data["groups"])
    images = images_section(inp, report_dir, segmenters, main_cells, data)
    if images:
        md += ["## Plots and samples", ""] + images
    md += ["## Commands", ""] + _para(f"This report was made by (code at commit {inp.code_version}):")
    md += _code(inp.invocation) + _para("which runs, once:") + _code("\n".join(inp.prepare_commands))
    for c in [c for c in main_cells if c.seed == min(x.seed for x in main_cells)]:
        md += _para(f"and per cell, e.g. {c.name}:") + _code("\n".join(inp.cell_commands[c.name]))
    md += _para("Every cell's commands are in commands.sh beside this report.")
    atomic.write_text(os.path.join(report_dir, REPORT_MD), "\n".join(md).rstrip("\n") + "\n")
    atomic.write_json(os.path.join(report_dir, RESULTS_JSON), _plain(data))
    lines = ["#!/usr/bin/env bash", "# Every command of this report, in the order run.", "set -e",
             f"# {inp.invocation}", *inp.prepare_commands]
    for c in inp.grid.cells:
        lines += [f"# {c.name}", *inp.cell_commands[c.name]]
    atomic.write_text(os.path.join(report_dir, COMMANDS_SH), "\n".join(lines) + "\n")
