"""Which weights a score was made with, as SHA-256 digests: one home for hashing weights files.

FID records its Inception weights' digest, the FCN-8s converter keys its cache on the .caffemodel's,
fcn_score records each segmenter's (`weights_fingerprint` in fcn_scores.json), and the reproduction
keeps them in every cell's cell.json so that one grid is never judged by two sets of weights. A file
is read once per process while its size and modification time stay (a .caffemodel is 540 MB).
No torch here: scripts/repro imports it without loading a model.
"""
import functools
import hashlib
import os

WEIGHTS_SUFFIXES = (".safetensors", ".bin", ".pth")


def file_sha256(path):
    """The file's SHA-256, as `sha256sum` prints it."""
    st = os.stat(path)
    return _file_sha256(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _file_sha256(path, size, mtime_ns):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def short_name(spec):
    """A segmenter's name in tables: its folder's or file's base name, a hub id's repo name."""
    return os.path.basename(os.path.normpath(spec))


def is_local(spec):
    """A folder that exists, or a spelling no hub id has (./x, /x, a/b/c)."""
    return os.path.isdir(spec) or spec.startswith((".", "/", "~")) or spec.count("/") != 1


def weights_fingerprint(spec):
    """Which weights the segmenter `spec` names: a local one's SHA-256 (a folder's *.safetensors /
    *.bin / *.pth, or one weights file such as a .caffemodel; several files: the SHA-256 of their
    digests in name order), a hub id itself, None for a local path that does not exist (yet)."""
    if os.path.isdir(spec):
        files = [os.path.join(spec, f) for f in sorted(os.listdir(spec)) if f.endswith(WEIGHTS_SUFFIXES)]
    elif os.path.isfile(spec):
        files = [spec]
    else:
        return None if is_local(spec) else spec
    digests = [file_sha256(path) for path in files]
    if len(digests) == 1:
        return digests[0]
    return hashlib.sha256("".join(digests).encode()).hexdigest() if digests else "no weights file"
