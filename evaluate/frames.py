"""What gets scored: images matched to their evaluation labels by frame id, as DataLoaders.

Images are test.py's results (`results/<name>/<phase>_<epoch>/images/<frame_id>_fake_B.png`) or the
photo half of the dataset's aligned pairs (`--gt`, FID's real side); labels are the prepared layout's
trainIds (data/layout.py). Workers only decode: resizing and scoring happen on the device.
"""
import json
import os

import numpy as np
import torch
from tqdm import tqdm

from data.images import image_size, open_image, read_label_values
from data.layout import IGNORE_INDEX, LABEL_EXTENSION, PreparedLayout, find_images, frame_id
from evaluate.digests import file_sha256
from pix2pix_tr.errors import UserError
from pix2pix_tr.run import atomic, distributed

IMAGES_DIR = "images"        # test.py's sub-folder of a results folder (as pix2pix's HTML pages have it)
SYNTHESIS_FILE = "synthesis.json"   # test.py's record of a results folder: its checkpoint, complete or not
RESULT_SUFFIX = "_fake_B"     # test.py's <frame_id>_fake_B.png
RESULT_EXTENSIONS = (".png", ".jpg", ".jpeg")
SHOW = 5                     # frame ids listed in an error line before "... (N in all)"


def run_folder(results_dir):
    """The `<phase>_<epoch>` folder of a results path that may end in its images/."""
    folder = os.path.normpath(results_dir)
    return os.path.dirname(folder) if os.path.basename(folder) == IMAGES_DIR else folder


def find_results(results_dir):
    """{frame_id: path} of the synthesized images in test.py's folder (or its images/)."""
    if not os.path.isdir(results_dir):
        raise UserError(f"--results_dir {results_dir} does not exist: pass test.py's "
                        "results/<name>/<phase>_<epoch> folder")
    for folder in (os.path.join(results_dir, IMAGES_DIR), results_dir):
        if not os.path.isdir(folder):
            continue
        found = {}
        for name in os.listdir(folder):
            stem, ext = os.path.splitext(name)
            if ext.lower() in RESULT_EXTENSIONS and stem.endswith(RESULT_SUFFIX) and not name.startswith("."):
                found[stem[:-len(RESULT_SUFFIX)]] = os.path.join(folder, name)
        if found:
            return check_synthesis(run_folder(results_dir), found)
    nested = sorted(d for d in os.listdir(results_dir) if os.path.isdir(os.path.join(results_dir, d, IMAGES_DIR)))
    hint = f" (it has run folders: {', '.join(nested[:SHOW])}; pass one of them)" if nested else ""
    raise UserError(f"no <frame_id>{RESULT_SUFFIX}.png in {results_dir} or its {IMAGES_DIR}/{hint}: "
                    "expected test.py's results/<name>/<phase>_<epoch> folder")


def write_synthesis(folder, checkpoint, frame_ids=None):
    """test.py's record: which weights file (and its SHA-256) made the folder; `frame_ids` once complete."""
    record = {"checkpoint": os.path.abspath(checkpoint), "sha256": file_sha256(checkpoint),
              "complete": frame_ids is not None, "frames": sorted(frame_ids or [])}
    atomic.write_json(os.path.join(folder, SYNTHESIS_FILE), record)


def check_synthesis(folder, found):
    """`found` ({frame_id: path}) if test.py's record says the folder is whole and holds only its frames;
    a folder without a record (pix2pix's own test.py) is taken as it is."""
    path = os.path.join(folder, SYNTHESIS_FILE)
    if not os.path.isfile(path):
        return found
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        complete, made, checkpoint = record["complete"], set(record["frames"]), record["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is not test.py's record of this folder ({err}); run test.py again") from None
    if not complete:
        raise UserError(f"{folder} is incomplete: test.py stopped while synthesizing it from {checkpoint}; "
                        "run test.py again")
    stale, missing = sorted(set(found) - made), sorted(made - set(found))
    if stale or missing:
        what = f"{len(stale)} frames test.py did not write from {checkpoint} (e.g. {stale[0]})" if stale else \
            f"no images of {len(missing)} frames test.py wrote (e.g. {missing[0]})"
        raise UserError(f"{folder} is mixed: it has {what}; delete it and run test.py again")
    return found


def label_paths(dataroot, phase):
    """{frame_id: label path} of a prepared dataset's split."""
    layout = PreparedLayout(dataroot)
    layout.read_meta()
    folder = layout.label_dir(phase)
    if not layout.has_labels(phase):
        raise UserError(f"{dataroot} has no {folder}: FCN-score needs the trainId labels that "
                        "data/prepare_cityscapes.py or data/synthcity.py write")
    return {frame_id(p, folder): p for p in find_images(folder, what="labels") if p.endswith(LABEL_EXTENSION)}


def photo_paths(dataroot, phase):
    """{frame_id: aligned pair path} of the split: the real photos live in their photo half."""
    layout = PreparedLayout(dataroot)
    return {frame_id(p, layout.pair_dir(phase)): p for p in layout.pair_files(phase)}


def match_frames(images, labels, what):
    """Sorted frame ids present in both; an error listing missing/unexpected ones otherwise."""
    missing = sorted(set(labels) - set(images))
    unexpected = sorted(set(images) - set(labels))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} frame(s) of the labels have no {what}: {_listing(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} {what} have no label: {_listing(unexpected)}")
        raise UserError("; ".join(parts) + " (results and labels must be the same split: check "
                        "--phase and --dataroot)")
    return sorted(labels)


def _listing(ids):
    return ", ".join(ids[:SHOW]) + (f", ... ({len(ids)} in all)" if len(ids) > SHOW else "")


def check_one_size(paths, what, fix="a results folder holds the outputs of one test.py run"):
    """All images share one size (read from the headers only); returns (H, W)."""
    sizes = {}
    for path in paths:
        sizes.setdefault(image_size(path, fix="re-create it"), path)
    if len(sizes) > 1:
        listed = ", ".join(f"{w}x{h} ({os.path.basename(p)})" for (w, h), p in list(sizes.items())[:3])
        raise UserError(f"{what} are not all one size: {listed}; {fix}")
    (w, h), = sizes
    return h, w


class Images(torch.utils.data.Dataset):
    """{"image": uint8 [3, H, W], "frame_id"} per frame (FID's input). `photo_half` None reads the
    whole image; "left"/"right" reads that half of an aligned pair."""

    def __init__(self, frame_ids, image_paths, photo_half=None):
        self.frame_ids = list(frame_ids)
        self.image_paths = [image_paths[f] for f in self.frame_ids]
        self.photo_half = photo_half

    def __len__(self):
        return len(self.frame_ids)

    def __getitem__(self, i):
        image = read_rgb(self.image_paths[i], self.photo_half)
        return {"image": torch.from_numpy(image).permute(2, 0, 1).contiguous(), "frame_id": self.frame_ids[i]}


class LabelledImages(Images):
    """`Images` plus "label": the frame's trainId label, uint8 [H, W] (FCN-score's input)."""

    def __init__(self, frame_ids, image_paths, label_paths, photo_half=None, *, num_classes=None,
                 ignore_index=IGNORE_INDEX):
        super().__init__(frame_ids, image_paths, photo_half)
        self.label_paths = [label_paths[f] for f in self.frame_ids]
        self.num_classes, self.ignore_index = num_classes, ignore_index

    def __getitem__(self, i):
        item = super().__getitem__(i)
        item["label"] = torch.from_numpy(read_label(self.label_paths[i], self.num_classes, self.ignore_index))
        return item


def read_label(path, num_classes=None, ignore_index=IGNORE_INDEX):
    """HxW array of a trainId label image; a UserError naming it if it is unreadable, not one channel,
    or (given `num_classes`) holds values other than 0..num_classes-1 and `ignore_index`: Cityscapes'
    labelIds (0..33) instead of trainIds (0..18, 255) would otherwise be scored silently wrong."""
    label = read_label_values(path, fix="re-create it by re-running the dataset's preparation "
                                        "(data/prepare_cityscapes.py or data/synthcity.py)")
    if num_classes is not None:
        bad = ((label < 0) | (label >= num_classes)) & (label != ignore_index)
        if bad.any():
            values = np.unique(label[bad])
            shown = ", ".join(str(v) for v in values[:5]) + (", ..." if len(values) > 5 else "")
            raise UserError(f"{path} holds label values {shown} outside the trainIds 0..{num_classes - 1} "
                            f"and {ignore_index}: it looks like a labelIds image rather than trainIds; "
                            "pass the labels/ that data/prepare_cityscapes.py writes (it maps labelIds "
                            "to trainIds)")
    return label


def read_rgb(path, half=None):
    """HxWx3 uint8 of an image, or of the left/right half of an aligned pair; a UserError naming
    the file if it cannot be decoded."""
    image = np.array(open_image(path, fix="re-create it (test.py writes the results, the dataset's preparation "
                                          "the pairs) or remove it"))
    if half is not None:
        w = image.shape[1] // 2
        image = image[:, :w] if half == "left" else image[:, w:2 * w]
    return np.ascontiguousarray(image)


def photo_half(meta):
    """Which half of the dataset's pairs shows the photo."""
    if meta.b_is == "photo":
        return "right"
    if meta.a_is == "photo":
        return "left"
    raise UserError(f"dataset {meta.name}: neither half of its pairs is a photo (a_is={meta.a_is}, "
                    f"b_is={meta.b_is})")


def device_batches(dataset, *, device, batch_size, num_workers, desc):
    """This rank's share of `dataset` (all of it without torchrun) in batches from DataLoader workers,
    their tensors on `device`, behind a progress bar."""
    device = torch.device(device)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, distributed.shard_range(len(dataset))), batch_size=batch_size,
        num_workers=num_workers, pin_memory=device.type == "cuda", prefetch_factor=4 if num_workers else None)
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not distributed.is_main_process()):
        yield {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
