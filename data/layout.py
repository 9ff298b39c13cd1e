"""The prepared dataset layout: the one place that says where every file of a dataset lives.

    <root>/
      metadata.json                  what the dataset is (see `DatasetMeta`)
      train/<frame_id>.jpg           aligned pair, A | B side by side: A = label colour image,
      val/<frame_id>.jpg             B = photo, each half image_size (pix2pix's AtoB = labels->photos)
      labels/train/<frame_id>.png    evaluation labels of the same frame: trainIds (uint8,
      labels/val/<frame_id>.png      255 = ignore), at label_size (the source resolution)

Frame ids are the source's own (`aachen_000000_000019` for Cityscapes, `synthcity_000042` for
SynthCity); they travel with every sample, name every result, and match results to labels.

pix2pix's already-prepared `cityscapes` folder (train/ val/ of side-by-side jpgs, photo | label,
no metadata, no labels/) is also readable for training (`--direction BtoA`, as pix2pix trains it),
but FCN-score needs the labels/ folder, which only `prepare_cityscapes.py` writes.
"""
import dataclasses
import json
import os

from pix2pix_tr.run import atomic
from pix2pix_tr.errors import UserError

METADATA_FILE = "metadata.json"
PAIR_EXTENSIONS = (".jpg", ".jpeg", ".png")
LABEL_EXTENSION = ".png"
IGNORE_INDEX = 255
SPLITS = ("train", "val")

# The file each preparer writes first (its parameters, see `check_same_params`) -> the command that
# resumes it. One of them (or labels/) without metadata.json: a preparation that was interrupted.
PREPARERS = {
    ".prepare_params.json": "python data/prepare_cityscapes.py --gtFine_dir ... --leftImg8bit_dir ... "
                            "--output_dir {root}",
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
    """Paths of one prepared dataset rooted at `root`."""

    def __init__(self, root):
        self.root = os.fspath(root)

    # --- paths --------------------------------------------------------------------------
    @property
    def metadata_path(self):
        return os.path.join(self.root, METADATA_FILE)

    def pair_dir(self, split):
        return os.path.join(self.root, split)

    def label_dir(self, split):
        return os.path.join(self.root, "labels", split)

    def pair_path(self, split, frame_id, ext=".jpg"):
        return os.path.join(self.pair_dir(split), frame_id + ext)

    def label_path(self, split, frame_id):
        return os.path.join(self.label_dir(split), frame_id + LABEL_EXTENSION)

    # --- state --------------------------------------------------------------------------
    def is_prepared(self):
        """True once a preparer has finished: metadata.json is written last, atomically."""
        return os.path.isfile(self.metadata_path)

    def has_labels(self, split):
        return os.path.isdir(self.label_dir(split))

    def is_unfinished(self):
        """True if a preparer started here but never wrote metadata.json (it was interrupted):
        its parameters file or labels/ is there. pix2pix's own prepared folder has neither."""
        if self.is_prepared():
            return False
        return (any(os.path.isfile(os.path.join(self.root, f)) for f in PREPARERS)
                or os.path.isdir(os.path.join(self.root, "labels")))

    def check_finished(self):
        """A UserError saying how to resume if the preparation of this folder was interrupted."""
        if not self.is_unfinished():
            return
        commands = [cmd.format(root=self.root) for f, cmd in PREPARERS.items()
                    if os.path.isfile(os.path.join(self.root, f))]
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
                raw = json.load(f)
            return DatasetMeta(**raw)
        except (ValueError, TypeError) as err:
            raise UserError(f"{self.metadata_path} is not valid dataset metadata: {err}") from None

    def write_meta(self, meta):
        """Write metadata.json atomically. Preparers call this last: it marks the dataset done."""
        atomic.write_json(self.metadata_path, dataclasses.asdict(meta))

    def pair_files(self, split):
        """Sorted aligned-pair files of a split, or a UserError if the folder is missing or empty."""
        folder = self.pair_dir(split)
        if not os.path.isdir(folder):
            raise UserError(f"no '{split}' folder in {self.root}: expected {folder}/<frame_id>.jpg")
        files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                       if f.lower().endswith(PAIR_EXTENSIONS) and not f.startswith("."))
        if not files:
            raise UserError(f"{folder} holds no images (.jpg or .png aligned pairs)")
        return files

    def frame_ids(self, split):
        return [frame_id_of(p) for p in self.pair_files(split)]


def frame_id_of(path):
    """The frame id a file is named by: its base name without extension."""
    return os.path.splitext(os.path.basename(path))[0]


def check_output_dir(path, flag="--output_dir"):
    """A UserError if a preparer's output folder is an existing file (before any work is done)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{flag} {path} is an existing file, not a folder; pass a folder path "
                        "(it is created if missing)")


def make_output_dir(path, flag="--output_dir"):
    """Create a preparer's output folder, or a UserError if the path is a file or cannot be made."""
    check_output_dir(path, flag)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise UserError(f"{flag} {path} cannot be created ({err.strerror}); pass a folder you can "
                        "write to") from None


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
