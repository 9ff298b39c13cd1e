"""A one-node SLURM cluster on localhost for the tests: Debian's munged, slurmctld and slurmd in the foreground,
their key, config, state and logs in a temporary folder; its jobs cancelled and the daemons stopped at the end.
The node has this machine's CPUs; jobs run as root, without cgroups (proctrack/linuxproc, task/none)."""
import contextlib
import os
import shutil
import socket
import subprocess
import time

from tests.trainer_helpers import stop

SBIN_PATH = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
NEEDED = {"munged": "munge", "slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "slurm-client"}

CONFIG = """\
ClusterName=tests
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={dir}/munge.sock,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
ReturnToService=2
KillWait=30
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def why_not():
    """None if a cluster can start here, else one line saying why not."""
    missing = [pkg for cmd, pkg in NEEDED.items() if not shutil.which(cmd, path=SBIN_PATH)]
    if missing:
        return f"Debian's {', '.join(missing)} not installed (scripts/test.sh installs them where apt-get works)"
    if os.geteuid() != 0:
        return "the test cluster's slurmd runs jobs as root: run the tests as root"
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_cluster(folder):
    """Start the cluster in `folder`; yields the environment (SLURM_CONF) its commands need."""
    folder = str(folder)
    for sub in ("state", "spool"):
        os.makedirs(os.path.join(folder, sub), exist_ok=True)
    os.chmod(folder, 0o700)
    key = os.path.join(folder, "munge.key")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o400), "wb") as f:
        f.write(os.urandom(1024))
    host = socket.gethostname().split(".")[0]
    conf = os.path.join(folder, "slurm.conf")
    with open(conf, "w") as f:
        f.write(CONFIG.format(host=host, dir=folder, cpus=os.cpu_count() or 1, ctld_port=_free_port(),
                              slurmd_port=_free_port()))
    env = dict(os.environ, SLURM_CONF=conf, PATH=SBIN_PATH)
    log = open(os.path.join(folder, "daemons.log"), "ab")
    daemons = []
    try:
        for argv in (["munged", "-F", "--force", f"--socket={folder}/munge.sock", f"--key-file={key}",
                      f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
                      f"--seed-file={folder}/munge.seed"],
                     ["slurmctld", "-D", "-i"], ["slurmd", "-D", "-N", host]):
            daemons.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log))
            time.sleep(0.5)
        start = time.monotonic()
        while subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True,
                             text=True).stdout.strip() != "idle":
            if time.monotonic() - start > 30 or any(d.poll() is not None for d in daemons):
                raise RuntimeError(f"the test SLURM cluster did not start; see {folder}/*.log")
            time.sleep(0.5)
        yield env
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
        start = time.monotonic()
        while time.monotonic() - start < 20 and subprocess.run(["squeue", "-h", "-t", "R,CG"], env=env,
                                                               capture_output=True, text=True).stdout.strip():
            time.sleep(0.5)
        for d in reversed(daemons):
            stop(d, timeout=15)
        log.close()
