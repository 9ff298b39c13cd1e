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
        grid = cells.expand(groups, args.seeds or scale.seeds, args.ablation_seeds or scale.ablation_seeds)
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    scale = SCALES[args.scale]
    device = args.device or scale.device
    paths = commands.RunPaths.of(scale, args.work_dir, args.dataroot)
    report_dir = os.path.abspath(args.report_dir or os.path.join(paths.results_dir, "report"))
    full_grid, to_run = build_grid(args, scale)
    curve_cells = {c.name for g in scale.curve_groups for c in full_grid.cells_of(g)}
    stage_map = {c.name: commands.cell_stages(c, scale, paths, device, curve=c.name in curve_cells)
                 for c in full_grid.cells}
    prepare = commands.prepare_stages(scale, paths, device)

    if args.list:
        for c in full_grid.cells:
            print(f"{c.name:45s} {','.join(full_grid.groups[c.name]):30s} {c.variant.label}")
        return 0
    if args.dry_run:
        for s in prepare:
            print(commands.shell_line(s.argv))
        for c in to_run.cells:
            print(f"# {c.name}")
            for s in stage_map[c.name]:
                print(commands.shell_line(s.argv))
        return 0

    jobs = args.jobs or scale.jobs
    threads = args.threads or max(1, (os.cpu_count() or 1) // jobs)
    env = runner.subprocess_env(threads)
    outcomes = {}
    unsupported = {}

    def write_report():
        inputs = report.ReportInputs(
            scale=scale, grid=full_grid,
            results=collect.collect(full_grid, paths, scale.curve_epochs(), scale.total_epochs),
            ground_truth=collect.read_scores(os.path.join(paths.ground_truth_dir, "fcn_scores.json")),
            status=cell_status(full_grid, paths, unsupported, outcomes),
            invocation="python scripts/reproduce.py " + " ".join(shlex.quote(a) for a in argv),
            prepare_commands=[commands.shell_line(s.argv) for s in prepare],
            cell_commands={n: [commands.shell_line(s.argv) for s in st] for n, st in stage_map.items()},
            paths=paths)
        report.write(inputs, report_dir)

    if not args.report_only:
        todo = {c.name: stage_map[c.name] for c in to_run.cells if not runner.is_done(stage_map[c.name])}
        unsupported = unsupported_cells(todo, env)
        runnable = [c for c in to_run.cells if c.name not in unsupported]
        for c in to_run.cells:
            if c.name in unsupported:
                print(f"skipping {c.name}: needs {' '.join(unsupported[c.name])}, which the scripts "
                      "do not define yet", file=sys.stderr)
        for c in runnable:
            runner.check_or_write_manifest(os.path.join(paths.cell_results(c), "cell.json"),
                                           runner.manifest(c, stage_map[c.name]))
        print(f"preparing {scale.name}: dataset, segmenter, ground-truth scores", flush=True)
        prep = runner.run_chain("prepare", prepare, os.path.join(paths.results_dir, "logs"), env)
        if prep.status == "failed":
            raise UserError(f"preparation failed: {prep.message}")
        chains = [(c.name, stage_map[c.name], os.path.join(paths.cell_results(c), "logs"))
                  for c in runnable]
        bar = tqdm(total=len(chains), desc=f"{scale.name} cells ({jobs} at a time)", unit="cell")

        def on_done(outcome):
            outcomes[outcome.name] = outcome
            bar.update(1)
            bar.set_postfix_str(f"{outcome.name}: {outcome.status}")
            if outcome.status == "failed":
                tqdm.write(f"FAILED {outcome.name}: {outcome.message}")
            if outcome.status == "done":
                write_report()

        runner.run_cells(chains, jobs, threads, progress=on_done)
        bar.close()
    write_report()
    print(f"report: {os.path.join(report_dir, 'report.md')}")
    failed = [o for o in outcomes.values() if o.status == "failed"]
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(o.name for o in failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
