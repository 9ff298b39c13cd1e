"""Run cells' stages as subprocesses: skip what finished, resume what was cut, N cells at once.

Cells are independent chains of processes (train → test → score), so `run_cells` runs `jobs` chains
at once in threads that only wait on their subprocesses, each limited to its share of the CPU
threads. A stage whose output exists is skipped, so a re-run picks up where the last one stopped; a
failing cell does not stop the others, and its outcome names its log.
"""
import concurrent.futures
import dataclasses
import os
import subprocess
import time

from . import commands


@dataclasses.dataclass
class Outcome:
    name: str
    status: str             # done | skipped | failed
    message: str = ""
    seconds: float = 0.0
    whole: bool = False     # every stage ran from its start in this call: `seconds` is the cell's time


def is_resumed(stage):
    """Whether the stage would continue from what an earlier attempt left (e.g. --continue_train)."""
    return bool(stage.resume_flag and os.path.exists(stage.resume_path))


def is_done(stages):
    """A chain is done when its last stage's output exists (an empty chain has nothing to do)."""
    return not stages or os.path.exists(stages[-1].done_path)


def pending(stages):
    return [s for s in stages if not os.path.exists(s.done_path)]


def stage_argv(stage):
    return list(stage.argv) + ([stage.resume_flag] if is_resumed(stage) else [])


def subprocess_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")


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
    """Run `chains` [(name, stages, log_dir)] `jobs` at a time, calling `progress(outcome)` as each
    ends; the outcomes in input order."""
    env = subprocess_env(threads_per_job)
    outcomes = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_chain, name, stages, log_dir, env) for name, stages, log_dir in chains]
        for future in concurrent.futures.as_completed(futures):
            outcome = outcomes[future.result().name] = future.result()
            if progress is not None:
                progress(outcome)
    return [outcomes[name] for name, _, _ in chains]
