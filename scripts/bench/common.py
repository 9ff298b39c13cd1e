"""What the benchmarks share: the device they time on, and waiting for it before reading the clock."""
import torch

from pix2pix_tr.errors import UserError


def device_of(name, threads=None):
    """torch.device(`name`), refused in one line where it names CUDA and there is none; `threads`: torch's
    CPU threads (None or 0: torch's default)."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU here; use --device cpu")
    if threads:
        torch.set_num_threads(threads)
    return device


def sync(device):
    """Wait for the work queued on `device`, so that a clock read next measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
