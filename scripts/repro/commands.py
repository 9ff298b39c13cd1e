"""The command lines of the reproduction and the file that proves each one finished.

A `Stage` is one subprocess (train.py, test.py, evaluate/fcn_score.py, ...) with the path whose
existence means it is done; every such file is written atomically by the tool that makes it, so a
re-run skips exactly the stages that finished. A cell's stages, in order:

    train                      checkpoints/<cell>/<last epoch>_net_G.pth
    test_<e>, score_<e>        for each saved epoch e of a curve cell (FCN-score over epochs)
    test_latest, score_latest  results/<cell>/val_latest/fcn_scores.json  (the cell is done)

Where things go, under the work dir (default: the repository root):

    <dataset_dir>                          the scale's dataset (SynthCity is generated there)
    checkpoints/repro_<scale>/<cell>/      train.py's checkpoints and loss_log.jsonl
    results/repro_<scale>/<cell>/<phase>_<epoch>/{images/, index.html, fcn_scores.json}

The ground-truth row (the real photos scored by the same segmenters) comes from `fcn_score --gt`
on the first cell's last scoring; fcn_score scores real photos only alongside results.
"""
import dataclasses
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PHASE = "val"
# train.py flag that turns TR's lr/(k+1) sawtooth off (proximal term only); see docs/readme/reproduce.md.
NO_SAWTOOTH_FLAG = "--tr_no_inner_lr_decay"
LAMBDA_MODE_FLAG = "--tr_lambda_mode"
SEGMENTER_FILE = "segmenter.json"   # train_segmenter.py writes it into the folder it renames into place


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    argv: tuple
    done_path: str
    resume_flag: str = ""    # appended when a previous attempt left a resumable state
    resume_path: str = ""    # ... whose existence means that


@dataclasses.dataclass(frozen=True)
class RunPaths:
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
        return os.path.join(self.epoch_dir(cell, epoch), "fcn_scores.json")

    def loss_log(self, cell):
        return os.path.join(self.cell_checkpoints(cell), "loss_log.jsonl")


def _device(device):
    """--device flags; none for 'auto', so each tool picks CUDA when there is one."""
    return () if device in (None, "", "auto") else ("--device", device)


def _script(relpath):
    return (sys.executable, os.path.join(REPO, relpath))


def segmenter_paths(scale, paths):
    """fcn_score --segmenter values: the scale's own, the one its recipe makes, or none
    (the dataset's defaults, from its metadata)."""
    if scale.segmenters:
        return list(scale.segmenters)
    if scale.segmenter_recipe:
        return [os.path.join(paths.work_dir, scale.segmenter_dir)]
    return []


def _segmenter_flags(scale, paths):
    flags = []
    for seg in segmenter_paths(scale, paths):
        flags += ["--segmenter", seg]
    return flags


def train_flags(cell, scale):
    """train.py flags that make this cell what it is (besides paths and the scale's shared ones)."""
    v = cell.variant
    flags = ["--optimizer", v.optimizer, "--batch_size", str(v.batch_size), "--seed", str(cell.seed),
             "--lr", f"{scale.lr * v.lr_factor:.6g}"]
    if v.optimizer == "tradam":
        flags += ["--tr_lambda", f"{v.tr_lambda:g}", "--tr_inner_steps", str(v.inner_steps)]
        if v.lambda_mode != "scaled":
            flags += [LAMBDA_MODE_FLAG, v.lambda_mode]
        if not v.inner_lr_decay:
            flags.append(NO_SAWTOOTH_FLAG)
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
                            os.path.join(paths.dataroot, "metadata.json")))
    if scale.segmenter_recipe:
        seg = os.path.join(paths.work_dir, scale.segmenter_dir)
        stages.append(Stage("segmenter", (*_script("evaluate/train_segmenter.py"), "--dataroot",
                                          paths.dataroot, "--output_dir", seg, *scale.segmenter_recipe),
                            os.path.join(seg, SEGMENTER_FILE)))
    return stages


def _test_and_score(cell, scale, paths, device, epoch, ground_truth=False):
    out = paths.epoch_dir(cell, epoch)
    num_val = scale.synthcity["num_val"] if scale.synthcity else 100000
    test = Stage(f"test_{epoch}", (*_script("test.py"), "--dataroot", paths.dataroot, "--name", cell.name,
                                   "--checkpoints_dir", paths.checkpoints_dir, "--results_dir",
                                   paths.results_dir, "--phase", PHASE, "--epoch", str(epoch),
                                   "--num_test", str(num_val), *_device(device), *scale.test_flags),
                 os.path.join(out, "index.html"))
    score = Stage(f"score_{epoch}", (*_script("evaluate/fcn_score.py"), "--results_dir",
                                     os.path.join(out, "images"), "--dataroot", paths.dataroot,
                                     "--phase", PHASE, "--output_dir", out, *_device(device),
                                     *_segmenter_flags(scale, paths), *scale.score_flags,
                                     *(("--gt",) if ground_truth else ())),
                  paths.scores_path(cell, epoch))
    return [test, score]


def cell_stages(cell, scale, paths, device, curve=False, ground_truth=False):
    """The stages of one cell, in order; the last one's output marks the cell done. With
    `ground_truth` its last scoring also scores the real photos (the tables' GT row)."""
    ckpt = paths.cell_checkpoints(cell)
    train = Stage("train", (*_script("train.py"), "--dataroot", paths.dataroot, "--name", cell.name,
                            "--checkpoints_dir", paths.checkpoints_dir, *train_flags(cell, scale),
                            "--n_epochs", str(scale.n_epochs), "--n_epochs_decay",
                            str(scale.n_epochs_decay), "--save_epoch_freq", str(scale.save_epoch_freq),
                            "--display_id", "0", *_device(device), *scale.train_flags),
                  os.path.join(ckpt, f"{scale.total_epochs}_net_G.pth"),
                  resume_flag="--continue_train", resume_path=os.path.join(ckpt, "latest_net_G.pth"))
    stages = [train]
    if curve:
        for epoch in scale.curve_epochs():
            stages += _test_and_score(cell, scale, paths, device, epoch)
    stages += _test_and_score(cell, scale, paths, device, "latest", ground_truth)
    return stages


def shell_line(argv):
    """A stage's command as one copy-pasteable shell line, paths relative to the repository root."""
    import shlex

    words = ["python" if a == sys.executable else os.path.relpath(a, REPO) if a.startswith(REPO + os.sep)
             else a for a in argv]
    return " ".join(shlex.quote(w) for w in words)
