"""The prepared dataset layout: the one place that says where every file of a dataset lives.

    <root>/
      metadata.json                  what the dataset is (see `DatasetMeta`)
      train/<frame_id>.jpg           aligned pair, A | B side by side: A = label colour image,
      val/<frame_id>.jpg             B = photo, each half image_size (pix2pix's AtoB = labels->photos)
      labels/train/<frame_id>.png    evaluation labels of the same frame: trainIds (uint8,
      labels/val/<frame_id>.png      255 = ignore), at label_size (the source resolution)

Frame ids are the source's own (`aachen_000000_000019` for Cityscapes, `synthcity_000042` for
SynthCity); they travel with every sample, name every result, and match results to labels.
`frame_id` is the one rule: a file's path relative to its split folder, without extension.

This module is also the one place that says which files are images and how they are opened, as
pix2pix's data/image_folder.py does, so a pix2pix dataset folder reads here as it reads there:
pix2pix's extensions (any letter case here), sub-folders included (a pair `test/berlin/1.jpg` is frame
`berlin/1`, so pairs of equal base names keep distinct results), sorted by relative path (pix2pix
keeps os.walk's order), hidden files skipped.

pix2pix's already-prepared `cityscapes` folder (train/ val/ of side-by-side jpgs, photo | label,
no metadata, no labels/) is also readable for training (`--direction BtoA`, as pix2pix trains it),
but FCN-score needs the labels/ folder, which only `prepare_cityscapes.py` writes.
"""
import dataclasses
import json
import os

from PIL import Image

from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic

METADATA_FILE = "metadata.json"
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")   # pix2pix's
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
        return find_images(split_folder(self.root, split), what="images (aligned A|B pairs)")

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
    """Sorted paths of the images under `folder` (sub-folders included, hidden ones skipped), at
    most `max_dataset_size`; a UserError naming the folder if there are none."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, f) for f in files if is_image_file(f)]
    if not found:
        raise UserError(f"{folder} holds no {what} (pix2pix's image files: "
                        f"{' '.join(IMG_EXTENSIONS)}, in it or its sub-folders)")
    found.sort(key=lambda p: os.path.relpath(p, folder).replace(os.sep, "/"))
    return found[:int(max_dataset_size)] if max_dataset_size != float("inf") else found


def open_image(path, mode="RGB", fix="delete or re-create it"):
    """Decode an image, converted to `mode` (None: as stored), or one UserError naming the file and `fix`."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode) if mode and img.mode != mode else img.copy()
    except (OSError, SyntaxError, ValueError) as err:      # unreadable, truncated, not an image
        raise UserError(f"{path} is not a readable image ({err}); {fix}") from None


def image_size(path, fix="delete or re-create it"):
    """(width, height) from the file's header alone, or the same UserError as `open_image`."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"{path} is not a readable image ({err}); {fix}") from None


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
