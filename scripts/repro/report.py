"""report.md for people, results.json (every number report.md prints) for programs, commands.sh and the PNGs;
built from finished cells only, so a partial grid gives a partial report naming its missing cells.
"""
import dataclasses
import math
import os

from evaluate.report import METRICS
from pix2pix_tr.run import atomic

from . import budgets, cells, collect, plots, stats
from .collect import segmenter_label as label
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
    def line(cells_):
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells_) + " |"
    return [f"*{caption}*", "", line(header), "|" + "|".join("---" for _ in header) + "|", *map(line, rows), ""]


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


def fmt_gap(g):
    if g is None or g.n == 0:
        return "–"
    return f"{g.mean:+.4f} (1 seed)" if g.n == 1 else f"{g.mean:+.4f} {_ci(g)} (n={g.n})"


def fmt_change(c):
    return "–" if math.isnan(c.mean) else f"{c.mean:+.4f}" if math.isnan(c.ci_low) else f"{c.mean:+.4f} {_ci(c)}"


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
            else "no significant difference between TRAdam and Adam")
    compare = f"the std over seeds is up to {spread:.4f}" if spread > 0 else "the seeds did not vary"
    return f"{metric}: {head}: {diff.mean:+.4f} (95% CI {_ci(diff)}, n={diff.n} seeds); {compare}."


def answer_section(segmenters, main, data):
    """A one-line verdict (how many metrics TRAdam won or lost at 95%), then one line per metric."""
    items, won, lost, seeds = [], 0, 0, 0
    for seg in segmenters:
        for key, name in METRICS:
            diff = main[label(seg)][key]["tradam_minus_adam"]
            seeds = max(seeds, diff.n)
            won += diff.excludes_zero and diff.mean > 0
            lost += diff.excludes_zero and diff.mean < 0
            items.append(verdict(main[label(seg)][key], f"{label(seg)}, {name}"))
    data["verdict"] = {"metrics": len(items), "won": won, "lost": lost, "paired_seeds": seeds}
    if seeds < 2:
        head = f"Not enough paired seeds yet ({seeds}) for an interval; the differences so far:"
    else:
        head = (f"Verdict (main grid, batch size 1, {seeds} seeds paired): TRAdam beat Adam on {won} of "
                f"{len(items)} FCN-score metrics and lost on {lost} at 95% confidence; on the other "
                f"{len(items) - won - lost} the difference is within the noise between seeds. Per metric "
                "(TRAdam − Adam):")
    return _para(head) + _bullets(items)


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
    return text + f"; the gap moved by {moved.mean:+.4f} (Welch 95% CI {_ci(moved)}), " + \
        ("beyond the noise." if moved.excludes_zero else "within the noise.")


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
        lines += _para(f"TRAdam − Adam of the main grid (paired by seed, 95% t interval) at {short.name} and "
                       f"{long.name}; only the schedule's length differs. {other.name} from {other.source}; "
                       "'Change' is long − short with Welch's 95% interval.")
        for lab in map(label, segmenters):
            same, basis = budgets.same_judge(short, long, lab)
            numbers = data[name]["segmenters"][lab] = {
                "same_judge": same, "judged_by": basis, "metrics": {},
                "ground_truth": {"short": short.ground_truth.get(lab), "long": long.ground_truth.get(lab)}}
            lines += _para(judge_sentence(short, long, lab))
            rows, sentences = [], []
            for key, metric in METRICS:
                gs, gl = short.final.get(lab, {}).get(key), long.final.get(lab, {}).get(key)
                moved = stats.welch(gs.per_seed.values(), gl.per_seed.values()) if gs and gl else None
                numbers["metrics"][key] = {"short": gs, "long": gl, "change": moved}
                rows.append([metric, fmt_gap(gs), fmt_gap(gl), fmt_change(moved) if moved else "–"])
                if moved:
                    sentences.append(moved_sentence(metric, short, gs, long, gl, moved))
            if short.ground_truth.get(lab) or long.ground_truth.get(lab):
                def gt(b):
                    vals = b.ground_truth.get(lab)
                    return " / ".join(fmt(vals.get(k)) for k, _ in METRICS) if vals else "–"
                rows.append(["Real photos, under each budget's judge", gt(short), gt(long), "–"])
            lines += _table(f"TRAdam − Adam across budgets, {lab}",
                            ["Metric", short.name, long.name, "Change (long − short) [95% CI]"], rows)
            if sentences:
                lines += _bullets(sentences)
    return lines


def over_training_section(inp, this, report_dir, segmenters, data):
    """TRAdam − Adam at each scored epoch: a table per segmenter and a plot."""
    scale, epochs = inp.scale, sorted(this.curve)
    lines = _para(f"TRAdam − Adam at each saved epoch, paired by seed, 95% t interval; lr constant for epochs "
                  f"1–{scale.n_epochs}, then linear decay to 0 by epoch {scale.total_epochs}.")
    for lab in map(label, segmenters):
        data[lab] = {e: this.curve[e].get(lab, {}) for e in epochs}
        rows = [[str(e), f"{this.steps_at(e):,}" if this.steps_at(e) else "–",
                 "constant" if e <= scale.n_epochs else "decay"] + [fmt_gap(data[lab][e].get(k)) for k, _ in METRICS]
                for e in epochs]
        lines += _table(f"TRAdam − Adam over training, {lab}", ["Epoch", "Steps", "lr"] +
                        [f"{name}: TRAdam − Adam [95% CI]" for name in METRIC_NAMES], rows)
    by_steps = scale.train_frames is not None
    for i, lab in enumerate(map(label, segmenters)):
        series = [(this.name, "tab:red", [(this.steps_at(e) or e, this.curve[e].get(lab, {})) for e in epochs])]
        for color, (_, other) in zip(("tab:green", "tab:purple", "tab:brown"), inp.other_budgets):
            if other is not None and (other.scale.train_frames is not None) == by_steps:
                series.append((other.name, color, [(other.steps_at(e) or e, other.curve[e].get(lab, {}))
                                                   for e in sorted(other.curve)]))
        name = f"gap_over_training_{i}.png"
        if plots.gap_plot(series, os.path.join(report_dir, name), METRICS,
                          f"TRAdam − Adam over training ({lab}; 95% CI)",
                          decay_start=this.steps_at(scale.n_epochs) if by_steps else scale.n_epochs,
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
        rows.append([name, f"{d.mean:+.4f}" if d.n else "–", _ci(d) if d.n >= 2 else "–", str(d.n),
                     fmt(a.std, 4), fmt(b.std, 4), per_seed or "–"])
    return _table(f"Paired difference with {lab} ({adam.label} vs {tradam.label})",
                  ["Metric", "TRAdam − Adam", "95% CI (t)", "seeds", "Adam std", "TRAdam std", "per seed"], rows)


ABLATION_TEXT = {
    "decomposition": "Where a gain comes from: λ=0 keeps only the lr/(k+1) sawtooth, 'no sawtooth' only the proximal "
                     "term; 'lr × H_S/S' is Adam at TRAdam's mean step size (H_S/S = 0.293 for S = 10), "
                     "'lr × S/H_S' TRAdam at Adam's.",
    "lambda_mode": "How λ follows the LR: 'scaled' (default, as the released experiments ran) uses λ·lr0/lr; 'fixed "
                   "λ' keeps λ; 'λ/lr' passes λ = 0.1 to the released class, which divides it by lr.",
    "inner_steps": "Inner steps S between anchor refreshes; S = 1 is Adam by construction, a yardstick for noise.",
    "tr_lambda": "Strength λ of the proximal term (λ = 0 leaves only the step-size sawtooth).",
    "batch_size": "Batch size: the paper's point is that TR helps most at small batches.",
}


def ablation_section(inp, group, segmenters, data):
    """Each variant on the group's seeds, Δ paired by seed against the first."""
    seeds = inp.grid.seeds[group]
    variants = cells.group_variants(group)
    ref = variants[0]
    numbers = data[group] = {"seeds": seeds, "reference": ref.name, "variants": {}}
    lines = ["### " + group, ""] + _para(ABLATION_TEXT[group] + " Seeds: " + ", ".join(map(str, seeds)) + ".")
    for seg in segmenters:
        rows = []
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
                    text += f" (Δ {diff.mean:+.4f}" + (f", CI {_ci(diff)})" if diff.n >= 2 else ")")
                row.append(text)
            rows.append(row)
        lines += _table(f"{group} with {label(seg)}; Δ paired by seed against {ref.label}",
                        ["Variant"] + METRIC_NAMES, rows)
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
    md += answer_section(segmenters, main, data) if segmenters else _para("No cell has finished yet.")
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
