"""Prepare Cityscapes from its official download into the prepared layout (data/layout.py).

    python data/prepare_cityscapes.py --gtFine_dir gtFine --leftImg8bit_dir leftImg8bit \\
        --output_dir datasets/cityscapes

Reads gtFine/<split>/<city>/<frame>_gtFine_{color,labelIds}.png and leftImg8bit/<split>/<city>/
<frame>_leftImg8bit.png; writes pairs label colour | photo as pix2pix's prepare_cityscapes_dataset.py
does (label left: labels->photos is AtoB) and the labelIds mapped to trainIds by cityscapesscripts.
Frames already written are skipped, so an interrupted run resumes. Details: docs/data.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import glob  # noqa: E402

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from data.layout import (IGNORE_INDEX, SPLITS, DatasetMeta, PreparedLayout, check_same_params,  # noqa: E402
                         cityscapes_classes, decoded_size, make_output_dir, run_jobs)
from data.images import open_image, read_label_values  # noqa: E402
from pix2pix_tr.run import atomic  # noqa: E402
from pix2pix_tr.errors import UserError, run_cli  # noqa: E402

NAME = "cityscapes"
SEGMENTERS = ["smp-hub/segformer-b0-512x1024-city-160k", "smp-hub/segformer-b5-1024x1024-city-160k"]
COLOR_SUFFIX = "_gtFine_color.png"
LABELIDS_SUFFIX = "_gtFine_labelIds.png"
PHOTO_SUFFIX = "_leftImg8bit.png"
PARAMS_FILE = ".prepare_params.json"
REDOWNLOAD = "re-download or remove it"           # the fix for a source file that cannot be read


def label_id_to_train_id():
    """(lut, defined): lut[labelId] = trainId (255 for ignored classes); defined[labelId] says
    whether cityscapesscripts defines that id. From cityscapesscripts.helpers.labels."""
    from cityscapesscripts.helpers.labels import labels

    lut = np.full(256, IGNORE_INDEX, np.uint8)
    defined = np.zeros(256, bool)
    for label in labels:
        if 0 <= label.id < 256:
            defined[label.id] = True
            if 0 <= label.trainId < IGNORE_INDEX:
                lut[label.id] = label.trainId
    return lut, defined


def _frames_of(folder, suffix):
    """{frame_id: path} of `<folder>/<city>/<frame_id><suffix>`."""
    return {os.path.basename(p)[:-len(suffix)]: p
            for p in glob.glob(os.path.join(glob.escape(folder), "*", "*" + suffix))}


def find_frames(gtfine_dir, leftimg_dir, split):
    """[(frame_id, color_path, labelids_path, photo_path)] of one split, sorted; a UserError if a
    folder is missing or empty, or a photo lacks its labels (or the reverse)."""
    gt_split, photo_split = os.path.join(gtfine_dir, split), os.path.join(leftimg_dir, split)
    for folder, flag in ((gt_split, "--gtFine_dir"), (photo_split, "--leftImg8bit_dir")):
        if not os.path.isdir(folder):
            raise UserError(f"{flag}: {folder} does not exist; pass the official folder holding "
                            f"{split}/<city>/")
    colors = _frames_of(gt_split, COLOR_SUFFIX)
    label_ids = _frames_of(gt_split, LABELIDS_SUFFIX)
    photos = _frames_of(photo_split, PHOTO_SUFFIX)
    if not photos:
        raise UserError(f"{photo_split} holds no <city>/*{PHOTO_SUFFIX} photos")
    if not colors and not label_ids:
        raise UserError(f"{gt_split} holds no <city>/*{COLOR_SUFFIX} / *{LABELIDS_SUFFIX} labels")
    problems = []
    for what, have, need in (("label colour image", colors, photos), ("labelIds image", label_ids, photos),
                             ("photo", photos, colors.keys() | label_ids.keys())):
        missing = sorted(set(need) - set(have))
        if missing:
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            problems.append(f"no {what} for {shown}")
    if problems:
        raise UserError(f"{split}: photos and labels do not match: {'; '.join(problems)}")
    return [(fid, colors[fid], label_ids[fid], photos[fid]) for fid in sorted(photos)]


def prepare_frame(job):
    """Write the aligned pair and the trainId labels of one frame (runs in a worker).
    Returns (frame_id, label size [H, W], whether it was written now)."""
    root, split, fid, color_path, labelids_path, photo_path, image_size = job
    layout = PreparedLayout(root)
    pair_path, label_path = layout.pair_path(split, fid), layout.label_path(split, fid)
    written = decoded_size(label_path)
    if written and decoded_size(pair_path):
        return fid, [written[1], written[0]], False
    ids = read_label_values(labelids_path, fix=REDOWNLOAD)
    lut, defined = label_id_to_train_id()
    known = (ids >= 0) & (ids <= 255) & defined[ids.clip(0, 255).astype(np.intp)]
    bad = np.unique(ids[~known]).tolist()
    if bad:
        raise UserError(f"{labelids_path} holds label ids {bad[:10]} that cityscapesscripts does not "
                        "define; is it a *_gtFine_labelIds.png?")
    color, photo = (open_image(path, fix=REDOWNLOAD) for path in (color_path, photo_path))
    shape = (ids.shape[1], ids.shape[0])
    for path, img in ((color_path, color), (photo_path, photo)):
        if img.size != shape:
            raise UserError(f"{path} is {img.size[0]}x{img.size[1]} but its labelIds are "
                            f"{shape[0]}x{shape[1]}: they must show the same frame at the same size")
    atomic.save_image(label_path, Image.fromarray(lut[ids.astype(np.intp)], mode="L"))
    side = Image.new("RGB", (2 * image_size, image_size))
    side.paste(color.resize((image_size, image_size), Image.BICUBIC), (0, 0))
    side.paste(photo.resize((image_size, image_size), Image.BICUBIC), (image_size, 0))
    atomic.save_image(pair_path, side, quality=100, subsampling=0)
    return fid, [ids.shape[0], ids.shape[1]], True


def prepare(gtfine_dir, leftimg_dir, output_dir, *, image_size=256, workers=None, splits=SPLITS, log=print):
    """Prepare the official Cityscapes folders into `output_dir`. Returns a summary dict."""
    if image_size < 1:
        raise UserError(f"--image_size {image_size}: must be a positive number of pixels (the side of "
                        "each half of a pair; pix2pix uses 256)")
    frames = {split: find_frames(gtfine_dir, leftimg_dir, split) for split in splits}
    make_output_dir(output_dir)
    check_same_params(output_dir, PARAMS_FILE, {"image_size": image_size}, "prepared Cityscapes")
    jobs = [(output_dir, split, *frame, image_size) for split in splits for frame in frames[split]]
    results = run_jobs(prepare_frame, jobs, workers, f"Cityscapes -> {output_dir}")
    written = sum(1 for _, _, new in results if new)
    label_sizes = sorted({tuple(size) for _, size, _ in results})
    names, palette = cityscapes_classes()
    PreparedLayout(output_dir).write_meta(DatasetMeta(
        name=NAME, classes=names, palette=palette, image_size=[image_size, image_size],
        label_size=list(label_sizes[0]), splits={s: len(frames[s]) for s in splits},
        segmenters=list(SEGMENTERS), ignore_index=IGNORE_INDEX,
        source={"gtFine_dir": os.path.abspath(gtfine_dir), "leftImg8bit_dir": os.path.abspath(leftimg_dir),
                "label_sizes": [list(s) for s in label_sizes], "labels": "cityscapesscripts.helpers.labels"}))
    log(f"Cityscapes prepared in {output_dir}: {', '.join(f'{len(frames[s])} {s}' for s in splits)} "
        f"({written} written, {len(jobs) - written} already there)")
    return {"frames": len(jobs), "written": written, "skipped": len(jobs) - written}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gtFine_dir", required=True, help="official gtFine folder (train/ val/ ...)")
    parser.add_argument("--leftImg8bit_dir", required=True, help="official leftImg8bit folder")
    parser.add_argument("--output_dir", required=True, help="where to write the prepared dataset")
    parser.add_argument("--image_size", type=int, default=256, help="side of each half of a pair")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    args = parser.parse_args(argv)
    prepare(args.gtFine_dir, args.leftImg8bit_dir, args.output_dir, image_size=args.image_size, workers=args.workers)


if __name__ == "__main__":
    run_cli(main)
