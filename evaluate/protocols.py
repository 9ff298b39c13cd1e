"""Evaluation protocols: how each segmenter turns a batch into predictions and its confusion matrix
into figures, so that a row is comparable with the figures published under the same protocol.

    `--segmenter X.caffemodel`           Pix2PixFCN8s      pix2pix's eval_cityscapes, step for step
    smp-hub Cityscapes SegFormer ids     SegFormerOfficial NVlabs' test configs (whole / sliding window)
    any other smp segmenter              NativeSize        this project's: resized to its native size

docs/evaluate.md states each in full, with the published figures it is comparable with. Another
protocol is an `Evaluator` subclass (evaluate, protocol, averaging, and needs_fcn8s_input if it wants
pix2pix's upsampled input from the workers), chosen for its segmenters in `load`.
"""
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from data.layout import cityscapes_classes
from evaluate import fcn8s, segmenters
from evaluate.digests import short_name
from evaluate.metrics import AVERAGING, scores_from_matrix as scores
from pix2pix_tr.errors import UserError

PIX2PIX_GT_SIZE = (256, 256)       # pix2pix scores real photos after resizing them to this
FCN8S_INPUT = "image_fcn8s"        # batch key: the image upsampled to its label with PIL (workers)

# pix2pix (Isola et al., CVPR 2017), Table 2: FCN-scores for Cityscapes labels->photos, 256x256.
PIX2PIX_PUBLISHED = (
    ("pix2pix L1+cGAN (published)", {"pixel_acc": 0.66, "class_acc": 0.23, "mean_iou": 0.17}),
    ("Ground truth (pix2pix, published)", {"pixel_acc": 0.80, "class_acc": 0.26, "mean_iou": 0.21}),
)


# --- protocols -------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SegFormerTest:
    """One NVlabs Cityscapes test config: img_scale (long, short) of mmseg's keep-ratio Resize, and
    the sliding window (crop, stride as (h, w)), or None for whole-image inference."""

    img_scale: tuple
    crop: tuple = None
    stride: tuple = None

    def input_size(self, frame_size):
        """mmcv.imrescale's size for a frame (H, W): the largest scale with long edge <= img_scale's
        long and short edge <= its short, rounded half up."""
        h, w = frame_size
        factor = min(max(self.img_scale) / max(h, w), min(self.img_scale) / min(h, w))
        return int(h * factor + 0.5), int(w * factor + 0.5)


# smp-hub repo name -> the test config of NVlabs' local_configs/segformer/B<i>/<name, dots for dashes>.py
SEGFORMER_CITYSCAPES = {
    "segformer-b0-512x1024-city-160k": SegFormerTest((1024, 512)),
    "segformer-b0-640x1280-city-160k": SegFormerTest((1280, 640)),
    "segformer-b0-768x768-city-160k": SegFormerTest((1536, 768), crop=(768, 768), stride=(768, 768)),
    **{f"segformer-b{i}-1024x1024-city-160k": SegFormerTest((2048, 1024), crop=(1024, 1024), stride=(768, 768))
       for i in range(6)},
}


def slide_windows(size, crop, stride):
    """mmseg's slide_inference windows over an image of `size` (H, W): [(y1, y2, x1, x2)]; the last
    window in each direction is pulled back to end at the border; a crop larger than the image
    shrinks to it."""
    (h, w), (hc, wc), (hs, ws) = size, crop, stride
    rows = max(h - hc + hs - 1, 0) // hs + 1
    cols = max(w - wc + ws - 1, 0) // ws + 1
    windows = []
    for r in range(rows):
        for c in range(cols):
            y2, x2 = min(r * hs + hc, h), min(c * ws + wc, w)
            windows.append((max(y2 - hc, 0), y2, max(x2 - wc, 0), x2))
    return windows


def slide_logits(model, x, crop, stride):
    """Logits of `model` over x [N, C, H, W] by mmseg's sliding window: each window's logits (resized
    to the window if the model returns another size) are added into place and divided by the number
    of windows covering each pixel."""
    n, _, h, w = x.shape
    out, count = None, x.new_zeros((1, 1, h, w))
    for y1, y2, x1, x2 in slide_windows((h, w), crop, stride):
        logits = model(x[:, :, y1:y2, x1:x2])
        if tuple(logits.shape[-2:]) != (y2 - y1, x2 - x1):
            logits = F.interpolate(logits, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False)
        if out is None:
            out = x.new_zeros((n, logits.shape[1], h, w))
        out[:, :, y1:y2, x1:x2] += logits
        count[:, :, y1:y2, x1:x2] += 1
    return out / count


class Evaluator:
    """One segmenter under one protocol. `evaluate(batch)` -> (predictions, labels) of one shape on
    the device, to be counted in a confusion matrix; `scores(matrix, names)` -> the figures."""

    averaging = "present"
    needs_fcn8s_input = False

    def __init__(self, name):
        self.name = name

    @property
    def short_name(self):
        return short_name(self.name)

    def scores(self, matrix, class_names):
        return scores(matrix, class_names, self.averaging)

    def protocol(self, label_size):
        """The report's record of the protocol: {name, description, comparable_with, averaging,
        input_size, and "published": [[row label, {metric: value}]] where published figures were made
        under it}."""
        raise NotImplementedError

    def eval_size(self, label_size):
        """Where the predictions are counted (the label's resolution unless resized)."""
        return tuple(label_size)


class Pix2PixFCN8s(Evaluator):
    """pix2pix's Caffe FCN-8s (evaluate/fcn8s.py) under pix2pix's eval_cityscapes, step for step: labels at
    their own resolution; each result upsampled to its label's size by PIL's bilinear filter (real photos
    through 256x256 first); BGR minus the mean; argmax over 20 outputs (19: no class, a miss for the
    label's class); one confusion matrix, 255 ignored; class means over all 19 classes, absent ones 0."""

    averaging = "pix2pix"
    needs_fcn8s_input = True

    def __init__(self, name, model, device):
        super().__init__(name)
        self.memory_format = segmenters.memory_format(device)
        self.model = model.eval().to(device, memory_format=self.memory_format)

    @torch.no_grad()
    def logits(self, images_at_label_size):
        x = fcn8s.preprocess(images_at_label_size).contiguous(memory_format=self.memory_format)
        return self.model(x)

    def evaluate(self, batch):
        return self.logits(batch[FCN8S_INPUT]).argmax(1), batch["label"]

    def protocol(self, label_size):
        return {"name": "pix2pix FCN-8s",
                "description": "pix2pix's eval_cityscapes: results upsampled to the labels' resolution "
                               "(PIL bilinear, uint8), BGR minus mean, argmax over 20 outputs (19 = no class), "
                               "one confusion matrix, 255 ignored; real photos resized to 256x256 first",
                "comparable_with": "pix2pix (Isola et al. 2017) Table 2 and the TRAdam paper's FCN-8s table "
                                   "(Cityscapes labels->photos, full val split)",
                "averaging": AVERAGING[self.averaging], "input_size": list(label_size),
                "published": [[label, dict(values)] for label, values in PIX2PIX_PUBLISHED]}


class SegFormerOfficial(Evaluator):
    """An smp-hub Cityscapes SegFormer under NVlabs' test config for it (SEGFORMER_CITYSCAPES)."""

    averaging = "mmseg"

    def __init__(self, segmenter, test):
        super().__init__(segmenter.name)
        self.segmenter, self.test = segmenter, test

    @torch.no_grad()
    def logits(self, images, label_size):
        seg = self.segmenter
        x = segmenters.normalize_images(images, self.test.input_size(label_size), seg.mean, seg.std, antialias=False)
        x = x.contiguous(memory_format=seg.memory_format)
        if self.test.crop:
            logits = slide_logits(seg.model, x, self.test.crop, self.test.stride)
        else:
            logits = seg.model(x)
        return F.interpolate(logits, size=tuple(label_size), mode="bilinear", align_corners=False)

    def evaluate(self, batch):
        labels = batch["label"]
        return self.logits(batch["image"], labels.shape[-2:]).argmax(1), labels

    def protocol(self, label_size):
        size, crop, name = self.test.input_size(label_size), self.test.crop, short_name(self.name)
        mode = f"sliding {crop[0]}x{crop[1]} window, stride {self.test.stride[0]}" if crop else "whole image"
        config = f"{name.split('-')[1].upper()}/{name.replace('-', '.')}.py"
        return {"name": "SegFormer official",
                "description": f"NVlabs' test config {config}: resized to {size[0]}x{size[1]}, "
                               f"{mode}, logits resized to the labels' resolution",
                "comparable_with": "the SegFormer paper's single-scale Cityscapes val mIoU of this checkpoint "
                                   "when given full-resolution real photos; otherwise other runs under "
                                   "this protocol",
                "averaging": AVERAGING[self.averaging], "input_size": list(size)}


class NativeSize(Evaluator):
    """This project's protocol for its own segmenters: image and labels resized to the segmenter's
    native size (or --eval_size, or the label size), labels by nearest neighbour."""

    def __init__(self, segmenter, size, chosen_by=None):
        super().__init__(segmenter.name)
        self.segmenter, self.size, self.chosen_by = segmenter, tuple(size), chosen_by

    def evaluate(self, batch):
        return (self.segmenter.predict(batch["image"], self.size),
                segmenters.resize_labels(batch["label"], self.size))

    def eval_size(self, label_size):
        return self.size

    def protocol(self, label_size):
        why = self.chosen_by or ("its native size" if self.segmenter.preprocessing.native_size
                                 else "the labels' size")
        return {"name": "native size",
                "description": f"images and labels resized to {self.size[0]}x{self.size[1]} ({why})",
                "comparable_with": "runs of this project scored by the same segmenter; no published figures",
                "averaging": AVERAGING[self.averaging], "input_size": list(self.size)}


# --- loading ---------------------------------------------------------------------------------------
def is_caffemodel(spec):
    return spec.lower().endswith(".caffemodel")


def load(spec, *, device, label_size, eval_size=None, cache_dir=fcn8s.DEFAULT_CACHE_DIR, log=print):
    """The Evaluator for `spec`: a .caffemodel path, an smp hub id or a save_pretrained folder."""
    if is_caffemodel(spec):
        if eval_size:
            raise UserError(f"--eval_size does not apply to {spec}: pix2pix's protocol scores at the "
                            "labels' own resolution; leave --eval_size out")
        return Pix2PixFCN8s(spec, fcn8s.load_fcn8s(spec, device=device, cache_dir=cache_dir, log=log), device)
    seg = segmenters.load_segmenter(spec, device=device)
    if eval_size:
        return NativeSize(seg, seg.eval_size(label_size, eval_size), chosen_by="--eval_size; no official protocol")
    test = SEGFORMER_CITYSCAPES.get(short_name(spec))
    if test is not None:
        size = test.input_size(label_size)
        windows = slide_windows(size, test.crop, test.stride) if test.crop else [(0, size[0], 0, size[1])]
        if any((y2 - y1) % seg.output_stride or (x2 - x1) % seg.output_stride for y1, y2, x1, x2 in windows):
            raise UserError(f"{spec}'s official protocol resizes {label_size[0]}x{label_size[1]} frames to "
                            f"{size[0]}x{size[1]}, which the segmenter cannot take (sides must be multiples of "
                            f"{seg.output_stride}); it is made for Cityscapes' 1024x2048 frames: pass "
                            "--eval_size H W (this project's native-size protocol) for these labels")
        return SegFormerOfficial(seg, test)
    native = seg.preprocessing.native_size
    aspect = label_size[0] / label_size[1] if label_size else None
    if native and aspect and abs(native[0] / native[1] - aspect) > 0.01 * aspect:
        log(f"note: {spec} is evaluated at its native {native[0]}x{native[1]}, another aspect ratio than the "
            f"labels' {label_size[0]}x{label_size[1]} (squashed); an smp-hub Cityscapes SegFormer gets its "
            "official protocol when its folder keeps the hub repo's name")
    return NativeSize(seg, seg.eval_size(label_size))


def check_dataset(evaluator, meta):
    """A UserError if the segmenter predicts other classes than the dataset's: another count, other
    names in its segmenter.json, or pix2pix's FCN-8s (the 19 Cityscapes classes) on other classes."""
    seg = getattr(evaluator, "segmenter", None)
    if seg is not None:
        outputs = seg.num_outputs()
        if outputs is not None and outputs != meta.num_classes:
            raise UserError(f"segmenter {seg.name} predicts {outputs} classes but {meta.name} evaluates "
                            f"{meta.num_classes}; use a segmenter trained on this dataset's classes")
        if seg.preprocessing.classes and list(seg.preprocessing.classes) != list(meta.classes):
            raise UserError(f"segmenter {seg.name} was trained on other classes than {meta.name}'s "
                            "(its segmenter.json); use one trained on this dataset")
    elif isinstance(evaluator, Pix2PixFCN8s) and list(meta.classes) != cityscapes_classes()[0]:
        raise UserError(f"{evaluator.name} scores the 19 Cityscapes classes, but dataset {meta.name} has "
                        f"{meta.num_classes} other classes; use it on Cityscapes (or SynthCity) labels")


# --- pix2pix's inputs, made in the DataLoader's workers --------------------------------------------
def upsample_like_pix2pix(image, size, first_resize=None):
    """uint8 HxWx3 -> uint8 at `size` (H, W) with PIL's bilinear filter (scipy.misc.imresize's), after
    an optional first resize (the real photos' 256x256)."""
    im = Image.fromarray(image)
    if first_resize and im.size != (first_resize[1], first_resize[0]):
        im = im.resize((first_resize[1], first_resize[0]), Image.BILINEAR)
    if im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
    return np.array(im)


class WithFCN8sInput(torch.utils.data.Dataset):
    """Adds FCN8S_INPUT to every item of a LabelledImages-like dataset: its image upsampled to its
    label's resolution as pix2pix does (real photos through 256x256 first)."""

    def __init__(self, dataset, real_photos=False):
        self.dataset, self.real_photos = dataset, real_photos

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = dict(self.dataset[i])
        image = item["image"].permute(1, 2, 0).numpy()
        up = upsample_like_pix2pix(image, item["label"].shape[-2:],
                                   PIX2PIX_GT_SIZE if self.real_photos else None)
        item[FCN8S_INPUT] = torch.from_numpy(up).permute(2, 0, 1).contiguous()
        return item
