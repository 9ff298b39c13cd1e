"""Reproduce the paper's pix2pix result — Adam vs TRAdam over seeds, with ablations — and report it.

    python scripts/reproduce.py --scale smoke                     # a minute, CPU: the pipeline end to end
    python scripts/reproduce.py --scale synthcity --jobs 2        # the grid on SynthCity 128x128, ~1 h CPU
    python scripts/reproduce.py --scale synthcity_long --jobs 2   # 10x the steps, ~4 h CPU
    python scripts/reproduce.py --scale cityscapes                # the paper's setting, GPU, days

docs/reproduce.md is the manual; scripts/repro/ holds the parts.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402

from tqdm import tqdm  # noqa: E402

from data.layout import PreparedLayout  # noqa: E402
from evaluate import digests  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402
from pix2pix_tr.run import atomic  # noqa: E402
from scripts.repro import budgets, cells, collect, commands, report, store  # noqa: E402
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
    add = p.add_argument
    add("--scale", choices=sorted(SCALES), default="smoke")
    add("--work_dir", default=commands.REPO, help="where datasets/, checkpoints/ and results/ go (default: here)")
    add("--dataroot", help="use this prepared dataset instead of the scale's own")
    add("--groups", type=_names, help=f"groups of the grid, from {', '.join(cells.GROUPS)} (default: the scale's)")
    add("--seeds", type=_ints, help="seeds of the main grid (default: the scale's)")
    add("--ablation_seeds", type=_ints, help="seeds of the ablations (default: the scale's)")
    add("--sweep_seeds", type=_ints, help="seeds of the λ and S sweeps (default: the scale's, else --ablation_seeds)")
    add("--cells", "--only", dest="cells", type=_names,
        help="run only these cells (as --list names them); the report still covers the whole grid")
    add("--jobs", type=int, help="cells run in parallel (default: the scale's)")
    add("--threads", type=int, help="CPU threads per cell (default: cores / jobs)")
    add("--device", help="auto | cpu | cuda[:N] (default: the scale's)")
    add("--report_dir", help="default: the scale's, else results/repro_<scale>/report under --work_dir")
    add("--results_store", help="folder (kept in git) of finished cells' small results, never run again; "
                                "default: the scale's, else none; 'none' turns it off")
    add("--overwrite_report", action="store_true",
        help="rewrite the report even if its results.json (or none) counts more finished cells than found now")
    add("--git_commit", action="store_true", help="git commit the store and the report after each finished cell")
    add("--list", action="store_true", help="print the grid's cells and exit")
    add("--dry_run", action="store_true", help="print the commands and exit")
    add("--report_only", action="store_true", help="write the report from what exists")
    add("--collect", action="store_true", help="store the cells that finished in the work dir (e.g. SLURM jobs "
                                               "whose submitter has gone), then write the report; runs nothing")
    add("--executor", choices=("local", "slurm"), default="local",
        help="local: cells as subprocesses here; slurm: each cell one task of a SLURM array job (submitit)")
    slurm = p.add_argument_group("--executor slurm (each job gets --threads CPUs, default 4)")
    slurm.add_argument("--slurm_partition")
    slurm.add_argument("--slurm_gpus_per_cell", type=int, default=0,
                       help="GPUs of each job; more than 1 trains under torchrun, one process per GPU")
    slurm.add_argument("--slurm_time", type=int, default=24 * 60, help="minutes per job (default: a day); a job "
                       "that reaches it is requeued and continues its cell from the checkpoint")
    slurm.add_argument("--slurm_array_parallelism", type=int, help="jobs of the array running at once (default: all)")
    slurm.add_argument("--slurm_account")
    slurm.add_argument("--slurm_qos")
    slurm.add_argument("--slurm_additional", action="append", default=[], metavar="KEY=VALUE",
                       help="any other sbatch option, e.g. constraint=a100 (repeatable)")
    slurm.add_argument("--slurm_folder", help="submitit's job scripts and logs (default: slurm/ in the results)")
    return p.parse_args(argv)


def make_executor(plan):
    args = plan.args
    if args.executor == "local":
        return commands.LocalExecutor(plan.jobs, plan.threads)
    additional = dict(kv.split("=", 1) for kv in args.slurm_additional if "=" in kv)
    if len(additional) != len(args.slurm_additional):
        raise UserError(f"--slurm_additional takes KEY=VALUE (an sbatch option without its --), got "
                        f"{next(kv for kv in args.slurm_additional if '=' not in kv)!r}")
    if not (shutil.which("sbatch") and shutil.which("squeue")):
        raise UserError("--executor slurm needs SLURM's sbatch and squeue on PATH: run it where jobs are "
                        "submitted (a login node)")
    from scripts.repro import slurm
    return slurm.SlurmExecutor(
        args.slurm_folder or os.path.join(plan.paths.results_dir, "slurm", "%j"), plan.threads,
        name=f"repro_{plan.scale.name}", partition=args.slurm_partition, gpus_per_cell=args.slurm_gpus_per_cell,
        time_min=args.slurm_time, array_parallelism=args.slurm_array_parallelism, account=args.slurm_account,
        qos=args.slurm_qos, additional=additional)


class Plan:
    def __init__(self, args, argv):
        self.args = args
        self.scale = scale = SCALES[args.scale]
        self.device = args.device or scale.device
        self.paths = commands.RunPaths.of(scale, args.work_dir, args.dataroot)
        self.report_dir = os.path.abspath(args.report_dir or (
            os.path.join(commands.REPO, scale.report_dir) if scale.report_dir
            else os.path.join(self.paths.results_dir, "report")))
        root = args.results_store if args.results_store is not None else (
            os.path.join(commands.REPO, scale.results_store) if scale.results_store else "none")
        self.store = None if root.lower() in ("none", "") else store.Store(root)
        ablation = args.ablation_seeds or scale.ablation_seeds
        sweep = args.sweep_seeds or (scale.sweep_seeds if not args.ablation_seeds else ()) or ablation
        self.grid = cells.expand(args.groups or scale.groups, args.seeds or scale.seeds, ablation, sweep)
        self.to_run = cells.select(self.grid, args.cells)
        # a cell's stages must not depend on the groups selected: curve cells are those of the scale's own grid too
        own = cells.expand(scale.groups, scale.seeds, scale.ablation_seeds, scale.sweep_seeds or scale.ablation_seeds)
        curve = {c.name for g in scale.curve_groups for c in self.grid.cells_of(g) + own.cells_of(g)}
        gt_cell = self.grid.cells[0].name        # its last scoring also scores the real photos
        ranks = max(1, args.slurm_gpus_per_cell) if args.executor == "slurm" else 1     # >1: torchrun
        self.stages = {c.name: commands.cell_stages(c, scale, self.paths, self.device, curve=c.name in curve,
                                                    ground_truth=c.name == gt_cell, ranks=ranks)
                       for c in self.grid.cells}
        self.prepare = commands.prepare_stages(scale, self.paths)
        self.jobs = args.jobs or scale.jobs
        self.threads = args.threads or (4 if args.executor == "slurm" else max(1, (os.cpu_count() or 1) // self.jobs))
        # the command that runs the grid and writes this report (--report_only only rewrites it)
        self.invocation = "python scripts/reproduce.py " + " ".join(
            shlex.quote(a) for a in argv if a not in ("--report_only", "--overwrite_report", "--collect"))
        self.outcomes = {}                  # cell name -> commands.Outcome of this invocation
        self.started_code_version = None    # set when the grid starts running
        self.fingerprints = None            # the segmenters' weights, set by check_judges

    def own_dirs(self):
        return [self.report_dir] + ([self.store.root] if self.store else [])

    def is_done(self, cell):
        return collect.is_done(cell, self.paths, self.store)


def _git(*args):
    return subprocess.run(["git", *args], cwd=commands.REPO, capture_output=True, text=True)


def code_version(*excluded_dirs):
    """The repository's commit (and whether files differ from it), for the report."""
    commit = _git("rev-parse", "--short", "HEAD").stdout.strip()
    if not commit:
        return "unknown (not a git checkout)"
    exclude = [":(exclude)" + os.path.relpath(os.path.abspath(x), commands.REPO) for x in excluded_dirs
               if x and os.path.abspath(x).startswith(os.path.abspath(commands.REPO) + os.sep)]
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *exclude).stdout.strip()
    return commit + (" with uncommitted changes" if dirty else "")


def write_report(plan):
    paths, scale = plan.paths, plan.scale
    status = {}
    for c in plan.grid.cells:
        outcome = plan.outcomes.get(c.name)
        status[c.name] = ("done" if plan.is_done(c) else "failed: " + outcome.message
                          if outcome and outcome.status == "failed" else "not run yet")
    report.write(report.ReportInputs(
        scale=scale, grid=plan.grid,
        results=collect.collect(plan.grid, paths, scale.curve_epochs(), scale.total_epochs, plan.store),
        ground_truth=collect.ground_truth(plan.grid, paths, plan.store), status=status,
        invocation=plan.invocation, code_version=code_version(*plan.own_dirs()),
        prepare_commands=[commands.shell_line(s.argv) for s in plan.prepare],
        cell_commands={n: [commands.shell_line(s.argv) for s in st] for n, st in plan.stages.items()},
        paths=paths, store_dir=plan.store.root if plan.store else None,
        other_budgets=[(name, budgets.of_other_scale(SCALES[name], paths.work_dir)) for name in scale.compare_with]),
        plan.report_dir)


def guard_report(plan):
    """Refuse to overwrite a report counting more finished cells than can be found now (or none)."""
    md, results = (os.path.join(plan.report_dir, name) for name in (report.REPORT_MD, report.RESULTS_JSON))
    if plan.args.overwrite_report or not os.path.exists(md):
        return
    now = sum(map(plan.is_done, plan.grid.cells))
    try:
        before = collect.read_json(results)["cells_finished"]
    except (OSError, ValueError, KeyError):
        raise UserError(f"{md} has no {report.RESULTS_JSON} beside it to count its finished cells, so "
                        "rewriting it could lose them; pass --report_dir elsewhere, or --overwrite_report "
                        "to rewrite it anyway") from None
    if before > now:
        raise UserError(f"{results} counts {before} finished cells but only {now} are in this work dir"
                        + (" and store" if plan.store else "") + ": rewriting the report would lose them; "
                        "pass --report_dir elsewhere, or --overwrite_report to rewrite it anyway")


def check_judges(plan):
    """Hash the segmenters' weights now; refuse them if the store's cells were judged by others."""
    plan.fingerprints = store.segmenter_fingerprints(plan.scale, plan.paths)
    if plan.store:
        locations = {digests.short_name(s): s for s in commands.segmenter_paths(plan.scale, plan.paths)}
        plan.store.check_judges(plan.fingerprints, locations)


def judged_by(plan, cell):
    """The weights that scored the cell: as its last scores file recorded, else as they are now."""
    score = next((s for s in reversed(plan.stages[cell.name]) if s.name.startswith("score_")), None)
    return {**plan.fingerprints, **(store.recorded_fingerprints(score.done_path) if score else {})}


def store_cell(plan, cell, outcome=None):
    """Store a finished cell (`outcome`: how this invocation ran it; None: finished earlier)."""
    if outcome is None:
        extra = {"code_version": "unknown: it finished in the work dir before it was stored",
                 "wall_seconds": None, "stored_from": "the work dir, after it finished"}
    else:
        extra = {"code_version": plan.started_code_version, "code_version_at_finish": code_version(*plan.own_dirs()),
                 "jobs": plan.jobs, "threads": plan.threads, "cpus": os.cpu_count(), "executor": plan.args.executor,
                 "stored_from": "the run that finished it"}
        if outcome.whole:
            extra["wall_seconds"] = round(outcome.seconds, 1)
        else:                       # it continued an earlier attempt: its time is not the cell's
            extra.update(wall_seconds=None, wall_seconds_of_last_part=round(outcome.seconds, 1))
    extra.update(device=plan.device, segmenters=judged_by(plan, cell))
    plan.store.write(cell.name, store.cell_files(cell, plan.scale, plan.paths, plan.stages[cell.name], extra))


def commit_results(plan, message):
    """git commit --only the store and the report folder (other staged work is left alone); a failure warns."""
    paths = [os.path.relpath(p, commands.REPO) for p in plan.own_dirs()
             if os.path.abspath(p).startswith(commands.REPO + os.sep) and os.path.exists(p)]
    if not paths:
        return False
    add = _git("add", "--", *paths)
    proc = _git("commit", "-q", "-m", message, "--only", "--", *paths) if add.returncode == 0 else add
    err = (proc.stderr or proc.stdout).strip()
    if proc.returncode == 0 or "nothing to commit" in err or "no changes added" in err:
        return proc.returncode == 0
    tqdm.write(f"warning: could not commit {', '.join(paths)}: {err.splitlines()[-1] if err else '?'}")
    return False


def store_finished(plan):
    """Store the cells that finished in the work dir but are missing from the store (judges checked)."""
    check_judges(plan)
    for c in plan.grid.cells if plan.store else ():
        if not plan.store.has(c.name) and commands.is_done(plan.stages[c.name]):
            plan.store.check_judges(judged_by(plan, c), where=f"{c.name}'s scores in the work dir")
            store_cell(plan, c)


def run_grid(plan):
    """Store what finished earlier, prepare once, then run the missing cells, storing each as it ends."""
    plan.started_code_version = code_version(*plan.own_dirs())
    store_finished(plan)
    todo = [c for c in plan.to_run.cells if not plan.is_done(c) and not commands.is_done(plan.stages[c.name])]
    if not todo:
        print(f"{plan.scale.name}: every selected cell has finished"
              + (f" (results in {plan.store.root})" if plan.store else ""), flush=True)
        return
    layout = PreparedLayout(plan.paths.dataroot)        # a scale without a generator needs its dataset prepared
    if plan.scale.synthcity is None and not (layout.is_prepared() and layout.has_labels(commands.PHASE)):
        raise UserError(f"{plan.paths.dataroot} is not a prepared dataset with labels/{commands.PHASE}/: "
                        "prepare Cityscapes with data/prepare_cityscapes.py (official gtFine and "
                        "leftImg8bit), or pass --dataroot")
    for c in todo:        # the work dir's record of each cell: a changed scale is refused, not mixed in
        path = os.path.join(plan.paths.cell_results(c), store.CELL_FILE)
        record = store.cell_record(c, plan.scale, plan.paths, plan.stages[c.name])
        if os.path.exists(path):
            store.check_settings(path, record, "delete its checkpoints and results, or use another --work_dir")
        else:
            atomic.write_json(path, record)
    print(f"preparing {plan.scale.name}: dataset and segmenter", flush=True)
    prep = commands.run_chain("prepare", plan.prepare, os.path.join(plan.paths.results_dir, "logs"),
                              commands.subprocess_env(os.cpu_count() or 1))     # alone: every core
    if prep.status in ("failed", "busy"):       # busy: another runner of this grid is preparing it
        raise UserError(f"preparation {'failed' if prep.status == 'failed' else 'not run here'}: {prep.message}")
    check_judges(plan)                  # the segmenter may have been made just now: hash it afresh
    by_name = {c.name: c for c in todo}
    executor = make_executor(plan)
    where = "SLURM jobs" if plan.args.executor == "slurm" else f"{plan.jobs} at a time"
    bar = tqdm(total=len(todo), desc=f"{plan.scale.name} cells ({where})", unit="cell")

    def on_done(outcome):
        plan.outcomes[outcome.name] = outcome
        bar.update(1)
        bar.set_postfix_str(f"{outcome.name}: {outcome.status}")
        if outcome.status == "failed":
            tail = "".join(f"\n    {line}" for line in outcome.log_tail.splitlines())
            tqdm.write(f"FAILED {outcome.name}: {outcome.message}" + (f"; its log ends:{tail}" if tail else ""))
        elif outcome.status == "busy":
            tqdm.write(f"{outcome.name}: not run here: {outcome.message}")
        if outcome.status == "done":
            if plan.store:
                store_cell(plan, by_name[outcome.name], outcome)
            write_report(plan)
            if plan.args.git_commit:
                done = sum(map(plan.is_done, plan.grid.cells))
                commit_results(plan, f"reproduce.py --scale {plan.scale.name}: {outcome.name} finished "
                                     f"({done} of {len(plan.grid.cells)} cells)")

    commands.run_cells([(c.name, plan.stages[c.name], os.path.join(plan.paths.cell_results(c), "logs"))
                        for c in todo], executor, progress=on_done)
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
        lines = [commands.shell_line(s.argv) for s in plan.prepare]
        for c in plan.to_run.cells:
            lines += [f"# {c.name}"] + [commands.shell_line(s.argv) for s in plan.stages[c.name]]
        print("\n".join(lines))
        return 0
    for c in plan.grid.cells if plan.store else ():     # refuse stored cells made with other settings
        if plan.store.has(c.name):
            store.check_settings(os.path.join(plan.store.cell_dir(c.name), store.CELL_FILE),
                                 store.cell_record(c, plan.scale, plan.paths, plan.stages[c.name]),
                                 "delete its folder to run it again, or pass another --results_store")
    guard_report(plan)
    if args.collect:
        store_finished(plan)
    elif not args.report_only:
        previous = {s: signal.signal(s, commands.stop_children) for s in (signal.SIGINT, signal.SIGTERM)}
        try:                                # a signal stops the children and starts nothing more
            run_grid(plan)
        except commands.Stopped as stop:
            print(f"\nstopped by {stop}: " + (
                "the submitted jobs go on (scancel stops them); --collect stores the cells they finish"
                if args.executor == "slurm" else "the running stages saved and exited, no other cell started; "
                "run the same command to continue"), file=sys.stderr)
            return 128 + stop.signum
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    write_report(plan)
    if plan.args.git_commit and not args.report_only:     # --collect too
        commit_results(plan, f"reproduce.py --scale {plan.scale.name}: report")
    print(f"report: {os.path.join(plan.report_dir, report.REPORT_MD)}")
    failed = [o.name for o in plan.outcomes.values() if o.status == "failed"]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
