"""Keep freed memory mapped between training steps (glibc's malloc), so a CPU step stops paying
page faults for memory the last step already used.

Why: a pix2pix iteration on the CPU allocates and frees hundreds of MB (activations, gradients,
optimizer temporaries) in blocks of up to 16 MB. glibc hands such blocks back to the kernel (mmap
above its threshold, heap trimming above another), so the next step faults in fresh pages, about a
tenth of a unet_256 iteration (figures in docs/speed.md). Raising the mmap threshold to glibc's
maximum and not trimming the heap keeps those pages in the process for reuse. The resident memory
stays at the step's peak, which every step reaches anyway.

This is process-wide and belongs to the application (train.py calls it), not to library import.
Elsewhere (macOS, musl, Windows) there is nothing to tune and `tune_malloc` returns False.
"""
import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3   # glibc's <malloc.h>
MMAP_THRESHOLD_MAX = 32 * 2**20          # glibc's ceiling on 64-bit (4 * 1024 * 1024 * sizeof(long))
NEVER_TRIM = 2**31 - 1                   # mallopt takes an int
TOP_PAD = 512 * 2**20                    # grow the heap in 512 MB steps (address space; pages come when touched)


def tune_malloc():
    """Set glibc's malloc to keep freed blocks for reuse; True when it did (Linux with glibc)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, NEVER_TRIM), (M_TOP_PAD, TOP_PAD))
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
