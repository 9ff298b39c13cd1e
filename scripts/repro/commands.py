"""A cell's command lines, each with the file whose existence proves it finished (the tools write them
atomically), and running them: run_chain runs a cell's pending stages as subprocesses (a finished stage is
skipped and a cut one resumed, so the same command continues an interrupted grid); an executor launches the
chains (LocalExecutor here, `jobs` at once; slurm.SlurmExecutor as SLURM jobs) and run_cells watches them.
SIGINT/SIGTERM (stop_children) stop the running stages and start no more.
"""
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time

from data.layout import METADATA_FILE
from evaluate.report import JSON_FILE as SCORES_FILE
from evaluate.segmenters import SEGMENTER_FILE
from pix2pix_tr.run.checkpoint import weights_path
from pix2pix_tr.viz.loss_log import LOSS_JSONL

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASE = "val"
TEST_PAGE = "index.html"        # test.py's page (pix2pix_tr/viz/html.py), written after its images
CLAIM_FILE = "cell.lock"        # in the cell's log folder: held by the process that runs the cell


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple
    done_path: str
    resume_flag: str = ""    # appended when a previous attempt left a resumable state
    resume_path: str = ""    # ... whose existence means that


@dataclasses.dataclass(frozen=True)
class RunPaths:
    work_dir: str
    dataroot: str
    checkpoints_dir: str
    results_dir: str

    @classmethod
    def of(cls, scale, work_dir, dataroot=None):
        work_dir = os.path.abspath(work_dir)
        return cls(work_dir=work_dir,
                   dataroot=os.path.abspath(dataroot or os.path.join(work_dir, scale.dataset_dir)),
                   checkpoints_dir=os.path.join(work_dir, "checkpoints", f"repro_{scale.name}"),
                   results_dir=os.path.join(work_dir, "results", f"repro_{scale.name}"))

    def cell_checkpoints(self, cell):
        return os.path.join(self.checkpoints_dir, cell.name)

    def cell_results(self, cell):
        return os.path.join(self.results_dir, cell.name)

    def epoch_dir(self, cell, epoch):
        return os.path.join(self.results_dir, cell.name, f"{PHASE}_{epoch}")

    def scores_path(self, cell, epoch="latest"):
        return os.path.join(self.epoch_dir(cell, epoch), SCORES_FILE)

    def loss_log(self, cell):
        return os.path.join(self.cell_checkpoints(cell), LOSS_JSONL)


def _device(device):
    """--device flags; none for 'auto', so each tool picks CUDA when there is one."""
    return () if device in (None, "", "auto") else ("--device", device)


def _script(relpath):
    return (sys.executable, os.path.join(REPO, relpath))


def segmenter_paths(scale, paths):
    """fcn_score --segmenter values: the scale's own, its recipe's, or none (the dataset's)."""
    if scale.segmenters:
        return list(scale.segmenters)
    return [os.path.join(paths.work_dir, scale.segmenter_dir)] if scale.segmenter_recipe else []


def train_flags(cell, scale):
    v = cell.variant
    flags = ["--optimizer", v.optimizer, "--batch_size", str(v.batch_size), "--seed", str(cell.seed),
             "--lr", f"{scale.lr * v.lr_factor:.6g}"]
    if v.optimizer == "tradam":
        flags += ["--tr_lambda", f"{v.tr_lambda:g}", "--tr_inner_steps", str(v.inner_steps)]
        if v.lambda_mode != "scaled":
            flags += ["--tr_lambda_mode", v.lambda_mode]
        if not v.inner_lr_decay:
            flags.append("--tr_no_inner_lr_decay")
    return flags


def prepare_stages(scale, paths):
    """The dataset and the segmenter, made once before the cells run in parallel."""
    stages = []
    if scale.synthcity is not None:
        s = scale.synthcity
        stages.append(Stage("dataset", (*_script("data/synthcity.py"), "--output_dir", paths.dataroot,
                                        "--num_train", str(s["num_train"]), "--num_val",
                                        str(s["num_val"]), "--size", str(s["size"]),
                                        "--seed", str(s["seed"])),
                            os.path.join(paths.dataroot, METADATA_FILE)))
    if scale.segmenter_recipe:
        seg = os.path.join(paths.work_dir, scale.segmenter_dir)
        stages.append(Stage("segmenter", (*_script("evaluate/train_segmenter.py"), "--dataroot",
                                          paths.dataroot, "--output_dir", seg, *scale.segmenter_recipe),
                            os.path.join(seg, SEGMENTER_FILE)))
    return stages


def _test_and_score(cell, scale, paths, device, epoch, ground_truth=False):
    out = paths.epoch_dir(cell, epoch)
    num_val = scale.synthcity["num_val"] if scale.synthcity else 100000
    segmenters = [w for seg in segmenter_paths(scale, paths) for w in ("--segmenter", seg)]
    test = Stage(f"test_{epoch}", (*_script("test.py"), "--dataroot", paths.dataroot, "--name", cell.name,
                                   "--checkpoints_dir", paths.checkpoints_dir, "--results_dir",
                                   paths.results_dir, "--phase", PHASE, "--epoch", str(epoch),
                                   "--num_test", str(num_val), *_device(device), *scale.test_flags),
                 os.path.join(out, TEST_PAGE))
    score = Stage(f"score_{epoch}", (*_script("evaluate/fcn_score.py"), "--results_dir",
                                     os.path.join(out, "images"), "--dataroot", paths.dataroot,
                                     "--phase", PHASE, "--output_dir", out, *_device(device),
                                     *segmenters, *scale.score_flags, *(("--gt",) if ground_truth else ())),
                  paths.scores_path(cell, epoch))
    return [test, score]


def cell_stages(cell, scale, paths, device, curve=False, ground_truth=False, ranks=1):
    """The stages of one cell, in order; the last one's output marks the cell done. `ranks` > 1 trains
    under torchrun, one process per GPU (each at --batch_size: a larger batch, so another result)."""
    ckpt = paths.cell_checkpoints(cell)
    launch = _script("train.py") if ranks == 1 else (
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
        os.path.join(REPO, "train.py"))
    train = Stage("train", (*launch, "--dataroot", paths.dataroot, "--name", cell.name,
                            "--checkpoints_dir", paths.checkpoints_dir, *train_flags(cell, scale),
                            "--n_epochs", str(scale.n_epochs), "--n_epochs_decay",
                            str(scale.n_epochs_decay), "--save_epoch_freq", str(scale.save_epoch_freq),
                            "--display_id", "0", *_device(device), *scale.train_flags),
                  weights_path(ckpt, scale.total_epochs, "G"),
                  resume_flag="--continue_train", resume_path=weights_path(ckpt, "latest", "G"))
    stages = [train]
    for epoch in scale.curve_epochs() if curve else ():
        stages += _test_and_score(cell, scale, paths, device, epoch)
    return stages + _test_and_score(cell, scale, paths, device, "latest", ground_truth)


def shell_line(argv, base=REPO):
    """A copy-pasteable line: `python`, and paths relative to `base` or the repository."""
    def word(a):
        if a == sys.executable:
            return "python"
        for root in (os.path.abspath(base), REPO):
            if a == root or a.startswith(root + os.sep):
                return os.path.relpath(a, root)
        return a
    return " ".join(shlex.quote(word(a)) for a in argv)


@dataclasses.dataclass
class Outcome:
    name: str
    status: str             # done | skipped | failed | stopped | busy (another process runs it)
    message: str = ""
    seconds: float = 0.0
    whole: bool = False     # every stage ran from its start in this call: `seconds` is the cell's time
    log_tail: str = ""      # a failed stage's last log lines


def is_resumed(stage):
    """Whether the stage would continue from what an earlier attempt left (e.g. --continue_train)."""
    return bool(stage.resume_flag and os.path.exists(stage.resume_path))


def is_done(stages):
    return not stages or os.path.exists(stages[-1].done_path)


def pending(stages):
    return [s for s in stages if not os.path.exists(s.done_path)]


def stage_argv(stage):
    return list(stage.argv) + ([stage.resume_flag] if is_resumed(stage) else [])


def subprocess_env(threads):
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1")


class Stopped(Exception):
    """SIGINT or SIGTERM reached the runner: its stages were told to stop (train.py saves), nothing more starts."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_children, _children_lock, _stopping = set(), threading.RLock(), threading.Event()


def stop_children(signum, frame=None):
    """Signal handler: SIGTERM every running stage (train.py saves latest and exits), start none after it,
    and raise Stopped; a second signal kills them at once."""
    again = _stopping.is_set()
    _stopping.set()
    with _children_lock:
        for proc in _children:
            proc.send_signal(signal.SIGKILL if again else signal.SIGTERM)
    if not again:
        raise Stopped(signum)


def log_tail(path, lines=8):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return ""


def run_stage(stage, log_path, env):
    """One stage as a child in its own session (a terminal's Ctrl-C reaches the runner, which stops it)."""
    argv = stage_argv(stage)
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"$ {shell_line(argv)}\n")
        log.flush()
        with _children_lock:
            if _stopping.is_set():
                raise RuntimeError(f"{stage.name} not started: stopping")
            # SIGUSR2 (SLURM's warning before a time limit or preemption) is the runner's: blocked in the child
            old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
            try:
                proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
            _children.add(proc)
        try:
            code = proc.wait()
        finally:
            proc.wait()                 # if the wait was cut by a signal: the child was told to stop
            with _children_lock:
                _children.discard(proc)
    if _stopping.is_set():
        raise RuntimeError(f"{stage.name} stopped by a signal")
    if code != 0:
        raise RuntimeError(f"{stage.name} exited with {code}; see {log_path}")
    if not os.path.exists(stage.done_path):
        raise RuntimeError(f"{stage.name} finished but did not write {stage.done_path}; see {log_path}")


@contextlib.contextmanager
def claim(log_dir):
    """Hold the cell for this process (flock; the kernel releases it when the process dies): yields
    None, or the holder's "pid host" when another process runs the cell."""
    os.makedirs(log_dir, exist_ok=True)
    fd = os.open(os.path.join(log_dir, CLAIM_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            holder = None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "?"
        yield holder
    finally:
        os.close(fd)


def run_chain(name, stages, log_dir, env):
    """Run the cell's pending stages in order (a cut training continues), unless another process runs it."""
    with claim(log_dir) as holder:
        if holder:
            return Outcome(name, "busy", f"another runner has it (pid, host: {holder})")
        if is_done(stages):
            return Outcome(name, "skipped", "already done")
        todo = pending(stages)
        whole = len(todo) == len(stages) and not any(is_resumed(s) for s in todo)
        start = time.monotonic()
        for stage in todo:
            log = os.path.join(log_dir, f"{stage.name}.log")
            try:
                run_stage(stage, log, env)
            except RuntimeError as err:
                return Outcome(name, "stopped" if _stopping.is_set() else "failed", str(err),
                               time.monotonic() - start, log_tail=log_tail(log))
        return Outcome(name, "done", "", time.monotonic() - start, whole)


class LocalExecutor:
    """Cells as chains of subprocesses of this process, `jobs` at once, each with `threads` threads.
    An executor (this, slurm.SlurmExecutor): submit(chains) -> handles; finished({name: handle}) -> the names
    whose cells ended; outcome(handle, name) -> Outcome; close()."""
    poll_seconds = 0.1

    def __init__(self, jobs, threads):
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs))
        self.env = subprocess_env(threads)

    def submit(self, chains):
        return [self.pool.submit(lambda *a: run_chain(*a), name, stages, log_dir, self.env)   # run_chain as it is then
                for name, stages, log_dir in chains]

    @staticmethod
    def finished(waiting):
        return [name for name, future in waiting.items() if future.done()]

    @staticmethod
    def outcome(future, name):
        return future.result()

    def close(self):        # after Stopped: the running chains end as their children exit; queued ones never start
        self.pool.shutdown(wait=True, cancel_futures=True)


def run_cells(chains, executor, progress=None):
    """Launch `chains` [(name, stages, log_dir)] on `executor` and watch them, handing each outcome to
    `progress` as it ends; the outcomes in input order."""
    waiting = dict(zip([name for name, _, _ in chains], executor.submit(chains)))
    outcomes = {}
    try:
        while waiting:
            for name in executor.finished(waiting):
                outcomes[name] = executor.outcome(waiting.pop(name), name)
                if progress is not None:
                    progress(outcomes[name])
            if waiting:
                time.sleep(executor.poll_seconds)
    finally:
        executor.close()
    return [outcomes[name] for name, _, _ in chains]
