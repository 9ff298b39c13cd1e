"""The reproduction report: what to show, from the collected records (rendering is render.py's).

It reads only finished cells' files, so it can be written at any time (a partial grid gives a
partial report that says which cells are missing). Contents, in order: the plain answer (did
TRAdam beat Adam, by how much, against the spread over seeds), the paper's table form per
segmenter with the ground-truth row (mean ± std over seeds), the paired difference TRAdam − Adam
by seed with its 95% interval, the per-seed numbers, each ablation group, plots, sample images,
and the exact commands.
"""
import dataclasses
import math
import os

from pix2pix_tr import atomic

from . import document as d
from . import cells as cells_mod
from . import collect, plots, render, samples, stats
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
    if others:
        blocks += [d.Paragraph("Cells of the grid without results:"), d.Bullets(others)]
    return blocks


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
    seed = min((c.seed for c in main_cells), default=None)
    pair = [c for c in main_cells if c.seed == seed]
    if pair:
        first = os.path.join(inp.paths.epoch_dir(pair[0], "latest"), "images")
        frames = samples.frame_ids(first, 4)
        if frames:
            cols = [("label map", first, "_real_A.png")]
            cols += [(SHORT_NAMES[c.variant.optimizer], os.path.join(inp.paths.epoch_dir(c, "latest"),
                                                                      "images"), "_fake_B.png") for c in pair]
            cols.append(("real photo", first, "_real_B.png"))
            samples.image_grid(cols, frames, os.path.join(report_dir, "samples.png"))
            blocks += [d.Paragraph(f"Validation frames {', '.join(frames)}, seed {seed}, last epoch:"),
                       d.Image("samples.png", "sample images")]
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

    os.makedirs(report_dir, exist_ok=True)
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
