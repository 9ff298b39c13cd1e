"""A process that imports train.py once and forks one child per training run, for the kill tests.

Each line on stdin is a JSON request {"argv": [...], "kill_at": [hook, n] or null, "log": path}; the
zygote forks, the child arms the hook, sends its output to `log` and runs `train.main(argv)`, and the
zygote answers one JSON line {"pid": child pid} when the child starts and {"status": exit code, or
minus the signal that ended it} when it ends. Forking
saves the 2-3 s import of torch per run; the zygote itself never computes, so no thread pool exists
when it forks.

Hooks (the child SIGKILLs itself at the n-th event of its own run):
    start    entering the training run (after the run's lock is taken)
    restore  right after --continue_train read the checkpoint
    step     after D's update, before G's (inside a training step)
    write    half-way through writing a checkpoint file (a torn temporary)
    fsync    a checkpoint file complete but not yet renamed into place
    replace  right after a file was renamed into place (between the state and the weight files)
"""
import io
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

import train  # noqa: E402
from pix2pix_tr.run import checkpoint  # noqa: E402


def arm(hook, n):
    count = [0]

    def tick():
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if hook == "start":
        real_train = train.train
        train.train = lambda *a, **k: (tick(), real_train(*a, **k))[1]
    elif hook == "restore":
        real_load = checkpoint.load_training_state
        checkpoint.load_training_state = lambda *a, **k: (real_load(*a, **k), tick())[0]
    elif hook == "step":
        real_requires_grad_ = torch.nn.Module.requires_grad_

        def requires_grad_(net, requires_grad=True):   # D is frozen right after its update
            if not requires_grad:
                tick()
            return real_requires_grad_(net, requires_grad)
        torch.nn.Module.requires_grad_ = requires_grad_
    elif hook == "write":
        real_save = torch.save

        def torn_save(obj, f, *a, **k):
            if count[0] + 1 == n and hasattr(f, "write"):
                buffer = io.BytesIO()
                real_save(obj, buffer, *a, **k)
                f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
                f.flush()
            tick()
            return real_save(obj, f, *a, **k)
        torch.save = torn_save
    elif hook == "fsync":
        real_fsync = os.fsync
        os.fsync = lambda fd: (real_fsync(fd), tick())[0]
    elif hook == "replace":
        real_replace = os.replace
        os.replace = lambda *a, **k: (real_replace(*a, **k), tick())[0]
    else:
        raise ValueError(f"unknown hook {hook}")


def serve():
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            torch.set_num_threads(1)  # tiny nets: one thread is as fast, and never spin-waits for a busy core
            try:
                if request.get("kill_at"):
                    arm(*request["kill_at"])
                train.main(request["argv"])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException as err:  # noqa: BLE001 - reported to the test as a status
                print(f"child error: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                code = 3
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        answer = {"status": os.waitstatus_to_exitcode(status)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    serve()
