"""Run stages as subprocesses: skip what finished, resume what was cut, N cells in parallel.

Each cell is a chain of processes (train → test → score); cells are independent, so `run_cells`
runs `jobs` chains at once in threads that only wait on their subprocesses, each subprocess
limited to its share of the CPU threads. A stage whose output file exists is skipped, so a re-run
picks up where the last one stopped; a cell whose last output exists is skipped whole. A failing
cell does not stop the others; its log is named in the summary.

A cell also leaves `cell.json` (its configuration and command lines). A re-run whose commands
differ from the recorded ones (the scale changed under finished results) stops with an error
instead of mixing results from two settings.
"""
import concurrent.futures
import dataclasses
import json
import os
import re
import subprocess
import time

from pix2pix_tr import atomic
from pix2pix_tr.errors import UserError

from . import commands


@dataclasses.dataclass
class Outcome:
    name: str
    status: str             # done | skipped | failed | unsupported
    message: str = ""
    seconds: float = 0.0
    whole: bool = False     # every stage ran from its start in this call: `seconds` is the cell's time


def is_resumed(stage):
    """Whether the stage would continue from what an earlier attempt left (see stage_argv)."""
    return bool(stage.resume_flag and stage.resume_path and os.path.exists(stage.resume_path))


def is_done(stages):
    """A chain is done when its last stage's output exists (an empty chain has nothing to do)."""
    return not stages or os.path.exists(stages[-1].done_path)


def pending(stages):
    """The stages still to run: those whose output does not exist yet."""
    return [s for s in stages if not os.path.exists(s.done_path)]


def stage_argv(stage):
    """The stage's command, resuming (e.g. --continue_train) when an earlier attempt left state."""
    argv = list(stage.argv)
    if is_resumed(stage):
        argv.append(stage.resume_flag)
    return argv


def subprocess_env(threads):
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")
    return env


def run_stage(stage, log_path, env):
    """Run one stage with its output in `log_path`; raise RuntimeError naming the log on failure."""
    argv = stage_argv(stage)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {commands.shell_line(argv)}\n")
        log.flush()
        proc = subprocess.run(argv, cwd=commands.REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{stage.name} exited with {proc.returncode}; see {log_path}")
    if not os.path.exists(stage.done_path):
        raise RuntimeError(f"{stage.name} finished but did not write {stage.done_path}; see {log_path}")


def run_chain(name, stages, log_dir, env):
    """Run a chain of stages in order (skipping finished ones) and say how it went."""
    if is_done(stages):
        return Outcome(name, "skipped", "already done")
    todo = pending(stages)
    whole = len(todo) == len(stages) and not any(is_resumed(s) for s in todo)
    start = time.monotonic()
    try:
        for stage in todo:
            run_stage(stage, os.path.join(log_dir, f"{stage.name}.log"), env)
    except RuntimeError as err:
        return Outcome(name, "failed", str(err), time.monotonic() - start)
    return Outcome(name, "done", "", time.monotonic() - start, whole)


def run_cells(chains, jobs, threads_per_job, progress=None):
    """Run `chains` [(name, stages, log_dir)] with `jobs` at a time; outcomes in input order."""
    env = subprocess_env(threads_per_job)
    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(run_chain, name, stages, log_dir, env): name
                   for name, stages, log_dir in chains}
        for future in concurrent.futures.as_completed(futures):
            outcome = future.result()
            outcomes[outcome.name] = outcome
            if progress is not None:
                progress(outcome)
    return [outcomes[name] for name, _, _ in chains]


# --- manifests: what a cell was run with ---------------------------------------------------

def manifest(cell, stages):
    return {"cell": cell.name, "seed": cell.seed, "variant": dataclasses.asdict(cell.variant),
            "label": cell.variant.label,
            "commands": {s.name: commands.shell_line(s.argv) for s in stages}}


def check_or_write_manifest(path, record):
    """Write the cell's manifest, or raise if an existing one records other commands."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if old.get("commands") != record["commands"]:
            changed = sorted(k for k in set(old.get("commands", {})) | set(record["commands"])
                             if old.get("commands", {}).get(k) != record["commands"].get(k))
            raise UserError(f"cell {record['cell']} was run with other settings ({', '.join(changed)} "
                            f"differ, see {path}); delete its checkpoints and results or use "
                            "another --work_dir")
        return
    atomic.write_json(path, record)


# --- flags the tools actually have ---------------------------------------------------------

_FLAG = re.compile(r"(?<![\w-])--[A-Za-z][\w-]*")


def known_flags(script_argv, env=None):
    """The --flags a script's --help lists (e.g. to tell which ablations this trainer supports)."""
    script = script_argv[-1]
    if not os.path.isfile(script):
        raise UserError(f"{os.path.relpath(script, commands.REPO)} does not exist yet; "
                        "the reproduction needs the trainer and the evaluator")
    proc = subprocess.run([*script_argv, "--help"], cwd=commands.REPO, capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise UserError(f"{' '.join(script_argv[1:])} --help failed: "
                        f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return set(_FLAG.findall(proc.stdout))


def missing_flags(argv, known):
    """The flags of `argv` that its script does not define."""
    return [a for a in argv if a.startswith("--") and a not in known]
