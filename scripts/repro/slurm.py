"""--executor slurm: each cell one task of a SLURM array job, submitted through submitit, running on its node
the chain it runs locally (commands.run_chain: pending stages only, a cut training continued). The submitter
watches the queue and hands each ended job's outcome back, so cells are stored as they are locally.
"""
import glob
import os
import shlex
import subprocess

import submitit
from submitit.core.utils import FailedJobError, pickle_load

from pix2pix_tr.errors import UserError

from . import commands

# states of a job still queued or running (a requeued one is pending again); any other, or none, has ended
LIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
        "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "SUSPENDED", "RESV_DEL_HOLD"}


class CellJob(submitit.helpers.Checkpointable):
    """What a job runs. Checkpointable: on SLURM's warning before a time limit or preemption (SIGUSR2)
    submitit requeues the job; SLURM's SIGTERM then makes train.py save, and the requeued job continues."""

    def __init__(self, threads):
        self.threads = threads

    def __call__(self, name, stages, log_dir):
        return commands.run_chain(name, stages, log_dir, commands.subprocess_env(self.threads))


class SlurmExecutor:
    poll_seconds = 2.0

    def __init__(self, folder, threads, *, name, partition=None, gpus_per_cell=0, time_min=24 * 60,
                 array_parallelism=None, account=None, qos=None, additional=None):
        self.threads, self.array_parallelism = threads, array_parallelism
        # a cell longer than --slurm_time goes on as a chain of requeued jobs (submitit's default stops at 3)
        self.executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=1000)
        params = dict(name=name, cpus_per_task=threads, timeout_min=time_min, slurm_partition=partition,
                      gpus_per_node=gpus_per_cell or None, slurm_account=account, slurm_qos=qos,
                      slurm_additional_parameters=dict(additional or {}),
                      # the job unpickles CellJob from this repository, wherever it starts
                      slurm_setup=[f"export PYTHONPATH={shlex.quote(commands.REPO)}${{PYTHONPATH:+:$PYTHONPATH}}"])
        self.executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
        self.states = {}

    def submit(self, chains):
        names, stages, log_dirs = zip(*chains)
        self.executor.update_parameters(slurm_array_parallelism=self.array_parallelism or len(chains))
        self.log_dirs = dict(zip(names, log_dirs))
        try:
            jobs = self.executor.map_array(CellJob(self.threads), names, stages, log_dirs)
        except FailedJobError as err:        # sbatch refused: no such partition, account, QOS; no controller
            raise UserError(f"sbatch did not take the jobs: {str(err).strip().splitlines()[-1]}") from None
        print(f"submitted {len(jobs)} cell(s) as SLURM array job {jobs[0].job_id.split('_')[0]} "
              f"(submitit files: {self.executor.folder})", flush=True)
        return jobs

    def finished(self, waiting):
        """The names in `waiting` {name: job} whose jobs have left the queue (one squeue call)."""
        proc = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i %T"], capture_output=True, text=True)
        if proc.returncode != 0:            # the controller busy or restarting: ask again next round
            return []
        self.states = dict(line.split()[:2] for line in proc.stdout.splitlines() if line.strip())
        return [name for name, job in waiting.items() if self.states.get(job.job_id) not in LIVE]

    def outcome(self, job, name):
        state = self.states.get(job.job_id, "ended")
        if job.paths.result_pickle.exists():
            kind, result = pickle_load(job.paths.result_pickle)
            if kind == "success":
                if result.status == "failed":
                    result.message = f"SLURM job {job.job_id} ({state}): {result.message}"
                return result
            return commands.Outcome(name, "failed", f"SLURM job {job.job_id} {state}: the cell's runner raised; "
                                    f"see {job.paths.stderr}", log_tail=str(result)[-2000:])
        logs = glob.glob(os.path.join(self.log_dirs[name], "*.log"))      # the cell's last stage, else submitit's
        last = max(logs, key=os.path.getmtime) if logs else str(job.paths.stderr)
        return commands.Outcome(name, "failed", f"SLURM job {job.job_id} {state} without a result: run the same "
                                f"command to continue the cell; see {last} and {job.paths.stderr}",
                                log_tail=commands.log_tail(last))

    def close(self):
        pass
