"""Reproduce the paper's pix2pix result — Adam vs TRAdam over seeds, with ablations — and report it.

    python scripts/reproduce.py --scale smoke                 # minutes, CPU: the pipeline end to end
    python scripts/reproduce.py --scale synthcity --jobs 2    # the grid on SynthCity 128x128, ~1 h CPU
    python scripts/reproduce.py --scale synthcity_long --jobs 2   # 10x the steps, 2-5 h CPU
    python scripts/reproduce.py --scale cityscapes            # the paper's setting, GPU, days

Each cell (a configuration and a seed) runs train.py → test.py → evaluate/fcn_score.py as separate
processes; `--jobs N` runs N cells at once. Finished stages are skipped, so re-running the same
command continues an interrupted grid and rewrites the report (report.md, report.html, PNGs,
commands.sh) under --report_dir. With a results store (--results_store, or the scale's own:
synthcity_long keeps docs/results/synthcity_long/cells/) each finished cell's small results are
also written there, a stored cell is never run again, and --report_only rebuilds the report from
the store alone. The grid and the scales are described in scripts/repro/.
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
from scripts.repro import budgets, cells, collect, commands, report, runner  # noqa: E402
from scripts.repro.scales import SCALES  # noqa: E402
from scripts.repro.store import (Store, cell_files, cell_record, recorded_fingerprints,  # noqa: E402
                                 segmenter_fingerprints, segmenter_label)


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
    p.add_argument("--report_dir", help="default: the scale's (synthcity_long: docs/results/synthcity_long), "
                                        "else results/repro_<scale>/report under --work_dir")
    p.add_argument("--results_store",
                   help="folder (kept in git) for each finished cell's small results: scores per scored "
                        "epoch, loss summary, commands, code version; stored cells are not run again and "
                        "--report_only reads them. Default: the scale's (synthcity_long: "
                        "docs/results/synthcity_long/cells), else none; 'none' turns it off")
    p.add_argument("--overwrite_report", action="store_true",
                   help="rewrite a report in --report_dir even if it counts more finished cells than "
                        "this work dir and store hold (it would lose them)")
    p.add_argument("--git_commit", action="store_true",
                   help="commit the store and the report (git commit --only those paths) after each cell "
                        "finishes, so an interrupted grid's results are in the repository")
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


def curve_cell_names(scale, grid):
    """The cells scored at every saved epoch: those of the scale's curve groups, in this grid or in
    the scale's own. A cell's stages must not depend on which groups a run selects: the main grid's
    adam-bs1-seed0 is the same run when `--groups decomposition` reuses it as its baseline."""
    own = cells.expand(scale.groups, scale.seeds, scale.ablation_seeds, scale.sweep_seeds or scale.ablation_seeds)
    return {c.name for g in scale.curve_groups for c in grid.cells_of(g) + own.cells_of(g)}


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


def cell_status(grid, paths, unsupported, outcomes, store=None):
    status = {}
    for c in grid.cells:
        if collect.is_done(c, paths, store):
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
        self.report_dir = os.path.abspath(args.report_dir or (
            os.path.join(commands.REPO, scale.report_dir) if scale.report_dir
            else os.path.join(self.paths.results_dir, "report")))
        store = args.results_store if args.results_store is not None else (
            os.path.join(commands.REPO, scale.results_store) if scale.results_store else "none")
        self.store = None if store.lower() in ("none", "") else Store(store)
        self.git_commit = args.git_commit
        self.grid, self.to_run = build_grid(args, scale)
        curve_cells = curve_cell_names(scale, self.grid)
        gt_cell = self.grid.cells[0].name        # its last scoring also scores the real photos
        self.stages = {c.name: commands.cell_stages(c, scale, self.paths, self.device, curve=c.name in curve_cells,
                                                    ground_truth=c.name == gt_cell) for c in self.grid.cells}
        self.prepare = commands.prepare_stages(scale, self.paths)
        self.jobs = args.jobs or scale.jobs
        self.threads = args.threads or max(1, (os.cpu_count() or 1) // self.jobs)
        # the command that runs the grid and writes this report (--report_only only rewrites it)
        self.invocation = "python scripts/reproduce.py " + " ".join(
            shlex.quote(a) for a in argv if a not in ("--report_only", "--overwrite_report"))
        self.unsupported = {}         # cell name -> flags the scripts lack
        self.outcomes = {}            # cell name -> runner.Outcome of this invocation
        self.args = args
        self.started_code_version = None    # set when the grid starts running
        self.fingerprints = None            # the segmenters' weights, set by check_judges

    def excluded_from_code_version(self):
        """Folders the grid itself writes into: rewriting them is not a change of the code."""
        return [self.report_dir] + ([self.store.root] if self.store else [])


def _git(*args):
    import subprocess

    return subprocess.run(["git", *args], cwd=commands.REPO, capture_output=True, text=True)


def code_version(*excluded_dirs):
    """The repository's commit (and whether files differ from it), for the report. The folders
    the grid writes (the report's, the store) do not count: rewriting a committed report is not
    a change of the code."""
    commit = _git("rev-parse", "--short", "HEAD").stdout.strip()
    if not commit:
        return "unknown (not a git checkout)"
    exclude = [":(exclude)" + os.path.relpath(os.path.abspath(x), commands.REPO) for x in excluded_dirs
               if x and os.path.abspath(x).startswith(os.path.abspath(commands.REPO) + os.sep)]
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *exclude).stdout.strip()
    return commit + (" with uncommitted changes" if dirty else "")


def other_scale_results(plan):
    """For budgets.load: another scale's main-grid results from this work dir and its store."""
    def results_of(scale):
        paths = commands.RunPaths.of(scale, plan.paths.work_dir)
        grid = cells.expand(["main"], scale.seeds, scale.ablation_seeds)
        store = Store(os.path.join(commands.REPO, scale.results_store)) if scale.results_store else None
        where = f"its cells ({os.path.relpath(paths.results_dir, paths.work_dir)} in the work dir" + (
            f", {scale.results_store} in the repository)" if store else ")")
        return (collect.collect(grid, paths, scale.curve_epochs(), scale.total_epochs, store),
                collect.ground_truth(grid, paths, store), where)
    return results_of


def other_budgets(plan):
    out = []
    for name in plan.scale.compare_with:
        other = SCALES[name]
        report_path = os.path.join(commands.REPO, other.committed_report) if other.committed_report else None
        out.append((name, budgets.load(other, other_scale_results(plan), report_path)))
    return out


def write_report(plan):
    paths, scale = plan.paths, plan.scale
    inputs = report.ReportInputs(
        scale=scale, grid=plan.grid,
        results=collect.collect(plan.grid, paths, scale.curve_epochs(), scale.total_epochs, plan.store),
        ground_truth=collect.ground_truth(plan.grid, paths, plan.store),
        status=cell_status(plan.grid, paths, plan.unsupported, plan.outcomes, plan.store),
        invocation=plan.invocation, code_version=code_version(*plan.excluded_from_code_version()),
        prepare_commands=[commands.shell_line(s.argv) for s in plan.prepare],
        cell_commands={n: [commands.shell_line(s.argv) for s in st] for n, st in plan.stages.items()},
        paths=paths, store_dir=plan.store.root if plan.store else None,
        other_budgets=other_budgets(plan))
    report.write(inputs, plan.report_dir)


# --- the results store ----------------------------------------------------------------------

def check_store(plan):
    """Refuse a store whose cells were made with other settings than this grid's."""
    if plan.store is None:
        return
    for c in plan.grid.cells:
        if plan.store.has(c.name):
            plan.store.check(c.name, cell_record(c, plan.scale, plan.paths, plan.stages[c.name]))


def check_judges(plan):
    """Hash the segmenters' weights as they are now, and refuse them if the store's cells were
    judged by others (one report, one judge)."""
    plan.fingerprints = segmenter_fingerprints(plan.scale, plan.paths)
    if plan.store:
        locations = {segmenter_label(seg): seg for seg in commands.segmenter_paths(plan.scale, plan.paths)}
        plan.store.check_judges(plan.fingerprints, locations)


def judged_by(plan, cell):
    """{segmenter label: weights fingerprint} that scored the cell: what its last scores file
    recorded, else (a file from before fcn_score recorded it) the segmenters as they are now."""
    score = next((s for s in reversed(plan.stages[cell.name]) if s.name.startswith("score_")), None)
    return {**plan.fingerprints, **(recorded_fingerprints(score.done_path) if score else {})}


def store_cell(plan, cell, outcome=None):
    """Write a finished cell's small results into the store (`outcome`: how this invocation ran it;
    None for a cell that finished in the work dir before); run_grid's check_judges has hashed the
    segmenters."""
    if outcome is not None:
        extra = {"code_version": plan.started_code_version,
                 "code_version_at_finish": code_version(*plan.excluded_from_code_version()),
                 "jobs": plan.jobs, "threads": plan.threads,
                 "cpus": os.cpu_count(), "stored_from": "the run that finished it"}
        if outcome.whole:
            extra["wall_seconds"] = round(outcome.seconds, 1)
        else:                       # it continued an earlier attempt: its time is not the cell's
            extra.update(wall_seconds=None, wall_seconds_of_last_part=round(outcome.seconds, 1))
    else:
        extra = {"code_version": "unknown: it finished in the work dir before it was stored",
                 "wall_seconds": None, "stored_from": "the work dir, after it finished"}
    extra.update(device=plan.device, segmenters=judged_by(plan, cell))
    plan.store.write(cell.name, cell_files(cell, plan.scale, plan.paths, plan.stages[cell.name], extra))


def commit_results(plan, message):
    """git add + git commit --only the store and the report folder (other staged work is left
    alone); a busy index is retried, a failure is a warning (the files stay on disk)."""
    import time

    paths = [os.path.relpath(p, commands.REPO) for p in plan.excluded_from_code_version()
             if os.path.abspath(p).startswith(commands.REPO + os.sep) and os.path.exists(p)]
    if not paths:
        return False
    for attempt in range(10):
        add = _git("add", "--", *paths)
        proc = _git("commit", "-q", "-m", message, "--only", "--", *paths) if add.returncode == 0 else add
        err = (proc.stderr or proc.stdout).strip()
        if proc.returncode == 0 or "nothing to commit" in err or "no changes added" in err:
            return proc.returncode == 0
        if "index.lock" not in err:
            break
        time.sleep(1 + attempt)
    tqdm.write(f"warning: could not commit {', '.join(paths)}: {err.splitlines()[-1] if err else '?'}")
    return False


def finished_in_report(report_dir):
    """The 'Cells finished: N of M' count of an existing report.md there, or None."""
    import re

    try:
        with open(os.path.join(report_dir, "report.md"), encoding="utf-8") as f:
            m = re.search(r"Cells finished: (\d+) of (\d+)", f.read())
    except OSError:
        return None
    return int(m.group(1)) if m else None


def guard_report(plan):
    """Refuse to overwrite a report that counts more finished cells than can be found now (e.g. the
    committed SynthCity report, whose cells are not in the repository, from a fresh clone)."""
    before = finished_in_report(plan.report_dir)
    now = sum(collect.is_done(c, plan.paths, plan.store) for c in plan.grid.cells)
    if before is not None and before > now and not plan.args.overwrite_report:
        raise UserError(f"{os.path.join(plan.report_dir, 'report.md')} counts {before} finished cells but "
                        f"only {now} are in this work dir" + (" and store" if plan.store else "") +
                        ": rewriting it would lose them; pass --report_dir elsewhere, or "
                        "--overwrite_report to rewrite it anyway")


def check_dataset(plan):
    """A scale without a generator (Cityscapes) needs its dataset prepared, labels included."""
    layout = PreparedLayout(plan.paths.dataroot)
    if plan.scale.synthcity is None and not (layout.is_prepared() and layout.has_labels(commands.PHASE)):
        raise UserError(f"{plan.paths.dataroot} is not a prepared dataset with labels/{commands.PHASE}/: "
                        "prepare Cityscapes with data/prepare_cityscapes.py (official gtFine and "
                        "leftImg8bit), or pass --dataroot")


def run_grid(plan):
    """Store what finished earlier, prepare once, then run the selected cells that are neither
    stored nor finished `plan.jobs` at a time, storing each and rewriting the report as it
    finishes."""
    plan.started_code_version = code_version(*plan.excluded_from_code_version())
    check_judges(plan)
    if plan.store:
        for c in plan.grid.cells:
            if not plan.store.has(c.name) and runner.is_done(plan.stages[c.name]):
                plan.store.check_judges(judged_by(plan, c), where=f"{c.name}'s scores in the work dir")
                store_cell(plan, c)
    todo = {c.name: plan.stages[c.name] for c in plan.to_run.cells
            if not collect.is_done(c, plan.paths, plan.store) and not runner.is_done(plan.stages[c.name])}
    if not todo:
        print(f"{plan.scale.name}: every selected cell has finished"
              + (f" (results in {plan.store.root})" if plan.store else ""), flush=True)
        return
    check_dataset(plan)
    env = runner.subprocess_env(plan.threads)
    plan.unsupported = unsupported_cells(todo, env)
    for name, flags in plan.unsupported.items():
        print(f"skipping {name}: needs {' '.join(flags)}, which the scripts do not define yet",
              file=sys.stderr)
    runnable = [c for c in plan.to_run.cells if c.name in todo and c.name not in plan.unsupported]
    for c in runnable:
        runner.check_or_write_manifest(os.path.join(plan.paths.cell_results(c), "cell.json"),
                                       runner.manifest(c, plan.stages[c.name]))
    print(f"preparing {plan.scale.name}: dataset and segmenter", flush=True)
    prep = runner.run_chain("prepare", plan.prepare, os.path.join(plan.paths.results_dir, "logs"),
                            runner.subprocess_env(os.cpu_count() or 1))     # alone: every core
    if prep.status == "failed":
        raise UserError(f"preparation failed: {prep.message}")
    check_judges(plan)                  # the segmenter may have been made just now: hash it afresh
    chains = [(c.name, plan.stages[c.name], os.path.join(plan.paths.cell_results(c), "logs"))
              for c in runnable]
    bar = tqdm(total=len(chains), desc=f"{plan.scale.name} cells ({plan.jobs} at a time)", unit="cell")

    by_name = {c.name: c for c in runnable}

    def on_done(outcome):
        plan.outcomes[outcome.name] = outcome
        bar.update(1)
        bar.set_postfix_str(f"{outcome.name}: {outcome.status}")
        if outcome.status == "failed":
            tqdm.write(f"FAILED {outcome.name}: {outcome.message}")
        if outcome.status == "done":
            if plan.store:
                store_cell(plan, by_name[outcome.name], outcome)
            write_report(plan)
            if plan.git_commit:
                done = sum(collect.is_done(c, plan.paths, plan.store) for c in plan.grid.cells)
                commit_results(plan, f"reproduce.py --scale {plan.scale.name}: {outcome.name} finished "
                                     f"({done} of {len(plan.grid.cells)} cells)")

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
    check_store(plan)
    guard_report(plan)
    if not args.report_only:
        run_grid(plan)
    write_report(plan)
    if plan.git_commit and not args.report_only:
        commit_results(plan, f"reproduce.py --scale {plan.scale.name}: report")
    print(f"report: {os.path.join(plan.report_dir, 'report.md')}")
    failed = [o.name for o in plan.outcomes.values() if o.status == "failed"]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
