"""A cell's command lines, and the file whose existence proves each one finished.

A `Stage` is one subprocess with the path that marks it done; the tools write those files
atomically, so a re-run skips exactly the stages that finished. A cell's stages, in order:

    train                      checkpoints/repro_<scale>/<cell>/<last epoch>_net_G.pth
    test_<e>, score_<e>        each saved epoch e of a curve cell (the FCN-score over training)
    test_latest, score_latest  results/repro_<scale>/<cell>/val_latest/fcn_scores.json: the cell is done

Paths are under the work dir (default: the repository). The real photos' row of the tables
(`fcn_score --gt`) is scored by the first cell's last scoring.
"""
import dataclasses
import os
import shlex
import sys

from data.layout import METADATA_FILE
from evaluate.report import JSON_FILE as SCORES_FILE
from evaluate.segmenters import SEGMENTER_FILE
from pix2pix_tr.run.checkpoint import weights_path
from pix2pix_tr.viz.loss_log import LOSS_JSONL

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASE = "val"
TEST_PAGE = "index.html"        # test.py's page (pix2pix_tr/viz/html.py), written after its images


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple
    done_path: str
    resume_flag: str = ""    # appended when a previous attempt left a resumable state
    resume_path: str = ""    # ... whose existence means that


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where one scale's cells write, under the work dir."""
    work_dir: str
    dataroot: str
    checkpoints_dir: str
    results_dir: str

    @classmethod
    def of(cls, scale, work_dir, dataroot=None):
        work_dir = os.path.abspath(work_dir)
        return cls(work_dir=work_dir,
                   dataroot=os.path.abspath(dataroot or os.path.join(work_dir, scale.dataset_dir)),
                   checkpoints_dir=os.path.join(work_dir, "checkpoints", f"repro_{scale.name}"),
                   results_dir=os.path.join(work_dir, "results", f"repro_{scale.name}"))

    def cell_checkpoints(self, cell):
        return os.path.join(self.checkpoints_dir, cell.name)

    def cell_results(self, cell):
        return os.path.join(self.results_dir, cell.name)

    def epoch_dir(self, cell, epoch):
        return os.path.join(self.results_dir, cell.name, f"{PHASE}_{epoch}")

    def scores_path(self, cell, epoch="latest"):
        return os.path.join(self.epoch_dir(cell, epoch), SCORES_FILE)

    def loss_log(self, cell):
        return os.path.join(self.cell_checkpoints(cell), LOSS_JSONL)


def _device(device):
    """--device flags; none for 'auto', so each tool picks CUDA when there is one."""
    return () if device in (None, "", "auto") else ("--device", device)


def _script(relpath):
    return (sys.executable, os.path.join(REPO, relpath))


def segmenter_paths(scale, paths):
    """fcn_score --segmenter values: the scale's own, the one its recipe makes, or none (the
    dataset's defaults, from its metadata)."""
    if scale.segmenters:
        return list(scale.segmenters)
    return [os.path.join(paths.work_dir, scale.segmenter_dir)] if scale.segmenter_recipe else []


def train_flags(cell, scale):
    """train.py flags that make this cell what it is (besides paths and the scale's shared ones)."""
    v = cell.variant
    flags = ["--optimizer", v.optimizer, "--batch_size", str(v.batch_size), "--seed", str(cell.seed),
             "--lr", f"{scale.lr * v.lr_factor:.6g}"]
    if v.optimizer == "tradam":
        flags += ["--tr_lambda", f"{v.tr_lambda:g}", "--tr_inner_steps", str(v.inner_steps)]
        if v.lambda_mode != "scaled":
            flags += ["--tr_lambda_mode", v.lambda_mode]
        if not v.inner_lr_decay:
            flags.append("--tr_no_inner_lr_decay")
    return flags


def prepare_stages(scale, paths):
    """Stages shared by all cells, run once before them: the dataset and the segmenter (so that
    parallel cells never make them twice)."""
    stages = []
    if scale.synthcity is not None:
        s = scale.synthcity
        stages.append(Stage("dataset", (*_script("data/synthcity.py"), "--output_dir", paths.dataroot,
                                        "--num_train", str(s["num_train"]), "--num_val",
                                        str(s["num_val"]), "--size", str(s["size"]),
                                        "--seed", str(s["seed"])),
                            os.path.join(paths.dataroot, METADATA_FILE)))
    if scale.segmenter_recipe:
        seg = os.path.join(paths.work_dir, scale.segmenter_dir)
        stages.append(Stage("segmenter", (*_script("evaluate/train_segmenter.py"), "--dataroot",
                                          paths.dataroot, "--output_dir", seg, *scale.segmenter_recipe),
                            os.path.join(seg, SEGMENTER_FILE)))
    return stages


def _test_and_score(cell, scale, paths, device, epoch, ground_truth=False):
    out = paths.epoch_dir(cell, epoch)
    num_val = scale.synthcity["num_val"] if scale.synthcity else 100000
    segmenters = [w for seg in segmenter_paths(scale, paths) for w in ("--segmenter", seg)]
    test = Stage(f"test_{epoch}", (*_script("test.py"), "--dataroot", paths.dataroot, "--name", cell.name,
                                   "--checkpoints_dir", paths.checkpoints_dir, "--results_dir",
                                   paths.results_dir, "--phase", PHASE, "--epoch", str(epoch),
                                   "--num_test", str(num_val), *_device(device), *scale.test_flags),
                 os.path.join(out, TEST_PAGE))
    score = Stage(f"score_{epoch}", (*_script("evaluate/fcn_score.py"), "--results_dir",
                                     os.path.join(out, "images"), "--dataroot", paths.dataroot,
                                     "--phase", PHASE, "--output_dir", out, *_device(device),
                                     *segmenters, *scale.score_flags, *(("--gt",) if ground_truth else ())),
                  paths.scores_path(cell, epoch))
    return [test, score]


def cell_stages(cell, scale, paths, device, curve=False, ground_truth=False):
    """The stages of one cell, in order; the last one's output marks the cell done. A `curve` cell
    is also scored at every saved epoch; with `ground_truth` its last scoring also scores the real
    photos (the tables' GT row)."""
    ckpt = paths.cell_checkpoints(cell)
    train = Stage("train", (*_script("train.py"), "--dataroot", paths.dataroot, "--name", cell.name,
                            "--checkpoints_dir", paths.checkpoints_dir, *train_flags(cell, scale),
                            "--n_epochs", str(scale.n_epochs), "--n_epochs_decay",
                            str(scale.n_epochs_decay), "--save_epoch_freq", str(scale.save_epoch_freq),
                            "--display_id", "0", *_device(device), *scale.train_flags),
                  weights_path(ckpt, scale.total_epochs, "G"),
                  resume_flag="--continue_train", resume_path=weights_path(ckpt, "latest", "G"))
    stages = [train]
    for epoch in scale.curve_epochs() if curve else ():
        stages += _test_and_score(cell, scale, paths, device, epoch)
    return stages + _test_and_score(cell, scale, paths, device, "latest", ground_truth)


def shell_line(argv, base=REPO):
    """A command as one copy-pasteable shell line: the interpreter as `python`, paths under `base`
    (the repository, or a work dir: the same words on every machine) and scripts relative to it."""
    def word(a):
        if a == sys.executable:
            return "python"
        for root in (os.path.abspath(base), REPO):
            if a == root or a.startswith(root + os.sep):
                return os.path.relpath(a, root)
        return a
    return " ".join(shlex.quote(word(a)) for a in argv)
