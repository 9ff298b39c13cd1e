"""Errors a user can cause: a `UserError` carries one line naming the culprit and the fix, and
`run_cli` prints it and exits with status 2 instead of a traceback. Bugs still raise with tracebacks."""
import multiprocessing
import sys


class UserError(Exception):
    """Something the user can fix: the message is shown as is, on one line."""


def run_cli(main, argv=None):
    """Run `main(argv)`; turn a UserError, an OSError naming a path (an output folder that cannot be
    made or written), running out of memory, or Ctrl-C into one line on stderr and exit status 2 (130).
    Whatever ends it early, its worker processes end with it (`stop_children`)."""
    try:
        return main(argv)
    except BaseException as err:
        stop_children()
        message = _cli_message(err)
        if message is None:                             # a bug, or the system's: the traceback
            raise
        print(message, file=sys.stderr)
        sys.exit(130 if isinstance(err, KeyboardInterrupt) else 2)


def _cli_message(err):
    if isinstance(err, UserError):
        return f"error: {one_line(err)}"
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, (MemoryError, RuntimeError)) and out_of_memory(err):
        return ("error: out of memory (" + one_line(err)[:120] + "); lower the sizes given (--load_size, "
                "--crop_size, --batch_size, --aspect_ratio, --size)")
    if isinstance(err, OSError) and err.filename is not None:
        return (f"error: {err.filename}: {err.strerror or err}; check the paths given (a folder that is a file, "
                "a read-only or full disk, no permission?)")
    return None


def out_of_memory(err):
    """Whether `err` is Python's MemoryError or torch's allocator failing (CPU or CUDA)."""
    return isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError" or \
        "can't allocate memory" in str(err) or "out of memory" in str(err)


def stop_children():
    """Kill this process's multiprocessing children (DataLoader and pool workers). Loader workers ignore
    SIGTERM (a Ctrl-C or a job's signal is the trainer's to handle), so multiprocessing's exit hook,
    which terminates them with SIGTERM and then joins them, would otherwise wait forever while an
    exception still holds their iterator."""
    for child in multiprocessing.active_children():
        child.kill()
        child.join()


def one_line(err):
    """The user's line of a UserError, also when a DataLoader worker raised it: torch then re-raises
    it with the worker's whole traceback as the message, whose last line is `...UserError: <line>`."""
    text = str(err).strip()
    if "\n" not in text:
        return text
    last = text.splitlines()[-1]
    marker = f"{type(err).__name__}: "
    return last.split(marker, 1)[1] if marker in last else last
