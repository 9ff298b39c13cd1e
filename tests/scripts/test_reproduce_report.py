"""The report (report.md, results.json, PNGs, commands.sh), written from fake score files laid out as a
real run leaves them, and from fabricated results for the comparison across budgets."""
import json
import math
import os

import pytest
from PIL import Image

from scripts.repro import cells, collect, commands, report
from scripts.repro.scales import SYNTHCITY

SEG = "checkpoints/synthcity_segmenter"
# per seed: (pixel_acc, class_acc, mean_iou); TRAdam = Adam + (0.02, 0.025, 0.015) per seed exactly
ADAM = {0: (0.60, 0.40, 0.30), 1: (0.70, 0.45, 0.35), 2: (0.65, 0.50, 0.28)}
TRADAM = {0: (0.62, 0.42, 0.31), 1: (0.725, 0.48, 0.37), 2: (0.665, 0.52, 0.29)}
GT = (0.95, 0.90, 0.85)


def _metrics(values):
    return {SEG: dict(zip(("pixel_acc", "class_acc", "mean_iou"), values), per_class={}, absent=[])}


def _scores(values, gt=None):
    """An fcn_scores.json as evaluate/fcn_score.py writes it (with --gt: the real photos too)."""
    report = {"run": "x", "phase": "val", "segmenters": _metrics(values)}
    if gt:
        report["ground_truth"] = _metrics(gt)
    return report


def _write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def _fake_run(tmp_path):
    paths = commands.RunPaths.of(SYNTHCITY, str(tmp_path))
    grid = cells.expand(["main", "decomposition"], (0, 1, 2), (0,))
    for cell in grid.cells_of("main"):
        table = ADAM if cell.variant.optimizer == "adam" else TRADAM
        _write_json(paths.scores_path(cell), _scores(table[cell.seed], GT if cell == grid.cells[0] else None))
        for epoch in SYNTHCITY.curve_epochs():
            _write_json(paths.scores_path(cell, epoch), _scores([v * epoch / 10 for v in table[cell.seed]]))
        os.makedirs(paths.cell_checkpoints(cell), exist_ok=True)
        with open(paths.loss_log(cell), "w") as f:
            for i in range(20):
                f.write(json.dumps({"epoch": 1 + i // 10, "iters": 1 + i % 10,
                                    "losses": {"G_GAN": 1.0, "G_L1": 10.0 - i / 3, "D_real": 0.5,
                                               "D_fake": 0.4}}) + "\n")
        images = os.path.join(paths.epoch_dir(cell, "latest"), "images")
        os.makedirs(images, exist_ok=True)
        for fid in ("synthcity_000001", "synthcity_000002"):
            for kind, colour in (("real_A", (255, 0, 0)), ("fake_B", (0, 255, 0)), ("real_B", (0, 0, 255))):
                Image.new("RGB", (32, 32), colour).save(os.path.join(images, f"{fid}_{kind}.png"))
    lam0 = cells.Cell(cells.Variant("tradam", tr_lambda=0.0), 0)
    _write_json(paths.scores_path(lam0), _scores((0.61, 0.41, 0.305)))
    return paths, grid


def _inputs(paths, grid):
    status = {c.name: "done" if os.path.exists(paths.scores_path(c)) else "not run yet" for c in grid.cells}
    stage_map = {c.name: commands.cell_stages(c, SYNTHCITY, paths, "cpu") for c in grid.cells}
    return report.ReportInputs(
        scale=SYNTHCITY, grid=grid,
        results=collect.collect(grid, paths, SYNTHCITY.curve_epochs(), SYNTHCITY.total_epochs),
        ground_truth=collect.ground_truth(grid, paths), status=status,
        invocation="python scripts/reproduce.py --scale synthcity --jobs 2", code_version="abc1234",
        prepare_commands=["python data/synthcity.py --output_dir x"],
        cell_commands={n: [commands.shell_line(s.argv) for s in st] for n, st in stage_map.items()},
        paths=paths)


def test_report_tables_statistics_plots_and_commands(tmp_path):
    paths, grid = _fake_run(tmp_path)
    out = tmp_path / "report"
    report.write(_inputs(paths, grid), str(out))
    md = (out / "report.md").read_text()

    # paper table: mean ± sample std over the 3 seeds, computed here by hand
    def mean_std(xs):
        m = sum(xs) / len(xs)
        return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    m, s = mean_std([v[0] for v in TRADAM.values()])
    assert f"| TRAdam S=10 λ=0.1 | {m:.3f} ± {s:.3f} (n=3) |" in md
    m, s = mean_std([v[2] for v in ADAM.values()])
    assert f"{m:.3f} ± {s:.3f} (n=3) |\n" in md.split("| Adam |")[1]
    assert "| Ground truth (real photos) | 0.950 | 0.900 | 0.850 |" in md

    # paired differences: pixel acc diffs 0.02, 0.025, 0.015 -> mean 0.02, std 0.005, t(.975,2)
    half = 4.302652729911275 * 0.005 / math.sqrt(3)
    assert f"| Per-pixel acc. | +0.0200 | [{0.02 - half:+.4f}, {0.02 + half:+.4f}] | 3 |" in md
    assert "Per-pixel acc.: TRAdam beat Adam: +0.0200" in md
    # pixel and class accuracy exclude zero; IoU diffs 0.01, 0.02, 0.01 do not (CI [-0.0010, +0.0277])
    assert "TRAdam beat Adam on 2 of 3 FCN-score metrics and lost on 0 at 95% confidence" in md
    # the ablation table: λ=0 on seed 0 against Adam's seed-0 mean... n=3 mean for Adam (reference)
    # ablations compare on their own seeds, paired: λ=0 seed 0 against Adam seed 0
    assert "| Adam | 0.600 (1 seed) | 0.400 (1 seed) | 0.300 (1 seed) |" in md
    assert "| TRAdam S=10 λ=0 | 0.610 (1 seed) (Δ +0.0100) |" in md
    # cells without results are named
    assert "tradam-S10-l0.1-nosawtooth-bs1-seed0: not run yet" in md
    # plots and samples exist, are PNGs, and are referenced from the report
    for png in ("losses.png", "fcn_over_epochs_0.png", "samples.png"):
        with Image.open(out / png) as im:
            assert im.format == "PNG"
        assert f"]({png})" in md
    with Image.open(out / "samples.png") as im:     # label, Adam, TRAdam, photo × 2 frames
        assert im.size == (4 * 128, 16 + 2 * 128)
        assert im.convert("RGB").getpixel((64, 16 + 64)) == (255, 0, 0)
        assert im.convert("RGB").getpixel((3 * 128 + 64, 16 + 64)) == (0, 0, 255)
    # the exact commands
    assert "python scripts/reproduce.py --scale synthcity --jobs 2" in md and "commit abc1234" in md
    sh = (out / "commands.sh").read_text()
    assert sh.count("python train.py") == len(grid.cells)

    # results.json: the same numbers, by cell, group, segmenter and metric
    data = json.loads((out / "results.json").read_text())
    lab = SEG.split("/")[-1]
    iou = data["main"][lab]["mean_iou"]["tradam_minus_adam"]
    assert (iou["mean"], iou["n"], iou["per_seed"]) == (pytest.approx(0.04 / 3), 3,
                                                        pytest.approx({"0": 0.01, "1": 0.02, "2": 0.01}))
    mde = report.stats.detectable(report.stats.summarize([0.01, 0.02, 0.01]).std, 3)
    ci = f"[{iou['ci_low']:+.4f}, {iou['ci_high']:+.4f}], MDE {mde:.3f}"
    assert f"| Class IOU | {iou['mean']:+.4f} | {ci} | 3 |" in md
    assert "What the judge can resolve: " in md and "scores the real photos themselves at 0.950 / 0.900 / 0.850" in md
    assert data["ground_truth"] == {lab: {"pixel_acc": 0.95, "class_acc": 0.9, "mean_iou": 0.85}}
    assert data["cells"]["adam-bs1-seed1"]["scores"][lab]["pixel_acc"] == 0.70
    lam0 = data["groups"]["decomposition"]["variants"]["tradam-S10-l0-bs1"][lab]["pixel_acc"]
    assert lam0["vs_reference"]["mean"] == pytest.approx(0.01) and lam0["vs_reference"]["ci_low"] is None
    assert (data["cells_finished"], data["cells_total"], data["verdict"]["won"]) == (7, 10, 2)


def test_report_of_an_empty_run_says_so(tmp_path):
    paths = commands.RunPaths.of(SYNTHCITY, str(tmp_path))
    grid = cells.expand(["main"], (0,), (0,))
    inputs = _inputs(paths, grid)
    inputs.ground_truth = None
    report.write(inputs, str(tmp_path / "r"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert "No cell has finished yet." in md and "adam-bs1-seed0: not run yet" in md


def test_verdicts_say_who_won_by_how_much_against_the_seed_spread():
    from scripts.repro import stats

    def verdict(a, b):
        numbers = {"adam": stats.summarize(a.values()), "tradam": stats.summarize(b.values()),
                   "tradam_minus_adam": stats.paired(a, b)}
        return report.verdict(numbers, "m")
    low, high = {0: 0.60, 1: 0.70, 2: 0.65}, {0: 0.62, 1: 0.725, 2: 0.665}
    assert verdict(low, high).startswith("m: TRAdam beat Adam: +0.0200 (95% CI [")
    assert "the std over seeds is up to 0.0527" in verdict(low, high)
    assert verdict(high, low).startswith("m: TRAdam was worse than Adam: -0.0200")
    flat = verdict({0: 0.5, 1: 0.5, 2: 0.5}, {0: 0.52, 1: 0.47, 2: 0.51})
    mde = stats.detectable(stats.summarize([0.02, -0.03, 0.01]).std, 3)
    assert f"no difference detectable with 3 seeds (effects under ~{mde:.3f} cannot be excluded)" in flat
    assert verdict({0: 1.0}, {0: 2.0}) == ("m: TRAdam − Adam = +1.0000 on a single seed; no interval, so no "
                                           "conclusion.")


def _result(variant, seed, values, curve=None):
    return collect.CellResult(cells.Cell(variant, seed), ["main"], _metrics(values),
                              {e: _metrics(v) for e, v in (curve or {}).items()}, [])


def test_across_budgets_on_synthetic_results(tmp_path):
    """Short budget: TRAdam − Adam IoU −0.08, −0.06, −0.10 (seeds 0-2); long: −0.01, +0.01, 0.00."""
    from scripts.repro import budgets, stats
    from scripts.repro.scales import SYNTHCITY_LONG
    short_gaps, long_gaps = {0: -0.08, 1: -0.06, 2: -0.10}, {0: -0.01, 1: 0.01, 2: 0.0}
    adam = {0: 0.50, 1: 0.55, 2: 0.52}

    def results(gaps, curve=False):
        out = []
        for s in (0, 1, 2):
            a, t = (0.9, 0.6, adam[s]), (0.9, 0.6, adam[s] + gaps[s])
            out.append(_result(cells.ADAM, s, a, {10: a, 60: a} if curve else None))
            out.append(_result(cells.TRADAM, s, t, {10: (0.9, 0.6, adam[s] - 0.05), 60: t} if curve else None))
        return out
    short = budgets.of_results(SYNTHCITY, results(short_gaps), None, "fabricated")
    g = short.final["synthcity_segmenter"]["mean_iou"]
    assert g.mean == pytest.approx(-0.08) and g.per_seed == pytest.approx(short_gaps) and g.excludes_zero
    assert short.steps == 2400 and short.name == "2,400 steps (synthcity)"

    # the change: paired by seed (the budgets share seeds and their first steps)
    moved = stats.paired(short_gaps, long_gaps)
    assert moved.mean == pytest.approx(0.08) and moved.excludes_zero

    # the long scale's report: its own gap over training and the short budget beside it
    paths = commands.RunPaths.of(SYNTHCITY_LONG, str(tmp_path))
    grid = cells.expand(["main"], (0, 1, 2), (0,))
    inputs = _inputs(paths, grid)
    inputs.scale, inputs.results = SYNTHCITY_LONG, results(long_gaps, curve=True)
    inputs.status = {c.name: "done" for c in grid.cells}
    inputs.other_budgets = [("synthcity", short)]
    report.write(inputs, str(tmp_path / "r"))
    md = (tmp_path / "r" / "report.md").read_text()
    table = md.split("*TRAdam − Adam across budgets, synthcity_segmenter*")[1]
    assert "| Metric | 2,400 steps (synthcity) | 24,000 steps (synthcity_long) | Change (long − short), paired " \
        "[95% CI] |" in table
    assert "their first 1,200 steps" in md and "ends at lr₀/4 vs lr₀/31" in md and "λ_eff ends at 0.4 vs 3.1" in md
    lo, hi = (-0.08 - 4.302652729911275 * 0.02 / math.sqrt(3), -0.08 + 4.302652729911275 * 0.02 / math.sqrt(3))
    mde = stats.detectable(0.01, 3)             # the long gaps' paired SD is 0.01
    assert (f"| Class IOU | -0.0800 [{lo:+.4f}, {hi:+.4f}] (n=3) | +0.0000 [-0.0248, +0.0248] (n=3, MDE {mde:.3f}) | "
            f"+0.0800 [{moved.ci_low:+.4f}, {moved.ci_high:+.4f}] (n=3) |") in table
    assert "| Per-pixel acc. | +0.0000 [+0.0000, +0.0000] (n=3) | +0.0000 [+0.0000, +0.0000] (n=3) | +0.0000 " \
        "[+0.0000, +0.0000] (n=3) |" in table                # no spread at all: a zero-width interval
    assert "Class IOU: TRAdam − Adam was -0.0800 [" in md and "; the gap moved by +0.0800 (paired 95% CI" in md
    assert "Family-wise: " in table and "would by chance" in table
    change = json.loads((tmp_path / "r" / "results.json").read_text())["across_budgets"]["synthcity"]
    assert change["segmenters"]["synthcity_segmenter"]["metrics"]["mean_iou"]["change"]["mean"] == pytest.approx(0.08)
    # over training: epoch 10's gap is −0.05 on every seed, the last is the final one
    assert "| 10 | 4,000 | constant | +0.0000 [+0.0000, +0.0000] (n=3) | +0.0000 [+0.0000, +0.0000] (n=3) | " \
           "-0.0500 [-0.0500, -0.0500] (n=3) |" in md
    assert "| 60 | 24,000 | decay |" in md
    assert (tmp_path / "r" / "gap_over_training_0.png").exists()
    # the Answer comes first, then the budgets, then the gap over training
    assert md.index("## Answer") < md.index("## Across budgets") < md.index("## TRAdam − Adam over training")


def test_across_budgets_says_whether_one_judge_scored_both(tmp_path):
    """The judge's weights: from the stored cells' fingerprints, else from the real photos' scores."""
    from scripts.repro import budgets
    from scripts.repro.scales import SYNTHCITY_LONG
    label = "synthcity_segmenter"

    def results(fingerprints):
        out = []
        for s, fp in enumerate(fingerprints):
            for variant, v in ((cells.ADAM, (0.9, 0.6, 0.5)), (cells.TRADAM, (0.9, 0.6, 0.5 + 0.01 * s))):
                r = _result(variant, s, v)
                r.record = None if fp is None else {"segmenters": {label: fp}}
                out.append(r)
        out.append(collect.CellResult(cells.Cell(cells.ADAM, 9), ["main"], None, {}, []))  # unfinished
        return out

    gt = {SEG: {"pixel_acc": 0.95, "class_acc": 0.9, "mean_iou": 0.75}}
    a = budgets.of_results(SYNTHCITY, results(["aaa", "aaa"]), gt, "x")
    assert a.judges == {label: frozenset({"aaa"})}
    b = budgets.of_results(SYNTHCITY_LONG, results(["aaa", "aaa"]), gt, "x")
    c = budgets.of_results(SYNTHCITY_LONG, results(["bbb", "bbb"]), gt, "x")
    mixed = budgets.of_results(SYNTHCITY_LONG, results(["aaa", "bbb"]), gt, "x")
    assert budgets.same_judge(a, b, label) == (True, "weights")
    assert budgets.same_judge(a, c, label) == (False, "weights")   # even though the real photos agree
    assert budgets.same_judge(a, mixed, label) == (False, "weights")  # two judges inside one budget
    # a cell read from a work dir has no fingerprint: the real photos decide
    part = budgets.of_results(SYNTHCITY_LONG, results(["aaa", None]), gt, "x")
    assert part.judges == {} and budgets.same_judge(a, part, label) == (True, "real photos")
    other_gt = {SEG: {"pixel_acc": 0.953, "class_acc": 0.865, "mean_iou": 0.709}}
    retrained = budgets.of_results(SYNTHCITY_LONG, results([None, None]), other_gt, "x")
    assert budgets.same_judge(a, retrained, label) == (False, "real photos")
    assert budgets.same_judge(a, budgets.of_results(SYNTHCITY_LONG, results([None, None]), None, "x"),
                              label) == (None, None)

    assert report.judge_sentence(a, b, label) == f"Both budgets were judged by the same weights of {label} " \
        "(SHA-256 aaa…)."
    assert "different weights of synthcity_segmenter (SHA-256 aaa… at 2,400 steps (synthcity); bbb… at " \
        "24,000 steps (synthcity_long))" in report.judge_sentence(a, c, label)
    assert "was trained again between them" in report.judge_sentence(a, retrained, label)

    # in the long report, above the table
    paths = commands.RunPaths.of(SYNTHCITY_LONG, str(tmp_path))
    grid = cells.expand(["main"], (0, 1), (0,))
    inputs = _inputs(paths, grid)
    inputs.scale, inputs.results, inputs.ground_truth = SYNTHCITY_LONG, results(["bbb", "bbb"]), gt
    inputs.status = {x.name: "done" for x in grid.cells}
    inputs.other_budgets = [("synthcity", retrained)]
    report.write(inputs, str(tmp_path / "r"))
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.index("was trained again between them") < md.index("*TRAdam − Adam across budgets")
    assert "| Real photos, under each budget's judge | 0.953 / 0.865 / 0.709 | 0.950 / 0.900 / 0.750 | – |" in md


@pytest.mark.slow
def test_samples_are_kept_or_omitted_when_the_images_are_gone(tmp_path, monkeypatch):
    import shutil

    from scripts.repro import plots, store
    for name in ("loss_plot", "curve_plot", "gap_plot"):      # drawn by the first test; here only the samples
        monkeypatch.setattr(plots, name, lambda *args, **kwargs: False)
    paths, grid = _fake_run(tmp_path)
    st = store.Store(str(tmp_path / "cells"))
    for c in grid.cells_of("main")[:2]:                 # seed 0's pair, as the run stores them
        stages = commands.cell_stages(c, SYNTHCITY, paths, "cpu", curve=True)
        st.write(c.name, store.cell_files(c, SYNTHCITY, paths, stages, {}))

    def write():
        inputs = _inputs(paths, grid)
        inputs.results = collect.collect(grid, paths, SYNTHCITY.curve_epochs(), SYNTHCITY.total_epochs, st)
        inputs.store_dir = st.root
        report.write(inputs, str(tmp_path / "report"))
        return (tmp_path / "report" / "report.md").read_text()
    assert "![sample images](samples.png)" in write()
    for c in grid.cells_of("main")[:2]:
        shutil.rmtree(paths.epoch_dir(c, "latest"))
    md = write()                                           # the same stored cells: the grid drawn earlier
    assert "(drawn when adam-bs1-seed0, tradam-S10-l0.1-bs1-seed0 ran" in md and "](samples.png)" in md
    meta = json.loads((tmp_path / "report" / "samples.json").read_text())
    meta["cells"]["adam-bs1-seed0"] = "another time"        # that cell was stored again since
    (tmp_path / "report" / "samples.json").write_text(json.dumps(meta))
    md = write()
    assert "Sample images omitted: the synthesized images of adam-bs1-seed0, tradam-S10-l0.1-bs1-seed0" in md
    assert "](samples.png)" not in md
