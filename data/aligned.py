"""Aligned A|B pairs: pix2pix's AlignedDataset, and the preprocessing it shares with data/single.py.

Each image under `<root>/<phase>/` holds A | B side by side and is split at W/2. Preprocessing is
pix2pix's get_transform (the --preprocess modes: docs/data.md), the same crop and flip for A and B,
then [-1, 1]; a side whose network takes one channel is made grayscale first, as in pix2pix.
Unlike pix2pix, the crop and flip of sample `index` come from a generator seeded with (seed, epoch,
index), so the data do not depend on the number of DataLoader workers and a resumed run sees what an
uninterrupted one would: call `set_epoch` before each epoch (no `persistent_workers`).
"""
import os

import numpy as np
import torch
from PIL import Image

from data.images import image_size, open_image
from data.layout import PreparedLayout, frame_id
from pix2pix_tr.errors import UserError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")
DIRECTIONS = ("AtoB", "BtoA")


class PreprocessedImages(torch.utils.data.Dataset):
    """Images (`paths`, `frame_ids`, set by the subclass) preprocessed as pix2pix does, seeded per sample."""

    def __init__(self, root, *, preprocess, load_size, crop_size, no_flip, seed, channels):
        for flag, nc in channels.items():                  # {flag: the channels its network takes}
            if nc not in (1, 3):
                raise UserError(f"the images in {root} have 3 channels (RGB) while {flag} is {nc}; use "
                                f"{flag} 3, or 1 to convert them to grayscale as pix2pix does")
        self.root, self.preprocess = os.fspath(root), preprocess
        self.load_size, self.crop_size, self.no_flip = load_size, crop_size, no_flip
        self.seed, self.epoch = seed, 0

    def __len__(self):
        return len(self.paths)

    def set_epoch(self, epoch):
        """Choose the epoch whose crops and flips `__getitem__` returns."""
        self.epoch = int(epoch)

    def resized(self, img, gray=False):
        """The part of pix2pix's transform without randomness (PIL bicubic), as a uint8 CHW tensor."""
        (w, h), load = img.size, self.load_size
        try:
            if gray:
                img = img.convert("L")
            if self.preprocess == "resize_and_crop":
                img = img.resize((load, load), Image.BICUBIC)
            elif "scale_width" in self.preprocess and not (w == load and h >= self.crop_size):
                img = img.resize((load, int(max(load * h / w, self.crop_size))), Image.BICUBIC)
            elif self.preprocess == "none" and (w % 4 or h % 4):      # pix2pix's __make_power_2(base=4)
                img = img.resize((int(round(w / 4) * 4), int(round(h / 4) * 4)), Image.BICUBIC)
            array = np.asarray(img, dtype=np.uint8)
        except MemoryError:
            raise UserError(f"out of memory resizing an image of {w}x{h} for --preprocess {self.preprocess} "
                            f"--load_size {load}: lower --load_size") from None
        if array.ndim == 2:                                # grayscale: one channel
            array = array[:, :, None]
        return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()

    def transform_params(self, index, size):
        """(x, y, flip) of sample `index` this epoch: pix2pix's get_params for an image of `size` (w, h)
        before resizing, drawn from a generator seeded with (seed, epoch, index)."""
        if self.preprocess == "resize_and_crop":
            w = h = self.load_size
        else:
            w, h = size
            if self.preprocess == "scale_width_and_crop":
                w, h = self.load_size, self.load_size * h // w
        rng = np.random.default_rng([self.seed, self.epoch, index])
        x = int(rng.integers(0, max(0, w - self.crop_size) + 1))
        y = int(rng.integers(0, max(0, h - self.crop_size) + 1))
        return x, y, bool(rng.random() > 0.5)

    def augmented(self, img, x, y, flip):
        """The random part on a resized uint8 CHW image: crop (pix2pix's __crop: only if larger), flip,
        then [-1, 1] floats (ToTensor + Normalize(0.5, 0.5))."""
        _, h, w = img.shape
        if "crop" in self.preprocess and (w > self.crop_size or h > self.crop_size):
            img = img[:, y:y + self.crop_size, x:x + self.crop_size]
        if not self.no_flip and flip:
            img = img.flip(-1)
        return img.float().div(255).sub(0.5).div(0.5)


class AlignedDataset(PreprocessedImages):
    """Aligned A|B pairs of one phase."""

    def __init__(self, root, phase="train", *, direction="AtoB", preprocess="resize_and_crop",
                 load_size=286, crop_size=256, no_flip=False, max_dataset_size=float("inf"), seed=0,
                 preload=False, input_nc=3, output_nc=3):
        super().__init__(root, preprocess=preprocess, load_size=load_size, crop_size=crop_size, no_flip=no_flip,
                         seed=seed, channels={"--input_nc": input_nc, "--output_nc": output_nc})
        self.phase, self.direction = phase, direction
        gray = (input_nc == 1, output_nc == 1)             # A, B
        self._gray = gray if direction == "AtoB" else gray[::-1]   # left, right halves
        layout = PreparedLayout(root)
        self.paths = layout.pair_files(phase, max_dataset_size)
        self.frame_ids = [frame_id(p, layout.pair_dir(phase)) for p in self.paths]
        expected = None
        if layout.is_prepared():
            h, w = layout.read_meta().image_size
            expected = (2 * w, h)
        for path in self.paths:
            size = image_size(path)
            if expected is not None and size != expected:
                raise UserError(f"{path} is {size[0]}x{size[1]}, but this dataset's pairs are "
                                f"{expected[0]}x{expected[1]} (metadata.json); re-create it")
            if expected is None and (size[0] % 2 or size[0] < 2):
                raise UserError(f"{path} is {size[0]}x{size[1]}: an aligned pair is A | B side by side, two "
                                "halves of equal width, so its width must be even; re-make it (pix2pix's "
                                "combine_A_and_B.py) or crop it to an even width")
        self._cache = None
        if preload:
            from tqdm import tqdm

            self._cache = [self._load(i) for i in tqdm(range(len(self)), desc=f"preload {phase}",
                                                         unit="pair", leave=False)]

    def _load(self, index):
        """(left, right) halves of pair `index`, resized, and the size of a half before resizing."""
        ab = open_image(self.paths[index])
        w, h = ab.size
        w2 = int(w / 2)
        left, right = (self.resized(half, gray) for half, gray in
                       zip((ab.crop((0, 0, w2, h)), ab.crop((w2, 0, w, h))), self._gray))
        return left, right, (w2, h)

    def __getitem__(self, index):
        left, right, size = self._cache[index] if self._cache is not None else self._load(index)
        params = self.transform_params(index, size)
        a, b = (left, right) if self.direction == "AtoB" else (right, left)
        path = self.paths[index]
        return {"A": self.augmented(a, *params), "B": self.augmented(b, *params),
                "frame_id": self.frame_ids[index], "A_paths": path, "B_paths": path}
