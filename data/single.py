"""Single images for applying a trained generator to your own inputs: pix2pix's SingleDataset
(`--dataset_mode single`, what pix2pix's `--model test` and scripts/test_single.sh use).

`root` is a folder (its images and those of its sub-folders, pix2pix's extensions, sorted) or one
image file. Each image is read as RGB, made grayscale when the generator takes one channel
(`input_nc` 1), and preprocessed as the aligned pairs are (`data/aligned.py`: resize per
`preprocess` to `load_size`, crop to `crop_size` where the mode crops, seeded as there), so any
image size goes in. Items are {"A": [C, H, W] in [-1, 1], "frame_id", "A_paths"}; the frame id is
the path relative to the folder without extension (a lone file: its name without extension),
which names the results (`<frame_id>_fake.png`).

The images are the generator's input, whatever the run's --direction: a run trained BtoA (labels
on the right of its pairs, as pix2pix's facades and cityscapes) takes label maps as one trained
AtoB does. pix2pix's SingleDataset picks the channel count from --output_nc under BtoA, which
differs only when input_nc != output_nc, where its generator would be handed the wrong count;
here it is always the generator's input_nc.
"""
import os

import torch

from data.aligned import check_preprocessing, crop_and_flip, random_part, resize_deterministic, to_uint8_chw
from data.layout import IMG_EXTENSIONS, find_images, frame_id, is_image_file, open_image
from pix2pix_tr.errors import UserError


class SingleDataset(torch.utils.data.Dataset):
    """The images of a folder (or one file), preprocessed as pix2pix's SingleDataset does."""

    def __init__(self, root, *, preprocess="resize_and_crop", load_size=256, crop_size=256, no_flip=True,
                 max_dataset_size=float("inf"), seed=0, input_nc=3):
        root = os.fspath(root)
        check_preprocessing(root, preprocess, load_size, crop_size, {"--input_nc": input_nc})
        if os.path.isfile(root):
            if not is_image_file(os.path.basename(root)):
                raise UserError(f"{root} is not an image file (pix2pix's image files: {' '.join(IMG_EXTENSIONS)})")
            self.paths = [root]
            self.frame_ids = [frame_id(root, os.path.dirname(root))]
        elif os.path.isdir(root):
            self.paths = find_images(root, max_dataset_size, what="images (label maps to synthesize from)")
            self.frame_ids = [frame_id(p, root) for p in self.paths]
        else:
            raise UserError(f"--dataroot {root} does not exist: pass a folder of images or one image file")
        self.root, self.preprocess = root, preprocess
        self.load_size, self.crop_size, self.no_flip = load_size, crop_size, no_flip
        self.gray = input_nc == 1
        self.seed, self.epoch = seed, 0

    def __len__(self):
        return len(self.paths)

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __getitem__(self, index):
        path = self.paths[index]
        img = open_image(path)                                      # RGB, or one line naming the file
        size = img.size
        if self.gray:
            img = img.convert("L")
        img = to_uint8_chw(resize_deterministic(img, self.preprocess, self.load_size, self.crop_size))
        x, y, flip = crop_and_flip(self.preprocess, self.load_size, self.crop_size, size, self.seed,
                                   self.epoch, index)
        return {"A": random_part(img, self.preprocess, self.crop_size, self.no_flip, x, y, flip),
                "frame_id": self.frame_ids[index], "A_paths": path}
