"""Decoding image files: photos as a viewer shows them, label maps as the integers they store.

`img.convert("RGB")` (what pix2pix calls) clips 16-bit images at 255, shows 0..1 float TIFFs black and
transparent pixels in whatever colour hides under them. Here 16 bits are scaled to 8, floats 0..1 to
0..255, transparency goes over white and the EXIF orientation is applied; what has no one way to show
it (32-bit integers, floats outside 0..1) is refused in one line naming the file.
"""
import numpy as np
from PIL import Image, ImageOps

from pix2pix_tr.errors import UserError

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
LABEL_MODES = ("1", "L", "P", "I") + SIXTEEN_BIT        # one channel of integers
ORIENTATION = 0x0112                                    # the EXIF tag; 5..8 turn the picture a quarter


def open_image(path, mode="RGB", fix="delete or re-create it", header_only=False):
    """Decode an image as a viewer shows it, in `mode` ("RGB" or "L"); `mode=None`: as stored (see
    `read_label_values`); `header_only`: its (width, height) from the header alone. A file that cannot
    be decoded or shown is one UserError naming it and `fix`."""
    try:
        with Image.open(path) as img:
            if header_only:                                 # as displayed: a quarter turn swaps the sides
                return img.size[::-1] if _header_orientation(img) in (5, 6, 7, 8) else img.size
            img.load()
            bits = getattr(img, "tag_v2", {}).get(258, (16,))[0]   # TIFF says; PNG and PPM integers are 16
            img = ImageOps.exif_transpose(img)           # a copy (without tag_v2), turned as the camera was held
            return img if mode is None else _as_displayed(img, mode, bits)
    except (OSError, SyntaxError, ValueError) as err:      # unreadable, truncated, not an image
        raise UserError(f"{path} is not a readable image ({err}); {fix}") from None
    except _NoDisplay as err:
        raise UserError(f"{path} {err}; save it as an 8- or 16-bit image, or {fix}") from None


def image_size(path, fix="delete or re-create it"):
    """(width, height) from the file's header alone, or the same UserError as `open_image`."""
    return open_image(path, fix=fix, header_only=True)


def read_label_values(path, fix):
    """HxW integer array of a one-channel label map: the values it stores (a palette image's indices,
    as VOC-style labels use them), or a UserError naming the file and its mode."""
    img = open_image(path, mode=None, fix=fix)
    if img.mode not in LABEL_MODES:
        raise UserError(f"{path} has mode {img.mode}: a label map is one channel of integer ids "
                        f"({', '.join(LABEL_MODES)}); {fix}")
    values = np.array(img)                               # writable: torch.from_numpy takes it as is
    return values if values.dtype == np.uint8 else values.astype(np.int32)   # bool, int32, >u2: native ints


def _header_orientation(img):
    """The EXIF orientation known without decoding the pixels (JPEG, WebP, TIFF, a PNG's early eXIf)."""
    if "exif" in img.info:
        exif = Image.Exif()
        exif.load(img.info["exif"])
        return exif.get(ORIENTATION, 1)
    return getattr(img, "tag_v2", {}).get(ORIENTATION, 1)


class _NoDisplay(Exception):
    """An image with no one way to show it."""


def _as_displayed(img, mode, bits):
    if img.mode in SIXTEEN_BIT + ("I", "F"):
        img = _to_eight_bits(img, bits)
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        img = _over_white(img.convert("RGBA"))
    if img.mode == mode:
        return img
    try:
        return img.convert(mode)
    except ValueError:                                   # no direct way (LAB -> L): through RGB, or none
        try:
            return img.convert("RGB").convert(mode)
        except ValueError:
            raise _NoDisplay(f"has mode {img.mode}, which cannot be shown as {mode}") from None


def _to_eight_bits(img, bits):
    """16-bit integers scaled to 8 bits, floats in 0..1 to 0..255: as a viewer shows them."""
    values = np.asarray(img)
    if img.mode == "F":
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
            raise _NoDisplay("is a floating-point image with values outside 0..1, which has no standard display")
        scaled = values * 255.0
    else:
        if bits > 16 or values.min() < 0 or values.max() > 65535:
            raise _NoDisplay(f"is a {bits}-bit integer image (mode {img.mode}), which has no standard display")
        scaled = values / 257.0
    return Image.fromarray(np.round(scaled).astype(np.uint8), mode="L")


def _over_white(rgba):
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:                     # opaque: the colours are the picture
        return rgba.convert("RGB")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=alpha)
    return white
