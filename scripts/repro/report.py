"""The reproduction report: what to show, from the collected records (rendering is render.py's).

It reads only finished cells' files (from the work dir or the committed store), so it can be
written at any time (a partial grid gives a partial report that says which cells are missing).
Contents, in order: the plain answer (did TRAdam beat Adam, by how much, against the spread over
seeds); for a scale that compares budgets, TRAdam − Adam at each budget; the gap over training
(each scored epoch); the paper's table form per segmenter with the ground-truth row (mean ± std over
seeds), the paired difference TRAdam − Adam by seed with its 95% interval, the per-seed numbers,
each ablation group, plots, sample images (omitted, and said so, when the synthesized images are
not in this work dir), and the exact commands.
"""
import dataclasses
import math
import os

from pix2pix_tr import atomic

from . import document as d
from . import cells as cells_mod
from . import budgets, collect, plots, render, samples, stats
from .commands import PHASE


@dataclasses.dataclass
class ReportInputs:
    scale: object                     # scales.Scale
    grid: object                      # cells.Grid (the cells this report covers)
    results: list                     # collect.CellResult per grid cell
    ground_truth: dict | None         # segmenter -> metrics of the real photos
    status: dict                      # cell name -> "done" | "failed: ..." | "unsupported: ..." | ...
    invocation: str                   # the reproduce.py command that makes this report
    code_version: str                 # git commit of the code that ran
    prepare_commands: list            # shell lines run once before the cells
    cell_commands: dict               # cell name -> [shell lines]
    paths: object                     # commands.RunPaths
    store_dir: str | None = None      # the committed cell results (store.py), if any
    other_budgets: list = dataclasses.field(default_factory=list)   # [(scale name, budgets.Budget | None)]


def seg_label(name):
    return os.path.basename(os.path.normpath(name)) or name


def fmt(x, digits=3):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_summary(s):
    if s.n == 0:
        return "–"
    if s.n == 1:
        return f"{fmt(s.mean)} (1 seed)"
    return f"{fmt(s.mean)} ± {fmt(s.std)} (n={s.n})"


def values_by_seed(results, variant, segmenter, key):
    return {r.cell.seed: collect.metric(r.scores, segmenter, key) for r in results
            if r.cell.variant == variant and r.scores and segmenter in r.scores}


def summary_of(results, variant, segmenter, key):
    return stats.summarize(values_by_seed(results, variant, segmenter, key).values())


# --- sections ------------------------------------------------------------------------------

def answer_section(inp, segmenters, adam, tradam, where):
    """A one-line verdict (how many metrics TRAdam won or lost at 95%), then one line per metric."""
    items, wins, losses, total, seeds = [], 0, 0, 0, 0
    for seg in segmenters:
        for key, label in collect.METRICS:
            a = values_by_seed(inp.results, adam, seg, key)
            b = values_by_seed(inp.results, tradam, seg, key)
            diff = stats.paired_difference(a, b)
            total, seeds = total + 1, max(seeds, diff.n)
            wins += diff.excludes_zero and diff.mean > 0
            losses += diff.excludes_zero and diff.mean < 0
            items.append(stats.verdict(diff, stats.summarize(a.values()).std,
                                       stats.summarize(b.values()).std, f"{seg_label(seg)}, {label}"))
    if seeds < 2:
        head = f"Not enough paired seeds yet ({seeds}) for an interval; the differences so far:"
    else:
        head = (f"Verdict ({where}, {seeds} seeds paired): TRAdam beat Adam on {wins} of {total} "
                f"FCN-score metrics and lost on {losses} at 95% confidence; on the other {total - wins - losses} "
                "the difference is within the noise between seeds. Per metric (TRAdam − Adam):")
    return [d.Paragraph(head), d.Bullets(items)]


def paper_table(inp, seg, variants):
    rows = [[v.label] + [fmt_summary(summary_of(inp.results, v, seg, k)) for k, _ in collect.METRICS]
            for v in variants]
    if inp.ground_truth and seg in inp.ground_truth:
        rows.append(["Ground truth (real photos)"] +
                    [fmt(collect.metric(inp.ground_truth, seg, k)) for k, _ in collect.METRICS])
    return d.Table(["Optimizer"] + [label for _, label in collect.METRICS], rows,
                   caption=f"FCN-scores with {seg_label(seg)} ({PHASE}, mean ± std over seeds)")


def paired_table(inp, seg, adam, tradam):
    rows = []
    for key, label in collect.METRICS:
        a = values_by_seed(inp.results, adam, seg, key)
        b = values_by_seed(inp.results, tradam, seg, key)
        diff = stats.paired_difference(a, b)
        per_seed = ", ".join(f"{s}: {b[s] - a[s]:+.4f}" for s in diff.seeds)
        rows.append([label, f"{diff.mean:+.4f}" if diff.n else "–",
                     f"[{diff.ci_low:+.4f}, {diff.ci_high:+.4f}]" if diff.n >= 2 else "–",
                     str(diff.n), fmt(stats.summarize(a.values()).std, 4),
                     fmt(stats.summarize(b.values()).std, 4), per_seed or "–"])
    return d.Table(["Metric", "TRAdam − Adam", "95% CI (t)", "seeds", "Adam std", "TRAdam std",
                    "per seed"], rows,
                   caption=f"Paired difference with {seg_label(seg)} ({adam.label} vs {tradam.label})")


def per_seed_table(inp, seg, cells):
    rows = []
    for c in cells:
        r = next(r for r in inp.results if r.cell == c)
        rows.append([c.variant.label, str(c.seed)] +
                    [fmt(collect.metric(r.scores, seg, k)) for k, _ in collect.METRICS])
    return d.Table(["Optimizer", "seed"] + [label for _, label in collect.METRICS], rows,
                   caption=f"Every run, {seg_label(seg)}")


def ablation_table(inp, seg, group):
    """Each variant of the group on the group's seeds; Δ is paired by seed against the reference
    (the first variant), with its 95% interval when there are several seeds."""
    variants = cells_mod.group_variants(group)
    ref, seeds = variants[0], set(inp.grid.seeds[group])
    rows = []
    for v in variants:
        cols = [v.label]
        for key, _ in collect.METRICS:
            mine = {s: x for s, x in values_by_seed(inp.results, v, seg, key).items() if s in seeds}
            text = fmt_summary(stats.summarize(mine.values()))
            if v != ref and mine:
                diff = stats.paired_difference(
                    {s: x for s, x in values_by_seed(inp.results, ref, seg, key).items() if s in seeds}, mine)
                if diff.n:
                    text += f" (Δ {diff.mean:+.4f}" + (
                        f", CI [{diff.ci_low:+.4f}, {diff.ci_high:+.4f}])" if diff.n >= 2 else ")")
            cols.append(text)
        rows.append(cols)
    return d.Table(["Variant"] + [label for _, label in collect.METRICS], rows,
                   caption=f"{group} with {seg_label(seg)}; Δ paired by seed against {ref.label}")


ABLATION_TEXT = {
    "decomposition": "Where a gain comes from: TRAdam λ=0 keeps only the lr/(k+1) step-size sawtooth; "
                     "'no sawtooth' keeps only the proximal term; 'Adam, lr × H_S/S' is Adam at "
                     "TRAdam's mean step size, and 'TRAdam, lr × S/H_S' is TRAdam at Adam's (the "
                     "sawtooth's mean of 1/(k+1) over a cycle is H_S/S = 0.293 for S = 10).",
    "lambda_mode": "How λ follows the LR: 'scaled' (train.py's default) uses λ·lr0/lr, so λ grows as the "
                   "linear decay shrinks lr, and is what the paper's released experiments ran; 'fixed λ' keeps "
                   "λ; 'λ/lr, λ = 0.1' passes λ = 0.1 straight to the released TRAdam class, which "
                   "divides it by lr (500 at lr = 0.0002 from the first step): not what the released "
                   "experiments ran.",
    "inner_steps": "Inner steps S between anchor refreshes. S = 1 is plain Adam by construction, so its "
                   "distance from the Adam row shows how far float-level differences (another "
                   "optimizer implementation) carry a GAN run: a yardstick for noise.",
    "tr_lambda": "Strength λ of the proximal term (λ = 0 leaves only the step-size sawtooth).",
    "batch_size": "Batch size: the paper's point is that TR helps most at small batches.",
}


def setup_section(inp):
    sc = inp.scale
    done = [c.name for c in inp.grid.cells if inp.status.get(c.name) == "done"]
    others = [f"{c.name}: {inp.status.get(c.name, 'not run')}" for c in inp.grid.cells
              if inp.status.get(c.name) != "done"]
    groups = ", ".join(f"{g} (seeds {', '.join(map(str, s))})" for g, s in inp.grid.seeds.items())
    text = (f"Scale `{sc.name}`: dataset `{os.path.relpath(inp.paths.dataroot, inp.paths.work_dir)}`, "
            f"shared train.py flags `{' '.join(sc.train_flags)}`, {sc.n_epochs} epochs + "
            f"{sc.n_epochs_decay} of linear decay, lr {sc.lr:g} (beta1 0.5), TRAdam λ=0.1, S=10 "
            f"unless varied. Groups: {groups}. Cells finished: {len(done)} of {len(inp.grid.cells)}.")
    blocks = [d.Paragraph(text)]
    blocks += provenance(inp)
    if others:
        blocks += [d.Paragraph("Cells of the grid without results:"), d.Bullets(others)]
    return blocks


def provenance(inp):
    """Where the finished cells' numbers were read, how long the stored ones took, and whether one
    segmenter judged them all."""
    done = [r for r in inp.results if r.scores]
    if not done:
        return []
    stored = [r for r in done if r.source == "store"]
    parts = []
    if inp.store_dir:
        from .commands import REPO
        where = os.path.relpath(inp.store_dir, REPO) if inp.store_dir.startswith(REPO + os.sep) else inp.store_dir
        count = (f"all {len(done)} finished cells were read from there" if len(stored) == len(done) else
                 f"{len(stored)} of the {len(done)} finished cells were read from there, the others from "
                 "the work dir")
        parts.append(f"Finished cells keep their scores, loss summary and commands in `{where}` "
                     f"(committed with the report): {count}.")
    walls = [r.record["wall_seconds"] for r in stored if r.record and r.record.get("wall_seconds")]
    if walls:
        jobs = sorted({r.record.get("jobs") for r in stored if r.record and r.record.get("wall_seconds")} - {None})
        cells = f"{len(walls)} cell" + "s" * (len(walls) != 1)
        parts.append(f"Wall time of the {cells} timed in one go: mean {sum(walls) / len(walls) / 60:.1f} "
                     f"min per cell (min {min(walls) / 60:.1f}, max {max(walls) / 60:.1f}), "
                     f"{' or '.join(map(str, jobs)) or '?'} cells at a time.")
    judges = {}
    for r in stored:
        for seg, digest in ((r.record or {}).get("segmenters") or {}).items():
            judges.setdefault(seg, {}).setdefault(digest, []).append(r.cell.name)
    for seg, by_digest in judges.items():
        if len(by_digest) > 1:
            parts.append(f"Warning: the stored cells were judged by {len(by_digest)} different "
                         f"{seg} segmenters (weights SHA-256 " +
                         "; ".join(f"{dg[:12]}: {', '.join(names)}" for dg, names in by_digest.items()) +
                         "); their scores are not comparable across those groups.")
    return [d.Paragraph(" ".join(parts))] if parts else []


SHORT_NAMES = {"adam": "Adam", "tradam": "TRAdam"}     # ASCII: the grid's titles use PIL's default font


def write_images(inp, report_dir, segmenters, main_cells):
    blocks = []
    main_results = [r for r in inp.results if r.cell in main_cells]
    if plots.loss_plot(main_results, os.path.join(report_dir, "losses.png"), inp.scale.total_epochs,
                       "Training losses (main grid)"):
        blocks.append(d.Image("losses.png", "training losses", 900))
    for i, seg in enumerate(segmenters):
        name = f"fcn_over_epochs_{i}.png"
        if plots.curve_plot(main_results, os.path.join(report_dir, name), seg, collect.METRICS,
                            f"FCN-score over epochs ({seg_label(seg)})"):
            blocks.append(d.Image(name, f"FCN-score over epochs, {seg_label(seg)}", 900))
    blocks += sample_blocks(inp, report_dir, main_cells)
    return blocks


SAMPLES_PNG, SAMPLES_JSON = "samples.png", "samples.json"


def sample_blocks(inp, report_dir, main_cells):
    """The sample grid of the first seed's Adam and TRAdam, drawn from their synthesized images in
    the work dir. Without those images (a report rebuilt from the committed results): the grid drawn
    earlier from the same stored cells if the report folder has it (samples.json names the cells and
    when they were stored), else none, and the report says so."""
    seed = min((c.seed for c in main_cells), default=None)
    pair = [c for c in main_cells if c.seed == seed]
    done = {r.cell.name: r for r in inp.results if r.scores}
    if not pair or not all(c.name in done for c in pair):
        return []
    first = os.path.join(inp.paths.epoch_dir(pair[0], "latest"), "images")
    dirs = [os.path.join(inp.paths.epoch_dir(c, "latest"), "images") for c in pair]
    frames = samples.frame_ids(first, 4)
    identity = {c.name: (done[c.name].record or {}).get("stored") for c in pair}
    if frames and all(samples.frame_ids(x, 4) == frames for x in dirs):
        cols = [("label map", first, "_real_A.png")]
        cols += [(SHORT_NAMES[c.variant.optimizer], x, "_fake_B.png") for c, x in zip(pair, dirs)]
        cols.append(("real photo", first, "_real_B.png"))
        samples.image_grid(cols, frames, os.path.join(report_dir, SAMPLES_PNG))
        atomic.write_json(os.path.join(report_dir, SAMPLES_JSON), {"cells": identity, "frames": frames})
        return [d.Paragraph(f"Validation frames {', '.join(frames)}, seed {seed}, last epoch:"),
                d.Image(SAMPLES_PNG, "sample images")]
    names = ", ".join(c.name for c in pair)
    try:
        import json
        with open(os.path.join(report_dir, SAMPLES_JSON), encoding="utf-8") as f:
            earlier = json.load(f)
    except (OSError, ValueError):
        earlier = None
    if (earlier and earlier.get("cells") == identity and all(identity.values())
            and os.path.exists(os.path.join(report_dir, SAMPLES_PNG))):
        return [d.Paragraph(f"Validation frames {', '.join(earlier.get('frames', []))}, seed {seed}, last "
                            f"epoch (drawn when {names} ran; their images are not in this work dir):"),
                d.Image(SAMPLES_PNG, "sample images")]
    why = (" (this report was rebuilt from the committed cell results, which keep no images); a run of "
           "those cells here (delete their stored folders) draws them"
           if any(done[c.name].source == "store" for c in pair) else "")
    return [d.Paragraph(f"Sample images omitted: the synthesized images of {names} are not in this work "
                        f"dir{why}.")]


# --- budgets: the gap over training and across schedules ------------------------------------

def fmt_gap(g):
    if g is None or g.n == 0:
        return "–"
    if g.n == 1:
        return f"{g.mean:+.4f} (1 seed)"
    return f"{g.mean:+.4f} [{g.ci_low:+.4f}, {g.ci_high:+.4f}] (n={g.n})"


def fmt_change(c):
    if math.isnan(c.mean):
        return "–"
    if math.isnan(c.ci_low):
        return f"{c.mean:+.4f}"
    return f"{c.mean:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}]"


def over_training_section(inp, this, report_dir, segmenters):
    """TRAdam − Adam at each scored epoch: a table per segmenter and a plot (with the other
    budgets' gaps as points)."""
    epochs = sorted(this.curve)
    blocks = [d.Paragraph(
        "TRAdam − Adam at each scored epoch, paired by seed, with its 95% t interval (each saved "
        "checkpoint of the main grid synthesized and scored; the last row is the final result). "
        f"The lr is constant for epochs 1–{inp.scale.n_epochs}, then decays linearly to 0 by epoch "
        f"{inp.scale.total_epochs}.")]
    for seg in segmenters:
        label = seg_label(seg)
        rows = []
        for e in epochs:
            gaps = this.curve[e].get(label, {})
            steps = this.steps_at(e)
            rows.append([str(e), f"{steps:,}" if steps else "–",
                         "constant" if e <= inp.scale.n_epochs else "decay"] +
                        [fmt_gap(gaps.get(k)) for k, _ in collect.METRICS])
        blocks.append(d.Table(["Epoch", "Steps", "lr"] + [f"{lab}: TRAdam − Adam [95% CI]"
                                                          for _, lab in collect.METRICS], rows,
                              caption=f"TRAdam − Adam over training, {label}"))
    for i, seg in enumerate(segmenters):
        label = seg_label(seg)
        series = [(this.name, "tab:red", "line",
                   [(this.steps_at(e) or e, this.curve[e].get(label, {})) for e in epochs])]
        for color, (_, other) in zip(("tab:green", "tab:purple", "tab:brown"), inp.other_budgets):
            if other is None or (this.steps_per_epoch is None) != (other.steps_per_epoch is None):
                continue
            if other.curve:
                series.append((other.name, color, "line",
                               [(other.steps_at(e) or e, other.curve[e].get(label, {})) for e in sorted(other.curve)]))
            else:
                series.append((other.name + ", final", color, "points",
                               [(other.steps or other.epochs, other.final.get(label, {}))]))
        name = f"gap_over_training_{i}.png"
        decay = this.steps_at(inp.scale.n_epochs) if this.steps_per_epoch else inp.scale.n_epochs
        if plots.gap_plot(series, os.path.join(report_dir, name), collect.METRICS,
                          f"TRAdam − Adam over training ({label}; 95% CI)", decay_start=decay,
                          xlabel="generator steps" if this.steps_per_epoch else "epoch"):
            blocks.append(d.Image(name, f"TRAdam − Adam over training, {label}", 900))
    return blocks


def judge_sentence(short, long, label):
    """Whether the two budgets' gaps were judged by the same weights of `label`, said plainly."""
    same, basis = budgets.same_judge(short, long, label)
    if same is None:
        return f"Whether both budgets were judged by the same weights of {label} is not known."
    if basis == "weights":
        if same:
            fingerprint = next(iter(short.judges[label]))
            return f"Both budgets were judged by the same weights of {label} (SHA-256 {fingerprint[:12]}…)."
        def shas(b):
            return ", ".join(f[:12] + "…" for f in sorted(b.judges[label]))
        return (f"The budgets were judged by different weights of {label} (SHA-256 {shas(short)} at "
                f"{short.name}; {shas(long)} at {long.name}): each gap is measured by its own judge, and the "
                "real photos' row shows how far the judges differ.")
    if same:
        return (f"The real photos score the same under both budgets' {label} (to the report's 3 decimals), "
                "as one set of weights would.")
    return (f"The real photos score differently under the two budgets' {label} (last row): the segmenter "
            "was trained again between them (same recipe, other weights), so each gap is measured by its "
            "own judge; compare the gaps, not the absolute scores.")


def budgets_section(inp, this, segmenters):
    """TRAdam − Adam at each budget this scale compares with, side by side, and how it moved."""
    blocks = []
    for name, other in inp.other_budgets:
        if other is None:
            blocks.append(d.Paragraph(f"No results of the {name} scale to compare with: neither its cells "
                                      "(work dir or store) nor its committed report were found."))
            continue
        short, long = sorted((other, this), key=lambda b: (b.steps or 0, b.epochs))
        blocks.append(d.Paragraph(
            f"TRAdam − Adam of the main grid (batch 1, paired by seed, 95% t interval) at {short.name} "
            f"and at {long.name}: same data, networks, segmenter recipe and seeds; only the schedule's "
            "length differs (each: constant lr for half its epochs, then linear decay to 0). The numbers of "
            f"{other.name} come from {other.source}. 'Change' is the long budget's gap minus the short "
            "one's with Welch's 95% interval (the runs of the two budgets are separate, not paired)."))
        for seg in segmenters:
            label = seg_label(seg)
            blocks.append(d.Paragraph(judge_sentence(short, long, label)))
            rows, sentences = [], []
            for key, mlabel in collect.METRICS:
                gs, gl = short.final.get(label, {}).get(key), long.final.get(label, {}).get(key)
                moved = budgets.change(gs, gl) if gs and gl else None
                rows.append([mlabel, fmt_gap(gs), fmt_gap(gl), fmt_change(moved) if moved else "–"])
                if gs and gl and moved:
                    sentences.append(budgets.describe(mlabel, short.name, gs, long.name, gl, moved))
            if short.ground_truth.get(label) or long.ground_truth.get(label):
                def gt(b):
                    vals = b.ground_truth.get(label)
                    return " / ".join(fmt(vals.get(k)) for k, _ in collect.METRICS) if vals else "–"
                rows.append(["Real photos, under each budget's judge", gt(short), gt(long), "–"])
            blocks.append(d.Table(["Metric", short.name, long.name, "Change (long − short) [95% CI]"], rows,
                                  caption=f"TRAdam − Adam across budgets, {label}"))
            if sentences:
                blocks.append(d.Bullets(sentences))
    return blocks


def build(inp, report_dir):
    doc = d.Document(f"pix2pix labels → photos: Adam vs TRAdam ({inp.scale.name} scale)")
    segmenters = collect.segmenters_of(inp.results, inp.ground_truth)
    main_cells = inp.grid.cells_of("main")
    adam, tradam = cells_mod.ADAM, cells_mod.TRADAM

    doc.add(d.Heading(1, "Answer"))
    if segmenters:
        doc.add(*answer_section(inp, segmenters, adam, tradam, "main grid, batch size 1"))
    else:
        doc.add(d.Paragraph("No cell has finished yet."))
    os.makedirs(report_dir, exist_ok=True)
    main_results = [r for r in inp.results if r.cell in main_cells]
    this = budgets.from_results(inp.scale, main_results, inp.ground_truth, "this report's cells")
    if inp.scale.compare_with:       # before any cell finishes: the other budgets' numbers alone
        segs = segmenters or list(dict.fromkeys(s for _, b in inp.other_budgets if b for s in b.final))
        doc.add(d.Heading(1, "Across budgets"), *budgets_section(inp, this, segs))
    if this.curve and segmenters:
        doc.add(d.Heading(1, "TRAdam − Adam over training"),
                *over_training_section(inp, this, report_dir, segmenters))
    doc.add(d.Heading(1, "Setup"), *setup_section(inp))

    doc.add(d.Heading(1, "FCN-scores (the paper's table form)"))
    for seg in segmenters:
        doc.add(paper_table(inp, seg, [adam, tradam]), paired_table(inp, seg, adam, tradam),
                per_seed_table(inp, seg, [c for c in main_cells if inp.status.get(c.name) == "done"]))

    ablations = [g for g in inp.grid.seeds if g != "main"]
    if ablations:
        doc.add(d.Heading(1, "Ablations"))
        for group in ablations:
            doc.add(d.Heading(2, group), d.Paragraph(ABLATION_TEXT[group] + " Seeds: " +
                                                     ", ".join(map(str, inp.grid.seeds[group])) + "."))
            for seg in segmenters:
                doc.add(ablation_table(inp, seg, group))
            if group == "batch_size":
                for b in cells_mod.BATCH_GRID[1:]:
                    for seg in segmenters:
                        doc.add(paired_table(inp, seg, dataclasses.replace(adam, batch_size=b),
                                             dataclasses.replace(tradam, batch_size=b)))

    images = write_images(inp, report_dir, segmenters, main_cells)
    if images:
        doc.add(d.Heading(1, "Plots and samples"), *images)

    doc.add(d.Heading(1, "Commands"),
            d.Paragraph(f"This report was made by (code at commit {inp.code_version}):"),
            d.Code(inp.invocation),
            d.Paragraph("which runs, once:"), d.Code("\n".join(inp.prepare_commands)))
    for c in [c for c in main_cells if c.seed == min(x.seed for x in main_cells)]:
        doc.add(d.Paragraph(f"and per cell, e.g. {c.name}:"), d.Code("\n".join(inp.cell_commands[c.name])))
    doc.add(d.Paragraph("Every cell's commands are in commands.sh beside this report."))
    return doc


def write(inp, report_dir):
    """Write report.md, report.html, commands.sh and the PNGs into `report_dir`."""
    doc = build(inp, report_dir)
    atomic.write_text(os.path.join(report_dir, "report.md"), render.to_markdown(doc))
    atomic.write_text(os.path.join(report_dir, "report.html"), render.to_html(doc))
    lines = ["#!/usr/bin/env bash", "# Every command of this report, in the order run.", "set -e",
             f"# {inp.invocation}", *inp.prepare_commands]
    for c in inp.grid.cells:
        lines += [f"# {c.name}", *inp.cell_commands[c.name]]
    atomic.write_text(os.path.join(report_dir, "commands.sh"), "\n".join(lines) + "\n")
    return doc
