"""Reproduce the paper's pix2pix result — Adam vs TRAdam over seeds, with ablations — and report it.

    python scripts/reproduce.py --scale smoke                 # minutes, CPU: the pipeline end to end
    python scripts/reproduce.py --scale synthcity --jobs 2    # the grid on SynthCity 128x128, ~1 h CPU
    python scripts/reproduce.py --scale cityscapes            # the paper's setting, GPU, days

Each cell (a configuration and a seed) runs train.py → test.py → evaluate/fcn_score.py as separate
processes; `--jobs N` runs N cells at once. Finished stages are skipped, so re-running the same
command continues an interrupted grid and rewrites the report (report.md, report.html, PNGs,
commands.sh) under --report_dir. The grid and the scales are described in scripts/repro/.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import concurrent.futures  # noqa: E402
import shlex  # noqa: E402

from tqdm import tqdm  # noqa: E402

from data.layout import PreparedLayout  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402
from scripts.repro import cells, collect, commands, report, runner  # noqa: E402
from scripts.repro.scales import SCALES  # noqa: E402


def _ints(text):
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text):
    return tuple(x.strip() for x in text.split(",") if x.strip())


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=sorted(SCALES), default="smoke")
    p.add_argument("--work_dir", default=commands.REPO,
                   help="where datasets/, checkpoints/ and results/ go (default: the repository)")
    p.add_argument("--dataroot", help="use this prepared dataset instead of the scale's own")
    p.add_argument("--groups", type=_names,
                   help=f"comma-separated groups of the grid, from {', '.join(cells.GROUPS)} "
                        "(default: the scale's)")
    p.add_argument("--seeds", type=_ints, help="seeds of the main grid (default: the scale's)")
    p.add_argument("--ablation_seeds", type=_ints, help="seeds of the ablations (default: the scale's)")
    p.add_argument("--sweep_seeds", type=_ints,
                   help="seeds of the λ and S sweeps (default: the scale's, else --ablation_seeds)")
    p.add_argument("--cells", "--only", dest="cells", type=_names,
                   help="run only these cells (names as --list prints them); the report still "
                        "covers the whole grid")
    p.add_argument("--jobs", type=int, help="cells run in parallel (default: the scale's)")
    p.add_argument("--threads", type=int, help="CPU threads per cell (default: cores / jobs)")
    p.add_argument("--device", help="auto | cpu | cuda[:N] (default: the scale's)")
    p.add_argument("--report_dir", help="default: results/repro_<scale>/report under --work_dir")
    p.add_argument("--list", action="store_true", help="print the grid's cells and exit")
    p.add_argument("--dry_run", action="store_true", help="print the commands and exit")
    p.add_argument("--report_only", action="store_true", help="write the report from what exists")
    return p.parse_args(argv)


def build_grid(args, scale):
    groups = args.groups or scale.groups
    try:
        ablation = args.ablation_seeds or scale.ablation_seeds
        grid = cells.expand(groups, args.seeds or scale.seeds, ablation,
                            args.sweep_seeds or (scale.sweep_seeds if not args.ablation_seeds else ()) or ablation)
        return grid, cells.select(grid, args.cells)
    except ValueError as err:
        raise UserError(str(err)) from None


def unsupported_cells(stage_map, env):
    """cell name -> the flags its commands use that the scripts do not define (e.g. an ablation
    whose optimizer option the trainer lacks). Each script's --help runs once, in parallel."""
    scripts = sorted({s.argv[:2] for stages in stage_map.values() for s in stages})
    if not scripts:
        return {}
    with concurrent.futures.ThreadPoolExecutor(len(scripts)) as pool:
        known = dict(zip(scripts, pool.map(lambda key: runner.known_flags(key, env), scripts)))
    out = {}
    for name, stages in stage_map.items():
        missing = sorted({f for s in stages for f in runner.missing_flags(s.argv[2:], known[s.argv[:2]])})
        if missing:
            out[name] = missing
    return out


def cell_status(grid, paths, unsupported, outcomes):
    status = {}
    for c in grid.cells:
        if os.path.exists(paths.scores_path(c)):
            status[c.name] = "done"
        elif c.name in unsupported:
            status[c.name] = "unsupported: the trainer lacks " + " ".join(unsupported[c.name])
        elif c.name in outcomes and outcomes[c.name].status == "failed":
            status[c.name] = "failed: " + outcomes[c.name].message
        else:
            status[c.name] = "not run yet"
    return status


class Plan:
    """Everything one invocation decided: scale, grid, each cell's stages, where things go."""

    def __init__(self, args, argv):
        self.scale = scale = SCALES[args.scale]
        self.device = args.device or scale.device
        self.paths = commands.RunPaths.of(scale, args.work_dir, args.dataroot)
        self.report_dir = os.path.abspath(args.report_dir or os.path.join(self.paths.results_dir, "report"))
        self.grid, self.to_run = build_grid(args, scale)
        curve_cells = {c.name for g in scale.curve_groups for c in self.grid.cells_of(g)}
        gt_cell = self.grid.cells[0].name        # its last scoring also scores the real photos
        self.stages = {c.name: commands.cell_stages(c, scale, self.paths, self.device, curve=c.name in curve_cells,
                                                    ground_truth=c.name == gt_cell) for c in self.grid.cells}
        self.prepare = commands.prepare_stages(scale, self.paths)
        self.jobs = args.jobs or scale.jobs
        self.threads = args.threads or max(1, (os.cpu_count() or 1) // self.jobs)
        # the command that runs the grid and writes this report (--report_only only rewrites it)
        self.invocation = "python scripts/reproduce.py " + " ".join(
            shlex.quote(a) for a in argv if a != "--report_only")
        self.unsupported = {}         # cell name -> flags the scripts lack
        self.outcomes = {}            # cell name -> runner.Outcome of this invocation


def code_version(report_dir=None):
    """The repository's commit (and whether files differ from it), for the report. The report's
    own folder does not count: rewriting a committed report is not a change of the code."""
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=commands.REPO, capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown (not a git checkout)"
    exclude = []
    if report_dir and os.path.abspath(report_dir).startswith(os.path.abspath(commands.REPO) + os.sep):
        exclude = [":(exclude)" + os.path.relpath(os.path.abspath(report_dir), commands.REPO)]
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", *exclude)
    return commit + (" with uncommitted changes" if dirty else "")


def write_report(plan):
    paths, scale = plan.paths, plan.scale
    inputs = report.ReportInputs(
        scale=scale, grid=plan.grid,
        results=collect.collect(plan.grid, paths, scale.curve_epochs(), scale.total_epochs),
        ground_truth=collect.ground_truth(plan.grid, paths),
        status=cell_status(plan.grid, paths, plan.unsupported, plan.outcomes),
        invocation=plan.invocation, code_version=code_version(plan.report_dir),
        prepare_commands=[commands.shell_line(s.argv) for s in plan.prepare],
        cell_commands={n: [commands.shell_line(s.argv) for s in st] for n, st in plan.stages.items()},
        paths=paths)
    report.write(inputs, plan.report_dir)


def check_dataset(plan):
    """A scale without a generator (Cityscapes) needs its dataset prepared, labels included."""
    layout = PreparedLayout(plan.paths.dataroot)
    if plan.scale.synthcity is None and not (layout.is_prepared() and layout.has_labels(commands.PHASE)):
        raise UserError(f"{plan.paths.dataroot} is not a prepared dataset with labels/{commands.PHASE}/: "
                        "prepare Cityscapes with data/prepare_cityscapes.py (official gtFine and "
                        "leftImg8bit), or pass --dataroot")


def run_grid(plan):
    """Prepare once, then run the selected cells `plan.jobs` at a time, rewriting the report as
    each cell finishes."""
    check_dataset(plan)
    env = runner.subprocess_env(plan.threads)
    todo = {c.name: plan.stages[c.name] for c in plan.to_run.cells if not runner.is_done(plan.stages[c.name])}
    plan.unsupported = unsupported_cells(todo, env)
    for name, flags in plan.unsupported.items():
        print(f"skipping {name}: needs {' '.join(flags)}, which the scripts do not define yet",
              file=sys.stderr)
    runnable = [c for c in plan.to_run.cells if c.name not in plan.unsupported]
    for c in runnable:
        runner.check_or_write_manifest(os.path.join(plan.paths.cell_results(c), "cell.json"),
                                       runner.manifest(c, plan.stages[c.name]))
    print(f"preparing {plan.scale.name}: dataset and segmenter", flush=True)
    prep = runner.run_chain("prepare", plan.prepare, os.path.join(plan.paths.results_dir, "logs"),
                            runner.subprocess_env(os.cpu_count() or 1))     # alone: every core
    if prep.status == "failed":
        raise UserError(f"preparation failed: {prep.message}")
    chains = [(c.name, plan.stages[c.name], os.path.join(plan.paths.cell_results(c), "logs"))
              for c in runnable]
    bar = tqdm(total=len(chains), desc=f"{plan.scale.name} cells ({plan.jobs} at a time)", unit="cell")

    def on_done(outcome):
        plan.outcomes[outcome.name] = outcome
        bar.update(1)
        bar.set_postfix_str(f"{outcome.name}: {outcome.status}")
        if outcome.status == "failed":
            tqdm.write(f"FAILED {outcome.name}: {outcome.message}")
        if outcome.status == "done":
            write_report(plan)

    runner.run_cells(chains, plan.jobs, plan.threads, progress=on_done)
    bar.close()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    plan = Plan(args, argv)
    if args.list:
        for c in plan.grid.cells:
            print(f"{c.name:45s} {','.join(plan.grid.groups[c.name]):30s} {c.variant.label}")
        return 0
    if args.dry_run:
        for s in plan.prepare:
            print(commands.shell_line(s.argv))
        for c in plan.to_run.cells:
            print(f"# {c.name}")
            for s in plan.stages[c.name]:
                print(commands.shell_line(s.argv))
        return 0
    if not args.report_only:
        run_grid(plan)
    write_report(plan)
    print(f"report: {os.path.join(plan.report_dir, 'report.md')}")
    failed = [o.name for o in plan.outcomes.values() if o.status == "failed"]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
