"""Aligned pairs for training and testing: pix2pix's AlignedDataset with reproducible augmentation.

Each image file under `<root>/<phase>/` holds A | B side by side: the prepared layout of
`data/layout.py`, or any pix2pix dataset folder (pix2pix's own `cityscapes`, whose pairs are photo |
label: train it with `direction="BtoA"` as pix2pix does; `facades`; pairs made by pix2pix's
combine_A_and_B.py). As pix2pix's AlignedDataset it reads pix2pix's image files, in sub-folders too
(`data/layout.py` says which files and names them), and halves of any size: a file W x H is split
at W/2 into two W/2 x H halves (pix2pix's tips train on 360x256 images, 720x256 pairs). A file whose
width is odd (halves of unequal width) is refused, naming it; a prepared dataset's pairs must have
the size its metadata.json says.
Preprocessing is pix2pix's (`base_dataset.get_transform`):

    resize_and_crop       resize both halves to load_size x load_size (bicubic), random crop_size crop
    crop                  random crop_size crop of the original
    scale_width           resize to width load_size (height keeps the aspect, at least crop_size)
    scale_width_and_crop  scale_width to load_size, then a random crop_size crop
    none                  round each side to a multiple of 4 (bicubic)

then a random horizontal flip unless no_flip, the same crop and flip for A and B, and [-1, 1].
`data/single.py` applies the same preprocessing to single images (pix2pix's SingleDataset).
As in pix2pix, a side whose network takes one channel (`input_nc` for A, `output_nc` for B) is
converted to grayscale (PIL's "L") before the resize; the pairs themselves are always read as RGB.

Unlike pix2pix, the crop position and flip of sample `index` come from its own generator seeded
with (seed, epoch, index) (`set_epoch` before each epoch), not from a global random state: the data
are the same whatever the number of DataLoader workers, and a resumed run sees what an uninterrupted
one would. (Workers receive the dataset when an epoch's iterator starts, so call `set_epoch` before
iterating and do not use `persistent_workers=True`.)

`preload=True` decodes every pair once and keeps the deterministic part of the preprocessing
(the resize) in memory as uint8, so an epoch costs only crops and flips.
"""
import numpy as np
import torch
from PIL import Image

from data.layout import PreparedLayout, find_images, frame_id, image_size, open_image, split_folder
from pix2pix_tr.errors import UserError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
DIRECTIONS = ("AtoB", "BtoA")


def resize_deterministic(img, preprocess, load_size, crop_size):
    """The part of pix2pix's transform that involves no randomness (PIL bicubic, as pix2pix)."""
    w, h = img.size
    if preprocess == "resize_and_crop":
        return img.resize((load_size, load_size), Image.BICUBIC)
    if preprocess in ("scale_width", "scale_width_and_crop"):
        if w == load_size and h >= crop_size:
            return img
        return img.resize((load_size, int(max(load_size * h / w, crop_size))), Image.BICUBIC)
    if preprocess == "none":                               # pix2pix's __make_power_2(base=4)
        nh, nw = int(round(h / 4) * 4), int(round(w / 4) * 4)
        return img if (nh, nw) == (h, w) else img.resize((nw, nh), Image.BICUBIC)
    return img                                             # "crop"


def crop_and_flip(preprocess, load_size, crop_size, size, seed, epoch, index):
    """(x, y, flip) of sample `index` at `epoch`: pix2pix's get_params for an image of `size`
    (w, h) before resizing, drawn from a generator seeded with (seed, epoch, index)."""
    if preprocess == "resize_and_crop":
        w = h = load_size
    else:
        w, h = size
        if preprocess == "scale_width_and_crop":
            w, h = load_size, load_size * h // w
    rng = np.random.default_rng([seed, epoch, index])
    x = int(rng.integers(0, max(0, w - crop_size) + 1))
    y = int(rng.integers(0, max(0, h - crop_size) + 1))
    flip = bool(rng.random() > 0.5)
    return x, y, flip


def random_part(img, preprocess, crop_size, no_flip, x, y, flip):
    """The random part of pix2pix's transform on a resized uint8 CHW image: crop (pix2pix's
    __crop: only if larger), flip, then [-1, 1] floats (ToTensor + Normalize(0.5, 0.5))."""
    if "crop" in preprocess:
        _, h, w = img.shape
        if w > crop_size or h > crop_size:
            img = img[:, y:y + crop_size, x:x + crop_size]
    if not no_flip and flip:
        img = img.flip(-1)
    return img.float().div(255).sub(0.5).div(0.5)


def check_preprocessing(root, preprocess, load_size, crop_size, channels):
    """One UserError line for settings no image could satisfy. `channels`: {flag: nc}."""
    for flag, nc in channels.items():
        if nc not in (1, 3):
            raise UserError(f"the images in {root} have 3 channels (RGB) while {flag} is {nc}; use "
                            f"{flag} 3, or 1 to convert them to grayscale as pix2pix does")
    if preprocess not in PREPROCESS_MODES:
        raise UserError(f"--preprocess {preprocess!r} must be one of {', '.join(PREPROCESS_MODES)}")
    if "crop" in preprocess and load_size < crop_size:
        raise UserError(f"--load_size {load_size} must be at least --crop_size {crop_size}")


def to_uint8_chw(img):
    array = np.asarray(img, dtype=np.uint8)
    if array.ndim == 2:                                    # grayscale ("L"): one channel
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


class AlignedDataset(torch.utils.data.Dataset):
    """Aligned A|B pairs of one phase, preprocessed as pix2pix does, augmented reproducibly."""

    def __init__(self, root, phase="train", *, direction="AtoB", preprocess="resize_and_crop",
                 load_size=286, crop_size=256, no_flip=False, max_dataset_size=float("inf"), seed=0,
                 preload=False, input_nc=3, output_nc=3):
        if direction not in DIRECTIONS:
            raise UserError(f"--direction {direction!r} must be one of {', '.join(DIRECTIONS)}")
        check_preprocessing(root, preprocess, load_size, crop_size,
                            {"--input_nc": input_nc, "--output_nc": output_nc})
        self.root, self.phase = str(root), phase
        self.direction, self.preprocess = direction, preprocess
        self.load_size, self.crop_size, self.no_flip = load_size, crop_size, no_flip
        a_gray, b_gray = input_nc == 1, output_nc == 1     # left | right halves: A | B unless BtoA
        self._gray = (a_gray, b_gray) if direction == "AtoB" else (b_gray, a_gray)
        self.seed, self.epoch = seed, 0
        layout = PreparedLayout(root)
        folder = split_folder(self.root, phase)
        files = find_images(folder, max_dataset_size, what="images (aligned A|B pairs)")
        self.paths = files
        self.frame_ids = [frame_id(p, folder) for p in files]
        expected = None
        if layout.is_prepared():
            h, w = layout.read_meta().image_size
            expected = (2 * w, h)
        for path in files:
            self._check_shape(path, expected)
        self._cache = None
        if preload:
            from tqdm import tqdm

            self._cache = [self._load(i) for i in tqdm(range(len(files)), desc=f"preload {phase}",
                                                         unit="pair", leave=False)]

    @staticmethod
    def _check_shape(path, expected):
        size = image_size(path)
        if expected is not None and size != expected:
            raise UserError(f"{path} is {size[0]}x{size[1]}, but this dataset's pairs are "
                            f"{expected[0]}x{expected[1]} (metadata.json); re-create it")
        if expected is None and (size[0] % 2 or size[0] < 2):
            raise UserError(f"{path} is {size[0]}x{size[1]}: an aligned pair is A | B side by side, two "
                            f"halves of equal width, so its width must be even; re-make it (pix2pix's "
                            "combine_A_and_B.py) or crop it to an even width")

    def __len__(self):
        return len(self.paths)

    def set_epoch(self, epoch):
        """Choose the epoch whose crops and flips `__getitem__` returns."""
        self.epoch = int(epoch)

    def transform_params(self, index):
        """(x, y, flip) of sample `index` this epoch: pix2pix's get_params, seeded by
        (seed, epoch, index)."""
        size = None if self.preprocess == "resize_and_crop" else self._half_size(index)
        return crop_and_flip(self.preprocess, self.load_size, self.crop_size, size, self.seed, self.epoch, index)

    def _half_size(self, index):
        if self._cache is not None:
            return self._cache[index][2]
        w, h = image_size(self.paths[index])
        return w // 2, h

    def _load(self, index):
        """Decode pair `index`, split it into its halves, apply the deterministic resize.
        Returns (left uint8 CHW, right uint8 CHW, (half width, height) before resizing)."""
        path = self.paths[index]
        ab = open_image(path)
        w, h = ab.size
        w2 = int(w / 2)
        halves = [ab.crop((0, 0, w2, h)), ab.crop((w2, 0, w, h))]
        halves = [x.convert("L") if gray else x for x, gray in zip(halves, self._gray)]   # pix2pix's Grayscale(1)
        left, right = (to_uint8_chw(resize_deterministic(x, self.preprocess, self.load_size,
                                                           self.crop_size)) for x in halves)
        return left, right, (w2, h)

    def _random_part(self, img, x, y, flip):
        return random_part(img, self.preprocess, self.crop_size, self.no_flip, x, y, flip)

    def __getitem__(self, index):
        left, right, _ = self._cache[index] if self._cache is not None else self._load(index)
        x, y, flip = self.transform_params(index)
        a, b = (left, right) if self.direction == "AtoB" else (right, left)
        path = self.paths[index]
        return {"A": self._random_part(a, x, y, flip), "B": self._random_part(b, x, y, flip),
                "frame_id": self.frame_ids[index], "A_paths": path, "B_paths": path}
