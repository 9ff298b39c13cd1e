"""The prepared dataset layout: the one place that says where every file of a dataset lives.

    <root>/metadata.json                   what the dataset is (`DatasetMeta`); written last
    <root>/<split>/<frame_id>.jpg          aligned pair A | B: A = label colour image, B = photo
    <root>/labels/<split>/<frame_id>.png   evaluation labels: trainIds (uint8, 255 = ignore)

`find_images` is the one rule for which files form a split (pix2pix's: its extensions in any case,
sub-folders included, sorted, hidden files skipped) and `frame_id` the one rule naming a frame (its
path below the split folder, without extension). pix2pix's own folders (no metadata.json, no labels/)
read too, for training. To add a dataset, write a preparer of this layout (docs/data.md).
"""
import contextlib
import dataclasses
import json
import multiprocessing
import os
import signal
import sys

from data.images import open_image
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic

METADATA_FILE = "metadata.json"
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")   # pix2pix's
LABEL_EXTENSION = ".png"
IGNORE_INDEX = 255
SPLITS = ("train", "val")

PREPARE_CITYSCAPES = "python data/prepare_cityscapes.py --gtFine_dir ... --leftImg8bit_dir ... --output_dir {root}"
# The file each preparer writes first (its parameters, see `check_same_params`) -> the command that
# resumes it. One of them (or labels/) without metadata.json: a preparation that was interrupted.
PREPARERS = {
    ".prepare_params.json": PREPARE_CITYSCAPES,
    ".synthcity_params.json": "python data/synthcity.py --output_dir {root} (with its earlier --num_train, "
                              "--num_val, --size, --seed)",
}


def cityscapes_classes():
    """The 19 evaluated Cityscapes classes as (names, palette), ordered by trainId, from the
    official cityscapesscripts definitions."""
    from cityscapesscripts.helpers.labels import labels

    evaluated = sorted((lab for lab in labels if 0 <= lab.trainId < IGNORE_INDEX), key=lambda lab: lab.trainId)
    return [lab.name for lab in evaluated], [list(lab.color) for lab in evaluated]


@dataclasses.dataclass
class DatasetMeta:
    """Contents of metadata.json: what a prepared dataset is."""

    name: str                          # "cityscapes", "synthcity", ...
    classes: list                      # class names, index = trainId
    palette: list                      # [r, g, b] per class, index = trainId
    image_size: list                   # [H, W] of each half of an aligned pair
    label_size: list                   # [H, W] of the evaluation labels
    splits: dict                       # split -> number of frames
    segmenters: list                   # default FCN-score segmenters: smp hub ids or local dirs
    ignore_index: int = IGNORE_INDEX
    a_is: str = "label"                # what the left half (A) of a pair shows
    b_is: str = "photo"                # what the right half (B) shows
    source: dict = dataclasses.field(default_factory=dict)   # how it was made (args, versions)
    version: int = 1

    @property
    def num_classes(self):
        return len(self.classes)


class PreparedLayout:
    """Paths and state of one prepared dataset rooted at `root`."""

    def __init__(self, root):
        self.root = os.fspath(root)
        self.metadata_path = os.path.join(self.root, METADATA_FILE)

    def pair_dir(self, split):
        return os.path.join(self.root, split)

    def label_dir(self, split):
        return os.path.join(self.root, "labels", split)

    def pair_path(self, split, frame_id, ext=".jpg"):
        return os.path.join(self.pair_dir(split), frame_id + ext)

    def label_path(self, split, frame_id):
        return os.path.join(self.label_dir(split), frame_id + LABEL_EXTENSION)

    def is_prepared(self):
        """True once a preparer has finished: metadata.json is written last, atomically."""
        return os.path.isfile(self.metadata_path)

    def has_labels(self, split):
        return os.path.isdir(self.label_dir(split))

    def check_finished(self):
        """A UserError saying how to resume if a preparer started here (its parameters file or labels/
        is there) but never wrote metadata.json. pix2pix's own prepared folder has neither."""
        if self.is_prepared():
            return
        commands = [cmd.format(root=self.root) for f, cmd in PREPARERS.items()
                    if os.path.isfile(os.path.join(self.root, f))]
        if not commands and not os.path.isdir(os.path.join(self.root, "labels")):
            return
        how = commands[0] if commands else ("the command that prepared it (data/prepare_cityscapes.py "
                                            f"or data/synthcity.py) with --output_dir {self.root}")
        raise UserError(f"{self.root} is an unfinished preparation (no {METADATA_FILE} yet: it was "
                        f"interrupted); rerun {how}: it skips the frames already written and finishes")

    def read_meta(self):
        """The dataset's metadata, or a UserError naming the folder if it was never prepared."""
        if not self.is_prepared():
            self.check_finished()
            raise UserError(f"{self.root} is not a prepared dataset (no {METADATA_FILE}); "
                            "prepare it with data/prepare_cityscapes.py or data/synthcity.py")
        try:
            with open(self.metadata_path, encoding="utf-8") as f:
                return DatasetMeta(**json.load(f))
        except (ValueError, TypeError) as err:
            raise UserError(f"{self.metadata_path} is not valid dataset metadata: {err}") from None

    def write_meta(self, meta):
        """Write metadata.json atomically. Preparers call this last: it marks the dataset done."""
        atomic.write_json(self.metadata_path, dataclasses.asdict(meta))

    def pair_files(self, split, max_dataset_size=float("inf")):
        """Sorted aligned-pair files of a split, or a UserError if the folder is missing or empty."""
        return find_images(split_folder(self.root, split), max_dataset_size, what="images (aligned A|B pairs)")

    def frame_ids(self, split):
        return [frame_id(p, self.pair_dir(split)) for p in self.pair_files(split)]


# --- images and frame ids ----------------------------------------------------------------------
def is_image_file(name):
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def frame_id(path, root):
    """`path` relative to `root`, '/'-separated, without extension: the name of its results."""
    return os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, "/")


def split_folder(root, phase):
    """`root/phase`, or a UserError naming the folders `root` does have."""
    folder = os.path.join(root, phase)
    if not os.path.isdir(folder):
        others = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                        and not d.startswith(".") and d != "labels") if os.path.isdir(root) else []
        hint = f" ({root} has {', '.join(others)}: choose one with --phase)" if others else ""
        raise UserError(f"no '{phase}' folder in {root}: expected {folder}/<frame_id>.jpg{hint}")
    return folder


def find_images(folder, max_dataset_size=float("inf"), what="images"):
    """Sorted paths of the images under `folder`, at most `max_dataset_size`; a UserError if none."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files if is_image_file(f)]
    if not found:
        raise UserError(f"{folder} holds no {what} (pix2pix's image files: "
                        f"{' '.join(IMG_EXTENSIONS)}, in it or its sub-folders)")
    found.sort(key=lambda p: os.path.relpath(p, folder).replace(os.sep, "/"))
    return found[:int(max_dataset_size)] if max_dataset_size != float("inf") else found


def make_output_dir(path):
    """Create a preparer's --output_dir, or a UserError if the path is a file or cannot be made."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--output_dir {path} is an existing file, not a folder; pass a folder path "
                        "(it is created if missing)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UserError(f"--output_dir {path} cannot be created ({err.strerror}); pass a folder you "
                        "can write to") from None


def decoded_size(path):
    """(width, height) of an image file that decodes completely; None if it is missing, empty or
    damaged. A preparer's re-run keeps a frame only if both its files pass (else writes it again)."""
    try:
        return open_image(path, mode=None).size
    except UserError:                                     # missing files say so too
        return None


def check_same_params(root, params_file, params, what):
    """Refuse to mix output made with other parameters into `root`: the first run records its
    parameters in `root/params_file`; later runs (re-runs that skip finished frames) must match."""
    path = os.path.join(root, params_file)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        if old != params:
            raise UserError(f"{root} holds {what} made with {old}, not {params}; "
                            "choose another --output_dir or delete it")
    else:
        atomic.write_json(path, params)


def run_jobs(fn, jobs, workers, desc, frames=lambda job: 1):
    """[fn(job) for job in jobs] in `workers` processes (None: one per core; 1: this one), with a
    progress bar counting `frames(job)` per job. A preparer's frames are independent of the order."""
    from tqdm import tqdm

    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs)))
    results = []
    with tqdm(total=sum(map(frames, jobs)), desc=desc, unit="frame") as bar, contextlib.ExitStack() as stack:
        mapped = map(fn, jobs)
        if workers > 1:
            ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
            # Ctrl-C reaches the whole process group: the workers leave it to this process, which
            # stops them (Pool's exit); else each prints its own KeyboardInterrupt traceback
            pool = ctx.Pool(workers, initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
            mapped = stack.enter_context(pool).imap(fn, jobs)
        for job, result in zip(jobs, mapped):
            results.append(result)
            bar.update(frames(job))
    return results
