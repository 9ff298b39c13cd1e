"""Sample image grids: for a few validation frames, the label map, each optimizer's synthesis and
the real photo side by side, read from test.py's `<frame_id>_{real_A,fake_B,real_B}.png`."""
import os

from PIL import Image, ImageDraw

from pix2pix_tr import atomic


def frame_ids(images_dir, limit):
    """The first `limit` frame ids (sorted) that have a synthesized image in `images_dir`."""
    suffix = "_fake_B.png"
    if not os.path.isdir(images_dir):
        return []
    return sorted(f[: -len(suffix)] for f in os.listdir(images_dir) if f.endswith(suffix))[:limit]


def image_grid(columns, frames, path, tile=128):
    """Write a grid: one row per frame id, one column per (title, images_dir, suffix).
    Missing images are left grey. Returns the number of rows."""
    header = 16
    grid = Image.new("RGB", (tile * len(columns), header + tile * len(frames)), (128, 128, 128))
    draw = ImageDraw.Draw(grid)
    for c, (title, _, _) in enumerate(columns):
        draw.rectangle([c * tile, 0, (c + 1) * tile - 1, header - 1], fill=(255, 255, 255))
        draw.text((c * tile + 3, 2), title, fill=(0, 0, 0))
    for r, fid in enumerate(frames):
        for c, (_, folder, suffix) in enumerate(columns):
            src = os.path.join(folder, f"{fid}{suffix}")
            if os.path.exists(src):
                with Image.open(src) as im:
                    grid.paste(im.convert("RGB").resize((tile, tile), Image.BILINEAR),
                               (c * tile, header + r * tile))
    atomic.save_image(path, grid, optimize=True)
    return len(frames)
