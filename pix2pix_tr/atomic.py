"""Atomic file writes: a file either appears complete under its final name or not at all.

Everything the project writes that a later step trusts (checkpoints, prepared images, metadata,
reports) goes through `atomic_path`: the data are written to a temporary name in the same folder
and renamed into place, so an interrupted run never leaves a half-written file that looks done.
"""
import contextlib
import json
import os
import tempfile

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the mode a plain open() would
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json(path, obj):
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_image(path, image, **save_kwargs):
    """Save a PIL image atomically; the format comes from `path`'s extension."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").upper()
    fmt = {"JPG": "JPEG"}.get(fmt, fmt)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **save_kwargs)


def torch_save(path, obj):
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
