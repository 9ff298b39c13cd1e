"""Image conversions between the networks' tensors and viewable pictures.

`tensor2im` is the one conversion from a [-1, 1] tensor to an HxWx3 uint8 picture, as pix2pix's
`util.tensor2im`, so visdom, HTML pages and result folders show the same pixels; unlike pix2pix it
rounds (0.0 -> 128) instead of truncating.
"""
import numpy as np
from PIL import Image

from pix2pix_tr.run import atomic


def tensor2im(image):
    """[B,C,H,W] (the first image) or [C,H,W] tensor in [-1, 1] -> HxWx3 uint8 (one channel repeated)."""
    array = np.asarray(image.detach().float().cpu().numpy(), dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    array = np.rint((np.clip(np.transpose(array, (1, 2, 0)), -1.0, 1.0) + 1.0) / 2.0 * 255.0).astype(np.uint8)
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array[:, :, :3]


def save_image(image_numpy, path, aspect_ratio=1.0):
    """Write an HxWx3 uint8 array to `path` (format from the extension), atomically. aspect_ratio > 1
    stretches the width, < 1 the height (pix2pix's util.save_image swaps PIL's width and height, so on its
    square results it stretches the other side)."""
    picture = Image.fromarray(image_numpy)
    height, width = image_numpy.shape[:2]
    if aspect_ratio > 1.0:
        picture = picture.resize((int(width * aspect_ratio), height), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        picture = picture.resize((width, int(height / aspect_ratio)), Image.BICUBIC)
    atomic.save_image(path, picture)
