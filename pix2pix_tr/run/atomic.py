"""Atomic file writes: a file either appears complete under its final name or not at all.

Everything a later step trusts (checkpoints, prepared images, metadata, reports) is written to a
temporary name in the same folder and renamed into place (`atomic_path`). A failed write (full disk,
read-only folder) is one UserError line naming the file, and the file it would have replaced stays; a
killed writer leaves only a dot-prefixed temporary, which `remove_leftovers` clears.
"""
import contextlib
import ctypes
import errno
import json
import os
import shutil
import tempfile

from pix2pix_tr.errors import UserError

TEMP_MARK = ".tmp"
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    base, ext = os.path.splitext(os.path.basename(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f"{TEMP_MARK}{ext}", dir=folder)
    except OSError as err:
        raise write_error(path, err) from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the mode a plain open() would
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


def write_error(path, err):
    """One line for a failed write: the file, the system's reason, and the free space left."""
    reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).strip().splitlines()[0]
    try:
        free = f"; {shutil.disk_usage(os.path.dirname(path) or '.').free / 2**20:.0f} MiB free there"
    except OSError:
        free = ""
    return UserError(f"cannot write {path}: {reason}{free} (full disk, file-size limit or no write "
                     "permission?); the previous file, if any, is kept")


def remove_leftovers(folder):
    """Delete the temporaries that a killed writer left in `folder`; returns their names. Only while no
    other process writes there (train.py holds the run's lock)."""
    if not os.path.isdir(folder):
        return []
    stale = [name for name in os.listdir(folder)
             if name.startswith(".") and TEMP_MARK in name and os.path.isfile(os.path.join(folder, name))]
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(folder, name))
    return stale


def replace_dir(new, dst):
    """Put folder `new` in place of folder `dst`, so that a kill at any moment leaves `dst` whole, old or
    new: Linux's renameat2(RENAME_EXCHANGE) swaps the two in one step, then `new` (holding the old
    folder) is deleted. Where the kernel or filesystem cannot swap, the old folder is renamed away first."""
    if not os.path.isdir(dst):
        os.replace(new, dst)
        return
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except AttributeError:                           # not glibc
        renameat2 = None
    at_cwd, exchange = -100, 2                       # AT_FDCWD, RENAME_EXCHANGE
    if renameat2 is None or renameat2(at_cwd, os.fsencode(new), at_cwd, os.fsencode(dst), exchange) != 0:
        code = ctypes.get_errno() if renameat2 is not None else errno.ENOSYS
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), dst)
        old = f"{new}.old"
        os.rename(dst, old)
        os.rename(new, dst)
        new = old
    shutil.rmtree(new)


def write_text(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_image(path, image, **save_kwargs):
    """Save a PIL image atomically; the format comes from `path`'s extension (the temporary keeps it)."""
    with atomic_path(path) as tmp:
        image.save(tmp, **save_kwargs)


def torch_save(path, obj):
    """torch.save, atomically, flushed to disk before the rename (so it survives a crash of the machine)."""
    import torch

    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as f:
                torch.save(obj, f)
                f.flush()
                os.fsync(f.fileno())
        except RuntimeError as err:  # torch's zip writer: "file write failed", "unexpected pos ..."
            raise write_error(path, err) from None
