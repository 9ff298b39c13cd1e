"""Every image mode Pillow opens is read as a viewer shows it, or refused in one line naming the file.

Each case builds a file from a known picture whose displayed form is known independently (a 16-bit
grey v*257 shows as v, a float v/255 shows as v, alpha a over white shows as a*c + (1-a)*255, EXIF
orientation 6 shows the stored picture turned clockwise), saves it in every format that keeps the
mode, and compares what `open_image` gives with that. A picture must never come back constant.
"""
import io

import numpy as np
import pytest
from PIL import Image

from data.images import image_size, open_image, read_label_values
from evaluate.frames import read_label
from pix2pix_tr.errors import UserError

H, W = 24, 32
# Four flat blocks of four colours: a palette takes them exactly, JPEG nearly.
COLOURS = np.array([[200, 30, 30], [30, 160, 60], [40, 60, 220], [128, 128, 128]], np.uint8)
INDEX = np.zeros((H, W), np.uint8)
INDEX[:, W // 2:] += 1
INDEX[H // 2:, :] += 2
RGB = COLOURS[INDEX]
GREY = np.array(Image.fromarray(RGB).convert("L"))
ALPHA = np.where(INDEX % 2 == 0, 255, 64).astype(np.uint8)


def over_white(rgb, alpha):
    a = alpha[..., None] / 255.0
    return np.round(a * rgb + (1 - a) * 255).astype(np.uint8)


def palette_image():
    img = Image.fromarray(INDEX, mode="P")
    img.putpalette(COLOURS.reshape(-1).tolist())
    return img


def palette_with_transparent_index():
    img = palette_image()
    img.info["transparency"] = 1                         # block 1 is see-through: white on a page
    return img


def grey3(grey):
    return np.repeat(grey[..., None], 3, axis=2)


LOSSLESS = ["PNG", "TIFF", "BMP", "TGA", "PPM", "WEBP"]
# (name, the file's picture, what a viewer shows as RGB, formats that keep the mode)
SHOWN = [
    ("1", lambda: Image.fromarray(INDEX % 2 == 1), lambda: grey3((INDEX % 2 == 1).astype(np.uint8) * 255),
     ["PNG", "TIFF", "BMP", "PPM", "TGA", "GIF"]),
    ("L", lambda: Image.fromarray(GREY), lambda: grey3(GREY), LOSSLESS + ["GIF"]),
    ("P", palette_image, lambda: RGB, ["PNG", "TIFF", "BMP", "TGA", "GIF"]),
    ("P transparent", palette_with_transparent_index, lambda: over_white(RGB, np.where(INDEX == 1, 0, 255)),
     ["PNG", "GIF"]),
    ("RGB", lambda: Image.fromarray(RGB), lambda: RGB, LOSSLESS),
    ("RGBA", lambda: Image.fromarray(np.dstack([RGB, ALPHA])), lambda: over_white(RGB, ALPHA),
     ["PNG", "TIFF", "TGA", "WEBP"]),
    ("LA", lambda: Image.fromarray(np.dstack([GREY, ALPHA]), mode="LA"),
     lambda: grey3(over_white(GREY[..., None], ALPHA)[..., 0]), ["PNG", "TIFF", "TGA"]),
    ("CMYK", lambda: Image.fromarray(RGB).convert("CMYK"), lambda: RGB, ["TIFF", "JPEG"]),
    ("YCbCr", lambda: Image.fromarray(RGB).convert("YCbCr"), lambda: RGB, ["TIFF", "JPEG"]),
    ("LAB", lambda: Image.fromarray(RGB).convert("LAB"), lambda: RGB, ["TIFF"]),
    ("I;16", lambda: Image.fromarray(GREY.astype(np.uint16) * 257), lambda: grey3(GREY), ["PNG", "TIFF"]),
    ("I;16B", lambda: Image.frombytes("I;16B", (W, H), (GREY.astype(">u2") * 257).tobytes()), lambda: grey3(GREY),
     ["TIFF"]),
    ("I (16-bit PPM)", lambda: Image.fromarray(GREY.astype(np.uint16) * 257), lambda: grey3(GREY), ["PPM"]),
    ("F in 0..1", lambda: Image.fromarray(GREY.astype(np.float32) / 255), lambda: grey3(GREY), ["TIFF"]),
]
REFUSED = [
    ("I 32-bit", lambda: Image.fromarray(GREY.astype(np.int32) * 100000), "32-bit integer image", ["TIFF"]),
    ("F in 0..255", lambda: Image.fromarray(GREY.astype(np.float32)), "values outside 0..1", ["TIFF"]),
]


def save(tmp_path, img, fmt):
    path = tmp_path / f"picture.{fmt.lower()}"
    options = {"WEBP": {"lossless": True}, "JPEG": {"quality": 100, "subsampling": 0}}.get(fmt, {})
    img.save(path, fmt, **options)
    return path


@pytest.mark.parametrize("name, make, shown, fmt", [(n, m, s, f) for n, m, s, fs in SHOWN for f in fs],
                         ids=[f"{n}-{f}" for n, _, _, fs in SHOWN for f in fs])
def test_a_picture_reads_as_a_viewer_shows_it(tmp_path, name, make, shown, fmt):
    path = save(tmp_path, make(), fmt)
    rgb = np.asarray(open_image(path)).astype(int)
    grey = np.asarray(open_image(path, mode="L")).astype(int)
    expected = shown().astype(int)
    tolerance = {"YCbCr": 4, "LAB": 10}.get(name, 4 if fmt == "JPEG" else 1)   # 8-bit Lab's own quantization
    assert rgb.shape == (H, W, 3) and np.abs(rgb - expected).max() <= tolerance, np.abs(rgb - expected).max()
    assert np.abs(grey - np.asarray(Image.fromarray(expected.astype(np.uint8)).convert("L"))).max() <= tolerance
    assert np.ptp(rgb) >= np.ptp(expected) - 2 * tolerance      # never a constant (or faded) picture


@pytest.mark.parametrize("name, make, reason, fmt", [(n, m, r, f) for n, m, r, fs in REFUSED for f in fs])
def test_a_picture_without_a_standard_display_is_refused_in_one_line(tmp_path, name, make, reason, fmt):
    path = save(tmp_path, make(), fmt)
    with pytest.raises(UserError) as err:
        open_image(path)
    message = str(err.value)
    assert message.startswith(f"{path} is a ") and reason in message and "\n" not in message


def test_exif_orientation_turns_the_picture_and_its_size_as_a_viewer_does(tmp_path):
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[0x0112] = 6                                     # "rotate 90 CW to display"
    path = tmp_path / "phone.jpg"
    img.save(path, quality=100, subsampling=0, exif=exif)
    shown = np.asarray(open_image(path)).astype(int)
    assert shown.shape == (W, H, 3) and image_size(path) == (H, W)
    assert np.abs(shown - np.rot90(RGB, k=-1)).max() <= 4


@pytest.mark.parametrize("mode, fmt", [("1", "PNG"), ("L", "PNG"), ("P", "PNG"), ("I;16", "PNG"), ("I;16B", "TIFF"),
                                       ("I", "TIFF")])
def test_a_label_map_reads_as_its_stored_ids(tmp_path, mode, fmt):
    ids = INDEX % 2 if mode == "1" else INDEX * 5   # 0..15: palette indices, not the palette's colours
    img = {"1": lambda: Image.fromarray(ids == 1), "P": lambda: Image.fromarray(ids, mode="P"),
           "L": lambda: Image.fromarray(ids), "I": lambda: Image.fromarray(ids.astype(np.int32)),
           "I;16": lambda: Image.fromarray(ids.astype(np.uint16)),
           "I;16B": lambda: Image.frombytes("I;16B", (W, H), ids.astype(">u2").tobytes())}[mode]()
    if mode == "P":
        img.putpalette(np.arange(768, dtype=np.uint8)[::-1].tolist())
    path = save(tmp_path, img, fmt)
    assert np.array_equal(read_label_values(path, fix="x"), ids)
    assert np.array_equal(read_label(str(path), num_classes=19).astype(int), ids)


@pytest.mark.parametrize("make", [lambda: Image.fromarray(RGB), lambda: Image.fromarray(GREY.astype(np.float32)),
                                  lambda: Image.fromarray(np.dstack([GREY, ALPHA]), mode="LA")],
                         ids=["RGB", "F", "LA"])
def test_a_label_map_that_is_not_one_channel_of_ids_is_refused_naming_its_mode(tmp_path, make):
    img = make()
    path = save(tmp_path, img, "TIFF")
    with pytest.raises(UserError) as err:
        read_label(str(path), num_classes=19)
    assert str(err.value).startswith(f"{path} has mode {img.mode}: a label map is one channel of integer ids")


def test_an_undecodable_file_is_still_named():
    with pytest.raises(UserError, match="is not a readable image"):
        open_image(io.BytesIO(b"not an image"))
