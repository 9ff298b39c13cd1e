"""Image conversions between the networks' tensors and viewable pictures.

The networks see images as float tensors in [-1, 1], channels first, usually with a batch dimension.
People (visdom, HTML pages, result folders) see HxWx3 uint8 pictures. `tensor2im` is the one
conversion between the two, as pix2pix's `util.tensor2im`, so every viewer shows the same pixels:
the first image of a batch, one-channel images repeated to RGB, values clipped to [-1, 1] and
mapped to 0..255 with rounding (pix2pix truncates; rounding maps 0.0 to 128 rather than 127).
"""
import numpy as np
from PIL import Image

from pix2pix_tr.run import atomic


def tensor2im(image, imtype=np.uint8):
    """[B,C,H,W] or [C,H,W] tensor (or array) in [-1, 1] -> HxWx3 `imtype` array in 0..255.

    A numpy array that is already HxWx3 (or HxW) uint8 is returned as is (as RGB), so callers may
    pass either.
    """
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        return _as_rgb(image if image.ndim == 3 else image[:, :, None])
    if hasattr(image, "detach"):  # torch tensor, any device
        image = image.detach().float().cpu().numpy()
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    if array.ndim != 3:
        raise ValueError(f"tensor2im expects [B,C,H,W] or [C,H,W], got shape {array.shape}")
    array = np.transpose(array, (1, 2, 0))  # CHW -> HWC
    array = (np.clip(array, -1.0, 1.0) + 1.0) / 2.0 * 255.0
    return _as_rgb(np.rint(array).astype(imtype))


def _as_rgb(array):
    if array.shape[2] == 1:
        return np.repeat(array, 3, axis=2)
    return array[:, :, :3]


def save_image(image_numpy, path, aspect_ratio=1.0):
    """Write an HxWx3 uint8 array to `path` (format from the extension), atomically.

    aspect_ratio > 1 stretches the width, < 1 the height: the saved width/height is `aspect_ratio`
    times the image's (test.py's --aspect_ratio). pix2pix's util.save_image resizes to (h, w * ratio)
    as PIL's (width, height), which on its square results stretches the height instead.
    """
    picture = Image.fromarray(image_numpy)
    height, width = image_numpy.shape[:2]
    if aspect_ratio > 1.0:
        picture = picture.resize((int(width * aspect_ratio), height), Image.BICUBIC)
    elif aspect_ratio < 1.0:
        picture = picture.resize((width, int(height / aspect_ratio)), Image.BICUBIC)
    atomic.save_image(path, picture)
