"""run_cli: a UserError becomes one line and exit status 2, also when a DataLoader worker raised it."""
import errno
import multiprocessing

import pytest
import torch

from pix2pix_tr.errors import UserError, run_cli
from pix2pix_tr.run import stopping


class _BadImageDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        raise UserError(f"frame_{index}.jpg is truncated; re-prepare the dataset")


def test_user_error_is_one_line_exit_2(capsys):
    def main(argv):
        raise UserError("no such folder: x; pass --dataroot")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: no such folder: x; pass --dataroot\n"


def test_error_from_a_dataloader_worker_keeps_only_the_users_line_and_ends_the_workers(capsys):
    """train.py's workers ignore SIGTERM: left to multiprocessing's exit hook, the failed run would hang."""
    def main(argv):
        loader = torch.utils.data.DataLoader(_BadImageDataset(), num_workers=2,
                                             worker_init_fn=stopping.ignore_stop_signals)
        next(iter(loader))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == "error: frame_0.jpg is truncated; re-prepare the dataset\n"
    assert not multiprocessing.active_children()


def test_an_os_error_on_a_path_is_one_line_and_one_without_a_path_is_a_traceback(capsys):
    def read_only(argv):                                     # what a read-only mount gives (root ignores modes)
        raise OSError(errno.EROFS, "Read-only file system", "/mnt/ro/run")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(read_only)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.startswith("error: /mnt/ro/run: Read-only file system; check the paths given")

    def bug(argv):
        raise OSError("no path: a bug's or the system's")
    with pytest.raises(OSError, match="no path"):
        run_cli(bug)


@pytest.mark.parametrize("raised", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] "
                                    "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB")])
def test_running_out_of_memory_is_one_line_and_other_runtime_errors_are_tracebacks(capsys, raised):
    def main(argv):
        raise raised
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and "--load_size" in err and err.count("\n") == 1

    def bug(argv):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")
    with pytest.raises(RuntimeError, match="shapes"):
        run_cli(bug)
