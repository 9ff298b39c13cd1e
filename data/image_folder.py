"""Which files are images, and finding them in a folder and its sub-folders, as pix2pix's
data/image_folder.py does, so a pix2pix dataset folder reads here as it reads there.

    IMG_EXTENSIONS   pix2pix's: .jpg .jpeg .png .ppm .bmp .tif .tiff (any letter case here; pix2pix
                     takes all-lower or all-upper)
    find_images      every image under a folder, sub-folders included, sorted by path relative to it

Each image is named by its path relative to the folder, without extension (`frame_id`): a file
`train/1.jpg` is `1`, `train/berlin/1.jpg` is `berlin/1`, so pairs in sub-folders keep distinct
names (pix2pix names results by base name only, and pairs of equal base names overwrite each
other's results there). Unlike pix2pix, `max_dataset_size` keeps the first images in sorted order
(pix2pix keeps the first os.walk found, in the file system's order).
"""
import os

from pix2pix_tr.errors import UserError

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")


def is_image_file(name):
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def frame_id(path, root):
    """`path` relative to `root`, '/'-separated, without extension: the name of its results."""
    return os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, "/")


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
    if max_dataset_size != float("inf"):
        found = found[:int(max_dataset_size)]
    return found
